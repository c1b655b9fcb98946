"""Public graders for s43 rag: chunk windows and their invariants (coverage, exact overlap, no
empty chunk), TF-IDF against scikit-learn, exact top-k cosine retrieval against a brute-force
sort and faiss (IndexFlatIP on normalised vectors) when installed, the tie rule on fixtures
whose scores are exact, re-ranking, prompts and citations, the extractive reader, and recall@k /
MRR on hand-made rankings and on the generated corpus of tools/rag_data.py.
"""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close
from tools.rag_data import make_corpus

HAS_FAISS = importlib.util.find_spec("faiss") is not None


def brute_top_k(q, x, k):
    """Cosine by explicit loops; order by (-score, index) with Python's sort."""
    out_s, out_i = [], []
    for row in q:
        scores = []
        for j, col in enumerate(x):
            den = np.linalg.norm(row) * np.linalg.norm(col)
            scores.append((-(row @ col) / den if den > 0 else -0.0, j))
        best = sorted(scores)[:k]
        out_s.append([-s for s, _ in best])
        out_i.append([j for _, j in best])
    return np.array(out_s), np.array(out_i)


def check_windows(spans, n, size, overlap, where):
    """The chunk invariants, each with its own message."""
    if n == 0:
        assert spans == [], f"{where}: no words gives no chunks, got {spans}"
        return
    assert spans and spans[0][0] == 0, f"{where}: the first chunk starts at word 0, got {spans}"
    assert spans[-1][1] == n, f"{where}: the last chunk ends at word {n}, got {spans[-1]}"
    for a, b in spans:
        assert 0 < b - a <= size, f"{where}: chunk {(a, b)} is empty or longer than {size}"
    for (a0, b0), (a1, b1) in zip(spans, spans[1:], strict=False):
        assert a1 == a0 + size - overlap, (
            f"{where}: chunk {(a1, b1)} after {(a0, b0)} should start at {a0 + size - overlap} "
            "(step = size - overlap)")
        assert b0 - a1 == overlap, (
            f"{where}: chunks {(a0, b0)} and {(a1, b1)} share {b0 - a1} words, expected "
            f"overlap = {overlap}")
        assert b0 < n, f"{where}: chunk {(a1, b1)} follows one that already reached the end"
    covered = set().union(*(range(a, b) for a, b in spans))
    assert covered == set(range(n)), f"{where}: words {set(range(n)) - covered} are in no chunk"


@pytest.mark.points(2)
def test_chunk_spans_worked_examples(impl):
    cases = {(10, 4, 2): [(0, 4), (2, 6), (4, 8), (6, 10)],
             (9, 4, 1): [(0, 4), (3, 7), (6, 9)],      # the last chunk is shorter
             (7, 3, 0): [(0, 3), (3, 6), (6, 7)],      # no overlap
             (3, 5, 2): [(0, 3)],                      # one chunk shorter than size
             (5, 5, 4): [(0, 5)],                      # one chunk that reaches the end
             (1, 1, 0): [(0, 1)], (0, 3, 1): []}
    for (n, size, overlap), want in cases.items():
        got = [tuple(map(int, s)) for s in impl.chunk_spans(n, size, overlap)]
        assert got == want, (
            f"chunk_spans({n}, {size}, {overlap}) should be {want}, got {got}: starts advance by "
            "size - overlap and you stop after the first window that reaches n_words")
    for size, overlap in ((4, 4), (4, 5), (0, 0), (3, -1)):
        with pytest.raises(ValueError):
            impl.chunk_spans(10, size, overlap)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 60), size=st.integers(1, 12), data=st.data())
@pytest.mark.points(2)
def test_chunk_spans_cover_overlap_exactly_and_are_never_empty(impl, n, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    spans = [tuple(map(int, s)) for s in impl.chunk_spans(n, size, overlap)]
    check_windows(spans, n, size, overlap, f"chunk_spans({n}, {size}, {overlap})")


@pytest.mark.points(2)
def test_chunk_corpus_numbers_chunks_across_documents(impl):
    docs = ["a b c d e", "", "f g  h\ni"]
    got = impl.chunk_corpus(docs, 3, 1)
    want = [{"id": 0, "doc": 0, "start": 0, "end": 3, "text": "a b c"},
            {"id": 1, "doc": 0, "start": 2, "end": 5, "text": "c d e"},
            {"id": 2, "doc": 2, "start": 0, "end": 3, "text": "f g h"},
            {"id": 3, "doc": 2, "start": 2, "end": 4, "text": "h i"}]
    assert got == want, (
        f"chunk_corpus(docs, 3, 1) should be {want}, got {got}: split each document on "
        "whitespace, cut it with chunk_spans, number the chunks 0, 1, ... across documents (an "
        "empty document has none), join a chunk's words with one space")


@pytest.mark.points(1)
def test_relevant_ids_need_the_whole_span_in_the_same_document(impl):
    chunks = impl.chunk_corpus(["w " * 10, "w " * 10], 4, 2)   # spans 0-4, 2-6, 4-8, 6-10
    assert impl.relevant_ids(chunks, 0, 3, 5) == {1}, (
        "span [3, 5) of document 0 lies whole only in chunk (2, 6), id 1: got "
        f"{impl.relevant_ids(chunks, 0, 3, 5)}")
    assert impl.relevant_ids(chunks, 1, 4, 6) == {5, 6}, (
        "span [4, 6) of document 1 lies in its chunks (2, 6) and (4, 8), ids 5 and 6 (ids "
        f"count on across documents); got {impl.relevant_ids(chunks, 1, 4, 6)}")
    assert impl.relevant_ids(chunks, 0, 1, 7) == set(), (
        "no chunk of size 4 holds the 6-word span [1, 7): expected an empty set, got "
        f"{impl.relevant_ids(chunks, 0, 1, 7)}")
    assert impl.relevant_ids(chunks, 0, 0, 4) == {0}, "span [0, 4) is chunk (0, 4) itself"


@pytest.mark.points(2)
def test_tfidf_hand_worked_and_equal_to_scikit_learn(impl):
    texts = ["the cat sat", "The cat, the hat!", "dog"]
    vocab, idf = impl.fit_tfidf(texts)
    assert vocab == {"cat": 0, "dog": 1, "hat": 2, "sat": 3, "the": 4}, (
        f"the vocabulary is the sorted distinct tokens, each its column: got {vocab}")
    want_idf = np.log(4 / (1 + np.array([2, 1, 1, 1, 2]))) + 1   # ln((1 + n) / (1 + df)) + 1
    assert_close(idf, want_idf, "fit_tfidf's idf (smooth: ln((1 + n) / (1 + df)) + 1)")
    got = impl.embed_tfidf(["the the cat", "zebra", "hat hat"], vocab, idf)
    row = np.array([want_idf[0], 0, 0, 0, 2 * want_idf[4]])
    want = np.stack([row / np.linalg.norm(row), np.zeros(5), [0, 0, 1, 0, 0]])
    assert_close(got, want, "embed_tfidf: counts times idf over the row's L2 norm; a text "
                 "with no known token is a zero row")
    sk = pytest.importorskip("sklearn.feature_extraction.text")
    docs, questions = make_corpus(6, seed=3)
    vec = sk.TfidfVectorizer(token_pattern=r"[a-z0-9]+")
    want = vec.fit_transform(docs).toarray()
    vocab, idf = impl.fit_tfidf(docs)
    assert vocab == vec.vocabulary_, "vocabulary differs from TfidfVectorizer's"
    assert_close(impl.embed_tfidf(docs, vocab, idf), want, "TF-IDF of the documents against "
                 "TfidfVectorizer(token_pattern='[a-z0-9]+')", rtol=1e-10, atol=1e-12)
    qs = [q["question"] for q in questions]
    assert_close(impl.embed_tfidf(qs, vocab, idf), vec.transform(qs).toarray(),
                 "the questions embedded with the documents' vocabulary and idf",
                 rtol=1e-10, atol=1e-12)   # float64 sums in another order


@pytest.mark.points(1)
def test_normalize_rows_keeps_zero_rows(impl):
    x = np.array([[3.0, 4.0], [0.0, 0.0], [-2.0, 0.0]])
    got = impl.normalize_rows(x)
    assert_close(got, [[0.6, 0.8], [0, 0], [-1, 0]], "normalize_rows: each row over its L2 "
                 "norm, a zero row stays zero (no NaN)")
    assert got.dtype == np.float64, f"normalize_rows returns float64, got {got.dtype}"
    assert_close(impl.normalize_rows(np.array([[1, 1, 1, 1]])), [[0.5] * 4],
                 "an integer row is converted to float64 first")


@pytest.mark.points(3)
def test_top_k_equals_a_brute_force_sort(impl, rng):
    q, x = rng.normal(size=(7, 6)), rng.normal(size=(30, 6)) * rng.uniform(0.1, 5, (30, 1))
    scores, ids = impl.top_k(q, x, 5)
    want_s, want_i = brute_top_k(q, x, 5)
    assert np.array_equal(np.asarray(ids), want_i), (
        f"top_k ids should be {want_i[0]} for the first query, got {np.asarray(ids)[0]}: cosine "
        "(normalise both sides, not the raw dot product), highest first")
    assert np.asarray(ids).dtype == np.int64, f"ids are int64, got {np.asarray(ids).dtype}"
    assert_close(scores, want_s, "top_k scores are the cosine similarities", rtol=1e-10)
    s_all, i_all = impl.top_k(q[:2], x[:4], 10)
    assert np.asarray(i_all).shape == (2, 4), "k larger than the index keeps all N rows"
    assert_close(s_all, brute_top_k(q[:2], x[:4], 4)[0], "top_k with k > N", rtol=1e-10)
    with pytest.raises(ValueError):
        impl.top_k(q, x[:, :5], 3)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed (pip install faiss-cpu)")
@pytest.mark.points(2)
def test_top_k_equals_faiss_inner_product_on_normalised_vectors(impl, rng):
    import faiss

    q = rng.normal(size=(12, 16)).astype(np.float32)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    qn, xn = q / np.linalg.norm(q, axis=1, keepdims=True), x / np.linalg.norm(x, axis=1,
                                                                            keepdims=True)
    index = faiss.IndexFlatIP(16)
    index.add(xn)
    dist, want = index.search(qn, 8)
    gaps = np.diff(np.sort(qn @ xn.T, axis=1)[:, ::-1][:, :9], axis=1)
    assert np.abs(gaps).min() > 1e-5, "fixture: the top scores must be tie-free for faiss"
    scores, ids = impl.top_k(q, x, 8)
    assert np.array_equal(np.asarray(ids), want), (
        f"top_k's ids differ from faiss.IndexFlatIP on normalised vectors: expected {want[0]} "
        f"for the first query, got {np.asarray(ids)[0]}")
    assert_close(scores, dist, "top_k scores against faiss's inner products", rtol=1e-5,
                 atol=1e-6)   # faiss computes in float32


@pytest.mark.points(2)
def test_top_k_breaks_ties_by_lower_index(impl):
    # Powers of two: every cosine is exact, so equal scores are truly equal.
    x = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0],
                  [0, 0, 4, 0]], dtype=float)
    q = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=float)
    scores, ids = impl.top_k(q, x, 4)
    want = [[1, 2, 4, 3], [0, 1, 2, 3], [3, 0, 1, 2]]
    assert np.asarray(ids).tolist() == want, (
        f"with equal scores the lower index comes first: expected {want}, got "
        f"{np.asarray(ids).tolist()} (a stable argsort of -scores; a zero query scores 0 "
        "everywhere, so its top k is 0, 1, 2, ...)")
    assert_close(scores, [[1, 1, 1, 0.5], [0, 0, 0, 0], [1, 0.5, 0.5, 0.5]],
                 "tied cosines (a zero vector scores 0, never NaN)")


@pytest.mark.points(1)
def test_bigram_overlap_worked_examples(impl):
    cases = [("capital of Zor", "The capital of Zor is Tal.", 1.0),
             ("what is the capital of zor", "the capital of zor", 3 / 5),
             ("zor capital", "capital zor", 0.0),          # order matters
             ("a b a b", "b a", 1 / 2),                    # distinct bigrams: (a,b), (b,a)
             ("zor", "zor zor", 0.0), ("", "x y", 0.0)]    # no bigram in the query
    for query, text, want in cases:
        got = impl.bigram_overlap(query, text)
        assert abs(got - want) < 1e-12, (
            f"bigram_overlap({query!r}, {text!r}) should be {want}, got {got}: distinct "
            "adjacent token pairs of the query, the share of them found in the text")


@pytest.mark.points(2)
def test_rerank_adds_the_weighted_overlap_and_keeps_ties_in_order(impl):
    texts = ["zor is far", "capital of zor", "zor the capital", "nothing here"]
    ids, scores = [10, 11, 12, 13], [0.9, 0.5, 0.6, 0.9]
    new_ids, new = impl.rerank("the capital of zor", texts, ids, scores, weight=1.0)
    # overlaps: 0, 2/3, 1/3, 0 -> 0.9, 1.1667, 0.9333, 0.9 (10 and 13 tie: input order)
    assert np.asarray(new_ids).tolist() == [11, 12, 10, 13], (
        f"rerank should order [11, 12, 10, 13], got {np.asarray(new_ids).tolist()}: new = "
        "score + weight * bigram_overlap, descending, equal new scores in input order")
    assert_close(new, [0.5 + 2 / 3, 0.6 + 1 / 3, 0.9, 0.9], "rerank's new scores")
    same_ids, same = impl.rerank("the capital of zor", texts, ids, scores, weight=0.0)
    assert np.asarray(same_ids).tolist() == [10, 13, 12, 11], "weight 0 sorts by score alone"
    ids2, _ = impl.rerank("the capital of zor", texts, ids, scores, weight=0.5)
    assert np.asarray(ids2).tolist() == [10, 13, 11, 12], (
        f"with weight 0.5 the new scores are 0.9, 0.833, 0.767, 0.9: expected [10, 13, 11, 12], "
        f"got {np.asarray(ids2).tolist()}")


@pytest.mark.points(1)
def test_build_prompt_numbers_sources_by_chunk_id(impl):
    got = impl.build_prompt("Who founded Zor?", ["Zor was founded by Tal.", "Zor is cold."],
                            [7, 2])
    want = "[7] Zor was founded by Tal.\n[2] Zor is cold.\nQuestion: Who founded Zor?\nAnswer:"
    assert got == want, f"build_prompt should give {want!r}, got {got!r}"
    closed = impl.build_prompt("Who founded Zor?", [], [])
    assert closed == "Question: Who founded Zor?\nAnswer:", f"closed-book prompt: got {closed!r}"


@pytest.mark.points(2)
def test_parse_citations_keep_only_retrieved_chunks(impl):
    got = impl.parse_citations("Tal [7], as [3] and [7] say; see also [12] [2].", [2, 7, 3])
    assert got == [7, 3, 2], (
        f"expected [7, 3, 2] (first-citation order, each once, [12] was never retrieved), "
        f"got {got}")
    assert impl.parse_citations("no sources", [1]) == [], "no [n] gives no citation"
    assert impl.parse_citations("[5]", np.array([5])) == [5], "ids may be a NumPy array"
    assert impl.parse_citations("[5] (5) 5", [4]) == [], "a citation of an unretrieved chunk"


@pytest.mark.points(2)
def test_extract_answer_reads_the_best_sentence_and_cites_it(impl):
    texts = ["Zor is cold. The capital of Zor is Talmir.", "The capital of Quen is Osk."]
    got = impl.extract_answer("What is the capital of Zor?", texts, [4, 9])
    assert got == {"answer": "talmir", "citations": [4]}, (
        "the sentence sharing most question tokens is 'The capital of Zor is Talmir.'; its "
        f"tokens outside the question and STOPWORDS give 'talmir', cited [4]; got {got}")
    got = impl.extract_answer("Who founded Quen?", ["Quen was founded by Bre Dal."], [3])
    assert got == {"answer": "bre dal", "citations": [3]}, (
        f"'was' and 'by' are STOPWORDS: expected 'bre dal' citing [3], got {got}")
    got = impl.extract_answer("Why?", texts, [4, 9])
    assert got == {"answer": "", "citations": []}, f"nothing shared: got {got}"


@pytest.mark.points(2)
def test_recall_at_k_and_mrr_worked_examples(impl):
    rankings = [[5, 1, 2], [3, 4, 9], [7, 8, 6], [0, 2, 1]]
    relevant = [{1}, {3, 4}, {6}, {11}]
    for k, want in ((1, 0.25), (2, 0.5), (3, 0.75), (10, 0.75)):
        got = impl.recall_at_k(rankings, relevant, k)
        assert abs(got - want) < 1e-12, (
            f"recall_at_k at k={k} should be {want}, got {got}: a question counts once when "
            "any of its first k ids is relevant (two relevant ids are not two hits)")
    got = impl.mean_reciprocal_rank(rankings, relevant)
    want = (1 / 2 + 1 + 1 / 3 + 0) / 4
    assert abs(got - want) < 1e-12, (
        f"MRR should be {want}, got {got}: 1 / rank of the FIRST relevant id (1-based), 0 "
        "when none, averaged over every question")
    with pytest.raises(ValueError):
        impl.recall_at_k(rankings, relevant[:2], 1)


@pytest.mark.points(2)
def test_retrieval_finds_the_evidence_on_the_generated_corpus(impl):
    docs, questions = make_corpus(12, seed=5)
    chunks = impl.chunk_corpus(docs, 20, 8)
    texts = [c["text"] for c in chunks]
    vocab, idf = impl.fit_tfidf(texts)
    _, ids = impl.top_k(impl.embed_tfidf([q["question"] for q in questions], vocab, idf),
                        impl.embed_tfidf(texts, vocab, idf), 5)
    relevant = [impl.relevant_ids(chunks, q["doc"], q["start"], q["end"]) for q in questions]
    assert all(relevant), "with size 20 and overlap 8 every fact sentence is whole in a chunk"
    hits = [next((r + 1 for r, i in enumerate(row) if int(i) in rel), None)
            for row, rel in zip(ids, relevant, strict=True)]
    want = {k: np.mean([h is not None and h <= k for h in hits]) for k in (1, 3, 5)}
    for k in (1, 3, 5):
        got = impl.recall_at_k(list(ids), relevant, k)
        assert abs(got - want[k]) < 1e-12, f"recall@{k} should be {want[k]}, got {got}"
    assert want[5] >= 0.9 and want[1] >= 0.4, (
        f"TF-IDF retrieval should find most evidence: recall@1 {want[1]}, recall@5 {want[5]}")
    want_mrr = np.mean([1 / h if h else 0.0 for h in hits])
    assert abs(impl.mean_reciprocal_rank(list(ids), relevant) - want_mrr) < 1e-12, "MRR"

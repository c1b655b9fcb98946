"""Hidden graders for s43: chunk windows against an independent enumeration at every small
size, ties in bulk on integer vectors, faiss at other k, TF-IDF on random word texts, the
re-ranker's and reader's tie rules, citation parsing corner cases, recall@k / MRR against a
reference on random rankings, and the whole pipeline's recall table on a larger corpus."""

import importlib.util
import random

import numpy as np
import pytest

from graders.helpers import assert_close
from graders.test_s43_rag import HAS_FAISS, brute_top_k, check_windows
from tools.rag_data import make_corpus


def enumerate_windows(n, size, overlap):
    """Every start that is a multiple of the step and still needed, by a different route."""
    if n == 0:
        return []
    step = size - overlap
    last = max(0, -(-(n - size) // step))   # ceil((n - size) / step) windows after the first
    return [(j * step, min(j * step + size, n)) for j in range(last + 1)]


@pytest.mark.points(2)
def test_chunk_windows_match_an_enumeration_at_every_small_size(impl):
    for n in range(0, 26):
        for size in range(1, 9):
            for overlap in range(size):
                got = [tuple(map(int, s)) for s in impl.chunk_spans(n, size, overlap)]
                want = enumerate_windows(n, size, overlap)
                assert got == want, (
                    f"chunk_spans({n}, {size}, {overlap}) gave {got}, expected {want}: check "
                    "the last window (stop right after the first one that reaches n_words)")
                check_windows(got, n, size, overlap, f"chunk_spans({n}, {size}, {overlap})")


@pytest.mark.points(1)
def test_chunk_corpus_texts_rebuild_every_document(impl, rng):
    docs = [" ".join(f"w{i}" for i in range(int(m))) for m in rng.integers(0, 30, 6)]
    chunks = impl.chunk_corpus(docs, 7, 3)
    assert [c["id"] for c in chunks] == list(range(len(chunks))), "ids are 0, 1, 2, ..."
    for d, doc in enumerate(docs):
        mine = [c for c in chunks if c["doc"] == d]
        words = doc.split()
        rebuilt = (mine[0]["text"].split() + [w for c in mine[1:] for w in c["text"].split()[3:]]
                   if mine else [])
        assert rebuilt == words, (
            f"document {d}: dropping each later chunk's 3 overlapping words should give the "
            "document back; a chunk's text is the words of its span")
        assert all(c["text"].split() == words[c["start"]:c["end"]] for c in mine), (
            f"document {d}: a chunk's text differs from the words of its [start, end)")


@pytest.mark.points(2)
def test_top_k_ties_in_bulk_on_integer_vectors(impl, rng):
    x = rng.integers(0, 2, size=(40, 4)).astype(float) * 2.0   # many duplicate rows
    x[rng.integers(0, 40, 5)] = 0.0                            # zero rows score 0
    q = rng.integers(0, 2, size=(10, 4)).astype(float)
    for k in (1, 6, 40):
        scores, ids = impl.top_k(q, x, k)
        want_s, want_i = brute_top_k(q, x, k)
        # Cosines of 0/1 vectors are ratios of small integers and square roots; equal ones are
        # computed from equal inputs, so exact ties stay exact: compare ids exactly.
        assert np.asarray(ids).tolist() == want_i.tolist(), (
            f"top_k with duplicated rows at k={k}: the first query should get "
            f"{want_i[0].tolist()}, got {np.asarray(ids)[0].tolist()} (equal scores: lower index)")
        assert_close(scores, want_s, f"top_k scores at k={k}", rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed (pip install faiss-cpu)")
@pytest.mark.points(1)
def test_top_k_agrees_with_faiss_for_one_and_for_many(impl, rng):
    import faiss

    x = rng.normal(size=(60, 5)).astype(np.float32)
    q = rng.normal(size=(4, 5)).astype(np.float32)
    xn, qn = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (x, q))
    index = faiss.IndexFlatIP(5)
    index.add(xn)
    for k in (1, 20):
        dist, want = index.search(qn, k)
        sims = np.sort(qn @ xn.T, axis=1)[:, ::-1][:, :k + 1]
        assert np.abs(np.diff(sims, axis=1)).min() > 1e-6, "fixture must be tie-free"
        scores, ids = impl.top_k(q, x, k)
        assert np.array_equal(np.asarray(ids), want), f"top_k ids differ from faiss at k={k}"
        assert_close(scores, dist, f"scores against faiss at k={k}", rtol=1e-5, atol=1e-6)


@pytest.mark.points(2)
def test_tfidf_on_random_word_texts(impl, rng):
    sk = pytest.importorskip("sklearn.feature_extraction.text")
    words = ["ox", "Elm", "fir", "ash", "yew", "oak", "a1", "b2", "c3"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) + "." for _ in range(15)]
    queries = ["ox ox zebra", "nothing known", "ASH, yew; ash"]
    vec = sk.TfidfVectorizer(token_pattern=r"[a-z0-9]+")
    want = vec.fit_transform(texts).toarray()
    vocab, idf = impl.fit_tfidf(texts)
    assert_close(idf, vec.idf_, "idf on random texts (df counts texts, not occurrences)",
                 rtol=1e-12)
    assert_close(impl.embed_tfidf(texts, vocab, idf), want, "TF-IDF rows on random texts",
                 rtol=1e-10, atol=1e-12)
    got = impl.embed_tfidf(queries, vocab, idf)
    assert_close(got, vec.transform(queries).toarray(), "queries with unknown words",
                 rtol=1e-10, atol=1e-12)
    assert got.dtype == np.float64, f"embed_tfidf returns float64, got {got.dtype}"


@pytest.mark.points(1)
def test_rerank_with_a_negative_weight_and_a_single_candidate(impl):
    texts = ["capital of zor", "zor is far"]
    ids, new = impl.rerank("capital of zor", texts, np.array([3, 8]), np.array([0.5, 0.4]),
                           weight=-1.0)
    assert np.asarray(ids).tolist() == [8, 3], (
        "a negative weight subtracts the overlap: 0.5 - 1 < 0.4 - 0, so 8 comes first; got "
        f"{np.asarray(ids).tolist()}")
    assert_close(new, [0.4, -0.5], "rerank's new scores with weight -1")
    one_ids, one = impl.rerank("zor", ["zor"], [4], [0.25])
    assert np.asarray(one_ids).tolist() == [4] and abs(float(one[0]) - 0.25) < 1e-12, (
        "one candidate and a one-token query (no bigram): unchanged")
    with pytest.raises(ValueError):
        impl.rerank("zor", ["a", "b"], [1], [0.1])


@pytest.mark.points(1)
def test_reader_prefers_the_earlier_text_then_the_earlier_sentence(impl):
    texts = ["Zor likes tea. Zor likes salt!", "Zor likes wine? Zor likes milk."]
    got = impl.extract_answer("what does zor like", texts, [1, 0])
    assert got == {"answer": "likes tea", "citations": [1]}, (
        f"every sentence shares one token ('zor'): the first sentence of the first text wins, "
        f"got {got}")
    got = impl.extract_answer("zor likes milk", texts, [1, 0])
    assert got == {"answer": "", "citations": [0]}, (
        "the best sentence has only question tokens: the answer is empty but the citation "
        f"stays; got {got}")
    got = impl.extract_answer("what is the capital of the land", ["The capital is Tal"], [2])
    assert got == {"answer": "tal", "citations": [2]}, f"STOPWORDS removed: got {got}"


@pytest.mark.points(1)
def test_citation_parsing_corner_cases(impl):
    assert impl.parse_citations("[3][3][1]x[3]", [1, 3]) == [3, 1], "duplicates cited once"
    assert impl.parse_citations("[ 3] [3a] [-3] 3]", [3]) == [], "only [digits] is a citation"
    assert impl.parse_citations("[10]", [1, 0]) == [], "[10] is chunk 10, not 1 and 0"
    assert impl.parse_citations("[2]", []) == [], "nothing retrieved: no citation is valid"


def reference_metrics(rankings, relevant, k):
    hit, rr = 0, 0.0
    for row, rel in zip(rankings, relevant, strict=True):
        pos = [p for p, i in enumerate(row) if i in rel]
        hit += bool(pos) and pos[0] < k
        rr += 1 / (pos[0] + 1) if pos else 0.0
    return hit / len(rankings), rr / len(rankings)


@pytest.mark.points(2)
def test_recall_and_mrr_on_random_rankings(impl):
    r = random.Random(43)
    rankings = [r.sample(range(30), r.randint(0, 12)) for _ in range(200)]
    relevant = [set(r.sample(range(30), r.randint(0, 3))) for _ in range(200)]
    for k in (1, 2, 5, 50):
        want_recall, want_mrr = reference_metrics(rankings, relevant, k)
        got = impl.recall_at_k(rankings, relevant, k)
        assert abs(got - want_recall) < 1e-12, f"recall@{k} on random rankings: {got} vs " \
                                               f"{want_recall}"
    got = impl.mean_reciprocal_rank(rankings, relevant)
    assert abs(got - want_mrr) < 1e-12, f"MRR on random rankings: expected {want_mrr}, got {got}"
    arr = [np.array(x, dtype=np.int64) for x in rankings]
    assert abs(impl.recall_at_k(arr, relevant, 3) - reference_metrics(rankings, relevant, 3)[0]
               ) < 1e-12, "rankings given as NumPy arrays"
    with pytest.raises(ValueError):
        impl.mean_reciprocal_rank([], [])
    with pytest.raises(ValueError):
        impl.recall_at_k([[1]], [{1}], 0)


@pytest.mark.points(2)
def test_pipeline_recall_table_and_rerank_on_a_larger_corpus(impl):
    docs, questions = make_corpus(30, seed=9)
    chunks = impl.chunk_corpus(docs, 16, 6)
    texts = [c["text"] for c in chunks]
    vocab, idf = impl.fit_tfidf(texts)
    index = impl.embed_tfidf(texts, vocab, idf)
    scores, ids = impl.top_k(impl.embed_tfidf([q["question"] for q in questions], vocab, idf),
                             index, 10)
    relevant = [impl.relevant_ids(chunks, q["doc"], q["start"], q["end"]) for q in questions]
    recall = [impl.recall_at_k(list(ids), relevant, k) for k in (1, 3, 5, 10)]
    assert recall == sorted(recall) and 0 < recall[0] < recall[-1], (
        f"recall@k must grow with k: got {recall} for k = 1, 3, 5, 10")
    reranked = [impl.rerank(q["question"], [texts[i] for i in row], row, s)[0]
                for q, row, s in zip(questions, ids, scores, strict=True)]
    assert impl.mean_reciprocal_rank(reranked, relevant) >= impl.mean_reciprocal_rank(
        list(ids), relevant), "bigram re-ranking should not lower MRR on unparaphrased facts"
    plain = [i for i, q in enumerate(questions) if not q["paraphrased"]]
    good = 0
    for i in plain:
        top = reranked[i][:3]
        got = impl.extract_answer(questions[i]["question"], [texts[j] for j in top], top)
        assert set(got["citations"]) <= {int(j) for j in top}, (
            f"the reader cited {got['citations']}, not among the retrieved {list(top)}")
        good += got["answer"] == questions[i]["answer"]
    assert good / len(plain) > 0.8, (
        f"the reader over the re-ranked top 3 should answer most unparaphrased questions; "
        f"got {good} of {len(plain)}")


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss not installed")
@pytest.mark.points(1)
def test_tfidf_retrieval_scores_match_a_faiss_index(impl):
    import faiss

    docs, questions = make_corpus(8, seed=2)
    chunks = impl.chunk_corpus(docs, 14, 4)
    texts = [c["text"] for c in chunks]
    vocab, idf = impl.fit_tfidf(texts)
    x = impl.embed_tfidf(texts, vocab, idf).astype(np.float32)
    q = impl.embed_tfidf([q["question"] for q in questions], vocab, idf).astype(np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    dist, _ = index.search(q, 5)
    scores, _ = impl.top_k(q, x, 5)
    # Ties between chunks are common here, so compare the score lists (faiss orders ties its
    # own way); float32 inner products.
    assert_close(scores, dist, "the top-5 TF-IDF scores against faiss", rtol=1e-5, atol=1e-6)


@pytest.mark.points(1)
def test_chunk_windows_of_long_documents_and_a_negative_length(impl):
    for n, size, overlap in ((300, 100, 50), (1000, 300, 0), (777, 260, 259), (513, 257, 1)):
        got = [tuple(map(int, s)) for s in impl.chunk_spans(n, size, overlap)]
        assert got == enumerate_windows(n, size, overlap), (
            f"chunk_spans({n}, {size}, {overlap}) on a long document: expected "
            f"{enumerate_windows(n, size, overlap)[-2:]} at the end, got {got[-2:]} (compare "
            "numbers with ==, never with `is`)")
    with pytest.raises(ValueError):
        impl.chunk_spans(-1, 4, 1)


@pytest.mark.points(1)
def test_relevant_ids_with_large_document_numbers(impl):
    chunks = [{"id": 7, "doc": 1000, "start": 0, "end": 9, "text": ""},
              {"id": 8, "doc": 1001, "start": 0, "end": 9, "text": ""},
              {"id": 9, "doc": 1000, "start": 5, "end": 14, "text": ""}]
    doc = int("1000")   # equal to, but not the same object as, the chunks' 1000
    got = impl.relevant_ids(chunks, doc, 5, 9)
    assert got == {7, 9}, (
        f"span [5, 9) of document 1000 is inside chunks 7 and 9: got {got} (compare document "
        "numbers with ==)")


@pytest.mark.points(1)
def test_normalize_rows_works_along_the_last_axis(impl):
    assert_close(impl.normalize_rows(np.array([3.0, 4.0])), [0.6, 0.8],
                 "normalize_rows of a single vector (1-D): normalise along the last axis")
    x = np.arange(12, dtype=float).reshape(2, 3, 2)
    want = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-300)
    assert_close(impl.normalize_rows(x), want, "normalize_rows of a (2, 3, 2) array, last axis")


@pytest.mark.points(1)
def test_prompt_and_reader_refuse_texts_and_ids_of_different_lengths(impl):
    with pytest.raises(ValueError):
        impl.build_prompt("q", ["a", "b"], [1])
    with pytest.raises(ValueError):
        impl.build_prompt("q", ["a"], [1, 2])
    with pytest.raises(ValueError):
        impl.extract_answer("zor", ["zor a", "zor b"], [1])

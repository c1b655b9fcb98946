"""Public graders for s17 text basics: tokens, vocabulary, TF-IDF equal to scikit-learn's,
cosine similarity and nearest neighbours."""

import itertools

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from graders.helpers import assert_close, check_shape

LEXICON = ["the", "cat", "sat", "on", "mat", "dog", "ate", "my", "homework", "café", "naïve",
           "über", "Straße", "THE", "Cat", "x", "a", "42", "snake_case", "東京"]
PUNCT = [" ", " ", " ", ", ", ". ", "! ", "? ", " -- ", "'", "\n", "\t"]


def _docs(rng, n=12, length=(0, 14)):
    """n random documents of lexicon words joined by spaces and punctuation."""
    docs = []
    for _ in range(n):
        words = rng.choice(LEXICON, size=rng.integers(*length))
        seps = rng.choice(PUNCT, size=len(words))
        docs.append("".join(w + s for w, s in zip(words, seps, strict=True)))
    return docs


def _sk_tfidf(**settings):
    return TfidfVectorizer(**settings)


# --- normalisation and tokens -------------------------------------------------------------

@pytest.mark.points(1)
def test_normalize_composes_unicode_lowercases_and_collapses_whitespace(impl):
    decomposed = "  Cafe\u0301 \t au\n\nLAIT  "  # "e" + combining acute accent (NFD)
    got = impl.normalize(decomposed)
    assert got == "caf\u00e9 au lait", (
        f"normalize({decomposed!r}) should be 'café au lait' with the single code point é "
        f"(U+00E9, NFC), one space between words and no space at the ends; got {got!r}. "
        "Use unicodedata.normalize('NFC', text), .lower() and ' '.join(text.split()).")
    kept = impl.normalize(" Hello   World ", lowercase=False)
    assert kept == "Hello World", f"lowercase=False must keep the case; got {kept!r}"


@pytest.mark.points(2)
def test_word_tokenize_splits_on_punctuation_and_drops_one_letter_tokens(impl):
    text = "Don't STOP: the cat's 2 mats, 42 snake_case words... a-b x!"
    got = impl.word_tokenize(text)
    expected = ["don", "stop", "the", "cat", "mats", "42", "snake_case", "words"]
    assert got == expected, (
        f"word_tokenize({text!r}) should give {expected}; got {got}. Tokens are runs of 2 or "
        "more word characters (letters, digits, '_'): punctuation splits, single letters go.")
    cased = impl.word_tokenize("The Cat", lowercase=False)
    assert cased == ["The", "Cat"], f"lowercase=False must keep the case, got {cased}"


@pytest.mark.points(1)
def test_word_tokenize_handles_unicode_and_empty_text(impl):
    got = impl.word_tokenize("Naïve café in 東京, über-Straße!")
    expected = ["naïve", "café", "in", "東京", "über", "straße"]
    assert got == expected, (
        f"accented letters and non-Latin scripts are word characters too: expected "
        f"{expected}, got {got}")
    assert impl.word_tokenize("") == [], "an empty text has no tokens"
    assert impl.word_tokenize(" ,.!? ") == [], "punctuation alone has no tokens"


@pytest.mark.points(1)
def test_char_tokenize_gives_the_characters_of_the_normalised_text(impl):
    got = impl.char_tokenize(" Cafe\u0301  ok ")
    assert got == ["C", "a", "f", "é", " ", "o", "k"], (
        "char_tokenize(' Cafe\\u0301  ok ') should be the characters of "
        f"normalize(text, lowercase=False): 'Café ok' (é one character); got {got}")
    assert impl.char_tokenize("AB", lowercase=True) == ["a", "b"], "lowercase=True lowercases"
    assert impl.char_tokenize("") == [], "an empty text has no characters"


# --- vocabulary and counts ---------------------------------------------------------------

@pytest.mark.points(2)
def test_vocabulary_is_alphabetical_and_min_df_counts_documents(impl):
    docs = ["bb bb bb aa", "aa cc", "cc dd", "ee ee ee ee"]
    got = impl.build_vocabulary(docs)
    assert got == {"aa": 0, "bb": 1, "cc": 2, "dd": 3, "ee": 4}, (
        f"the vocabulary numbers the terms 0.. in alphabetical order; got {got}")
    got = impl.build_vocabulary(docs, min_df=2)
    assert got == {"aa": 0, "cc": 1}, (
        "min_df=2 keeps the terms found in at least 2 DOCUMENTS (aa, cc); 'ee' occurs 4 times "
        f"but in one document only. Got {got}")


@pytest.mark.points(1)
def test_bag_of_words_matches_count_vectorizer(impl, rng):
    docs = _docs(rng)
    ref = CountVectorizer()
    expected = ref.fit_transform(docs).toarray()
    vocab = impl.build_vocabulary(docs)
    assert vocab == {t: int(j) for t, j in ref.vocabulary_.items()}, (
        "build_vocabulary(docs) differs from CountVectorizer().fit(docs).vocabulary_: check "
        "the tokens (lowercased, 2+ word characters) and the alphabetical numbering")
    got = impl.bag_of_words(docs, vocab)
    check_shape(got, expected.shape, "bag_of_words(docs, vocabulary)", "n_docs, V")
    assert_close(got, expected, "bag_of_words counts", rtol=0, atol=0)  # integer counts


# --- TF-IDF --------------------------------------------------------------------------------

SETTINGS = list(itertools.product([True, False], [False, True], ["l2", "l1", None]))


@pytest.mark.points(3)
@pytest.mark.parametrize("smooth_idf, sublinear_tf, norm", SETTINGS)
def test_tfidf_equals_sklearn(impl, rng, smooth_idf, sublinear_tf, norm):
    docs = _docs(rng, n=15, length=(3, 20))
    settings = {"smooth_idf": smooth_idf, "sublinear_tf": sublinear_tf, "norm": norm}
    ref = _sk_tfidf(**settings)
    expected = ref.fit_transform(docs).toarray()
    model = impl.Tfidf(**settings)
    got = model.fit_transform(docs)
    what = f"Tfidf({', '.join(f'{k}={v!r}' for k, v in settings.items())}).fit_transform(docs)"
    assert model.vocabulary_ == {t: int(j) for t, j in ref.vocabulary_.items()}, (
        f"{what}: vocabulary_ differs from scikit-learn's")
    # the same float64 formulas in the same order of operations: only rounding remains
    assert_close(model.idf_, ref.idf_, f"{what}: idf_", rtol=1e-12, atol=1e-12)
    assert_close(got, expected, what, rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_tfidf_transform_uses_the_training_idf(impl, rng):
    train, test = _docs(rng, n=10, length=(3, 15)), _docs(rng, n=6, length=(0, 15))
    test.append("zebra unicorn")  # only unseen terms: a zero row, not NaN
    ref = _sk_tfidf(sublinear_tf=True).fit(train)
    model = impl.Tfidf(sublinear_tf=True).fit(train)
    # float64 rounding only, as above
    assert_close(model.transform(test), ref.transform(test).toarray(),
                 "Tfidf().fit(train).transform(test) (idf from TRAIN, unseen words ignored, "
                 "a document of unseen words gives a row of zeros)", rtol=1e-12, atol=1e-12)


# --- cosine similarity and neighbours -------------------------------------------------------

@pytest.mark.points(2)
def test_cosine_similarity_matches_sklearn_and_is_symmetric_and_scale_invariant(impl, rng):
    A, B = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    S = impl.cosine_similarity(A, B)
    check_shape(S, (5, 3), "cosine_similarity(A (5, 4), B (3, 4))", "n, m")
    # float64 dot products and norms: only rounding
    assert_close(S, sk_cosine(A, B), "cosine_similarity(A, B)", rtol=1e-12, atol=1e-12)
    assert_close(impl.cosine_similarity(B, A), S.T, "cosine_similarity(B, A) vs (A, B).T",
                 rtol=1e-12, atol=1e-12)
    assert_close(impl.cosine_similarity(3.0 * A, 0.25 * B), S,
                 "cosine of scaled rows (cosine ignores length)", rtol=1e-12, atol=1e-12)
    assert_close(impl.cosine_similarity(A), sk_cosine(A), "cosine_similarity(A) (B = A)",
                 rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_cosine_with_a_zero_vector_is_zero_not_nan(impl):
    A = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    S = impl.cosine_similarity(A)
    assert np.all(np.isfinite(S)), (
        f"a zero vector gave {S.tolist()}: its norm is 0, so 0/0 = NaN. Divide by 1 where the "
        "norm is 0, so the cosine is defined as 0.")
    assert_close(S, [[0.0, 0.0], [0.0, 1.0]], "cosine_similarity with a zero row",
                 rtol=0, atol=1e-15)  # exact zeros, and 1 up to rounding


@pytest.mark.points(2)
def test_nearest_neighbors_equal_a_brute_force_ranking(impl, rng):
    X, Q = rng.normal(size=(30, 5)), rng.normal(size=(4, 5))  # continuous: no exact ties
    idx, sims = impl.nearest_neighbors(Q, X, k=6)
    check_shape(idx, (4, 6), "nearest_neighbors indices", "q, k")
    S = sk_cosine(Q, X)
    for q in range(len(Q)):
        ranking = sorted(range(len(X)), key=lambda j: (-S[q, j], j))[:6]
        assert [int(i) for i in idx[q]] == ranking, (
            f"query {q}: the 6 nearest rows by cosine (best first, equal cosines by lower "
            f"index) are {ranking}; got {idx[q].tolist()}")
        # float64 rounding only
        assert_close(sims[q], S[q, ranking], f"the cosines returned for query {q}",
                     rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_nearest_neighbors_break_ties_by_lower_index(impl):
    X = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [5.0, 0.1]])
    idx, _ = impl.nearest_neighbors(np.array([[3.0, 0.0]]), X, k=4)
    assert idx[0].tolist() == [0, 2, 3, 4], (
        "rows 0, 2 and 3 all point in the query's direction (cosine 1): they must come in "
        f"increasing index order, then row 4; got {idx[0].tolist()}. Sort with a STABLE sort "
        "of -cosine (np.argsort(-S, kind='stable')).")

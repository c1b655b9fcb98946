"""Hidden graders for s17 text basics: options, edge cases and promises the public tests skip."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from graders.helpers import assert_close

WORDS = ["alpha", "beta", "gamma", "delta", "Alpha", "BETA", "émile", "zoë", "ij", "ok"]


def _docs(rng, n, length=(2, 12)):
    return [" ".join(rng.choice(WORDS, size=rng.integers(*length))) + rng.choice([".", "!", ""])
            for _ in range(n)]


@pytest.mark.points(2)
def test_max_features_keeps_the_most_frequent_terms_ties_by_term(impl):
    docs = ["cc cc cc bb bb aa", "dd dd aa", "ee ff"]  # totals: cc 3, aa 2, bb 2, dd 2, ee 1
    got = impl.build_vocabulary(docs, max_features=3)
    assert got == {"aa": 0, "bb": 1, "cc": 2}, (
        "max_features=3 keeps the 3 terms with the largest TOTAL count; among equal counts "
        f"the alphabetically first term wins (aa, bb before dd); got {got}")
    got = impl.build_vocabulary(docs, min_df=2, max_features=1)
    assert got == {"aa": 0}, (
        "min_df filters first (only 'aa' is in 2 documents), then max_features; got "
        f"{got}")


@pytest.mark.points(2)
def test_tfidf_options_equal_sklearn(impl, rng):
    docs = _docs(rng, 14)
    for opts in ({"min_df": 2, "lowercase": False, "norm": "l1"},
                 {"min_df": 3, "sublinear_tf": True, "smooth_idf": False},
                 {"lowercase": False, "max_features": 4}):
        ref = TfidfVectorizer(**opts)
        expected = ref.fit_transform(docs).toarray()
        # max_features ties are broken arbitrarily by scikit-learn: only compare untied cuts
        model = impl.Tfidf(**opts)
        got = model.fit_transform(docs)
        assert model.vocabulary_ == {t: int(j) for t, j in ref.vocabulary_.items()}, (
            f"Tfidf({opts}): the vocabulary differs from TfidfVectorizer's with the same "
            "settings (min_df counts documents, lowercase=False keeps 'Alpha' and 'alpha' "
            "apart)")
        # float64, same formulas: rounding only
        assert_close(got, expected, f"Tfidf({opts}).fit_transform", rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_idf_values_by_hand(impl):
    docs = ["aa bb", "aa cc cc", "aa", "dd"]  # n = 4; df: aa 3, bb 1, cc 1, dd 1
    smooth = impl.Tfidf().fit(docs).idf_
    plain = impl.Tfidf(smooth_idf=False).fit(docs).idf_
    # natural logarithms, exact formulas
    assert_close(smooth, [np.log(5 / 4) + 1, np.log(5 / 2) + 1, np.log(5 / 2) + 1,
                          np.log(5 / 2) + 1],
                 "smoothed idf = ln((1 + n) / (1 + df)) + 1 (natural log)", rtol=1e-13, atol=0)
    assert_close(plain, [np.log(4 / 3) + 1, np.log(4) + 1, np.log(4) + 1, np.log(4) + 1],
                 "idf without smoothing = ln(n / df) + 1 (natural log)", rtol=1e-13, atol=0)
    every = impl.Tfidf(smooth_idf=False).fit(["aa bb", "aa", "aa cc"]).idf_[0]
    assert abs(every - 1.0) < 1e-15, (
        f"a term in every document has idf ln(n/n) + 1 = 1, got {every}: the '+ 1' keeps it")


@pytest.mark.points(2)
def test_tfidf_with_empty_documents_gives_zero_rows(impl):
    docs = ["", "aa aa bb", "!!!", "bb cc"]
    for norm in ("l2", "l1", None):
        W = impl.Tfidf(norm=norm, sublinear_tf=True).fit_transform(docs)
        expected = TfidfVectorizer(norm=norm, sublinear_tf=True).fit_transform(docs).toarray()
        # an empty document is a row of zeros (its norm is 0: no division)
        assert_close(W, expected, f"Tfidf(norm={norm!r}) on documents that are empty or only "
                     "punctuation", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_sublinear_tf_is_one_plus_log_of_the_count(impl):
    W = impl.Tfidf(sublinear_tf=True, norm=None).fit_transform(["aa aa aa aa bb", "bb cc"])
    idf = impl.Tfidf().fit(["aa aa aa aa bb", "bb cc"]).idf_
    expected = np.array([[1 + np.log(4), 1, 0], [0, 1, 1]]) * idf
    assert_close(W, expected, "sublinear tf: 1 + ln(count) for counts > 0, 0 stays 0",
                 rtol=1e-13, atol=0)  # exact formula


@pytest.mark.points(1)
def test_lowercase_false_keeps_cased_terms_apart(impl):
    docs = ["Apple apple APPLE", "apple"]
    vocab = impl.build_vocabulary(docs, lowercase=False)
    assert vocab == {"APPLE": 0, "Apple": 1, "apple": 2}, (
        f"lowercase=False: 'Apple', 'apple', 'APPLE' are three terms (sorted by code point); "
        f"got {vocab}")
    X = impl.bag_of_words(docs, vocab, lowercase=False)
    assert X.tolist() == [[1, 1, 1], [0, 0, 1]], f"bag_of_words(lowercase=False) gave {X}"
    X = impl.bag_of_words(docs, {"apple": 0})
    assert X.tolist() == [[3], [1]], f"bag_of_words lowercases by default: got {X}"


@pytest.mark.points(2)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 1e3), n=st.integers(1, 6))
def test_cosine_properties(impl, seed, scale, n):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, 3)) * rng.choice([0.0, 1.0], size=(n, 1), p=[0.3, 0.7])
    S = impl.cosine_similarity(A)
    assert np.all(np.isfinite(S)) and np.all(np.abs(S) <= 1 + 1e-12), (
        f"cosines must be finite and within [-1, 1], got {S}")
    # symmetric up to rounding, unchanged by a positive scale, flipped by a negative one
    assert_close(S, S.T, "cosine_similarity(A) must be symmetric", rtol=0, atol=1e-12)
    assert_close(impl.cosine_similarity(scale * A, A), S, "cosine of scaled rows",
                 rtol=1e-10, atol=1e-12)
    assert_close(impl.cosine_similarity(-A, A), -S, "cosine of negated rows is negated",
                 rtol=1e-10, atol=1e-12)
    zero = np.linalg.norm(A, axis=1) == 0
    assert np.all(S[zero] == 0) and np.all(S[:, zero] == 0), (
        "a zero row must have cosine exactly 0 with every row, itself included")


@pytest.mark.points(1)
def test_nearest_neighbors_with_k_equal_to_all_rows_and_a_zero_query(impl):
    X = np.array([[1.0, 1.0], [-1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    idx, sims = impl.nearest_neighbors(np.array([[1.0, 0.0], [0.0, 0.0]]), X, k=4)
    assert idx[0].tolist() == [2, 0, 3, 1], (
        f"the full ranking for the query (1, 0) is rows 2, 0, 3, 1; got {idx[0].tolist()}")
    assert idx[1].tolist() == [0, 1, 2, 3] and np.all(sims[1] == 0), (
        "a zero query has cosine 0 with every row: all tie, so the ranking is the index "
        f"order; got {idx[1].tolist()} with cosines {sims[1].tolist()}")


@pytest.mark.points(1)
def test_normalize_handles_unicode_spaces_and_keeps_punctuation(impl):
    got = impl.normalize("\u00a0Ｈello,\u2003World!\u3000")
    assert got == "ｈello, world!", (
        "every Unicode whitespace (no-break space, em space, ideographic space) counts as "
        f"whitespace, and punctuation stays; got {got!r}")
    assert impl.normalize("") == "", "normalize('') is ''"


@pytest.mark.points(1)
def test_norm_option_compares_by_value(impl):
    norm = "".join(["l", "1"])  # equal to "l1" but a different string object
    W = impl.Tfidf(norm=norm).fit_transform(["aa aa bb", "bb cc dd"])
    assert_close(np.abs(W).sum(axis=1), [1.0, 1.0], "row sums of |W| with norm='l1' built at "
                 "run time (compare strings with ==, never with 'is')", rtol=1e-12, atol=0)


@pytest.mark.points(1)
def test_cosine_and_neighbours_accept_integer_and_float32_rows(impl):
    X = np.array([[3, 4], [0, 0], [4, 3], [-3, -4]])
    S = impl.cosine_similarity(X, X.astype(np.float32))
    expected = np.array([[1, 0, 0.96, -1], [0, 0, 0, 0], [0.96, 0, 1, -0.96], [-1, 0, -0.96, 1]])
    # float32 inputs are exact here (small integers); the cosines are computed in float64
    assert_close(S, expected, "cosine_similarity of int64 rows with their float32 copy "
                 "(integer division or float32 rounding?)", rtol=1e-12, atol=1e-12)
    idx, _ = impl.nearest_neighbors(X[:1], X, k=3)
    assert idx[0].tolist() == [0, 2, 1], f"neighbours of (3, 4) among int rows: {idx[0]}"

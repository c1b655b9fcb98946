"""Hidden graders for s18 embeddings: properties, options and edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close, gradcheck


@pytest.mark.points(2)
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), window=st.integers(1, 4), harmonic=st.booleans())
def test_cooccurrence_is_symmetric_and_counts_every_pair(impl, seed, window, harmonic):
    rng = np.random.default_rng(seed)
    sentences = [rng.integers(0, 6, size=rng.integers(0, 9)).tolist() for _ in range(4)]
    C = impl.cooccurrence(sentences, 6, window=window, harmonic=harmonic)
    expected = np.zeros((6, 6))
    for s in sentences:
        for i in range(len(s)):
            for j in range(len(s)):
                if i != j and abs(i - j) <= window:
                    expected[s[i], s[j]] += 1 / abs(i - j) if harmonic else 1
    # sums of ones and of 1/d: rounding only
    assert_close(C, expected, f"cooccurrence(sentences, 6, window={window}, harmonic="
                 f"{harmonic}) (a word repeated in one sentence co-occurs with itself too)",
                 rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_ppmi_of_an_unseen_word_is_zero_not_nan(impl):
    C = np.array([[0, 3, 0], [3, 2, 0], [0, 0, 0]], float)  # word 2 never occurs
    P = impl.ppmi(C, alpha=0.75)
    assert np.all(np.isfinite(P)) and np.all(P >= 0), (
        f"PPMI must be finite and >= 0 everywhere, also for a word with no counts; got {P}")
    assert np.all(P[2] == 0) and np.all(P[:, 2] == 0), "an unseen word's PPMI row is all 0"
    N = 8.0
    expected01 = max(0.0, np.log((3 / N) / ((3 / N) * (5 ** 0.75 / (3 ** 0.75 + 5 ** 0.75)))))
    assert abs(P[0, 1] - expected01) < 1e-12, (
        f"PPMI[0, 1] with alpha=0.75 should be {expected01:.10f}, got {P[0, 1]:.10f}: the "
        "context marginal is count(c)^alpha normalised over contexts")


@pytest.mark.points(1)
def test_svd_embeddings_of_a_rectangular_matrix_and_default_power(impl, rng):
    M = rng.normal(size=(6, 4))
    E = impl.svd_embeddings(M, 2)
    U, S, _ = np.linalg.svd(M)
    expected = U[:, :2] * S[:2]
    signs = np.sign(expected[np.argmax(np.abs(expected), axis=0), [0, 1]])
    # float64 SVD rounding
    assert_close(E, expected * signs, "svd_embeddings(M (6, 4), 2) with the default power 1 "
                 "(U_d * S_d, each column's largest |entry| made positive)", rtol=1e-9,
                 atol=1e-10)


@pytest.mark.points(2)
def test_sgns_gradients_of_one_word_everywhere(impl, rng):
    """All centres the same word, all negatives the same word: every contribution must add."""
    V, d, B, K = 4, 3, 5, 2
    W_in, W_out = rng.normal(size=(V, d)), rng.normal(size=(V, d))
    c, o, n = np.full(B, 1), np.array([0, 2, 3, 0, 2]), np.full((B, K), 3)
    loss, g_in, g_out = impl.sgns_loss_and_grads(W_in, W_out, c, o, n)

    def f():
        return impl.sgns_loss_and_grads(W_in, W_out, c, o, n)[0]

    gradcheck(f, W_in, g_in, "dW_in when every centre is the same word")
    gradcheck(f, W_out, g_out, "dW_out when the negatives repeat and overlap the contexts")
    assert np.all(g_in[[0, 2, 3]] == 0), "rows of W_in for words that are no centre get 0"


@pytest.mark.points(1)
def test_sgns_loss_is_stable_for_large_scores(impl):
    W_in = np.array([[40.0, 0.0], [0.0, 40.0]])
    W_out = np.array([[-40.0, 0.0], [0.0, 40.0]])
    loss, g_in, g_out = impl.sgns_loss_and_grads(W_in, W_out, np.array([0]), np.array([0]),
                                                 np.array([[1]]))
    expected = 1600.0 + np.log(2.0)  # -ln s(-1600) = 1600, plus -ln s(0) for the negative
    assert np.isfinite(loss) and abs(loss - expected) < 1e-9, (
        f"a positive pair with score -1600 and a negative with score 0 have loss 1600 + ln 2 "
        f"(use log-sigmoid via np.logaddexp, not log(1 / (1 + exp(..)))); got {loss}")
    assert np.all(np.isfinite(g_in)) and np.all(np.isfinite(g_out)), "gradients overflowed"


@pytest.mark.points(2)
def test_train_sgns_is_seeded_and_takes_every_option(impl):
    sentences = [[0, 1, 2, 3, 4], [2, 3, 5], [5, 0, 1], [4, 4, 1, 2]]
    a = impl.train_sgns(sentences, 6, dim=3, window=1, n_negatives=2, epochs=3, lr=0.3,
                        batch_size=5, seed=11)
    b = impl.train_sgns(sentences, 6, dim=3, window=1, n_negatives=2, epochs=3, lr=0.3,
                        batch_size=5, seed=11)
    c = impl.train_sgns(sentences, 6, dim=3, window=1, n_negatives=2, epochs=3, lr=0.3,
                        batch_size=5, seed=12)
    assert np.array_equal(a[0], b[0]) and a[2] == b[2], "the same seed must give the same run"
    assert not np.allclose(a[0], c[0]), "seeds 11 and 12 gave the same embeddings"
    assert a[0].shape == (6, 3) and a[1].shape == (6, 3), "W_in and W_out are (V, dim)"
    n_pairs = 2 * (4 + 2 + 2 + 3)  # window 1: both directions of each adjacent pair
    assert len(a[2]) == 3 * int(np.ceil(n_pairs / 5)), (
        f"{n_pairs} pairs in batches of 5 for 3 epochs is {3 * int(np.ceil(n_pairs / 5))} "
        f"steps, each one loss; got {len(a[2])}")
    rng = np.random.default_rng(11)
    init = rng.uniform(-0.5 / 3, 0.5 / 3, (6, 3))
    zero = impl.train_sgns(sentences, 6, dim=3, window=1, n_negatives=2, epochs=0, seed=11)
    assert_close(zero[0], init, "train_sgns(..., epochs=0) returns the initial W_in: "
                 "rng.uniform(-0.5 / dim, 0.5 / dim, (V, dim))", rtol=0, atol=0)
    assert np.all(zero[1] == 0), "W_out starts at zero"


@pytest.mark.points(2)
def test_analogy_excludes_its_inputs_and_breaks_ties_by_index(impl):
    E = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 3.0], [0.0, 1.0], [5.0, 5.0]])
    got = np.asarray(impl.analogy(E, [0, 0], [1, 1], [1, 4])).tolist()
    # q0: e1 - e0 + e1, best is word 1 (excluded) then 3 and 4 tie (both (0, 1)): 3
    # q1: e1 - e0 + e4 = (-1, 2): 3 and 4 are candidates again but 4 is an input: 3
    assert got == [3, 3], (
        "analogy must never answer a, b or c, and equal cosines go to the lower index: "
        f"expected [3, 3], got {got}")
    one = np.asarray(impl.analogy(E, 2, 5, 0)).reshape(-1)
    assert one.shape == (1,), f"analogy with ints returns a (1,) array, got shape {one.shape}"


@pytest.mark.points(1)
def test_most_similar_excludes_itself_even_when_duplicated(impl):
    E = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [-1.0, 0.0]])
    got = np.asarray(impl.most_similar(E, 1, k=3)).tolist()
    assert got == [0, 2, 3], (
        "most_similar(E, 1, 3): rows 0 and 2 equal row 1 (a tie: lower index first), "
        f"row 1 itself is excluded; got {got}")


@pytest.mark.points(1)
def test_ppmi_of_a_non_symmetric_table_uses_column_sums_for_contexts(impl):
    C = np.array([[0, 5, 1], [1, 0, 0], [2, 2, 1]], float)  # rows: words, columns: contexts
    P = impl.ppmi(C, alpha=0.75)
    N, ctx = C.sum(), C.sum(axis=0) ** 0.75
    expected = np.zeros_like(C)
    for w in range(3):
        for c in range(3):
            if C[w, c] > 0:
                expected[w, c] = max(0.0, np.log((C[w, c] / N) / (C[w].sum() / N
                                                                  * ctx[c] / ctx.sum())))
    # the same logarithms: rounding only
    assert_close(P, expected, "ppmi of a NON-symmetric table: P(w) from row sums, "
                 "P_alpha(c) from column sums", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_skipgram_pairs_of_a_long_sentence(impl):
    pairs = np.asarray(impl.skipgram_pairs([list(range(300))], window=1))
    assert len(pairs) == 2 * 299 and not np.any(pairs[:, 0] == pairs[:, 1]), (
        "a sentence of 300 distinct words with window 1 has 598 pairs and no word is its "
        f"own context; got {len(pairs)} pairs (compare positions with !=, never with 'is')")


@pytest.mark.points(1)
def test_analogy_never_answers_an_input_even_when_all_others_point_away(impl):
    E = np.array([[1.0, 0.0], [0.9, 0.1], [1.0, 0.05], [-1.0, 0.0], [-1.0, 0.3]])
    got = np.asarray(impl.analogy(E, 0, 1, 2)).tolist()
    assert got == [4], (
        "every candidate other than a, b, c has a NEGATIVE cosine with the target here; the "
        f"answer must still be one of them (word 4, the least negative), got {got}. Exclude "
        "the inputs with -inf, not with 0.")

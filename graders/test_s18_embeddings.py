"""Public graders for s18 embeddings: co-occurrence, PPMI, SVD, skip-gram with negative
sampling (gradchecked), and the planted relations of a generated corpus recovered."""

import numpy as np
import pytest
from sklearn.cluster import KMeans

from graders.helpers import assert_close, check_shape, gradcheck

N_ROLES, N_MARKERS, N_FILLERS = 6, 3, 3


def planted_corpus(rng, n_sentences=300):
    """Sentences of one target word T(g, r) = 2 r + g (g: 0 or 1, like he / she; r: one of
    six roles, like king / doctor), two of its gender's marker words, two of its role's
    marker words and two fillers, shuffled. Relations are planted: T(0, r) - T(1, r) is the
    same for every role, so 'T(0, r1) : T(1, r1) :: T(0, r2) : ?' has the answer T(1, r2)."""
    gm0 = 2 * N_ROLES
    rm0 = gm0 + 2 * N_MARKERS
    f0 = rm0 + N_ROLES * N_MARKERS
    sentences = []
    for _ in range(n_sentences):
        g, r = int(rng.integers(2)), int(rng.integers(N_ROLES))
        words = [2 * r + g]
        words += list(gm0 + g * N_MARKERS + rng.choice(N_MARKERS, 2, replace=False))
        words += list(rm0 + r * N_MARKERS + rng.choice(N_MARKERS, 2, replace=False))
        words += list(f0 + rng.integers(N_FILLERS, size=2))
        rng.shuffle(words)
        sentences.append([int(w) for w in words])
    return sentences, f0 + N_FILLERS


def analogy_questions():
    q = []
    for r1 in range(N_ROLES):
        for r2 in range(N_ROLES):
            if r1 != r2:
                q.append((2 * r1, 2 * r1 + 1, 2 * r2, 2 * r2 + 1))  # gender: m1:f1 :: m2:f2
                q.append((2 * r1 + 1, 2 * r1, 2 * r2 + 1, 2 * r2))  # f1:m1 :: f2:m2
                q.append((2 * r1, 2 * r2, 2 * r1 + 1, 2 * r2 + 1))  # role: m1:m2 :: f1:f2
    return np.array(q)


def role_purity(E):
    """k-means (k = 6) on the unit vectors of the targets and role markers; purity by role."""
    idx = np.r_[np.arange(2 * N_ROLES), 2 * N_ROLES + 2 * N_MARKERS + np.arange(
        N_ROLES * N_MARKERS)]
    truth = np.r_[np.arange(2 * N_ROLES) // 2, np.arange(N_ROLES * N_MARKERS) // N_MARKERS]
    X = np.asarray(E, dtype=np.float64)[idx]
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    labels = KMeans(N_ROLES, n_init=10, random_state=0).fit_predict(X)
    return sum(np.bincount(truth[labels == k]).max() for k in np.unique(labels)) / len(truth)


def analogy_accuracy(impl, E):
    q = analogy_questions()
    got = np.asarray(impl.analogy(E, q[:, 0], q[:, 1], q[:, 2]))
    check_shape(got, (len(q),), "analogy(E, a, b, c) for arrays of questions", "q")
    return float(np.mean(got == q[:, 3]))


def _ppmi_by_loops(C, alpha):
    N, V = C.sum(), len(C)
    ctx = C.sum(axis=0) ** alpha
    out = np.zeros_like(C)
    for w in range(V):
        for c in range(V):
            if C[w, c] > 0:
                pmi = np.log((C[w, c] / N) / ((C[w].sum() / N) * (ctx[c] / ctx.sum())))
                out[w, c] = max(pmi, 0.0)
    return out


# --- counting ------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_cooccurrence_counts_by_hand(impl):
    sentences = [[0, 1, 2, 0], [2, 3]]
    C = impl.cooccurrence(sentences, 4, window=1)
    expected = np.array([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]], float)
    assert_close(C, expected, "cooccurrence([[0, 1, 2, 0], [2, 3]], V=4, window=1)",
                 rtol=0, atol=0)  # integer counts
    C2 = impl.cooccurrence(sentences, 4, window=2)
    # distance 2: (0, 2) at positions 0 and 2, (1, 0) at positions 1 and 3; 1 and 3 are in
    # different sentences, so they never co-occur
    expected2 = expected + np.array([[0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert_close(C2, expected2, "cooccurrence(..., window=2): pairs at distance 1 and 2, "
                 "never across two sentences", rtol=0, atol=0)
    H = impl.cooccurrence(sentences, 4, window=2, harmonic=True)
    expected_h = expected + 0.5 * (expected2 - expected)
    assert_close(H, expected_h, "cooccurrence(..., window=2, harmonic=True): a pair at "
                 "distance d adds 1 / d", rtol=0, atol=1e-15)


@pytest.mark.points(2)
@pytest.mark.parametrize("alpha", [1.0, 0.75])
def test_ppmi_equals_the_formula_on_a_hand_table(impl, alpha):
    C = np.array([[0, 4, 1, 0], [4, 0, 2, 2], [1, 2, 6, 0], [0, 2, 0, 1]], float)
    P = impl.ppmi(C, alpha=alpha)
    # the same logarithms of the same ratios: only rounding
    assert_close(P, _ppmi_by_loops(C, alpha), f"ppmi(C, alpha={alpha}) (PMI = ln(P(w,c) / "
                 "(P(w) P_alpha(c))), clipped at 0, 0 where C is 0)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_svd_embeddings_reproduce_the_truncated_factorisation(impl, rng):
    M = rng.normal(size=(8, 8))
    M = M + M.T
    U, S, _ = np.linalg.svd(M)
    for dim, power in ((3, 1.0), (5, 0.5), (2, 0.0)):
        E = impl.svd_embeddings(M, dim, power=power)
        check_shape(E, (8, dim), f"svd_embeddings(M, {dim}, power={power})", "V, dim")
        gram = (U[:, :dim] * S[:dim] ** (2 * power)) @ U[:, :dim].T
        # E E^T does not depend on the singular vectors' signs; float64 SVD rounding
        assert_close(E @ E.T, gram, f"E @ E.T for svd_embeddings(M, {dim}, power={power}) "
                     "(should be U_d S_d^(2 power) U_d^T)", rtol=1e-9, atol=1e-10)
        top = E[np.argmax(np.abs(E), axis=0), np.arange(dim)]
        assert np.all(top > 0), (
            "flip each column of E so its largest-magnitude entry is positive (a singular "
            f"vector's sign is arbitrary); the largest entries are {top.round(3).tolist()}")


# --- skip-gram with negative sampling -------------------------------------------------------

@pytest.mark.points(1)
def test_skipgram_pairs_in_documented_order(impl):
    pairs = np.asarray(impl.skipgram_pairs([[5, 6, 7], [8]], window=1))
    expected = [[5, 6], [6, 5], [6, 7], [7, 6]]
    assert pairs.tolist() == expected, (
        f"skipgram_pairs([[5, 6, 7], [8]], window=1) should be {expected}: each position i "
        "with its neighbours j = i-1, i+1 in increasing order, and a one-word sentence adds "
        f"nothing; got {pairs.tolist()}")
    pairs = np.asarray(impl.skipgram_pairs([[1, 2, 3, 4]], window=2))
    assert len(pairs) == 10 and pairs[:3].tolist() == [[1, 2], [1, 3], [2, 1]], (
        f"window=2 on 4 words gives 10 pairs starting (1,2), (1,3), (2,1); got {pairs[:4]}")


@pytest.mark.points(1)
def test_negative_distribution_is_unigram_to_the_three_quarters(impl):
    counts = np.array([16, 1, 0, 81])
    p = impl.negative_distribution(counts)
    expected = np.array([8, 1, 0, 27]) / 36  # 16^0.75 = 8, 81^0.75 = 27
    assert_close(p, expected, "negative_distribution([16, 1, 0, 81])", rtol=1e-12, atol=0)
    assert_close(impl.negative_distribution(counts, power=1.0), counts / 98,
                 "negative_distribution(counts, power=1.0)", rtol=1e-12, atol=0)


def _sgns_setup(rng, V=7, d=4, B=6, K=3):
    W_in, W_out = rng.normal(size=(V, d)), rng.normal(size=(V, d))
    centers = np.array([0, 2, 2, 5, 0, 1])[:B]      # repeated words on purpose
    contexts = np.array([1, 1, 3, 2, 6, 1])[:B]
    negatives = rng.integers(0, V, size=(B, K))
    negatives[0, :2] = 4                              # a negative repeated in one row
    return W_in, W_out, centers, contexts, negatives


@pytest.mark.points(2)
def test_sgns_loss_value(impl, rng):
    W_in, W_out, c, o, n = _sgns_setup(rng)
    loss, _, _ = impl.sgns_loss_and_grads(W_in, W_out, c, o, n)
    v = W_in[c]
    pos = np.sum(W_out[o] * v, axis=1)
    neg = np.einsum("bkd,bd->bk", W_out[n], v)
    expected = np.mean(np.logaddexp(0, -pos) + np.logaddexp(0, neg).sum(axis=1))
    assert abs(loss - expected) < 1e-12 * max(1.0, abs(expected)), (
        f"loss = mean over the batch of -ln s(u_c . v) - sum_k ln s(-u_nk . v); expected "
        f"{expected:.10g}, got {loss:.10g}")


@pytest.mark.points(3)
def test_sgns_gradients_pass_gradcheck(impl, rng):
    W_in, W_out, c, o, n = _sgns_setup(rng)
    _, g_in, g_out = impl.sgns_loss_and_grads(W_in, W_out, c, o, n)

    def f():
        return impl.sgns_loss_and_grads(W_in, W_out, c, o, n)[0]

    gradcheck(f, W_in, g_in, "dW_in of the SGNS loss (repeated centre words must add up)")
    gradcheck(f, W_out, g_out, "dW_out of the SGNS loss (a word that is both a context and "
              "a negative gets both contributions)")


def _reference_train(sentences, V, dim, window, K, epochs, lr, batch_size, seed):
    rng = np.random.default_rng(seed)
    W_in = rng.uniform(-0.5 / dim, 0.5 / dim, (V, dim))
    W_out = np.zeros((V, dim))
    pairs = np.array([(s[i], s[j]) for s in sentences for i in range(len(s))
                      for j in range(max(0, i - window), min(len(s), i + window + 1)) if j != i])
    counts = np.bincount(np.concatenate([np.asarray(s) for s in sentences]), minlength=V)
    p = counts ** 0.75 / np.sum(counts ** 0.75)
    losses = []
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    for _ in range(epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(pairs), batch_size):
            b = pairs[order[start:start + batch_size]]
            neg = rng.choice(V, size=(len(b), K), p=p)
            v, u, un = W_in[b[:, 0]], W_out[b[:, 1]], W_out[neg]
            sp, sn = sig(np.sum(u * v, 1)), sig(np.einsum("bkd,bd->bk", un, v))
            losses.append(float(np.mean(-np.log(sp) - np.log(1 - sn).sum(1))))
            g_in, g_out = np.zeros_like(W_in), np.zeros_like(W_out)
            np.add.at(g_in, b[:, 0], ((sp - 1)[:, None] * u + np.einsum("bk,bkd->bd", sn, un))
                      / len(b))
            np.add.at(g_out, b[:, 1], (sp - 1)[:, None] * v / len(b))
            np.add.at(g_out, neg, sn[:, :, None] * v[:, None, :] / len(b))
            W_in -= lr * g_in
            W_out -= lr * g_out
    return W_in, W_out, losses


@pytest.mark.points(3)
def test_train_sgns_equals_the_documented_loop(impl, rng):
    sentences, V = planted_corpus(rng, n_sentences=12)
    opts = {"dim": 5, "window": 2, "n_negatives": 3, "epochs": 2, "lr": 0.7,
            "batch_size": 16, "seed": 4}
    W_in, W_out, losses = impl.train_sgns(sentences, V, **opts)
    ref_in, ref_out, ref_losses = _reference_train(sentences, V, opts["dim"], opts["window"],
                                                   opts["n_negatives"], opts["epochs"],
                                                   opts["lr"], opts["batch_size"], opts["seed"])
    what = f"train_sgns(sentences, V={V}, {', '.join(f'{k}={v}' for k, v in opts.items())})"
    assert len(losses) == len(ref_losses), (
        f"{what}: expected {len(ref_losses)} batch losses (the last, shorter batch too), got "
        f"{len(losses)}")
    # the same draws and the same float64 updates: only summation-order rounding remains
    assert_close(losses, ref_losses, f"{what}: the batch losses (draw order: uniform init, "
                 "then per epoch permutation, then per batch the negatives)", rtol=1e-9,
                 atol=1e-12)
    assert_close(W_in, ref_in, f"{what}: W_in", rtol=1e-9, atol=1e-12)
    assert_close(W_out, ref_out, f"{what}: W_out", rtol=1e-9, atol=1e-12)


# --- similarity and analogies ---------------------------------------------------------------

@pytest.mark.points(2)
def test_most_similar_and_analogy_on_hand_vectors(impl):
    E = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0], [-1.0, 0.2], [0.9, 1.1]])
    got = np.asarray(impl.most_similar(E, 2, k=3)).tolist()
    assert got == [3, 5, 0], (
        "most_similar(E, 2, k=3): word 3 is parallel to word 2 (cosine 1), then 5, then 0 "
        f"(ties by lower index: 0 and 1 have equal cosine); word 2 itself excluded; got {got}")
    # man=0, woman=1, king=2 ... 'a:b :: c:?' with a, b, c excluded from the answers
    got = np.asarray(impl.analogy(E, 0, 1, 2)).tolist()
    assert got == [5], (
        "analogy(E, 0, 1, 2): among the words other than 0, 1 and 2, word 5 has the highest "
        f"cosine with e_1 - e_0 + e_2 (e the UNIT rows of E: word 3 wins without them); got "
        f"{got}")


@pytest.mark.points(3)
def test_ppmi_svd_recovers_the_planted_relations(impl, rng):
    sentences, V = planted_corpus(rng)
    E = impl.svd_embeddings(impl.ppmi(impl.cooccurrence(sentences, V, window=3), alpha=0.75),
                            8, power=0.5)
    acc, purity = analogy_accuracy(impl, E), role_purity(E)
    # the reference reaches 1.00 and 1.00 on this corpus (and on 12 other seeds)
    assert acc >= 0.9 and purity >= 0.9, (
        f"PPMI (window 3, alpha 0.75) + SVD (dim 8, power 0.5) on the planted corpus: analogy "
        f"accuracy {acc:.2f} (need >= 0.9), role-cluster purity {purity:.2f} (need >= 0.9). "
        "Check the co-occurrence window, the PPMI marginals and the SVD truncation.")


@pytest.mark.points(3)
def test_skipgram_recovers_the_planted_relations(impl, rng):
    sentences, V = planted_corpus(rng)
    W_in, _, losses = impl.train_sgns(sentences, V, dim=10, window=3, epochs=5, lr=4.0,
                                      batch_size=128, seed=0)
    acc, purity = analogy_accuracy(impl, W_in), role_purity(W_in)
    # the reference reaches 0.83-1.00 analogy accuracy and 0.73-1.00 purity over 12 seeds
    assert acc >= 0.75 and purity >= 0.6, (
        f"skip-gram (dim 10, window 3, 5 epochs, lr 4) on the planted corpus: analogy "
        f"accuracy {acc:.2f} (need >= 0.75), role-cluster purity {purity:.2f} (need >= 0.6); "
        f"loss {losses[0]:.3f} -> {np.mean(losses[-10:]):.3f}. Check the gradients' signs "
        "and that the update goes against the gradient.")

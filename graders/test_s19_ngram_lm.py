"""Public graders for s19 n-gram language models: counts on a known string, add-k
probabilities, perplexity (uniform = V, finite with smoothing, infinite without), sampling."""

import itertools
import math

import numpy as np
import pytest

from graders.helpers import assert_close


def _brute_nll(train, test, n, V, k):
    """The model written out directly: padded n-grams, add-k, mean -ln p."""
    def grams(seqs):
        for s in seqs:
            p = [0] * (n - 1) + list(s) + [0]
            for i in range(len(p) - n + 1):
                yield tuple(p[i:i + n])
    counts = {}
    for g in grams(train):
        counts[g] = counts.get(g, 0) + 1
    ctx = {}
    for g, c in counts.items():
        ctx[g[:-1]] = ctx.get(g[:-1], 0) + c
    logs = []
    for g in grams(test):
        denom = ctx.get(g[:-1], 0) + k * V
        p = (counts.get(g, 0) + k) / denom if denom > 0 else 1 / V
        logs.append(-math.log(p) if p > 0 else math.inf)
    return sum(logs) / len(logs)


@pytest.mark.points(1)
def test_vocab_encode_decode_round_trip(impl):
    vocab = impl.build_vocab(["hello", "wörld!"])
    assert vocab == ["<>", "!", "d", "e", "h", "l", "o", "r", "w", "ö"], (
        "build_vocab: the boundary token '<>' first, then the distinct characters in sorted "
        f"order (by code point, so 'ö' after 'w'); got {vocab}")
    ids = impl.encode("world", vocab)
    assert list(ids) == [8, 6, 7, 5, 2], f"encode('world') should be [8, 6, 7, 5, 2], got {ids}"
    assert impl.decode([0, *ids, 0], vocab) == "world", "decode drops the boundary tokens"


@pytest.mark.points(2)
def test_bigram_counts_on_a_known_string(impl):
    vocab = impl.build_vocab(["abab"])        # <> a b  ->  0 1 2
    seq = impl.encode("abab", vocab)
    got = impl.count_ngrams([seq], 2)
    expected = {(0, 1): 1, (1, 2): 2, (2, 1): 1, (2, 0): 1}
    assert got == expected, (
        "count_ngrams([encode('abab')], 2) pads to <> a b a b <>: bigrams (<>,a) 1, (a,b) 2, "
        f"(b,a) 1, (b,<>) 1, so {expected}; got {got}. Forgot the padding at the start or "
        "the end token?")
    got3 = impl.count_ngrams([seq, [2]], 3)
    expected3 = {(0, 0, 1): 1, (0, 1, 2): 1, (1, 2, 1): 1, (2, 1, 2): 1, (1, 2, 0): 1,
                 (0, 0, 2): 1, (0, 2, 0): 1}
    assert got3 == expected3, (
        f"trigrams of 'abab' and 'b' need n - 1 = 2 boundary tokens in front: {expected3}; "
        f"got {got3}")


@pytest.mark.points(2)
@pytest.mark.parametrize("n, k", [(2, 1.0), (3, 0.5), (3, 0.0)])
def test_add_k_probabilities_sum_to_one_for_every_context(impl, rng, n, k):
    V = 4
    train = [rng.integers(1, V, size=rng.integers(0, 8)).tolist() for _ in range(6)]
    model = impl.NGramLM(n, V, k=k).fit(train)
    for h in itertools.product(range(V), repeat=n - 1):
        p = np.asarray(model.probs(list(h)))
        assert p.shape == (V,) and np.all(p >= 0), f"probs({list(h)}) must be {V} values >= 0"
        assert abs(p.sum() - 1) < 1e-12, (
            f"NGramLM(n={n}, V={V}, k={k}).probs({list(h)}) sums to {p.sum():.15g}, not 1: "
            "the denominator is c(h) + k * V (and a context never seen is uniform)")


@pytest.mark.points(2)
def test_add_k_probability_values(impl):
    train = [[1, 2, 1, 1]]          # bigrams: (0,1) (1,2) (2,1) (1,1) (1,0)
    model = impl.NGramLM(2, 3, k=0.5).fit(train)
    # after token 1: c(1, .) = [1, 1, 1], c(1) = 3  ->  (c + 0.5) / (3 + 1.5)
    assert_close(model.probs([1]), np.array([1.5, 1.5, 1.5]) / 4.5,
                 "probs([1]) with k=0.5, V=3", rtol=1e-12, atol=0)  # exact arithmetic
    assert_close(model.probs([2, 2, 2]), np.array([0.5, 1.5, 0.5]) / 2.5,
                 "probs([2, 2, 2]) (only the LAST n - 1 = 1 token is the context)",
                 rtol=1e-12, atol=0)
    mle = impl.NGramLM(2, 3, k=0.0).fit(train)
    assert_close(mle.probs([]), [0.0, 1.0, 0.0], "probs([]) with k=0: after the padding "
                 "only token 1 was ever seen (an empty context is all boundary tokens)",
                 rtol=0, atol=0)


@pytest.mark.points(2)
def test_uniform_model_has_perplexity_equal_to_the_vocabulary_size(impl, rng):
    V = 7
    model = impl.NGramLM(3, V, k=1.0).fit([])   # nothing counted: every context is new
    test = [rng.integers(1, V, size=12).tolist() for _ in range(3)]
    ppl = model.perplexity(test)
    assert abs(ppl - V) < 1e-9, (
        f"with no training data every prediction is 1/V, so the perplexity must be V = {V}; "
        f"got {ppl}")
    assert abs(model.nll(test) - math.log(V)) < 1e-12, "the uniform model's NLL is ln V"


@pytest.mark.points(2)
def test_unseen_ngrams_finite_with_smoothing_infinite_without(impl):
    train, test = [[1, 2, 3, 1, 2, 3]], [[1, 3, 2]]   # (1, 3) and (3, 2) never seen
    smooth = impl.NGramLM(2, 4, k=0.1).fit(train).perplexity(test)
    assert np.isfinite(smooth) and smooth > 1, (
        f"with k=0.1, unseen bigrams get probability > 0: perplexity must be finite, got "
        f"{smooth}")
    raw = impl.NGramLM(2, 4, k=0.0).fit(train)
    assert raw.nll(test) == math.inf and raw.perplexity(test) == math.inf, (
        "with k=0 an unseen bigram has probability 0: NLL and perplexity must be inf (not "
        f"NaN, not an error); got nll {raw.nll(test)}")


@pytest.mark.points(3)
@pytest.mark.parametrize("n, k", [(1, 1.0), (2, 0.3), (4, 0.05)])
def test_nll_equals_the_brute_force_model(impl, rng, n, k):
    V = 5
    train = [rng.integers(1, V, size=rng.integers(3, 15)).tolist() for _ in range(10)]
    test = [rng.integers(1, V, size=rng.integers(0, 10)).tolist() for _ in range(5)]
    model = impl.NGramLM(n, V, k=k).fit(train)
    expected = _brute_nll(train, test, n, V, k)
    got = model.nll(test)
    # the same logarithms summed in another order: rounding only
    assert abs(got - expected) < 1e-12 * max(1, expected), (
        f"NGramLM(n={n}, V={V}, k={k}).nll(test) = {got:.12g}, expected {expected:.12g}: mean "
        "over EVERY prediction (each sequence's characters and its end token) of -ln p, "
        "natural log")
    assert abs(model.perplexity(test) - math.exp(expected)) < 1e-9 * math.exp(expected), (
        "perplexity = exp(nll)")


@pytest.mark.points(2)
def test_sampling_is_seeded_and_follows_the_documented_draws(impl):
    train = [[1, 2, 3, 1], [2, 2, 3], [3, 1, 2, 2, 1], [1, 1, 1, 2]]
    model = impl.NGramLM(2, 4, k=0.2).fit(train)
    a = model.sample(np.random.default_rng(3), max_len=30)
    b = model.sample(np.random.default_rng(3), max_len=30)
    assert a == b, "the same seed must give the same sample"
    others = {tuple(model.sample(np.random.default_rng(s), max_len=30)) for s in range(10)}
    assert len(others) > 1, "ten different seeds all gave the same sample"
    rng, expected = np.random.default_rng(3), []
    while len(expected) < 30:
        t = int(rng.choice(4, p=model.probs(expected)))
        if t == 0:
            break
        expected.append(t)
    assert list(a) == expected, (
        "sample should draw t = rng.choice(V, p=probs(tokens so far)) until the boundary "
        f"token; with seed 3 that gives {expected}, got {list(a)}")

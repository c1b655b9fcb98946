"""Hidden graders for s19 n-gram language models: options, state and edge cases."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close


def _brute(train, test, n, V, k):
    def grams(seqs):
        for s in seqs:
            p = [0] * (n - 1) + list(s) + [0]
            yield from (tuple(p[i:i + n]) for i in range(len(p) - n + 1))
    counts = {}
    for g in grams(train):
        counts[g] = counts.get(g, 0) + 1
    ctx = {}
    for g, c in counts.items():
        ctx[g[:-1]] = ctx.get(g[:-1], 0) + c
    out = []
    for g in grams(test):
        d = ctx.get(g[:-1], 0) + k * V
        p = (counts.get(g, 0) + k) / d if d > 0 else 1 / V
        out.append(-math.log(p) if p > 0 else math.inf)
    return sum(out) / len(out)


@pytest.mark.points(2)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 4), k=st.sampled_from([0.0, 0.01, 1.0, 3.0]))
def test_nll_matches_the_formula_for_any_order_and_k(impl, seed, n, k):
    rng = np.random.default_rng(seed)
    V = 4
    train = [rng.integers(1, V, size=rng.integers(0, 9)).tolist() for _ in range(5)]
    test = [rng.integers(1, V, size=rng.integers(0, 6)).tolist() for _ in range(3)]
    got = impl.NGramLM(n, V, k=k).fit(train).nll(test)
    expected = _brute(train, test, n, V, k)
    if math.isinf(expected):
        assert got == math.inf, f"n={n}, k={k}: an unseen n-gram must give nll inf, got {got}"
    else:
        assert abs(got - expected) < 1e-11 * max(1, expected), (
            f"n={n}, V={V}, k={k}: nll {got!r}, expected {expected!r}")


@pytest.mark.points(1)
def test_unigram_model_ignores_the_context_and_counts_the_end_token(impl):
    model = impl.NGramLM(1, 3, k=0.0).fit([[1, 1, 2], [1]])   # unigrams: <> x2, 1 x3, 2 x1
    for ctx in ([], [1], [2, 2, 1]):
        assert_close(model.probs(ctx), [2 / 6, 3 / 6, 1 / 6], f"unigram probs({ctx}) "
                     "(the end token is a prediction too: counts <> 2, 1 3, 2 1)",
                     rtol=1e-12, atol=0)
    assert impl.count_ngrams([[1, 1, 2], [1]], 1) == {(1,): 3, (2,): 1, (0,): 2}, (
        "unigram counts include one end token per sequence and no padding")


@pytest.mark.points(1)
def test_short_context_is_left_padded_with_boundary_tokens(impl):
    model = impl.NGramLM(3, 4, k=0.0).fit([[3, 1, 2]])   # trigrams: (0,0,3) (0,3,1) (3,1,2)
    assert_close(model.probs([3]), [0, 1, 0, 0], "probs([3]) for n=3 uses the context "
                 "(<>, 3): only 1 followed it", rtol=0, atol=0)
    assert_close(model.probs([9, 9, 3, 1]), [0, 0, 1, 0], "probs of a long context uses only "
                 "its LAST n - 1 tokens (3, 1)", rtol=0, atol=0)


@pytest.mark.points(2)
def test_a_second_fit_replaces_the_first(impl):
    first, second = [[1, 2, 1, 2, 2]], [[3, 3, 1]]
    model = impl.NGramLM(2, 4, k=0.5).fit(first).fit(second)
    fresh = impl.NGramLM(2, 4, k=0.5).fit(second)
    for ctx in ([], [1], [2], [3]):
        assert_close(model.probs(ctx), fresh.probs(ctx), f"probs({ctx}) after fit(A).fit(B) "
                     "vs fit(B) alone: fit must start the counts afresh", rtol=0, atol=0)
    assert model.fit(second) is model, "fit returns self"


@pytest.mark.points(1)
def test_k_zero_unseen_context_is_uniform_and_seen_context_is_the_mle(impl):
    model = impl.NGramLM(2, 5, k=0.0).fit([[1, 2, 2, 2, 1]])
    assert_close(model.probs([4]), np.full(5, 0.2), "k=0, a context never seen (4): uniform "
                 "1/V, the limit of (0 + k) / (0 + kV)", rtol=1e-12, atol=0)
    assert_close(model.probs([2]), [0, 1 / 3, 2 / 3, 0, 0], "k=0, context 2: counts "
                 "(2, 2) twice, (2, 1) once", rtol=1e-12, atol=0)


@pytest.mark.points(1)
def test_nll_of_an_empty_sequence_is_the_end_token_alone(impl):
    model = impl.NGramLM(2, 3, k=1.0).fit([[1, 2], [], [1]])   # bigrams from <>: 1, <>, 1
    # after <>: c(<>, .) = [1, 2, 0], c(<>) = 3, k V = 3  ->  p(<> | <>) = 2 / 6
    assert abs(model.nll([[]]) - math.log(3)) < 1e-12, (
        "an empty sequence still predicts its end token: nll([[]]) = -ln p(<> | <>) = ln 3 "
        f"here; got {model.nll([[]])}")


@pytest.mark.points(2)
def test_sample_stops_at_max_len_and_never_returns_the_boundary(impl):
    model = impl.NGramLM(3, 4, k=0.0).fit([[1, 2, 3, 1]])   # deterministic: 1 2 3 1 <>
    got = model.sample(np.random.default_rng(0), max_len=3)
    assert list(got) == [1, 2, 3], (
        f"this model always writes 1, 2, 3, 1 then the end: max_len=3 stops after 3 tokens; "
        f"got {list(got)}")
    out = model.sample(np.random.default_rng(5))
    assert list(out) == [1, 2, 3, 1], f"a sample stops at the end token, not returned; got {out}"
    assert all(isinstance(t, int | np.integer) for t in out), "tokens are ints"


@pytest.mark.points(1)
def test_k_zero_without_training_data_is_the_uniform_model(impl):
    model = impl.NGramLM(2, 5, k=0.0).fit([])
    assert abs(model.nll([[1, 2, 3], [4]]) - math.log(5)) < 1e-12, (
        "with k=0 and no counts every context is unseen: each prediction is the uniform 1/V, "
        f"so nll = ln V = {math.log(5):.6f}; got {model.nll([[1, 2, 3], [4]])}")
    assert abs(model.perplexity([[2]]) - 5) < 1e-9, "and the perplexity is V"


@pytest.mark.points(1)
def test_a_certain_model_has_zero_nll_on_its_training_text(impl):
    model = impl.NGramLM(3, 4, k=0.0).fit([[1, 2, 3, 1]])   # every prediction has p = 1
    got = model.nll([[1, 2, 3, 1]])
    assert got == 0.0 and model.perplexity([[1, 2, 3, 1]]) == 1.0, (
        "a model that predicts every token of this text with probability 1 has nll 0 and "
        f"perplexity 1 (only p = 0 makes the nll infinite); got {got}")


@pytest.mark.points(1)
def test_sample_with_a_long_max_len(impl):
    model = impl.NGramLM(1, 3, k=0.0).fit([[1, 2] * 500])   # the end has probability 1/1001
    out = model.sample(np.random.default_rng(2), max_len=300)
    assert len(out) == 300, (
        f"with this seed the end token is not drawn within 300 tokens, so max_len=300 must "
        f"stop the sample at exactly 300 tokens; got {len(out)} (compare lengths with <)")

"""Hidden graders for s20 MLP language model: other shapes and dtypes, nll in chunks,
sampling, defaults and in-place updates."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax, softmax

from graders.helpers import assert_close, gradcheck


def _params(impl, rng, V, T, E, H):
    params = impl.init_params(impl.MLPLMConfig(V, T, E, H), rng)
    params["W2"] *= 30
    params["b1"] += rng.normal(size=H) * 0.3
    return params


def _ref_logits(params, X):
    x = params["C"][X].reshape(len(X), -1)
    return np.tanh(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]


@pytest.mark.points(2)
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), T=st.integers(1, 5), E=st.integers(1, 4))
def test_gradients_for_other_context_and_embedding_sizes(impl, seed, T, E):
    rng = np.random.default_rng(seed)
    V, H, B = 6, 4, 7
    params = _params(impl, rng, V, T, E, H)
    X, Y = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=B)
    _, grads = impl.loss_and_grads(params, X, Y)
    for name in ("C", "W1", "b1"):
        gradcheck(lambda: impl.loss_and_grads(params, X, Y)[0], params[name], grads[name],
                  f"d loss / d {name} with context {T}, embedding size {E}", max_coords=30)


@pytest.mark.points(1)
def test_build_dataset_of_an_empty_sequence_and_a_long_context(impl):
    X, Y = impl.build_dataset([[], [3, 4]], context=4)
    assert np.asarray(X).tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 3], [0, 0, 3, 4]]
    assert np.asarray(Y).tolist() == [0, 3, 4, 0], (
        "an empty sequence still gives one example: the start window predicting the end")
    assert np.asarray(X).dtype.kind == "i" and np.asarray(Y).dtype.kind == "i", "ints"


@pytest.mark.points(2)
def test_nll_in_chunks_equals_the_mean_cross_entropy(impl, rng):
    params = _params(impl, rng, 7, 3, 4, 5)
    X, Y = rng.integers(0, 7, size=(23, 3)), rng.integers(0, 7, size=23)
    expected = -log_softmax(_ref_logits(params, X), axis=1)[np.arange(23), Y].mean()
    for chunk in (4096, 5, 1):
        got = impl.nll(params, X, Y, chunk=chunk)
        # sums in another order: rounding only
        assert abs(got - expected) < 1e-12, (
            f"nll(params, X, Y, chunk={chunk}) = {got:.12f}, expected the mean cross-entropy "
            f"over all 23 rows {expected:.12f} (a last, shorter chunk must count too)")


@pytest.mark.points(2)
def test_float32_parameters_give_float32_gradients_close_to_float64(impl, rng):
    cfg = impl.MLPLMConfig(9, 3, 4, 8)
    p64 = impl.init_params(cfg, np.random.default_rng(3))
    p32 = impl.init_params(cfg, np.random.default_rng(3), dtype=np.float32)
    X, Y = rng.integers(0, 9, size=(16, 3)), rng.integers(0, 9, size=16)
    l64, g64 = impl.loss_and_grads(p64, X, Y)
    l32, g32 = impl.loss_and_grads(p32, X, Y)
    assert abs(l32 - l64) < 1e-5, f"float32 loss {l32} vs float64 {l64}"
    for name in g64:
        assert g32[name].dtype == np.float32, (
            f"with float32 parameters grads['{name}'] should stay float32, got "
            f"{g32[name].dtype}")
        # float32 has ~7 significant digits
        assert_close(g32[name], g64[name], f"float32 grads['{name}']", rtol=1e-3, atol=1e-6)


@pytest.mark.points(2)
def test_sample_is_seeded_and_follows_the_documented_draws(impl, rng):
    params = _params(impl, rng, 5, 2, 3, 6)
    params["W2"] *= 10  # confident predictions: the start window matters for every draw
    a = impl.sample(params, np.random.default_rng(4), max_len=25)
    assert a == impl.sample(params, np.random.default_rng(4), max_len=25), "same seed, same"
    assert len({tuple(impl.sample(params, np.random.default_rng(s), 25))
                for s in range(8)}) > 1, "eight seeds gave the same sample"
    for seed in range(6):
        g, window, expected = np.random.default_rng(seed), [0, 0], []
        while len(expected) < 25:
            p = softmax(_ref_logits(params, np.array([window]))[0])
            t = int(g.choice(5, p=p))
            if t == 0:
                break
            expected.append(t)
            window = [*window[1:], t]
        got = impl.sample(params, np.random.default_rng(seed), max_len=25)
        assert list(got) == expected, (
            "sample: from a window of zeros (the boundary token), t = rng.choice(V, p=softmax("
            "logits)), stop at 0 (not returned), slide the window; with seed "
            f"{seed} expected {expected}, got {list(got)}")


@pytest.mark.points(1)
def test_sample_stops_at_max_len(impl):
    cfg = impl.MLPLMConfig(4, 2, 2, 3)
    params = impl.init_params(cfg, np.random.default_rng(0))
    params["b2"][:] = [-50.0, 0.0, 0.0, 0.0]   # the end token is (almost) never drawn
    out = impl.sample(params, np.random.default_rng(1), max_len=9)
    assert len(out) == 9 and 0 not in out, f"max_len=9 must give 9 tokens, got {out}"
    out = impl.sample(params, np.random.default_rng(1), max_len=300)
    assert len(out) == 300, f"max_len=300 must give 300 tokens, got {len(out)} (compare with <)"


@pytest.mark.points(2)
def test_train_defaults_and_updates_in_place(impl, rng):
    cfg = impl.MLPLMConfig(6, 2, 3, 4)
    a = impl.init_params(cfg, np.random.default_rng(2))
    b = {k: v.copy() for k, v in a.items()}
    arrays = {k: id(v) for k, v in a.items()}
    X, Y = rng.integers(0, 6, size=(30, 2)), rng.integers(0, 6, size=30)
    la = impl.train(a, X, Y, steps=5)
    lb = impl.train(b, X, Y, steps=5, batch_size=32, lr=0.1, rng=np.random.default_rng(0),
                    lr_drop_step=None)
    assert la == lb, "the defaults are batch_size=32, lr=0.1, rng=default_rng(0), no lr drop"
    assert {k: id(v) for k, v in a.items()} == arrays, (
        "train must update the parameter arrays in place (p -= lr * g), not rebind them")
    assert len(la) == 5 and la[0] > la[-1], f"5 steps should lower the loss: {la}"
    c = impl.init_params(cfg, np.random.default_rng(2))
    lc = impl.train(c, X, Y, steps=5, lr=0.1, lr_drop_step=0)
    assert lc[1:] != la[1:], "lr_drop_step=0 divides the learning rate by 10 from the start"

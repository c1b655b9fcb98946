"""Public graders for s20 MLP language model: dataset windows, the documented init, forward
values, hand-written gradients (gradchecked in float64), overfitting a tiny batch, the exact
training loop, and beating an n-gram baseline on a generated language."""

import math

import numpy as np
import pytest
from scipy.special import log_softmax

from graders.helpers import assert_close, check_shape, gradcheck, overfit_tiny_batch

N_CLASSES, PER_CLASS = 4, 6
V_CLASS = 1 + N_CLASSES * PER_CLASS


def class_language(rng, n_seq, length=16):
    """Tokens 1..24 in 4 classes of 6. The first three classes are random, then each
    token's class repeats the class 3 positions back; the token within its class is
    uniform. Only a model that sees 3 tokens back AND treats a class's tokens alike can
    predict the class of a context it never saw."""
    seqs = []
    for _ in range(n_seq):
        cls = list(rng.integers(0, N_CLASSES, 3))
        for t in range(3, length):
            cls.append(cls[t - 3])
        seqs.append([1 + int(c) * PER_CLASS + int(rng.integers(PER_CLASS)) for c in cls])
    return seqs


def ngram_nll(train, test, n, k, V):
    """Add-k n-gram baseline (s19's model), written out here."""
    def grams(seqs):
        for s in seqs:
            p = [0] * (n - 1) + list(s) + [0]
            yield from (tuple(p[i:i + n]) for i in range(len(p) - n + 1))
    counts, ctx = {}, {}
    for g in grams(train):
        counts[g] = counts.get(g, 0) + 1
    for g, c in counts.items():
        ctx[g[:-1]] = ctx.get(g[:-1], 0) + c
    logs = [-math.log((counts.get(g, 0) + k) / (ctx.get(g[:-1], 0) + k * V)) for g in
            grams(test)]
    return sum(logs) / len(logs)


def reference_forward(params, X):
    x = params["C"][X].reshape(len(X), -1)
    return np.tanh(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]


def small_params(impl, rng, V=7, T=3, E=4, H=5):
    cfg = impl.MLPLMConfig(vocab_size=V, context=T, emb_dim=E, hidden=H)
    params = impl.init_params(cfg, rng)
    # non-zero biases and a larger W2, so every gradient path carries signal
    params["b1"] += rng.normal(size=H) * 0.5
    params["b2"] += rng.normal(size=V) * 0.5
    params["W2"] *= 50
    return cfg, params


@pytest.mark.points(2)
def test_build_dataset_windows(impl):
    X, Y = impl.build_dataset([[5, 6, 7], [8]], context=3)
    expected_X = [[0, 0, 0], [0, 0, 5], [0, 5, 6], [5, 6, 7], [0, 0, 0], [0, 0, 8]]
    assert np.asarray(X).tolist() == expected_X and np.asarray(Y).tolist() == [5, 6, 7, 0, 8,
                                                                               0], (
        "build_dataset([[5, 6, 7], [8]], context=3): each sequence starts from a window of "
        f"3 boundary tokens and ends by predicting 0; expected X {expected_X}, Y [5, 6, 7, 0, "
        f"8, 0]; got X {np.asarray(X).tolist()}, Y {np.asarray(Y).tolist()}")
    X2, _ = impl.build_dataset([[1, 2]], context=1)
    assert np.asarray(X2).tolist() == [[0], [1], [2]], f"context=1 windows: got {X2}"


@pytest.mark.points(2)
def test_init_params_follows_the_documented_draws(impl):
    cfg = impl.MLPLMConfig(vocab_size=11, context=4, emb_dim=3, hidden=7)
    params = impl.init_params(cfg, np.random.default_rng(5))
    g = np.random.default_rng(5)
    expected = {"C": g.standard_normal((11, 3)),
                "W1": g.standard_normal((12, 7)) * (5 / 3) / np.sqrt(12),
                "W2": g.standard_normal((7, 11)) * 0.01,
                "b1": np.zeros(7), "b2": np.zeros(11)}
    assert set(params) == set(expected), f"params keys should be {sorted(expected)}"
    for name, value in expected.items():
        # the same draws, the same scale: exact up to one multiplication's rounding
        assert_close(params[name], value, f"init_params(...)['{name}'] (draw C, then W1, then "
                     "W2 with rng.standard_normal; W1 * (5/3) / sqrt(T*E), W2 * 0.01)",
                     rtol=1e-14, atol=0)
    p32 = impl.init_params(cfg, np.random.default_rng(5), dtype=np.float32)
    assert all(p.dtype == np.float32 for p in p32.values()), "dtype=np.float32 is not honoured"


@pytest.mark.points(2)
def test_forward_logits_values(impl, rng):
    _, params = small_params(impl, rng)
    X = rng.integers(0, 7, size=(6, 3))
    logits, _ = impl.forward(params, X)
    check_shape(logits, (6, 7), "forward(params, X (6, 3)) logits", "N, V")
    # the same float64 operations: rounding only
    assert_close(logits, reference_forward(params, X), "logits = tanh(C[X].reshape(N, -1) @ "
                 "W1 + b1) @ W2 + b2 (the T embeddings concatenated in window order)",
                 rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_loss_is_the_mean_cross_entropy(impl, rng):
    _, params = small_params(impl, rng)
    X, Y = rng.integers(0, 7, size=(9, 3)), rng.integers(0, 7, size=9)
    loss, _ = impl.loss_and_grads(params, X, Y)
    expected = -log_softmax(reference_forward(params, X), axis=1)[np.arange(9), Y].mean()
    assert abs(loss - expected) < 1e-12, (
        f"loss should be the mean over the batch of -log_softmax(logits)[y]: {expected:.10f}, "
        f"got {loss:.10f}")


@pytest.mark.points(4)
def test_every_gradient_passes_gradcheck(impl, rng):
    _, params = small_params(impl, rng)
    X = rng.integers(0, 7, size=(8, 3))
    X[0] = [2, 2, 2]                        # a token repeated inside one window
    X[1, 0] = X[2, 0] = 5                   # and across windows
    Y = rng.integers(0, 7, size=8)
    _, grads = impl.loss_and_grads(params, X, Y)
    assert set(grads) == set(params), f"grads must have the keys {sorted(params)}"
    for name in ("C", "W1", "b1", "W2", "b2"):
        gradcheck(lambda: impl.loss_and_grads(params, X, Y)[0], params[name], grads[name],
                  f"d loss / d {name}")


@pytest.mark.points(2)
def test_overfits_a_tiny_batch(impl):
    rng = np.random.default_rng(0)
    cfg = impl.MLPLMConfig(vocab_size=9, context=3, emb_dim=6, hidden=32)
    params = impl.init_params(cfg, rng)
    X, Y = rng.integers(0, 9, size=(8, 3)), rng.integers(0, 9, size=8)

    seeds = iter(range(10_000))

    def step():  # one SGD step on a batch drawn from the 8 rows, then the loss on all 8
        impl.train(params, X, Y, steps=1, batch_size=8, lr=1.0,
                   rng=np.random.default_rng(next(seeds)))
        return impl.loss_and_grads(params, X, Y)[0]

    overfit_tiny_batch(step, steps=400, target=0.05, what="MLP LM on 8 examples")


def _reference_train(params, X, Y, steps, batch_size, lr, rng, lr_drop_step):
    losses = []
    for step in range(steps):
        idx = rng.integers(0, len(X), batch_size)
        x = params["C"][X[idx]].reshape(batch_size, -1)
        h = np.tanh(x @ params["W1"] + params["b1"])
        logp = log_softmax(h @ params["W2"] + params["b2"], axis=1)
        losses.append(-logp[np.arange(batch_size), Y[idx]].mean())
        d = np.exp(logp)
        d[np.arange(batch_size), Y[idx]] -= 1
        d /= batch_size
        dpre = (d @ params["W2"].T) * (1 - h ** 2)
        dC = np.zeros_like(params["C"])
        np.add.at(dC, X[idx], (dpre @ params["W1"].T).reshape(batch_size, X.shape[1], -1))
        grads = {"C": dC, "W1": x.T @ dpre, "b1": dpre.sum(0), "W2": h.T @ d, "b2": d.sum(0)}
        rate = lr / 10 if lr_drop_step is not None and step >= lr_drop_step else lr
        for name in params:
            params[name] -= rate * grads[name]
    return losses


@pytest.mark.points(3)
def test_train_equals_the_documented_loop(impl, rng):
    cfg, params = small_params(impl, rng)
    X, Y = rng.integers(0, 7, size=(40, 3)), rng.integers(0, 7, size=40)
    ref = {k: v.copy() for k, v in params.items()}
    losses = impl.train(params, X, Y, steps=12, batch_size=5, lr=0.3,
                        rng=np.random.default_rng(9), lr_drop_step=7)
    ref_losses = _reference_train(ref, X, Y, 12, 5, 0.3, np.random.default_rng(9), 7)
    # the same draws and float64 updates: rounding only
    assert_close(losses, ref_losses, "train(..., steps=12, batch_size=5, lr=0.3, "
                 "lr_drop_step=7) batch losses (batches idx = rng.integers(0, N, batch_size), "
                 "lr / 10 from step 7 on)", rtol=1e-10, atol=1e-12)
    for name in params:
        assert_close(params[name], ref[name], f"params['{name}'] after train (updated IN "
                     "PLACE)", rtol=1e-10, atol=1e-12)


@pytest.mark.points(3)
def test_beats_the_ngram_baseline_on_validation(impl, rng):
    train_seqs, val_seqs = class_language(rng, 200), class_language(rng, 100)
    baseline = min(ngram_nll(train_seqs, val_seqs, n, k, V_CLASS) for n in (1, 2, 3, 4)
                   for k in (1.0, 0.3, 0.1, 0.03, 0.01))
    X, Y = impl.build_dataset(train_seqs, 3)
    Xv, Yv = impl.build_dataset(val_seqs, 3)
    params = impl.init_params(impl.MLPLMConfig(V_CLASS, 3, 8, 64), np.random.default_rng(0))
    impl.train(params, X, Y, steps=500, batch_size=64, lr=0.5, rng=np.random.default_rng(1))
    val = impl.nll(params, Xv, Yv)
    # the reference reaches 2.36-2.42 against a best n-gram of 3.21 over 4 seeds
    assert val < baseline - 0.5, (
        f"validation NLL {val:.3f} (perplexity {math.exp(val):.1f}) should beat the best "
        f"add-k n-gram (n = 1..4, k tuned on validation: {baseline:.3f}, perplexity "
        f"{math.exp(baseline):.1f}) by 0.5 nats. Check the training loop and gradients.")

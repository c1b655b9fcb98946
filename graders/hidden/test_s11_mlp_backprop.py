"""Hidden graders for s11 MLP backprop: the same ideas on inputs the public tests hide."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax

from graders.helpers import assert_close, assert_finite, check_shape, gradcheck


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), d_in=st.integers(1, 6), d_out=st.integers(1, 6),
       seed=st.integers(0, 2**16))
@pytest.mark.points(2)
def test_linear_backward_formulas_for_any_shape(impl, n, d_in, d_out, seed):
    gen = np.random.default_rng(seed)
    layer = impl.Linear(d_in, d_out, init="xavier", rng=gen)
    x, dout = gen.normal(size=(n, d_in)), gen.normal(size=(n, d_out))
    layer.forward(x)
    dx = layer.backward(dout)
    where = f"Linear({d_in}, {d_out}) on a batch of {n}"
    check_shape(layer.db, (d_out,), f"{where}: db (sum over the batch axis 0)", "out,")
    check_shape(layer.dW, (d_in, d_out), f"{where}: dW", "in, out")
    # small float64 products: rounding only
    assert_close(layer.dW, x.T @ dout, f"{where}: dW", rtol=1e-12, atol=1e-12)
    assert_close(layer.db, dout.sum(axis=0), f"{where}: db", rtol=1e-12, atol=1e-12)
    assert_close(dx, dout @ layer.W.T, f"{where}: dx", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_relu_backward_blocks_the_gradient_of_negative_inputs(impl):
    relu = impl.ReLU()
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    relu.forward(x)
    dx = relu.backward(np.array([[1.0, -1.0, 1.0, 1.0, -1.0]]))
    assert_close(dx, [[0.0, 0.0, 0.0, 1.0, -1.0]], "ReLU.backward: the gradient must be 0 "
                 "where the INPUT x was negative or exactly 0 (the kink: 1[x > 0]) and pass "
                 "unchanged (sign included) where x > 0", atol=0)


@pytest.mark.points(1)
def test_backward_overwrites_the_gradients(impl, rng):
    layer = impl.Linear(3, 2, rng=np.random.default_rng(0))
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    layer.forward(x)
    layer.backward(dout)
    layer.forward(x)
    layer.backward(dout)
    assert_close(layer.dW, x.T @ dout, "Linear.dW after two identical backward passes (it "
                 "must hold the last gradient, not the sum of all of them)", rtol=1e-12,
                 atol=1e-12)


@pytest.mark.points(1)
def test_he_uses_fan_in_and_xavier_both_fans(impl):
    for fan_in, fan_out in ((100, 400), (400, 100)):
        for scheme, std in (("he", np.sqrt(2 / fan_in)),
                            ("xavier", np.sqrt(2 / (fan_in + fan_out)))):
            W = impl.init_weights(fan_in, fan_out, scheme, np.random.default_rng(3))
            # 40,000 draws: sample std within ~0.7% (3 sigma); 5% catches any wrong formula
            assert abs(W.std() / std - 1) < 0.05, (
                f"{scheme} init of a layer with fan_in={fan_in}, fan_out={fan_out}: std "
                f"{W.std():.4g}, expected {std:.4g}. Which fan does the formula use?")


@pytest.mark.points(1)
def test_sigmoid_is_stable_for_huge_inputs(impl):
    sig = impl.Sigmoid()
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with np.errstate(over="raise"):
        y = sig.forward(x)
    assert_close(y, [[0.0, 1.9287498479639178e-22, 0.5, 1.0, 1.0]],
                 "Sigmoid.forward at -1000 .. 1000 (1 / (1 + exp(1000)) overflows: use "
                 "np.logaddexp or split by sign)", rtol=1e-12, atol=1e-300)
    assert_finite(sig.backward(np.ones_like(x)), "Sigmoid.backward at huge inputs")


@pytest.mark.points(1)
def test_softmax_cross_entropy_is_stable_for_huge_logits(impl):
    logits = np.array([[1e4, 0.0, -1e4], [5e3, 5e3 + 2.0, 0.0]])
    y = np.array([1, 0])
    with np.errstate(over="raise"):
        loss, dlogits = impl.softmax_cross_entropy(logits, y)
    expected = -log_softmax(logits, axis=1)[[0, 1], y].mean()
    # exact log-sum-exp: the loss is (1e4 + 2.127) / 2, rounding only
    assert_close(loss, expected, "softmax_cross_entropy with logits of size 1e4 (subtract "
                 "the row max before exp)", rtol=1e-10)
    assert_finite(dlogits, "dlogits for logits of size 1e4")


@pytest.mark.points(1)
def test_softmax_cross_entropy_is_a_mean_over_the_batch(impl, rng):
    logits, y = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    loss1, g1 = impl.softmax_cross_entropy(logits, y)
    loss2, g2 = impl.softmax_cross_entropy(np.vstack([logits, logits]), np.concatenate([y, y]))
    assert_close(loss2, loss1, "the loss of a batch repeated twice (a mean, not a sum)",
                 rtol=1e-12)
    assert_close(g2[:5], g1 / 2, "dlogits of a batch repeated twice: each row counts 1/N, so "
                 "doubling N halves every row", rtol=1e-12, atol=1e-15)


@pytest.mark.points(2)
def test_sigmoid_mlp_gradients_pass_gradcheck(impl, rng):
    model = impl.MLP([3, 6, 5, 4], activation="sigmoid", init="he", seed=5)
    X, y = rng.normal(size=(1, 3)), np.array([2])  # a batch of one: N = 1 edge case

    def f():
        return impl.softmax_cross_entropy(model.forward(X), y)[0]

    _, dlogits = impl.softmax_cross_entropy(model.forward(X), y)
    dx = model.backward(dlogits)
    check_shape(dx, (1, 3), "MLP.backward return value (dL/dx)", "N, d_in")
    layers = [layer for layer in model.layers if isinstance(layer, impl.Linear)]
    grads = [(layer.dW.copy(), layer.db.copy()) for layer in layers]
    for i, (layer, (dW, db)) in enumerate(zip(layers, grads, strict=True)):
        gradcheck(f, layer.W, dW, f"sigmoid MLP Linear layer {i}: dW")
        gradcheck(f, layer.b, db, f"sigmoid MLP Linear layer {i}: db")
    gradcheck(f, X, dx, "sigmoid MLP: dL/dx returned by MLP.backward")


@pytest.mark.points(2)
def test_sigmoid_gradients_vanish_with_depth_but_relu_he_do_not(impl):
    """||dW|| of the first layer over the last one, through 10 Linear layers of width 64."""
    x = np.random.default_rng(0).normal(size=(100, 64))
    dout = np.random.default_rng(1).normal(size=(100, 64))

    def first_over_last(activation, init):
        model = impl.MLP([64] * 11, activation=activation, init=init, seed=0)
        model.forward(x)
        model.backward(dout)
        norms = [np.linalg.norm(layer.dW) for layer in model.layers
                 if isinstance(layer, impl.Linear)]
        return norms[0] / norms[-1]

    relu = first_over_last("relu", "he")
    sig = first_over_last("sigmoid", "xavier")
    assert 0.1 < relu < 10, (
        f"ReLU + He: the first layer's gradient is {relu:.3g} x the last one's; it should be "
        "of the same order (ReLU' = 1 on active units and He keeps the scale).")
    assert sig < 1e-3, (
        f"sigmoid: the first layer's gradient is {sig:.3g} x the last one's; sigmoid' <= 1/4 "
        "at every layer should make it vanish. Check Sigmoid.backward uses y * (1 - y).")


@pytest.mark.points(1)
def test_train_is_deterministic_and_lowers_the_loss(impl, rng):
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    runs = []
    for _ in range(2):
        model = impl.MLP([3, 16, 2], activation="tanh", init="xavier", seed=4)
        runs.append(impl.train(model, X, y, lr=0.2, epochs=40, batch_size=7, seed=9))
    assert np.array_equal(runs[0], runs[1]), "train with the same seeds gave two histories"
    assert runs[0][-1] < 0.7 * runs[0][0], (
        f"40 epochs of SGD on 50 points moved the mean loss only {runs[0][0]:.3f} -> "
        f"{runs[0][-1]:.3f}")


def _reference_train(weights, X, y, *, lr, epochs, batch_size, seed):
    """The documented loop, written out for a ReLU MLP given as [(W, b)]: (history, weights)."""
    weights = [(W.copy(), b.copy()) for W, b in weights]
    X = X.astype(np.float64)
    rng, n, history = np.random.default_rng(seed), len(y), np.zeros(epochs)
    for epoch in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            acts = [X[idx]]
            for k, (W, b) in enumerate(weights):
                z = acts[-1] @ W + b
                acts.append(np.maximum(z, 0.0) if k < len(weights) - 1 else z)
            log_p = log_softmax(acts[-1], axis=1)
            rows = np.arange(len(idx))
            history[epoch] += -log_p[rows, y[idx]].mean() * len(idx) / n
            d = np.exp(log_p)
            d[rows, y[idx]] -= 1.0
            d /= len(idx)
            for k in reversed(range(len(weights))):
                W, b = weights[k]
                dW, db = acts[k].T @ d, d.sum(axis=0)
                if k > 0:
                    d = (d @ W.T) * (acts[k] > 0)
                W -= lr * dW
                b -= lr * db
    return history, weights


@pytest.mark.points(2)
def test_train_equals_the_documented_loop_exactly(impl, rng):
    """float32 X, int32 labels, 50 samples in batches of 8 (the last of 2), 4 epochs."""
    X = rng.normal(size=(50, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int32) + (X[:, 2] > 1)
    model = impl.MLP([3, 10, 3], activation="relu", init="he", seed=6)
    start = [(layer.W.copy(), layer.b.copy()) for layer in model.layers
             if isinstance(layer, impl.Linear)]
    history = impl.train(model, X, y, lr=0.3, epochs=4, batch_size=8, seed=11)
    expected, weights = _reference_train(start, X, y, lr=0.3, epochs=4, batch_size=8, seed=11)
    check_shape(history, (4,), "train(..., epochs=4) history")
    # the same float64 operations in a possibly different order: rounding only
    assert_close(history, expected, "train's history (one generator np.random.default_rng("
                 "seed) for the whole call, a new rng.permutation(n) each epoch, every slice "
                 "of batch_size including the short last one, each batch's mean loss weighted "
                 "by its size / n)", rtol=1e-9, atol=1e-12)
    layers = [layer for layer in model.layers if isinstance(layer, impl.Linear)]
    for k, (layer, (W, b)) in enumerate(zip(layers, weights, strict=True)):
        assert_close(layer.W, W, f"Linear layer {k}'s W after train (one sgd_step per batch)",
                     rtol=1e-9, atol=1e-12)
        assert_close(layer.b, b, f"Linear layer {k}'s b after train", rtol=1e-9, atol=1e-12)


@pytest.mark.points(1)
def test_train_depends_on_its_seed(impl, rng):
    X, y = rng.normal(size=(30, 2)), rng.integers(0, 2, size=30)
    runs = [impl.train(impl.MLP([2, 8, 2], seed=0), X, y, lr=0.1, epochs=3, batch_size=4,
                       seed=seed) for seed in (0, 1)]
    assert not np.array_equal(runs[0], runs[1]), (
        "train with seed=0 and seed=1 gave the same history: shuffle with "
        "np.random.default_rng(seed), not a fixed or global generator")


@pytest.mark.points(1)
def test_init_and_mlp_draw_exactly_from_the_given_generator(impl):
    for scheme, std in (("small", 0.01), ("normal", 1.0), ("xavier", np.sqrt(2 / 12)),
                        ("he", np.sqrt(2 / 5))):
        W = impl.init_weights(5, 7, scheme, np.random.default_rng(21))
        assert_close(W, np.random.default_rng(21).normal(0.0, std, size=(5, 7)),
                     f"init_weights(5, 7, {scheme!r}, rng) (one rng.normal(0, std, size="
                     "(fan_in, fan_out)) draw)", rtol=1e-12, atol=0)
    model = impl.MLP([4, 6, 2], init="xavier", seed=8)
    gen = np.random.default_rng(8)
    expected = [impl.init_weights(4, 6, "xavier", gen), impl.init_weights(6, 2, "xavier", gen)]
    layers = [layer for layer in model.layers if isinstance(layer, impl.Linear)]
    for k, (layer, W) in enumerate(zip(layers, expected, strict=True)):
        assert_close(layer.W, W, f"MLP([4, 6, 2], init='xavier', seed=8): layer {k}'s W (one "
                     "np.random.default_rng(seed) shared by the layers, in order)", atol=0)
        assert_close(layer.b, np.zeros_like(layer.b), f"layer {k}'s b (biases start at 0)",
                     atol=0)


@pytest.mark.points(1)
def test_softmax_cross_entropy_leaves_the_logits_alone(impl, rng):
    logits = rng.normal(size=(4, 3)) * 5
    before = logits.copy()
    impl.softmax_cross_entropy(logits, np.array([0, 2, 1, 2]))
    assert np.array_equal(logits, before), (
        "softmax_cross_entropy changed the logits array it was given (an in-place `-=` on "
        "the input): subtract the row max into a new array")

"""Public graders for s11 MLP backprop: every layer's gradients, the whole net, init, training."""

import numpy as np
import pytest
from scipy.special import expit, log_softmax
from sklearn.datasets import make_moons

from graders.helpers import assert_close, check_shape, gradcheck, overfit_tiny_batch

ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def _linear_layers(model, impl):
    return [layer for layer in model.layers if isinstance(layer, impl.Linear)]


# --- initialisation --------------------------------------------------------------------------

@pytest.mark.points(2)
def test_init_weights_has_the_scheme_standard_deviation(impl):
    fan_in, fan_out = 300, 200
    expected = {"small": 0.01, "normal": 1.0, "xavier": np.sqrt(2 / 500), "he": np.sqrt(2 / 300)}
    for scheme, std in expected.items():
        W = impl.init_weights(fan_in, fan_out, scheme, np.random.default_rng(0))
        check_shape(W, (fan_in, fan_out), f"init_weights(300, 200, {scheme!r}, rng)",
                    "fan_in, fan_out")
        # 60,000 draws: the sample std is within ~0.6% of the true one (3 sigma); 5% is wide
        assert abs(W.std() / std - 1) < 0.05, (
            f"init_weights(fan_in=300, fan_out=200, {scheme!r}) has std {W.std():.4g}; "
            f"expected {std:.4g}. small: 0.01, normal: 1, xavier: sqrt(2 / (fan_in + "
            "fan_out)), he: sqrt(2 / fan_in).")
        assert abs(W.mean()) < 0.05 * std, f"{scheme}: the weights should have mean 0"
    a = impl.init_weights(5, 4, "he", np.random.default_rng(7))
    b = impl.init_weights(5, 4, "he", np.random.default_rng(7))
    assert np.array_equal(a, b), "init_weights must draw from the rng it is given (no globals)"


# --- layers ----------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_linear_forward_is_x_at_w_plus_b(impl, rng):
    layer = impl.Linear(4, 3, rng=np.random.default_rng(0))
    layer.b = rng.normal(size=3)
    x = rng.normal(size=(5, 4))
    out = layer.forward(x)
    check_shape(out, (5, 3), "Linear(4, 3).forward(x) for x of shape (5, 4)", "N, out")
    # one float64 matrix product: rounding only
    assert_close(out, x @ layer.W + layer.b, "Linear.forward(x)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(3)
def test_linear_backward_passes_gradcheck(impl, rng):
    """L = sum(forward(x) * dout) has dL/d(out) = dout: check dx, dW and db."""
    layer = impl.Linear(4, 3, rng=np.random.default_rng(1))
    layer.b = rng.normal(size=3)
    x, dout = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    layer.forward(x)
    dx = layer.backward(dout)
    dW, db = layer.dW.copy(), layer.db.copy()
    check_shape(dx, (6, 4), "dx returned by Linear.backward", "N, in")
    check_shape(dW, (4, 3), "Linear.dW (same shape as W)", "in, out")
    check_shape(db, (3,), "Linear.db (same shape as b: sum over the batch axis)", "out,")

    def f():
        return np.sum(layer.forward(x) * dout)

    gradcheck(f, x, dx, "Linear.backward: dx")
    gradcheck(f, layer.W, dW, "Linear.backward: dW (x^T @ dout)")
    gradcheck(f, layer.b, db, "Linear.backward: db")


@pytest.mark.points(2)
def test_backward_writes_into_the_gradient_arrays_params_returned(impl, rng):
    """A loop may take params = model.params() once: the (array, grad) pairs must stay live."""
    model = impl.MLP([4, 6, 3], seed=0)
    pairs = model.params()
    first = _linear_layers(model, impl)[0]
    own = first.params()
    assert [a is b for pair in zip(own, pairs[:2], strict=True) for a, b in zip(*pair,
            strict=True)] == [True] * 4 and own[0][0] is first.W and own[1][0] is first.b, (
        "Linear.params() should return [(W, dW), (b, db)], the layer's own arrays, and "
        "MLP.params() every layer's pairs in order")
    assert impl.ReLU().params() == [] and impl.Tanh().params() == [], (
        "an activation has no parameters: params() should return []")
    X, y = rng.normal(size=(5, 4)), rng.integers(0, 3, size=5)
    _, dlogits = impl.softmax_cross_entropy(model.forward(X), y)
    model.backward(dlogits)
    for k, layer in enumerate(_linear_layers(model, impl)):
        for name, (_, held) in zip(("dW", "db"), pairs[2 * k:2 * k + 2], strict=True):
            now = getattr(layer, name)
            if held is not now and not np.array_equal(held, now):
                raise AssertionError(
                    f"Linear layer {k}: after backward, the {name} in the list model.params() "
                    f"returned BEFORE backward still holds the old values (norm "
                    f"{np.linalg.norm(held):.3g}) while layer.{name} has norm "
                    f"{np.linalg.norm(now):.3g}. backward rebound layer.{name} to a new array "
                    f"(self.{name} = ...), so a training loop that took params = "
                    "model.params() once updates with stale zeros and never learns. Write "
                    f"into the existing array instead: self.{name}[...] = ...")


@pytest.mark.points(1)
def test_activation_forward_values(impl, rng):
    x = rng.normal(size=(4, 5)) * 3
    # elementwise float64 functions: rounding only
    assert_close(impl.ReLU().forward(x), np.maximum(x, 0), "ReLU.forward", atol=0)
    assert_close(impl.Tanh().forward(x), np.tanh(x), "Tanh.forward", rtol=1e-12, atol=1e-15)
    assert_close(impl.Sigmoid().forward(x), expit(x), "Sigmoid.forward", rtol=1e-12,
                 atol=1e-15)


@pytest.mark.points(2)
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activation_backward_passes_gradcheck(impl, rng, name):
    layer = getattr(impl, ACTIVATIONS[name])()
    x = rng.normal(size=(5, 6)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences (h = 1e-5) off ReLU's kink at 0
    dout = rng.normal(size=(5, 6))
    layer.forward(x)
    dx = layer.backward(dout)

    def f():
        return np.sum(layer.forward(x) * dout)

    gradcheck(f, x, dx, f"{ACTIVATIONS[name]}.backward", kinks=name == "relu")


@pytest.mark.points(2)
def test_softmax_cross_entropy_matches_log_softmax_and_gradcheck(impl, rng):
    logits = rng.normal(size=(7, 4)) * 3
    y = rng.integers(0, 4, size=7)
    loss, dlogits = impl.softmax_cross_entropy(logits, y)
    expected = -log_softmax(logits, axis=1)[np.arange(7), y].mean()
    # float64 log-sum-exp on 4 classes: rounding only
    assert_close(loss, expected, "softmax_cross_entropy loss (mean over the batch of "
                 "-log p[true class])", rtol=1e-10)
    check_shape(dlogits, (7, 4), "dlogits", "N, C")
    gradcheck(lambda: impl.softmax_cross_entropy(logits, y)[0], logits, dlogits,
              "softmax_cross_entropy: dlogits ((p - onehot) / N)")


# --- the whole network -------------------------------------------------------------------

@pytest.mark.points(3)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_gradients_pass_gradcheck_for_every_parameter(impl, rng, activation):
    model = impl.MLP([5, 8, 7, 3], activation=activation, init="xavier", seed=2)
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    for layer in _linear_layers(model, impl):
        layer.b = rng.normal(size=layer.b.shape) * 0.1

    def f():
        return impl.softmax_cross_entropy(model.forward(X), y)[0]

    _, dlogits = impl.softmax_cross_entropy(model.forward(X), y)
    model.backward(dlogits)
    grads = [(layer.dW.copy(), layer.db.copy()) for layer in _linear_layers(model, impl)]
    for i, (layer, (dW, db)) in enumerate(zip(_linear_layers(model, impl), grads,
                                              strict=True)):
        kinks = activation == "relu"  # a ReLU unit near 0 can flip inside a difference
        gradcheck(f, layer.W, dW, f"MLP({activation}) Linear layer {i}: dW", kinks=kinks)
        gradcheck(f, layer.b, db, f"MLP({activation}) Linear layer {i}: db", kinks=kinks)


@pytest.mark.points(2)
def test_mlp_overfits_a_tiny_batch(impl, rng):
    model = impl.MLP([6, 32, 4], seed=0)
    X, y = rng.normal(size=(8, 6)), rng.integers(0, 4, size=8)

    def step():
        loss, dlogits = impl.softmax_cross_entropy(model.forward(X), y)
        model.backward(dlogits)
        impl.sgd_step(model.params(), lr=0.5)
        return loss

    overfit_tiny_batch(step, steps=300, target=0.02, what="MLP([6, 32, 4]) with sgd_step")


@pytest.mark.points(3)
def test_mlp_learns_moons(impl):
    X, y = make_moons(600, noise=0.15, random_state=0)
    model = impl.MLP([2, 32, 32, 2], activation="relu", init="he", seed=1)
    history = impl.train(model, X[:400], y[:400], lr=0.1, epochs=100, batch_size=32, seed=0)
    check_shape(history, (100,), "train(...) history for 100 epochs")
    acc = float(np.mean(model.predict(X[400:]) == y[400:]))
    assert acc >= 0.95, (
        f"after 100 epochs on 400 moons points, test accuracy is {acc:.3f}; >= 0.95 expected "
        f"(the loss went {history[0]:.3f} -> {history[-1]:.3f}). If the loss barely moves, "
        "check sgd_step changes the arrays in place, Linear.backward writes into the "
        "gradient arrays params() returned (self.dW[...] = ...), and train calls backward "
        "before sgd_step.")
    assert history[-1] < 0.5 * history[0], "the training loss should fall well below its start"


@pytest.mark.points(2)
def test_activation_scale_over_depth_depends_on_init(impl):
    """20 Linear layers of width 256: He / Xavier keep the scale, naive init does not."""
    x = np.random.default_rng(0).normal(size=(100, 256))

    def stds(activation, init):
        model = impl.MLP([256] * 21, activation=activation, init=init, seed=0)
        h, out = x, []
        with np.errstate(over="ignore", invalid="ignore"):
            for layer in model.layers:
                h = layer.forward(h)
                if isinstance(layer, impl.Linear):
                    out.append(float(h.std()))
        return out

    he = stds("relu", "he")
    assert 0.2 < he[-1] / he[0] < 5, (
        f"ReLU + He: the std of the pre-activations went {he[0]:.3g} -> {he[-1]:.3g} over 20 "
        "layers; with Var(W) = 2 / fan_in it should stay roughly constant.")
    xav = stds("tanh", "xavier")
    assert 0.05 < xav[-1] < 2, (
        f"tanh + Xavier: the std at layer 20 is {xav[-1]:.3g}; it should stay of order 0.1-1")
    small = stds("relu", "small")
    assert small[-1] / small[0] < 1e-6, (
        f"ReLU + 0.01 N(0, 1): the std went {small[0]:.3g} -> {small[-1]:.3g}; each layer "
        "should shrink it by 0.01 * sqrt(256 / 2) ~ 0.11, a collapse over 20 layers.")
    big = stds("relu", "normal")
    assert big[-1] / big[0] > 1e6, (
        f"ReLU + N(0, 1): the std went {big[0]:.3g} -> {big[-1]:.3g}; each layer should "
        "multiply it by sqrt(256 / 2) ~ 11, an explosion over 20 layers.")

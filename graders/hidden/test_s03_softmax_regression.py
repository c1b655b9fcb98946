"""Hidden graders for s03 softmax regression: invariants on arbitrary shapes and axes, the
penalised fit against scikit-learn, one exact update, mini-batch epochs and K = 2."""

import warnings

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from scipy.special import expit, logsumexp
from scipy.special import softmax as sp_softmax
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.preprocessing import StandardScaler

from graders.helpers import assert_close, check_shape

# no "explain" phase: it re-runs a failing test many times to annotate the example, which
# costs tens of seconds per test on a learner's unfinished code; shrinking is kept
QUICK = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]

logit = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)


@pytest.mark.points(2)
@settings(max_examples=40, deadline=None, phases=QUICK)
@given(data=st.data(),
       z=arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=5), elements=logit))
def test_softmax_invariants_on_any_shape_and_axis(impl, data, z):
    axis = data.draw(st.integers(-z.ndim, z.ndim - 1), label="axis")
    c = data.draw(st.floats(-1e3, 1e3), label="constant")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = np.asarray(impl.softmax(z, axis=axis))
        logp = np.asarray(impl.log_softmax(z, axis=axis))
        p_shift = np.asarray(impl.softmax(z + c, axis=axis))
    check_shape(p, z.shape, f"softmax(z, axis={axis})")
    # a sum of at most 5 terms in [0, 1]: rounding only
    assert_close(p.sum(axis=axis), np.ones(np.delete(z.shape, axis % z.ndim)),
                 f"the sums of softmax(z, axis={axis}) along the axis", rtol=0, atol=1e-12)
    assert_close(p, sp_softmax(z, axis=axis), f"softmax(z, axis={axis})", rtol=1e-9,
                 atol=1e-12)
    # z + c rounds differently when |z| is large: compare with a tolerance scaled to it
    assert_close(p_shift, p, f"softmax(z + {c:g}, axis={axis}) vs softmax(z)", rtol=1e-6,
                 atol=1e-6)
    expected = z - logsumexp(z, axis=axis, keepdims=True)
    # log p = z - logsumexp(z): absolute error ~ eps * |z|
    assert_close(logp, expected, f"log_softmax(z, axis={axis})", rtol=1e-12,
                 atol=1e-12 * (1 + np.abs(z).max()))


@pytest.mark.points(1)
@settings(max_examples=25, deadline=None, phases=QUICK)
@given(data=st.data(), n=st.integers(1, 12), k=st.integers(2, 6))
def test_cross_entropy_and_gradient_on_arbitrary_logits(impl, data, n, k):
    z = data.draw(arrays(np.float64, (n, k), elements=st.floats(-1e4, 1e4)))
    y = data.draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = impl.cross_entropy(z, y)
        grad = np.asarray(impl.cross_entropy_grad(z, y))
    expected = np.mean(logsumexp(z, axis=1) - z[np.arange(n), y])
    # log-sum-exp of logits up to 1e4: absolute error ~ 1e4 * eps
    assert_close(loss, expected, "cross_entropy on arbitrary logits", rtol=1e-10, atol=1e-9)
    Y = np.zeros((n, k))
    Y[np.arange(n), y] = 1.0
    assert_close(grad, (sp_softmax(z, axis=1) - Y) / n,
                 "cross_entropy_grad = (softmax(z) - one_hot(y)) / n", rtol=1e-9, atol=1e-12)


@pytest.mark.points(1)
def test_cross_entropy_of_confidently_wrong_logits_is_their_gap(impl):
    z = np.array([[1000.0, 0.0], [0.0, 1000.0], [0.0, 1000.0]])
    y = np.array([1, 1, 0])
    # per-row losses 1000, 0, 1000: a confident mistake costs its logit gap, not inf
    assert_close(impl.cross_entropy(z, y), 2000.0 / 3, "cross_entropy at logits of 1000",
                 rtol=1e-12)


@pytest.mark.points(1)
def test_two_class_softmax_is_the_sigmoid_of_the_logit_gap(impl, rng):
    z = rng.normal(0.0, 5.0, size=(20, 2))
    # softmax([a, b])_1 = 1 / (1 + e^(a - b)): identical up to rounding
    assert_close(np.asarray(impl.softmax(z))[:, 1], expit(z[:, 1] - z[:, 0]),
                 "softmax([a, b])[1] vs sigmoid(b - a)", rtol=1e-10, atol=1e-15)


@pytest.mark.points(2)
def test_one_step_is_exact_gradient_descent(impl, rng):
    X = rng.normal(size=(9, 3))
    y = rng.integers(0, 4, size=9)
    model = impl.SoftmaxRegression(lr=0.3, l2=0.2).init_params(3, 4)
    W0, b0 = rng.normal(size=(3, 4)), rng.normal(size=4)
    model.W, model.b = W0.copy(), b0.copy()
    loss = model.step(X, y)
    Z = X @ W0 + b0
    Y = np.eye(4)[y]
    G = (sp_softmax(Z, axis=1) - Y) / 9
    exp_loss = np.mean(logsumexp(Z, axis=1) - Z[np.arange(9), y]) + 0.1 * np.sum(W0 ** 2)
    # one step of float64 arithmetic: rounding only
    assert_close(loss, exp_loss, "the loss step() returns (cross-entropy + l2/2 ||W||^2, "
                 "before the update)", rtol=1e-10)
    assert_close(model.W, W0 - 0.3 * (X.T @ G + 0.2 * W0),
                 "W after one step: W - lr (X^T dZ + l2 W)", rtol=1e-10, atol=1e-12)
    assert_close(model.b, b0 - 0.3 * G.sum(axis=0),
                 "b after one step: b - lr * column sums of dZ (b is not penalised)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_penalised_fit_matches_sklearn_on_iris(impl):
    """sklearn minimises 0.5||W||^2 + C sum_i CE_i, the same minimiser as
    mean CE + (l2/2)||W||^2 with l2 = 1/(C n); probabilities are unique, so compare those."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = impl.SoftmaxRegression(lr=2.0, n_epochs=800, l2=1.0 / len(y)).fit(X, y)
    sk = SkLogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y)
    # full-batch GD after 800 steps is within ~1e-6 of lbfgs on this convex problem
    assert_close(model.predict_proba(X), sk.predict_proba(X),
                 "predict_proba on iris vs sklearn multinomial LogisticRegression(C=1)",
                 rtol=1e-3, atol=1e-4)


@pytest.mark.points(1)
def test_minibatch_epochs_are_seeded_and_complete(impl, rng):
    X = rng.normal(size=(50, 4))
    y = rng.integers(0, 3, size=50)
    kw = dict(lr=0.1, n_epochs=3, batch_size=16)
    a = impl.SoftmaxRegression(seed=1, **kw).fit(X, y)
    b = impl.SoftmaxRegression(seed=1, **kw).fit(X, y)
    c = impl.SoftmaxRegression(seed=2, **kw).fit(X, y)
    assert len(a.loss_history_) == 3 * 4, (
        f"3 epochs of batches of 16 over 50 rows are 12 steps (16, 16, 16, 2 per epoch); "
        f"loss_history_ has {len(a.loss_history_)} entries")
    assert np.array_equal(a.W, b.W), "the same seed must give the same weights"
    assert not np.allclose(a.W, c.W), (
        "seeds 1 and 2 gave identical weights: shuffle each epoch with "
        "np.random.default_rng(seed).permutation(n)")
    check_shape(a.W, (4, 3), "W after fit on 4 features and 3 classes")


def _reference_fit(X, y, K, lr, n_epochs, l2, batch_size, seed):
    """The documented loop, written independently: W, b and every recorded loss."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    W, b, losses = np.zeros((d, K)), np.zeros(K), []
    for _ in range(n_epochs):
        order = rng.permutation(n) if batch_size else np.arange(n)
        step = batch_size or n
        for start in range(0, n, step):
            idx = order[start:start + step]
            Z = X[idx] @ W + b
            losses.append(np.mean(logsumexp(Z, axis=1) - Z[np.arange(len(idx)), y[idx]])
                          + 0.5 * l2 * np.sum(W ** 2))
            G = (sp_softmax(Z, axis=1) - np.eye(K)[y[idx]]) / len(idx)
            W, b = W - lr * (X[idx].T @ G + l2 * W), b - lr * G.sum(axis=0)
    return W, b, np.array(losses)


@pytest.mark.points(2)
@pytest.mark.parametrize("batch_size", [None, 5])
def test_fit_follows_the_documented_loop_exactly(impl, rng, batch_size):
    """23 rows (batches of 5: the last has 3), l2 on, and n_classes=4 though y has only 0-2."""
    X = rng.normal(size=(23, 3)) + np.array([4.0, -2.0, 0.0])
    y = rng.integers(0, 3, size=23).astype(np.int32)
    kw = dict(lr=0.2, n_epochs=3, l2=0.1, batch_size=batch_size, seed=9)
    model = impl.SoftmaxRegression(**kw).fit(X, y, n_classes=4)
    W, b, losses = _reference_fit(X, y.astype(int), 4, 0.2, 3, 0.1, batch_size, 9)
    how = ("one full-batch step per epoch" if batch_size is None else
           "each epoch: order = rng.permutation(n), rng = np.random.default_rng(seed) made once "
           "per fit, then consecutive batches of batch_size rows, the last one shorter")
    check_shape(model.W, (3, 4), "W after fit(X, y, n_classes=4)")
    check_shape(np.asarray(model.loss_history_), losses.shape,
                f"loss_history_ with batch_size={batch_size} (one loss per step)")
    # the same float64 steps up to summation order: rounding only
    assert_close(model.loss_history_, losses, f"loss_history_ with {kw} ({how})", rtol=1e-9,
                 atol=1e-12)
    assert_close(model.W, W, f"W after the documented loop with {kw}", rtol=1e-9, atol=1e-12)
    assert_close(model.b, b, f"b after the documented loop with {kw}", rtol=1e-9, atol=1e-12)

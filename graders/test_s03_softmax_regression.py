"""Public graders for s03 softmax regression: softmax invariants and stability, the
cross-entropy gradient, memorising a tiny batch, and digits within 2 points of scikit-learn."""

import warnings

import numpy as np
import pytest
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from graders.helpers import assert_close, check_shape, gradcheck, overfit_tiny_batch


def _quiet(fn, *args, what: str, **kwargs):
    """Call fn with every warning turned into an error: a stable softmax emits none."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return fn(*args, **kwargs)
        except (RuntimeWarning, FloatingPointError) as exc:
            raise AssertionError(
                f"{what} raised a floating-point warning: {exc}. Subtract the max along the "
                "axis before exponentiating, and take logs with log-sum-exp, never "
                "log(softmax(z)).") from None


# --- softmax and log-softmax ---------------------------------------------------------------

@pytest.mark.points(1)
def test_softmax_matches_scipy_and_rows_sum_to_one(impl, rng):
    z = rng.normal(0.0, 3.0, size=(6, 5))
    p = impl.softmax(z)
    check_shape(p, (6, 5), "softmax(z) for z of shape (6, 5)")
    # float64 on the same formula: rounding only
    assert_close(p, sp_softmax(z, axis=-1), "softmax(z)", rtol=1e-12, atol=1e-15)
    assert_close(np.sum(p, axis=1), np.ones(6), "the row sums of softmax(z)", atol=1e-12)


@pytest.mark.points(1)
def test_softmax_along_axis_0(impl, rng):
    z = rng.normal(size=(4, 3))
    # rounding only
    assert_close(impl.softmax(z, axis=0), sp_softmax(z, axis=0),
                 "softmax(z, axis=0): normalise down the columns", rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
def test_softmax_is_invariant_to_adding_a_constant(impl, rng):
    z = rng.normal(size=(5, 4))
    shift = rng.normal(0.0, 50.0, size=(5, 1))  # a different constant for every row
    # mathematically identical; the shift changes only rounding
    assert_close(impl.softmax(z + shift), impl.softmax(z),
                 "softmax(z + c) vs softmax(z) (they must be equal)", rtol=1e-10, atol=1e-13)


@pytest.mark.points(2)
def test_softmax_is_stable_at_huge_logits(impl):
    z = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0], [1e5, 0.0, -1e5]])
    p = _quiet(impl.softmax, z, what="softmax at logits of size 1000 and 1e5")
    expected = np.vstack([sp_softmax([0.0, 1.0, 2.0]), sp_softmax([0.0, -1.0, -2.0]),
                          [1.0, 0.0, 0.0]])
    # after the shift these are ordinary logits: rounding only
    assert_close(p, expected, "softmax at huge logits", rtol=1e-12, atol=1e-15)


@pytest.mark.points(2)
def test_log_softmax_matches_scipy_and_is_stable(impl, rng):
    z = rng.normal(0.0, 3.0, size=(4, 6))
    # the same log-sum-exp computation: rounding only
    assert_close(impl.log_softmax(z), sp_log_softmax(z, axis=-1), "log_softmax(z)",
                 rtol=1e-12, atol=1e-12)
    far = np.array([[0.0, -1000.0], [1000.0, 0.0]])
    out = _quiet(impl.log_softmax, far, what="log_softmax with a class 1000 behind")
    # log p of the far-behind class is -1000 (p = e^-1000 underflows, its log must not)
    assert_close(out, np.array([[0.0, -1000.0], [0.0, -1000.0]]),
                 "log_softmax([[0, -1000], [1000, 0]])", rtol=1e-12, atol=1e-12)


# --- one-hot, loss and gradient ------------------------------------------------------------

@pytest.mark.points(1)
def test_one_hot(impl):
    Y = impl.one_hot(np.array([2, 0, 1, 2]), 4)
    expected = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], float)
    assert_close(Y, expected, "one_hot([2, 0, 1, 2], 4)", atol=0)


@pytest.mark.points(1)
def test_cross_entropy_matches_sklearn_log_loss(impl, rng):
    z = rng.normal(0.0, 2.0, size=(30, 5))
    y = rng.integers(0, 5, size=30)
    # log_loss takes probabilities; for moderate logits both agree to ~1e-15
    assert_close(impl.cross_entropy(z, y), log_loss(y, sp_softmax(z, axis=1), labels=range(5)),
                 "cross_entropy(logits, y) vs sklearn.metrics.log_loss", rtol=1e-10)


@pytest.mark.points(2)
def test_cross_entropy_gradient_passes_gradcheck(impl, rng):
    z = rng.normal(0.0, 2.0, size=(7, 4))
    y = rng.integers(0, 4, size=7)
    analytic = impl.cross_entropy_grad(z.copy(), y)
    check_shape(analytic, (7, 4), "cross_entropy_grad(logits, y)")
    gradcheck(lambda: impl.cross_entropy(z, y), z, analytic, "cross_entropy_grad(logits, y)")


# --- training ------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_overfits_a_tiny_batch(impl):
    X, y = load_digits(return_X_y=True)
    idx = [int(np.flatnonzero(y == k)[0]) for k in range(10)]  # one image of each digit
    Xb, yb = X[idx] / 16.0, y[idx]
    model = impl.SoftmaxRegression(lr=1.0).init_params(64, 10)
    losses = overfit_tiny_batch(lambda: model.step(Xb, yb), steps=150, target=0.05,
                                what="SoftmaxRegression.step on 10 digit images")
    # the first loss is at W = 0, b = 0: uniform over 10 classes
    assert_close(losses[0], np.log(10.0), "the loss before the first update (log 10)",
                 rtol=1e-10)


@pytest.mark.points(1)
def test_bias_learns_the_class_frequencies_when_features_say_nothing(impl):
    X = np.zeros((40, 2))  # uninformative features: only b can move the probabilities
    y = np.array([0] * 20 + [1] * 14 + [2] * 6)
    model = impl.SoftmaxRegression(lr=1.0, n_epochs=300).fit(X, y)
    # the unpenalised optimum is exactly the class frequencies; 300 steps get within 1e-4
    assert_close(model.predict_proba(X[:1])[0], np.array([0.5, 0.35, 0.15]),
                 "predict_proba with all-zero features (should be the class frequencies; "
                 "is the bias b updated?)", rtol=0, atol=1e-3)


@pytest.mark.points(3)
def test_digits_accuracy_at_least_95_and_within_2_points_of_sklearn(impl):
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    model = impl.SoftmaxRegression(lr=1.0, n_epochs=150, l2=1.0 / len(y_tr)).fit(X_tr, y_tr)
    proba = model.predict_proba(X_te)
    check_shape(proba, (len(y_te), 10), "predict_proba(X_test)")
    ours = float(np.mean(model.predict(X_te) == y_te))
    theirs = SkLogisticRegression(max_iter=2000).fit(X_tr, y_tr).score(X_te, y_te)
    assert ours >= 0.95, (
        f"test accuracy on digits is {ours:.3f}, below 0.95 (sklearn gets {theirs:.3f}). Check "
        "the gradient of W (X^T dZ) and of b (the column sums), and the update's sign.")
    assert ours >= theirs - 0.02, (
        f"test accuracy {ours:.3f} is more than 2 points below sklearn's {theirs:.3f}")

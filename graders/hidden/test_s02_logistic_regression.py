"""Hidden graders for s02 logistic regression: properties on arbitrary inputs, the weighted
and the L2-penalised fits against scikit-learn, thresholds and extreme gradients."""

import warnings

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from scipy.special import expit
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.preprocessing import StandardScaler

from graders.helpers import assert_close, check_shape

# no "explain" phase: it re-runs a failing test many times to annotate the example, which
# costs tens of seconds per test on a learner's unfinished code; shrinking is kept
QUICK = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=64)


@pytest.mark.points(2)
@settings(max_examples=40, deadline=None, phases=QUICK)
@given(z=arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite))
def test_sigmoid_property_any_shape_any_magnitude(impl, z):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = np.asarray(impl.sigmoid(z))
    check_shape(out, z.shape, "sigmoid(z)")
    # rtol: two stable formulas differ by rounding; atol covers subnormal results
    assert_close(out, expit(z), "sigmoid(z) on arbitrary inputs", rtol=1e-10, atol=1e-300)
    assert np.all((out >= 0) & (out <= 1)), "a probability left [0, 1]"
    assert_close(out + np.asarray(impl.sigmoid(-z)), np.ones(z.shape),
                 "sigmoid(z) + sigmoid(-z) (the symmetry 1 - sigma(z) = sigma(-z))",
                 rtol=0, atol=1e-12)


@pytest.mark.points(1)
@settings(max_examples=30, deadline=None, phases=QUICK)
@given(data=st.data(), n=st.integers(1, 30))
def test_bce_and_gradient_match_the_logaddexp_oracle(impl, data, n):
    z = data.draw(arrays(np.float64, n, elements=finite))
    y = data.draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    s = data.draw(arrays(np.float64, n, elements=st.floats(0.0, 5.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = impl.binary_cross_entropy(z, y, s)
        grad = np.asarray(impl.binary_cross_entropy_grad(z, y, s))
    # log(1 + e^z) - y z, with logaddexp as the stable reference
    assert_close(loss, np.mean(s * (np.logaddexp(0.0, z) - y * z)),
                 "binary_cross_entropy on arbitrary logits", rtol=1e-9, atol=1e-12)
    assert_close(grad, s * (expit(z) - y) / n, "binary_cross_entropy_grad on arbitrary logits",
                 rtol=1e-9, atol=1e-15)


@pytest.mark.points(2)
def test_weighted_fit_matches_sklearn_balanced(impl):
    X, y = load_breast_cancer(return_X_y=True)
    keep = np.r_[np.flatnonzero(y == 0)[:40], np.flatnonzero(y == 1)]  # ~10% malignant
    X = StandardScaler().fit_transform(X[keep][:, [1, 4, 7, 20]])
    y = y[keep]
    model = impl.LogisticRegression(lr=2.0, n_iters=5000, class_weight="balanced").fit(X, y)
    sk = SkLogisticRegression(C=np.inf, class_weight="balanced", tol=1e-12,
                              max_iter=10_000).fit(X, y)
    # GD to its gradient tolerance vs lbfgs to 1e-12: a few 1e-3 apart at most
    assert_close(np.r_[model.coef_, model.intercept_], np.r_[sk.coef_[0], sk.intercept_],
                 "(coef_, intercept_) with class_weight='balanced' vs sklearn",
                 rtol=1e-3, atol=1e-2)


@pytest.mark.points(2)
def test_l2_fit_matches_sklearn_C_on_all_features(impl):
    """sklearn minimises 0.5||w||^2 + C sum_i l_i: the same minimiser as
    mean_i l_i + (l2/2)||w||^2 with l2 = 1 / (C n); neither penalises the intercept."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    C = 0.5
    model = impl.LogisticRegression(lr=1.0, n_iters=4000, l2=1.0 / (C * len(y))).fit(X, y)
    sk = SkLogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    # the penalised problem is well conditioned: GD gets within ~1e-4 of lbfgs
    assert_close(model.coef_, sk.coef_[0], "coef_ with l2 = 1/(C n) vs sklearn C",
                 rtol=1e-3, atol=2e-3)
    assert_close(model.intercept_, sk.intercept_[0],
                 "intercept_ with l2 (the bias must not be penalised)", rtol=1e-3, atol=2e-3)


@pytest.mark.points(1)
def test_predict_uses_the_threshold_on_probabilities(impl, rng):
    X = rng.normal(size=(200, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=200) > 0).astype(int)
    model = impl.LogisticRegression(n_iters=300).fit(X, y)
    p = expit(X @ model.coef_ + model.intercept_)
    assert_close(model.predict_proba(X), p, "predict_proba(X) = sigmoid(X coef_ + intercept_)",
                 rtol=1e-12, atol=1e-15)
    for t in (0.2, 0.5, 0.9):
        pred = np.asarray(model.predict(X, threshold=t))
        assert np.array_equal(pred, (p >= t).astype(int)), (
            f"predict(X, threshold={t}) should be 1 exactly where P(y = 1) >= {t}")


@pytest.mark.points(1)
def test_decision_boundary_for_another_threshold(impl):
    w, b = np.array([-0.8, 2.5]), -1.1
    x0 = np.linspace(-2, 2, 5)
    for t in (0.1, 0.8):
        x1 = np.asarray(impl.decision_boundary(w, b, x0, threshold=t))
        # exact algebra: only rounding separates the result from t
        assert_close(expit(w[0] * x0 + w[1] * x1 + b), np.full(5, t),
                     f"P(y = 1) on decision_boundary(..., threshold={t}); the line is "
                     "w . x + b = log(t / (1 - t))", rtol=0, atol=1e-12)


@pytest.mark.points(1)
def test_dict_class_weights(impl):
    y = np.array([0, 1, 1, 0, 1])
    ours = impl.class_weights(y, {0: 0.5, 1: 4.0})
    assert_close(ours, np.array([0.5, 4.0, 4.0, 0.5, 4.0]), "class_weights(y, {0: .5, 1: 4})",
                 atol=0)

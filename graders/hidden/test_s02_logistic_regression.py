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
    assert_close(model.decision_function(X), X @ model.coef_ + model.intercept_,
                 "decision_function(X) = X coef_ + intercept_ (the logits)", rtol=1e-12,
                 atol=1e-12)
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


def _reference_fit(X, y, lr, n_iters, l2, s, tol):
    """The documented loop, written independently: (loss history, w, b)."""
    w, b, history = np.zeros(X.shape[1]), 0.0, []
    for _ in range(n_iters):
        z = X @ w + b
        history.append(np.mean(s * (np.logaddexp(0.0, z) - y * z)) + 0.5 * l2 * w @ w)
        g = s * (expit(z) - y) / len(y)
        gw, gb = X.T @ g + l2 * w, g.sum()
        if max(np.abs(gw).max(), abs(gb)) < tol:
            break
        w, b = w - lr * gw, b - lr * gb
    return np.array(history), w, b


@pytest.mark.points(2)
@pytest.mark.parametrize("case", ["l2_balanced_far_from_origin", "dict_weights_stop_at_tol"])
def test_fit_follows_the_documented_loop_exactly(impl, case):
    """Every recorded loss, the stopping step and the weights of the documented loop."""
    gen = np.random.default_rng(7)
    X = gen.normal(size=(40, 2))
    y = (X[:, 0] - X[:, 1] + 0.8 * gen.normal(size=40) > 0.7).astype(int)
    if case == "l2_balanced_far_from_origin":
        X = X + np.array([20.0, -35.0])  # far from the origin: the bias must be learned
        kw = dict(lr=1e-3, n_iters=60, l2=0.3, class_weight="balanced", tol=1e-7)
        s = len(y) / (2.0 * np.bincount(y, minlength=2))[y]
    else:
        kw = dict(lr=2.0, n_iters=5000, l2=0.05, class_weight={0: 0.5, 1: 2.0}, tol=1e-3)
        s = np.where(y == 1, 2.0, 0.5)
    model = impl.LogisticRegression(**kw).fit(X, y)
    hist, w, b = _reference_fit(X, y, kw["lr"], kw["n_iters"], kw["l2"], s, kw["tol"])
    got = np.asarray(model.loss_history_, dtype=float)
    check_shape(got, hist.shape, f"loss_history_ with {kw} (one loss per step; with tol the "
                "loop stops BEFORE the update whose every |gradient| < tol)")
    # the same float64 arithmetic up to summation order: rounding only
    assert_close(got, hist, f"loss_history_ with {kw}: the weighted mean cross-entropy PLUS "
                 "(l2 / 2) ||w||^2, recorded before each update", rtol=1e-9, atol=1e-12)
    assert_close(model.coef_, w, f"coef_ after the documented loop with {kw}", rtol=1e-8,
                 atol=1e-10)
    assert_close(model.intercept_, b, f"intercept_ after the documented loop with {kw}",
                 rtol=1e-8, atol=1e-10)


@pytest.mark.points(1)
def test_a_gradient_exactly_at_tol_is_not_converged(impl):
    """X = 0 and y = [1, 1, 1, 0]: at w = 0, b = 0 the bias gradient is exactly -0.25."""
    X, y = np.zeros((4, 1)), np.array([1, 1, 1, 0])
    model = impl.LogisticRegression(lr=1.0, n_iters=1, tol=0.25).fit(X, y)
    assert model.intercept_ == 0.25, (
        f"the first step's largest |gradient| equals tol = 0.25 exactly, which is not below "
        f"it, so one update b = 0 - 1.0 * (-0.25) = 0.25 should happen; intercept_ is "
        f"{model.intercept_}. Stop only when every |gradient| < tol.")


@pytest.mark.points(1)
def test_a_probability_exactly_at_the_threshold_predicts_1(impl):
    """Balanced labels and X = 0: the fit stays at w = 0, b = 0, so every P is exactly 0.5."""
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    model = impl.LogisticRegression().fit(X, y)
    pred = np.asarray(model.predict(X, threshold=0.5))
    assert np.array_equal(pred, np.ones(4, dtype=int)), (
        f"every P(y = 1) is exactly 0.5 here, and predict gives 1 where P >= threshold; got "
        f"{pred.tolist()}. Compare with >=, not >.")
    assert np.issubdtype(pred.dtype, np.integer), f"predict should give ints, got {pred.dtype}"


@pytest.mark.points(1)
def test_class_weights_edge_cases(impl):
    y = np.array([0, 0, 0, 1, 0])
    assert_close(impl.class_weights(y, {1: 3.0}), [1.0, 1.0, 1.0, 3.0, 1.0],
                 "class_weights(y, {1: 3.0}): a class missing from the dict gets weight 1.0",
                 atol=0)
    assert_close(impl.class_weights(y, "balanced"), [0.625, 0.625, 0.625, 2.5, 0.625],
                 "class_weights(y, 'balanced') with one sample of class 1 (n / (2 n_c): 5 / 8 "
                 "and 5 / 2)",
                 atol=1e-15)
    assert_close(impl.class_weights(np.zeros(4, dtype=np.int32), "balanced"), np.full(4, 0.5),
                 "class_weights of single-class int32 labels, 'balanced' (n / (2 n) = 0.5)",
                 atol=1e-15)


@pytest.mark.points(1)
def test_fit_accepts_float32_features_and_int32_labels(impl):
    gen = np.random.default_rng(3)
    X = gen.normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(int)
    ref = impl.LogisticRegression(n_iters=50).fit(X.astype(np.float32).astype(np.float64), y)
    got = impl.LogisticRegression(n_iters=50).fit(X.astype(np.float32), y.astype(np.int32))
    # the same float64 loop once the inputs are converted: only rounding could differ
    assert_close(got.coef_, ref.coef_, "coef_ when X is float32 and y is int32 (convert "
                 "them to float64 first)", rtol=1e-10, atol=1e-12)

"""Public graders for s02 logistic regression: a stable sigmoid and loss, a checked gradient,
gradient descent that lands where scikit-learn does, class weights that move recall."""

import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from graders.helpers import assert_close, assert_finite, check_shape, gradcheck

# Four breast-cancer features (mean texture, mean smoothness, mean concave points, worst
# radius) that are NOT linearly separable, so the unpenalised maximum-likelihood fit exists and
# is unique. With all 30 features the data are separable and the coefficients grow forever.
SUBSET = [1, 4, 7, 20]


def _breast_cancer_subset():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X[:, SUBSET]), y


# --- sigmoid -------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_sigmoid_matches_the_definition(impl, rng):
    z = rng.normal(0.0, 4.0, size=(5, 7))
    out = impl.sigmoid(z)
    check_shape(out, z.shape, "sigmoid(z) for z of shape (5, 7)")
    # the same function in float64: only rounding differences remain
    assert_close(out, 1.0 / (1.0 + np.exp(-z)), "sigmoid(z)", rtol=1e-12, atol=1e-15)


@pytest.mark.points(2)
def test_sigmoid_is_stable_at_plus_minus_1000(impl):
    z = np.array([-1000.0, -745.0, -710.0, -30.0, 0.0, 30.0, 710.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = impl.sigmoid(z)
        except (RuntimeWarning, FloatingPointError) as exc:
            raise AssertionError(
                f"sigmoid(z) raised a floating-point warning for z in {z.tolist()}: {exc}. "
                "exp(-z) overflows for z < -709; exponentiate only -|z| and choose "
                "1 / (1 + e) or e / (1 + e) by the sign of z.") from None
    assert_finite(out, "sigmoid at z = +-1000")
    # expit is scipy's stable sigmoid; 1e-300 absolute covers subnormal results near -745
    assert_close(out, expit(z), "sigmoid at large |z|", rtol=1e-12, atol=1e-300)
    assert out[-1] == 1.0, f"sigmoid(1000) should be exactly 1.0 in float64, got {out[-1]!r}"


# --- binary cross-entropy ------------------------------------------------------------------

@pytest.mark.points(1)
def test_bce_matches_sklearn_log_loss(impl, rng):
    z = rng.normal(0.0, 2.0, size=40)
    y = rng.integers(0, 2, size=40)
    ours = impl.binary_cross_entropy(z, y)
    # log_loss works on probabilities; for moderate logits both are accurate to ~1e-15
    assert_close(ours, log_loss(y, expit(z), labels=[0, 1]),
                 "binary_cross_entropy(z, y) vs sklearn.metrics.log_loss", rtol=1e-10)


@pytest.mark.points(1)
def test_bce_sample_weights_weight_the_mean_over_n(impl, rng):
    z = rng.normal(0.0, 2.0, size=30)
    y = rng.integers(0, 2, size=30)
    s = rng.uniform(0.1, 3.0, size=30)
    expected = np.mean(s * (np.logaddexp(0.0, z) - y * z))
    assert_close(impl.binary_cross_entropy(z, y, s), expected,
                 "binary_cross_entropy(z, y, sample_weight) = (1/n) sum_i s_i l_i",
                 rtol=1e-10)


@pytest.mark.points(2)
def test_bce_is_stable_for_confident_logits(impl):
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0])
    y = np.array([0, 1, 1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            loss = impl.binary_cross_entropy(z, y)
        except (RuntimeWarning, FloatingPointError) as exc:
            raise AssertionError(
                f"binary_cross_entropy raised a warning at logits +-1000: {exc}. Compute it "
                "from the logits as max(z, 0) - y z + log1p(exp(-|z|)), never log(sigmoid(z))."
            ) from None
    # per-sample losses are 1000, 1000, 0, 0, log 2: confidently wrong costs |z|, not inf
    assert_close(loss, (2000.0 + np.log(2.0)) / 5, "binary_cross_entropy at logits +-1000",
                 rtol=1e-12)


@pytest.mark.points(2)
def test_bce_gradient_passes_gradcheck(impl, rng):
    z = rng.normal(0.0, 3.0, size=15)
    y = rng.integers(0, 2, size=15)
    s = rng.uniform(0.2, 2.0, size=15)
    analytic = impl.binary_cross_entropy_grad(z.copy(), y, s)
    gradcheck(lambda: impl.binary_cross_entropy(z, y, s), z, analytic,
              "binary_cross_entropy_grad(z, y, sample_weight)")


# --- class weights -------------------------------------------------------------------------

@pytest.mark.points(1)
def test_balanced_class_weights_match_sklearn(impl):
    y = np.array([0] * 17 + [1] * 3)
    ours = impl.class_weights(y, "balanced")
    check_shape(ours, (20,), "class_weights(y, 'balanced')")
    assert_close(ours, compute_sample_weight("balanced", y),
                 "class_weights(y, 'balanced') vs sklearn: n / (2 n_c) per sample", rtol=1e-12)
    assert_close(impl.class_weights(y, None), np.ones(20), "class_weights(y, None)", atol=0)


# --- training ------------------------------------------------------------------------------

@pytest.mark.points(3)
def test_fit_matches_sklearn_unpenalised_on_breast_cancer(impl):
    X, y = _breast_cancer_subset()
    model = impl.LogisticRegression(lr=2.0, n_iters=5000).fit(X, y)
    sk = SkLogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    check_shape(model.coef_, (4,), "coef_ after fit on 4 features")
    # GD stops at its gradient tolerance, lbfgs at 1e-12: ~1e-3 apart on coefficients of
    # size ~6; a wrong gradient, a missing bias or a penalty is off by more than 0.1
    assert_close(model.coef_, sk.coef_[0], "coef_ vs sklearn LogisticRegression(C=inf)",
                 rtol=1e-3, atol=5e-3)
    assert_close(model.intercept_, sk.intercept_[0],
                 "intercept_ vs sklearn (is your bias trained?)", rtol=1e-3, atol=5e-3)


@pytest.mark.points(2)
def test_accuracy_within_2_points_of_sklearn_on_a_split(impl):
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    pred = impl.LogisticRegression().fit(X_tr, y_tr).predict(X_te)
    check_shape(pred, y_te.shape, "predict(X_test)")
    ours = float(np.mean(pred == y_te))
    theirs = SkLogisticRegression().fit(X_tr, y_tr).score(X_te, y_te)
    assert ours >= theirs - 0.02, (
        f"test accuracy {ours:.3f} is more than 2 points below sklearn's {theirs:.3f} on the "
        "same split of breast_cancer: check the gradient, the update and predict's threshold.")


@pytest.mark.points(1)
def test_loss_history_falls(impl):
    X, y = _breast_cancer_subset()
    model = impl.LogisticRegression(lr=0.5, n_iters=200).fit(X, y)
    h = np.asarray(model.loss_history_, dtype=float)
    assert len(h) == 200, f"200 steps should record 200 losses, got {len(h)}"
    assert_close(h[0], np.log(2.0), "the first recorded loss (w = 0, b = 0 gives log 2)",
                 rtol=1e-10)
    assert np.all(np.diff(h) <= 1e-12), (
        "the training loss went up at some step: with lr = 0.5 on standardized data gradient "
        "descent on a convex loss must go down every step. Check the sign of the update.")
    assert h[-1] < 0.2, f"after 200 steps the loss should be below 0.2, got {h[-1]:.4f}"


@pytest.mark.points(2)
def test_balanced_weights_raise_minority_recall(impl):
    gen = np.random.default_rng(0)
    X = np.vstack([gen.normal(0.0, 1.0, size=(570, 2)), gen.normal(1.2, 1.0, size=(30, 2))])
    y = np.r_[np.zeros(570, int), np.ones(30, int)]
    plain = impl.LogisticRegression().fit(X, y).predict(X)
    weighted = impl.LogisticRegression(class_weight="balanced").fit(X, y).predict(X)
    recall_plain = plain[y == 1].mean()
    recall_weighted = weighted[y == 1].mean()
    sk = SkLogisticRegression(C=np.inf, class_weight="balanced").fit(X, y).predict(X)
    # 30 minority samples: one sample is 0.033 of recall; allow a one-sample difference
    assert abs(recall_weighted - sk[y == 1].mean()) <= 0.034, (
        f"with class_weight='balanced' the minority recall is {recall_weighted:.3f}, sklearn "
        f"gets {sk[y == 1].mean():.3f}: weight a sample of class c by n / (2 n_c).")
    assert recall_weighted >= recall_plain + 0.4, (
        f"balanced weights should lift the rare class's recall well above the unweighted "
        f"model's ({recall_plain:.3f}); got {recall_weighted:.3f}. Are the weights passed to "
        "the loss and its gradient during fit?")


# --- decision boundary ---------------------------------------------------------------------

@pytest.mark.points(1)
def test_decision_boundary_lies_where_probability_is_one_half(impl, rng):
    w = np.array([1.5, -0.7])
    b = 0.4
    x0 = np.linspace(-3, 3, 9)
    x1 = impl.decision_boundary(w, b, x0)
    check_shape(x1, (9,), "decision_boundary(coef, intercept, x0) for 9 values of x0")
    # on the boundary w . x + b = 0 exactly, up to rounding
    assert_close(expit(w[0] * x0 + w[1] * np.asarray(x1) + b), np.full(9, 0.5),
                 "P(y = 1) at the boundary points", rtol=0, atol=1e-12)

"""Public graders for s01 linear regression: closed form, losses, gradients, GD, ridge."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error

from graders.helpers import assert_close, check_shape, expect_raises, gradcheck


def _regression_data(rng, n=80, d=4, noise=0.1):
    """Standardised-ish features, known weights and bias, a little noise."""
    X = rng.normal(size=(n, d))
    w_true = rng.normal(size=d)
    y = X @ w_true + 3.0 + noise * rng.normal(size=n)
    return X, y


def _lstsq_oracle(X, y):
    A = np.column_stack([X, np.ones(len(X))])
    theta = np.linalg.lstsq(A, y, rcond=None)[0]
    return theta[:-1], theta[-1]


# --- predict and the normal equation ---------------------------------------------------------

@pytest.mark.points(1)
def test_predict_is_x_at_w_plus_b(impl, rng):
    X, w = rng.normal(size=(7, 3)), rng.normal(size=3)
    out = impl.predict(X, w, 2.5)
    check_shape(out, (7,), "predict(X, w, b) with X of shape (7, 3)", "n,")
    # one matrix-vector product in float64: rounding only
    assert_close(out, X @ w + 2.5, "predict(X, w, b)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
@pytest.mark.parametrize("method", ["solve", "lstsq"])
def test_normal_equation_matches_numpy_lstsq(impl, rng, method):
    X, y = _regression_data(rng)
    w, b = impl.fit_normal_equation(X, y, method=method)
    w_ref, b_ref = _lstsq_oracle(X, y)
    check_shape(w, (4,), f"w from fit_normal_equation(method={method!r})", "d,")
    # a well-conditioned 5x5 system: both routes agree with the SVD solution to ~1e-12
    assert_close(w, w_ref, f"w from fit_normal_equation(method={method!r})", rtol=1e-8,
                 atol=1e-10)
    assert_close(b, b_ref, f"b from fit_normal_equation(method={method!r}) (did you append a "
                 "column of ones for the bias?)", rtol=1e-8, atol=1e-10)


@pytest.mark.points(2)
def test_normal_equation_matches_sklearn_on_diabetes(impl):
    X, y = load_diabetes(return_X_y=True)
    w, b = impl.fit_normal_equation(X, y)
    ref = LinearRegression().fit(X, y)
    # the same least-squares problem; coefficients are in the hundreds, so relative tolerance
    assert_close(w, ref.coef_, "w on the diabetes data vs sklearn LinearRegression", rtol=1e-6,
                 atol=1e-6)
    assert_close(b, ref.intercept_, "b on the diabetes data vs sklearn LinearRegression",
                 rtol=1e-8, atol=1e-6)


# --- losses and gradients -----------------------------------------------------------------

@pytest.mark.points(1)
def test_mse_and_mae_match_sklearn(impl, rng):
    y, y_pred = rng.normal(size=30), rng.normal(size=30)
    # float64 means of 30 terms: rounding only
    assert_close(impl.mse(y_pred, y), mean_squared_error(y, y_pred), "mse(y_pred, y)",
                 rtol=1e-12)
    assert_close(impl.mae(y_pred, y), mean_absolute_error(y, y_pred), "mae(y_pred, y)",
                 rtol=1e-12)


@pytest.mark.points(2)
@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_loss_gradients_pass_gradcheck(impl, rng, loss):
    """Central differences of the loss w.r.t. every weight and the bias."""
    loss_fn, grad_fn = getattr(impl, loss), getattr(impl, f"{loss}_grad")
    X, y = _regression_data(rng, n=25, d=3, noise=1.0)
    w = rng.normal(size=3)
    b = np.array([0.7])  # a one-element array, so gradcheck can perturb the bias
    dw, db = grad_fn(X, y, w, float(b[0]))
    check_shape(dw, (3,), f"dw from {loss}_grad", "d,")
    assert np.ndim(db) == 0, f"db from {loss}_grad must be a scalar, got shape {np.shape(db)}"

    def f():
        return loss_fn(impl.predict(X, w, float(b[0])), y)

    kinks = loss == "mae"  # |r| has a kink at r = 0: allow the looser threshold
    gradcheck(f, w, dw, f"{loss}_grad: dL/dw", kinks=kinks)
    gradcheck(f, b, np.array([db]), f"{loss}_grad: dL/db (the bias)", kinks=kinks)


# --- ridge ---------------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.parametrize("alpha", [0.1, 3.0, 100.0])
def test_ridge_matches_sklearn(impl, rng, alpha):
    X, y = _regression_data(rng, n=40, d=5, noise=1.0)
    w, b = impl.fit_ridge(X, y, alpha)
    ref = Ridge(alpha=alpha).fit(X, y)
    # the same linear system up to rounding (sklearn centres the data instead)
    assert_close(w, ref.coef_, f"w from fit_ridge(alpha={alpha}) vs sklearn Ridge", rtol=1e-8,
                 atol=1e-10)
    assert_close(b, ref.intercept_, f"b from fit_ridge(alpha={alpha}) vs sklearn Ridge "
                 "(the penalty is alpha * ||w||^2 on the SUM of squared errors)", rtol=1e-8,
                 atol=1e-10)


@pytest.mark.points(1)
def test_ridge_does_not_penalise_the_bias(impl, rng):
    X = rng.normal(size=(50, 3))
    y = 1000.0 + rng.normal(size=50)
    w, b = impl.fit_ridge(X, y, alpha=1e8)
    # a huge alpha crushes w to ~0; the unpenalised bias must then be the mean of y
    assert abs(b - y.mean()) < 1e-3, (
        f"fit_ridge with alpha=1e8 on targets around 1000 returned b = {b:.6g}; with w crushed "
        f"to 0 the best bias is mean(y) = {y.mean():.6g}. The bias must not be penalised: "
        "put a 0 in the penalty matrix where the ones column's weight sits.")
    assert np.abs(w).max() < 1e-3, f"alpha=1e8 should shrink w to ~0, got {w}"


# --- gradient descent ------------------------------------------------------------------------

@pytest.mark.points(2)
def test_batch_gd_converges_to_the_normal_equation(impl, rng):
    X, y = _regression_data(rng, n=100, d=3)
    res = impl.gradient_descent(X, y, lr=0.1, epochs=400)
    w_ref, b_ref = _lstsq_oracle(X, y)
    # GD contracts the error by ~(1 - 0.1 * lambda_min)^400 < 1e-12 on this data
    assert_close(res.w, w_ref, "w after 400 epochs of batch GD vs the closed form", rtol=1e-6,
                 atol=1e-6)
    assert_close(res.b, b_ref, "b after 400 epochs of batch GD vs the closed form", rtol=1e-6,
                 atol=1e-6)


@pytest.mark.points(1)
def test_loss_history_starts_at_the_initial_loss_and_decreases(impl, rng):
    X, y = _regression_data(rng, n=60, d=2)
    res = impl.gradient_descent(X, y, lr=0.05, epochs=30)
    check_shape(res.history, (31,), "history after 30 epochs (initial loss + one per epoch)")
    # at w = 0, b = 0 the prediction is 0, so the loss is mean(y^2)
    assert_close(res.history[0], np.mean(y ** 2), "history[0] (J at w = 0, b = 0)", rtol=1e-10)
    assert_close(res.history[-1], impl.mse(impl.predict(X, res.w, res.b), y),
                 "history[-1] (the loss of the returned w, b on all of X)", rtol=1e-10)
    assert np.all(np.diff(res.history) <= 1e-12), (
        "batch GD on MSE with a small learning rate must decrease the loss every epoch; got "
        f"{np.round(res.history[:6], 4)} ... Check the sign of the update (w -= lr * dw).")


@pytest.mark.points(2)
def test_too_large_learning_rate_raises_divergence_error(impl, rng):
    X, y = _regression_data(rng, n=60, d=3)
    err = expect_raises(
        impl.DivergenceError, lambda: impl.gradient_descent(X, y, lr=5.0, epochs=200),
        "gradient_descent(X, y, lr=5.0, epochs=200) on standardised features",
        "lr = 5 is far above 2 / lambda_max ~ 1, so the loss grows past 1000 x its start "
        "within a few epochs; check J after every epoch and raise DivergenceError(epoch, J, "
        "history)")
    assert 1 <= err.epoch < 200, (
        f"DivergenceError.epoch is {err.epoch}: it should name the first epoch whose loss "
        "blew up (here well before epoch 200), not the last one.")
    assert not np.isfinite(err.loss) or err.loss > 1e3 * err.history[0], (
        f"DivergenceError.loss is {err.loss:.4g}, which is not beyond 1000 x the initial loss "
        f"{err.history[0]:.4g}: raise only when the loss explodes or is not finite.")
    check_shape(err.history, (err.epoch + 1,),
                "DivergenceError.history (J at the start and after each epoch, the diverging "
                "epoch's J included)")
    assert err.history[-1] == err.loss or not np.isfinite(err.loss), (
        f"DivergenceError.history should end with the diverging epoch's J ({err.loss:.6g}), "
        f"but it ends with {err.history[-1]:.6g}: append J before raising.")


@pytest.mark.points(2)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_minibatch_and_sgd_visit_every_sample_each_epoch(impl, batch_size):
    """X = identity: sample j is the only one that moves w_j, so w_j != 0 iff j was visited."""
    n = 13
    X, y = np.eye(n), 10.0 + np.arange(n)
    res = impl.gradient_descent(X, y, lr=0.01, epochs=1, batch_size=batch_size, seed=3)
    missed = np.flatnonzero(res.w == 0).tolist()
    assert not missed, (
        f"after one epoch with batch_size={batch_size} on 13 samples, samples {missed} were "
        "never used in an update. An epoch must visit every sample exactly once, including "
        "the last, shorter batch (13 is not a multiple of the batch size).")

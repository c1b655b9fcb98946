"""Hidden graders for s01 linear regression: the same ideas on inputs the public tests hide."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from graders.helpers import assert_close, check_shape


def _reference_gd(X, y, lr, epochs, batch_size, seed, l2=0.0):
    """The documented loop, written independently: MSE, w = 0, b = 0, one permutation per epoch."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    w, b = np.zeros(d), 0.0
    history = [np.mean((X @ w + b - y) ** 2) + l2 * w @ w]
    for _ in range(epochs):
        order = rng.permutation(n) if batch_size else np.arange(n)
        step = batch_size or n
        for i in range(0, n, step):
            idx = order[i:i + step]
            r = X[idx] @ w + b - y[idx]
            w, b = w - lr * (2 * X[idx].T @ r / len(idx) + 2 * l2 * w), b - lr * 2 * r.mean()
        history.append(np.mean((X @ w + b - y) ** 2) + l2 * w @ w)
    return w, b, np.array(history)


@pytest.mark.points(2)
def test_lstsq_handles_collinear_features(impl, rng):
    """A duplicated column makes A^T A singular: lstsq must still give the least-squares fit."""
    x = rng.normal(size=(40, 2))
    X = np.column_stack([x, x[:, 0]])  # column 2 == column 0
    y = x @ np.array([1.5, -2.0]) + 0.5 + 0.05 * rng.normal(size=40)
    w, b = impl.fit_normal_equation(X, y, method="lstsq")
    A = np.column_stack([X, np.ones(40)])
    fitted = A @ np.linalg.lstsq(A, y, rcond=None)[0]
    # fitted values of a least-squares problem are unique even when the weights are not
    assert_close(X @ w + b, fitted, "fitted values of fit_normal_equation(method='lstsq') when "
                 "two columns are identical (use np.linalg.lstsq on [X, 1], not solve)",
                 rtol=1e-8, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(8, 40), d=st.integers(1, 5), seed=st.integers(0, 2**16))
@pytest.mark.points(2)
def test_least_squares_residual_is_orthogonal_to_the_features(impl, n, d, seed):
    """At the optimum X^T r = 0, and, because of the bias, the residuals sum to 0."""
    gen = np.random.default_rng(seed)
    X = gen.normal(size=(n, d)) * gen.uniform(0.5, 3.0, size=d) + gen.normal(size=d)
    y = gen.normal(size=n) * 5 + 2
    w, b = impl.fit_normal_equation(X, y)
    r = X @ w + b - y
    scale = np.abs(X).sum() * np.abs(y).max()  # the size of X^T y: rounding is relative to it
    assert abs(r.sum()) <= 1e-9 * scale, (
        f"the residuals of the least-squares fit sum to {r.sum():.3g}, not 0: with a fitted "
        "bias they must sum to zero. Is the ones column in A?")
    assert np.abs(X.T @ r).max() <= 1e-9 * scale, (
        f"X^T r = {X.T @ r} at your solution: at the least-squares optimum the residual is "
        "orthogonal to every feature column.")


@pytest.mark.points(2)
@pytest.mark.parametrize("batch_size", [None, 1, 5])
def test_gd_updates_follow_the_documented_order(impl, rng, batch_size):
    """Batch GD, SGD and mini-batches of 5 on 23 rows, compared with the documented loop."""
    X = rng.normal(size=(23, 3))
    y = X @ np.array([0.5, -1.0, 2.0]) - 1.0 + 0.3 * rng.normal(size=23)
    res = impl.gradient_descent(X, y, lr=0.02, epochs=6, batch_size=batch_size, seed=11)
    w, b, hist = _reference_gd(X, y, 0.02, 6, batch_size, 11)
    check_shape(res.history, (7,), "history after 6 epochs")
    how = ("one update per epoch on all rows" if batch_size is None else
           "per epoch: order = rng.permutation(n) with rng = np.random.default_rng(seed) created "
           "once before the loop, then consecutive slices of batch_size rows (the last shorter), "
           "each using the gradient of that batch's MEAN loss")
    # the same arithmetic in a different order: rounding only
    assert_close(res.w, w, f"w after 6 epochs with batch_size={batch_size} ({how})", rtol=1e-9,
                 atol=1e-10)
    assert_close(res.b, b, f"b after 6 epochs with batch_size={batch_size}", rtol=1e-9,
                 atol=1e-10)
    assert_close(res.history, hist, f"the loss history with batch_size={batch_size}",
                 rtol=1e-9, atol=1e-10)


@pytest.mark.points(2)
def test_gd_with_l2_converges_to_ridge(impl, rng):
    """J = MSE + l2 ||w||^2 has the minimiser of sklearn's Ridge with alpha = n * l2."""
    X = rng.normal(size=(50, 3))
    y = X @ np.array([3.0, -2.0, 1.0]) + 4.0 + rng.normal(size=50)
    res = impl.gradient_descent(X, y, lr=0.1, epochs=500, l2=0.2)
    ref = Ridge(alpha=50 * 0.2).fit(X, y)
    # a strongly convex quadratic after 500 contracting steps: converged far below 1e-6
    assert_close(res.w, ref.coef_, "w of GD with l2=0.2 vs Ridge(alpha=n*l2) (penalty "
                 "gradient 2 * l2 * w)", rtol=1e-6, atol=1e-6)
    assert_close(res.b, ref.intercept_, "b of GD with l2=0.2 (the bias is not penalised)",
                 rtol=1e-6, atol=1e-6)


@pytest.mark.points(2)
def test_divergence_is_reported_at_the_first_exploding_epoch(impl, rng):
    X = rng.normal(size=(40, 2))
    y = X @ np.array([1.0, 1.0]) + rng.normal(size=40)
    with np.errstate(over="ignore", invalid="ignore"):
        _, _, hist = _reference_gd(X, y, 1.6, 30, None, 0)
    first = int(np.argmax(~np.isfinite(hist) | (hist > 1e3 * hist[0])))
    with pytest.raises(impl.DivergenceError) as info:
        impl.gradient_descent(X, y, lr=1.6, epochs=30)
    err = info.value
    assert err.epoch == first, (
        f"the loss first exceeded 1000 x its initial value after epoch {first}, but "
        f"DivergenceError says epoch {err.epoch}: check after every epoch and stop at once.")
    assert_close(err.loss, hist[first], "DivergenceError.loss", rtol=1e-8)


@pytest.mark.points(1)
def test_sgd_overflow_is_an_error_not_nan(impl, rng):
    X = rng.normal(size=(30, 2)) * 100
    y = rng.normal(size=30)
    with pytest.raises(impl.DivergenceError) as info:
        impl.gradient_descent(X, y, lr=1e3, epochs=5, batch_size=1)
    assert info.value.epoch == 1, (
        f"with lr=1000 on features of size 100, SGD overflows in the first epoch, but "
        f"DivergenceError names epoch {info.value.epoch}")


@pytest.mark.points(1)
def test_mae_gradient_does_not_grow_with_an_outlier(impl, rng):
    X = rng.normal(size=(20, 2))
    y = rng.normal(size=20)
    w = np.zeros(2)
    y_out = y.copy()
    y_out[0] += 1e6  # the same sign of residual, a million times larger
    for name in ("mae_grad", "mse_grad"):
        g1, g2 = getattr(impl, name)(X, y, w, 0.0), getattr(impl, name)(X, y_out, w, 0.0)
        moved = np.abs(np.append(g2[0], g2[1]) - np.append(g1[0], g1[1])).max()
        if name == "mae_grad":
            limit = 2 * np.abs(X[0]).max() / 20 + 1e-12  # sign(r_0) may flip: at most 2|x_0|/n
            assert moved <= limit, (
                f"mae_grad moved by {moved:.3g} when one target got 1e6 larger: the MAE "
                "gradient uses only the SIGN of each residual, so one outlier cannot pull "
                "harder than any other point.")
        else:
            assert moved > 1e3, "mse_grad should grow with the size of a residual (2 r / n)"


@pytest.mark.points(1)
def test_mae_gd_ignores_outliers_that_ruin_mse(impl, rng):
    x = rng.uniform(-1, 1, size=(60, 1))
    y = 2.0 * x[:, 0] + 1.0 + 0.05 * rng.normal(size=60)
    y[:6] += 50.0  # 10% gross outliers, all upwards
    mae_fit = impl.gradient_descent(x, y, lr=0.05, epochs=1500, loss="mae")
    mse_fit = impl.gradient_descent(x, y, lr=0.1, epochs=300, loss="mse")
    assert abs(mae_fit.b - 1.0) < 0.3 and abs(mae_fit.w[0] - 2.0) < 0.5, (
        f"GD on the MAE found slope {mae_fit.w[0]:.3f} and bias {mae_fit.b:.3f} (true 2 and 1) "
        "with 10% outliers: MAE fits the median and should barely notice them.")
    assert abs(mse_fit.b - 1.0) > 3.0, "GD on the MSE should be dragged by the outliers"


@pytest.mark.points(1)
def test_zero_epochs_returns_the_starting_point(impl, rng):
    X, y = rng.normal(size=(10, 3)), rng.normal(size=10)
    res = impl.gradient_descent(X, y, lr=0.1, epochs=0, batch_size=2)
    assert np.array_equal(res.w, np.zeros(3)) and res.b == 0.0, "epochs=0: w = 0 and b = 0"
    assert_close(res.history, [np.mean(y ** 2)], "history with epochs=0", rtol=1e-12)


@pytest.mark.points(1)
@pytest.mark.parametrize("alpha", [0.01, 1.0])
def test_ridge_matches_sklearn_on_diabetes(impl, alpha):
    X, y = load_diabetes(return_X_y=True)
    w, b = impl.fit_ridge(X, y, alpha)
    ref = Ridge(alpha=alpha).fit(X, y)
    # the same 11x11 linear system; coefficients are in the hundreds: relative tolerance
    assert_close(w, ref.coef_, f"w of fit_ridge(alpha={alpha}) on the diabetes data",
                 rtol=1e-7, atol=1e-7)
    assert_close(b, ref.intercept_, f"b of fit_ridge(alpha={alpha}) on the diabetes data",
                 rtol=1e-9, atol=1e-7)

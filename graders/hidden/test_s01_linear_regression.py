"""Hidden graders for s01 linear regression: the same ideas on inputs the public tests hide."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from graders.helpers import assert_close, check_shape, expect_raises


def _reference_gd(X, y, lr, epochs, batch_size, seed, l2=0.0, loss="mse"):
    """The documented loop, written independently: w = 0, b = 0, one permutation per epoch."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    w, b = np.zeros(d), 0.0

    def J():
        r = X @ w + b - y
        return (np.mean(r ** 2) if loss == "mse" else np.mean(np.abs(r))) + l2 * w @ w

    history = [J()]
    for _ in range(epochs):
        order = rng.permutation(n) if batch_size else np.arange(n)
        step = batch_size or n
        for i in range(0, n, step):
            idx = order[i:i + step]
            r = X[idx] @ w + b - y[idx]
            g = 2 * r if loss == "mse" else np.sign(r)  # d(loss_i)/d(prediction_i)
            w, b = w - lr * (X[idx].T @ g / len(idx) + 2 * l2 * w), b - lr * g.mean()
        history.append(J())
    return w, b, np.array(history)


def _diverge(impl, X, y, lr, epochs, why, **kw):
    call = f"gradient_descent(X, y, lr={lr}, epochs={epochs}" + "".join(
        f", {k}={v}" for k, v in kw.items()) + ")"
    return expect_raises(impl.DivergenceError,
                         lambda: impl.gradient_descent(X, y, lr=lr, epochs=epochs, **kw),
                         call, why)


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
@pytest.mark.parametrize("batch_size, l2, loss", [(None, 0.0, "mse"), (1, 0.0, "mse"),
                                                  (5, 0.05, "mse"), (4, 0.02, "mae"),
                                                  (None, 0.1, "mae")])
def test_gd_updates_follow_the_documented_order(impl, rng, batch_size, l2, loss):
    """Batch GD, SGD and mini-batches on 23 rows (a short last batch), with and without the
    penalty, for both losses, compared with the documented loop driven by the same seed."""
    X = rng.normal(size=(23, 3))
    y = X @ np.array([0.5, -1.0, 2.0]) - 1.0 + 0.3 * rng.normal(size=23)
    kw = dict(batch_size=batch_size, l2=l2, loss=loss)
    res = impl.gradient_descent(X, y, lr=0.02, epochs=6, seed=11, **kw)
    w, b, hist = _reference_gd(X, y, 0.02, 6, batch_size, 11, l2, loss)
    check_shape(res.history, (7,), "history after 6 epochs")
    how = ("one update per epoch on all rows" if batch_size is None else
           "per epoch: order = rng.permutation(n) with rng = np.random.default_rng(seed) created "
           "once before the loop, then consecutive slices of batch_size rows (the last shorter), "
           "each using the gradient of that batch's MEAN loss")
    how += f"; the penalty's gradient 2 * l2 * w (l2={l2}) is added to every update"
    what = f"with batch_size={batch_size}, l2={l2}, loss={loss!r}"
    # the same arithmetic in a different order: rounding only
    assert_close(res.w, w, f"w after 6 epochs {what} ({how})", rtol=1e-9, atol=1e-10)
    assert_close(res.b, b, f"b after 6 epochs {what}", rtol=1e-9, atol=1e-10)
    assert_close(res.history, hist, f"the history of J = loss + l2 ||w||^2 {what} (J includes "
                 "the penalty term)", rtol=1e-9, atol=1e-10)


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
    err = _diverge(impl, X, y, 1.6, 30, "lr = 1.6 is above 2 / lambda_max here: J grows "
                   "past 1000 x its start")
    assert err.epoch == first, (
        f"the loss first exceeded 1000 x its initial value after epoch {first}, but "
        f"DivergenceError says epoch {err.epoch}: check after every epoch and stop at once.")
    assert_close(err.loss, hist[first], "DivergenceError.loss", rtol=1e-8)
    assert_close(err.history, hist[:first + 1], "DivergenceError.history (J from the start "
                 "to the diverging epoch, that epoch included)", rtol=1e-8)


@pytest.mark.points(1)
def test_divergence_is_measured_against_the_initial_loss(impl):
    """J falls 800-fold in epoch 1 and then grows 1.21-fold an epoch: the threshold is
    1000 x history[0], not 1000 x a later or smaller J."""
    col_a = np.sqrt(1.05) * np.array([1.0, -1.0, 1.0, -1.0])  # lr * lambda = 2.1: grows
    col_b = np.sqrt(0.5) * np.array([1.0, 1.0, -1.0, -1.0])  # lr * lambda = 1: gone at once
    X = np.column_stack([col_a, col_b])
    y = X @ np.array([np.sqrt(1e-3 / 1.05), np.sqrt(2.0)])
    _, _, hist = _reference_gd(X, y, 1.0, 100, None, 0)
    first = int(np.argmax(hist > 1e3 * hist[0]))
    err = _diverge(impl, X, y, 1.0, 100, "one direction's error grows 1.1-fold an epoch, so J "
                   f"passes 1000 x its start after epoch {first}")
    assert err.epoch == first, (
        f"J first exceeded 1000 x history[0] after epoch {first}, but DivergenceError says "
        f"epoch {err.epoch}: compare every epoch's J with DIVERGENCE_FACTOR * history[0], "
        "the loss before any update.")


@pytest.mark.points(1)
def test_a_loss_exactly_at_the_threshold_is_not_divergence(impl):
    """One row, a zero feature: after epoch 1, J is exactly 1000 x history[0] (0.1 -> 100.0)."""
    X, y = np.zeros((1, 1)), np.array([0.31622776601683794])
    try:
        res = impl.gradient_descent(X, y, lr=16.311388300841895, epochs=1)
    except impl.DivergenceError as err:
        raise AssertionError(
            f"gradient_descent raised DivergenceError at epoch {err.epoch} with J = "
            f"{err.loss!r}, but J after epoch 1 is exactly 1000 x history[0] (0.1 -> 100.0), "
            "which does not EXCEED the threshold: raise only when J > DIVERGENCE_FACTOR * "
            "history[0] (>, not >=).") from None
    assert res.history[1] == 1e3 * res.history[0], (
        f"expected J to go from 0.1 to exactly 100.0 in this run, got {res.history.tolist()}")
    err = _diverge(impl, X, y, 16.311388300841895, 2, "epoch 2's J is 1e5, past 1000 x 0.1")
    assert err.epoch == 2, (
        f"J after epoch 1 equals 1000 x history[0] exactly, which does not EXCEED it, so the "
        f"first diverging epoch is 2; DivergenceError says {err.epoch}: use >, not >=.")


@pytest.mark.points(1)
def test_mae_subgradient_is_zero_where_the_residual_is_zero(impl):
    X = np.array([[1.0, 2.0], [3.0, -1.0], [-2.0, 0.5], [0.5, 1.0]])
    w, b = np.array([1.0, -1.0]), 0.5
    y = X @ w + b
    y[[1, 3]] += np.array([2.0, -3.0])  # rows 0 and 2 have residual exactly 0
    dw, db = impl.mae_grad(X, y, w, b)
    s = np.array([0.0, -1.0, 0.0, 1.0])  # sign(0) = 0, the documented subgradient
    assert_close(np.append(dw, db), np.append(X.T @ s / 4, s.mean()),
                 "mae_grad (dw, db) when two residuals are exactly 0 (sign(0) = 0, np.sign)",
                 rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_sgd_overflow_is_an_error_not_nan(impl, rng):
    X = rng.normal(size=(30, 2)) * 100
    y = rng.normal(size=30)
    err = _diverge(impl, X, y, 1e3, 5, "lr = 1000 on features of size 100 overflows in the "
                   "first epoch; a NaN or inf J is divergence too", batch_size=1)
    assert err.epoch == 1, (
        f"with lr=1000 on features of size 100, SGD overflows in the first epoch, but "
        f"DivergenceError names epoch {err.epoch}")


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


@pytest.mark.points(1)
def test_method_names_are_compared_by_value(impl, rng):
    """A name built at run time is equal to, but not the same object as, the literal."""
    X = rng.normal(size=(20, 2))
    y = X @ np.array([1.0, -1.0]) + 0.5 + 0.1 * rng.normal(size=20)
    A = np.column_stack([X, np.ones(20)])
    theta = np.linalg.lstsq(A, y, rcond=None)[0]
    for name in ("solve", "lstsq"):
        built = "".join(list(name))
        w, b = impl.fit_normal_equation(X, y, method=built)
        # a well-conditioned 3x3 system: either method agrees with lstsq to rounding
        assert_close(np.append(w, b), theta, f"fit_normal_equation(X, y, method={name!r}) with "
                     "the name built at run time (compare strings with ==, not `is`)",
                     rtol=1e-9, atol=1e-12)

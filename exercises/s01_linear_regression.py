"""s01 · Linear regression: the closed form, two losses, gradient descent, ridge.

You build
    predict(X, w, b)                       y_hat = X @ w + b
    fit_normal_equation(X, y, method)      the exact least-squares fit (solve or lstsq)
    mse, mse_grad, mae, mae_grad           two losses and their gradients w.r.t. w and b
    fit_ridge(X, y, alpha)                 L2-penalised least squares, bias not penalised
    gradient_descent(X, y, ...)            batch / mini-batch / SGD with a loss history, which
                                           raises DivergenceError instead of returning NaN

This is the first model of the course and the last one with a closed-form answer: everything
after it is trained by the gradient descent loop you write here, so this step is where you
check, against the exact solution, that such a loop is right.

The math (X: (n, d), y: (n,), w: (d,), b: a float; r = X @ w + b - y is the residual, (n,))
    MSE  L = (1/n) sum_i r_i^2       dL/dw = (2/n) X^T r        dL/db = (2/n) sum_i r_i
    MAE  L = (1/n) sum_i |r_i|       dL/dw = (1/n) X^T sign(r)  dL/db = (1/n) sum_i sign(r_i)
    |r| has a kink at r = 0; we use the subgradient sign(0) = 0 (NumPy's np.sign).

    Normal equation: with A = [X, 1] (a ones column whose weight is b) and theta = [w; b],
    the MSE minimum solves A^T A theta = A^T y. np.linalg.solve on it is fast but squares the
    condition number of A and fails when columns are collinear; np.linalg.lstsq works on A
    itself (SVD) and returns the minimum-norm solution even when A^T A is singular.

    Ridge (scikit-learn's Ridge convention): minimise ||A theta - y||^2 + alpha ||w||^2, a SUM
    of squares, so theta solves (A^T A + alpha D) theta = A^T y with D = diag(1, ..., 1, 0).
    The 0 leaves the bias unpenalised: shifting every y by c must shift b by c and change
    nothing else, which fails if b is pulled towards 0.

    Gradient descent minimises J(w, b) = L(w, b) + l2 ||w||^2 (the MEAN loss plus a penalty)
    by theta <- theta - lr * grad J on one batch at a time. For MSE, J = (1/n) x the ridge
    objective with alpha = n * l2, so both have the same minimiser.

Why a learning rate diverges
    For MSE, J is a quadratic bowl with Hessian H = (2/n) A^T A. Along the eigenvector of H's
    largest eigenvalue lambda_max, batch GD multiplies the error by (1 - lr * lambda_max)
    each step: it shrinks only if lr < 2 / lambda_max. Above that the loss grows
    geometrically, overflows to inf and then NaN -- a run that "finishes" with NaN weights
    is a silent failure, so gradient_descent raises DivergenceError with the epoch and loss.
    Standardising the features makes lambda_max and lambda_min closer, so one learning rate
    suits every direction (compare the raw and standardised diabetes data in the lab).

You should be able to explain
    - convex vs non-convex: MSE of a linear model is a convex bowl with one minimum, which GD
      reaches from any start; the losses of later steps' neural networks are not convex;
    - the learning-rate failure modes: too big explodes (|1 - lr lambda| > 1), too small
      stalls (the flat directions, small lambda, barely move);
    - why MAE behaves differently: its gradient has the same size for every residual, so an
      outlier pulls no harder than any point (the median, not the mean), but GD with a fixed
      lr keeps bouncing around the kink instead of settling;
    - batch vs mini-batch vs SGD: one update per epoch with the exact gradient, or many cheap
      noisy ones; every epoch still visits every sample exactly once;
    - ridge as the under/overfitting dial: larger alpha shrinks w towards 0 (more bias, less
      variance).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DIVERGENCE_FACTOR = 1e3  # an epoch whose loss exceeds this many times the initial loss diverged


class DivergenceError(RuntimeError):
    """Gradient descent blew up: the loss became non-finite or grew past its start.

    ``epoch`` is the diverging epoch k, ``loss`` its J, and ``history`` every J so far,
    the diverging epoch's included: history[0] (the start) to history[k] == loss, k + 1 values.
    """

    def __init__(self, epoch: int, loss: float, history) -> None:
        self.epoch = epoch
        self.loss = float(loss)
        self.history = np.asarray(history, dtype=np.float64)
        super().__init__(
            f"gradient descent diverged at epoch {epoch}: loss {self.loss:.4g} (it started at "
            f"{self.history[0]:.4g}); lower the learning rate or standardise the features")


class GDResult(NamedTuple):
    w: np.ndarray  # (d,)
    b: float
    history: np.ndarray  # (epochs + 1,): J before the first update, then after each epoch


def predict(X: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """y_hat = X @ w + b, shape (n,)."""
    raise NotImplementedError("s01 linear regression: return X @ w + b")


def fit_normal_equation(X: np.ndarray, y: np.ndarray,
                        method: str = "solve") -> tuple[np.ndarray, float]:
    """Exact least squares (w, b) via A = [X, 1]: solve A^T A theta = A^T y, or lstsq(A, y).

    With collinear columns only "lstsq" is required to answer: the minimum-norm theta.
    """
    if method not in ("solve", "lstsq"):
        raise ValueError(f"method must be 'solve' or 'lstsq', got {method!r}")
    raise NotImplementedError("s01 linear regression: append a ones column, then np.linalg.solve or np.linalg.lstsq")


def mse(y_pred: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error (1/n) sum (y_pred - y)^2."""
    raise NotImplementedError("s01 linear regression: mean of squared residuals")


def mse_grad(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> tuple[np.ndarray, float]:
    """(dL/dw, dL/db) of the MSE: ((2/n) X^T r, (2/n) sum r) with r = X @ w + b - y."""
    raise NotImplementedError("s01 linear regression: residual r, then (2/n) X^T r and (2/n) sum(r)")


def mae(y_pred: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute error (1/n) sum |y_pred - y|."""
    raise NotImplementedError("s01 linear regression: mean of absolute residuals")


def mae_grad(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> tuple[np.ndarray, float]:
    """(dL/dw, dL/db) of the MAE: ((1/n) X^T sign(r), mean sign(r)), with sign(0) = 0."""
    raise NotImplementedError("s01 linear regression: s = sign of the residual, then (1/n) X^T s and mean(s)")


def fit_ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Minimise ||X w + b - y||^2 + alpha ||w||^2 (bias unpenalised), as sklearn's Ridge."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    raise NotImplementedError("s01 linear regression: solve (A^T A + alpha D) theta = A^T y, D = identity with a 0 for the bias")


def gradient_descent(X: np.ndarray, y: np.ndarray, *, lr: float, epochs: int,
                     batch_size: int | None = None, loss: str = "mse", l2: float = 0.0,
                     seed: int = 0) -> GDResult:
    """Minimise J = loss(predict(X, w, b), y) + l2 ||w||^2 from w = 0, b = 0.

    batch_size None: batch GD, one update per epoch on all rows in order. Otherwise make
    rng = np.random.default_rng(seed) once; each epoch draws order = rng.permutation(n) and
    updates on consecutive slices of batch_size rows of it (the last may be smaller), with
    the gradient of the batch's mean loss plus 2 l2 w. history[0] is J at the start,
    history[k] is J on all of X after epoch k. Raise DivergenceError(k, J, history) after
    the first epoch k whose J is not finite or exceeds DIVERGENCE_FACTOR * history[0]
    (strictly: a J exactly equal to it is not divergence); history then ends with that J.
    """
    if loss not in ("mse", "mae"):
        raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
    if lr <= 0 or epochs < 0 or (batch_size is not None and batch_size < 1):
        raise ValueError(f"need lr > 0, epochs >= 0, batch_size >= 1; got {lr}, {epochs}, "
                         f"{batch_size}")
    loss_fn, grad_fn = {"mse": (mse, mse_grad), "mae": (mae, mae_grad)}[loss]
    n, d = X.shape
    raise NotImplementedError("s01 linear regression: loop over epochs and batches, update w and b, record J, check divergence")

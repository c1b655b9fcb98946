"""s03 · Softmax regression: logistic regression for K classes.

You build
    softmax(z, axis)                  probabilities from logits, stable for any magnitude
    log_softmax(z, axis)              their logarithms, without ever computing log(0)
    one_hot(y, n_classes)             labels (n,) -> indicator rows (n, K)
    cross_entropy(logits, y)          mean negative log-likelihood of the true classes
    cross_entropy_grad(logits, y)     its gradient with respect to the logits
    SoftmaxRegression                 (mini-)batch gradient descent on W (d, K) and b (K,)

How it differs from s02
    One logit per class instead of one per sample: Z = X W + b has shape (n, K), and softmax
    turns each row into a distribution, p_ik = exp(z_ik) / sum_j exp(z_ij). With K = 2 this is
    logistic regression on the logit difference z_1 - z_0: the sigmoid is a 2-class softmax.

The math
    Stability. softmax(z) = softmax(z - c) for any constant c per row (the factor e^-c cancels).
    Choose c = max_j z_j: every exponent is <= 0, so nothing overflows and the largest term is
    exactly 1, so the sum is >= 1 and nothing divides by 0. For the logarithm,
        log_softmax(z)_k = (z_k - c) - log sum_j exp(z_j - c)     (the log-sum-exp trick),
    which stays finite where log(softmax(z)) would give log(0) = -inf for a far-behind class.

    Loss. L = -(1/n) sum_i log p_{i, y_i} = -(1/n) sum_i sum_k Y_ik log_softmax(z_i)_k, Y the
    one-hot labels, plus (l2 / 2) ||W||^2 when penalised (b is not penalised).

    Why softmax and cross-entropy fit together: the log undoes the exp, so
        dL/dz_ik = (p_ik - Y_ik) / n,
    "prediction minus target", just like linear and logistic regression. The gradient never
    vanishes when the model is confidently wrong (p_{i,y_i} -> 0 gives dL/dz -> -1/n), which
    is exactly where squared error on probabilities goes flat.
        dL/dW = X^T dL/dZ + l2 W    (d, K),     dL/db = sum_i dL/dz_i    (K,).

Shapes
    X: (n, d), y: (n,) ints in [0, K), Z and P: (n, K), W: (d, K), b: (K,).

You should be able to explain
    - why subtracting the row max changes nothing mathematically and everything numerically;
    - why the gradient of softmax + cross-entropy is p - y, and why that makes them a pair;
    - what a row of W looks like as an image on digits (a template of the class);
    - why the unpenalised weights are only defined up to adding one vector to every class.
"""

from __future__ import annotations

import numpy as np


def _labels(y, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be {n} integer labels, got shape {y.shape}, dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {y.min()}..{y.max()}")
    return y


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """p = exp(z - max z) / sum exp(z - max z) along ``axis``; same shape as ``logits``."""
    z = np.asarray(logits, dtype=np.float64)
    raise NotImplementedError("s03 softmax regression: subtract the max along axis, exponentiate, divide by the sum along axis")


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """log p = (z - c) - log sum exp(z - c) along ``axis``, c = max z: finite for finite z."""
    z = np.asarray(logits, dtype=np.float64)
    raise NotImplementedError("s03 softmax regression: the log-sum-exp trick, never log(softmax(z))")


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Y (n, K) float: Y[i, y_i] = 1, every other entry 0."""
    y = _labels(y, len(np.asarray(y)), n_classes)
    raise NotImplementedError("s03 softmax regression: one 1 per row, in the column of its label")


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """L = -(1/n) sum_i log_softmax(z_i)[y_i] for logits (n, K) and integer labels (n,)."""
    z = np.asarray(logits, dtype=np.float64)
    y = _labels(y, z.shape[0], z.shape[1])
    raise NotImplementedError("s03 softmax regression: pick the true class's log-probability in each row, average over rows")


def cross_entropy_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dZ = (softmax(Z) - one_hot(y)) / n, shape (n, K)."""
    z = np.asarray(logits, dtype=np.float64)
    y = _labels(y, z.shape[0], z.shape[1])
    raise NotImplementedError("s03 softmax regression: prediction minus target, over n")


class SoftmaxRegression:
    """Multinomial logistic regression trained by (mini-)batch gradient descent from zeros.

    ``fit`` runs ``n_epochs`` epochs. ``batch_size=None`` means one full-batch step per epoch;
    otherwise each epoch visits the rows in the order ``rng.permutation(n)`` (``rng =
    np.random.default_rng(seed)``, created once per fit) in consecutive batches. ``step``
    records each loss in ``loss_history_``. Penalty: (l2 / 2) ||W||^2, the bias is free.
    """

    def __init__(self, lr: float = 0.5, n_epochs: int = 300, l2: float = 0.0,
                 batch_size: int | None = None, seed: int = 0) -> None:
        self.lr, self.n_epochs, self.l2 = lr, n_epochs, l2
        self.batch_size, self.seed = batch_size, seed
        self.W: np.ndarray | None = None
        self.b: np.ndarray | None = None
        self.loss_history_: list[float] = []

    def init_params(self, n_features: int, n_classes: int) -> SoftmaxRegression:
        """W = 0 (d, K), b = 0 (K,): every class starts equally likely."""
        self.W = np.zeros((n_features, n_classes))
        self.b = np.zeros(n_classes)
        self.loss_history_ = []
        return self

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        """One gradient step on the batch; returns (and records) the loss before the update."""
        X = np.asarray(X, dtype=np.float64)
        raise NotImplementedError("s03 softmax regression: logits, loss (+ penalty), gradients, update W and b, record the loss")

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int | None = None):
        """Train from zeros; K = n_classes or max(y) + 1. Returns self."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        self.init_params(X.shape[1], int(n_classes or y.max() + 1))
        rng = np.random.default_rng(self.seed)
        n = len(X)
        raise NotImplementedError("s03 softmax regression: for each epoch: full batch, or shuffled consecutive mini-batches")
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P (n, K): the softmax of X W + b."""
        if self.W is None:
            raise RuntimeError("call fit(X, y) first")
        raise NotImplementedError("s03 softmax regression: softmax of the logits")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class of each row, ints (n,)."""
        return np.argmax(self.predict_proba(X), axis=1)

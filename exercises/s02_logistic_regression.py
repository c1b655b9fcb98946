"""s02 · Logistic regression: from a line that predicts numbers to one that predicts odds.

You build
    sigmoid(z)                                the logistic function, finite for any z
    binary_cross_entropy(logits, y, w)        mean (weighted) log loss, computed from logits
    binary_cross_entropy_grad(logits, y, w)   its gradient with respect to the logits
    class_weights(y, class_weight)            per-sample weights that rebalance the classes
    LogisticRegression                        full-batch gradient descent on that loss
    decision_boundary(coef, intercept, x0)    the line where the predicted probability is p

How it differs from s01
    Linear regression predicts y = Xw + b directly. Here the same score z = Xw + b (a *logit*)
    is squashed by sigma(z) = 1 / (1 + exp(-z)) into P(y = 1 | x), and the squared error is
    replaced by the negative log-likelihood of Bernoulli labels, the binary cross-entropy.

The math
    Per sample, with p = sigma(z):  l(z, y) = -[y log p + (1 - y) log(1 - p)].
    Written in z, using log sigma(z) = -softplus(-z) and softplus(z) = log(1 + e^z):
        l(z, y) = softplus(z) - y z,     softplus(z) = max(z, 0) + log1p(exp(-|z|)).
    This form never takes log(0): at z = 1000 with y = 0 the loss is 1000, where
    -log(1 - sigma(1000)) = -log(0) = inf in floating point.
    The loss is L = (1/n) sum_i s_i l(z_i, y_i) (+ (l2 / 2) ||w||^2), s_i the sample weights
    (all 1 unless classes are weighted), and its gradient is remarkably simple:
        dL/dz_i = s_i (sigma(z_i) - y_i) / n,
        dL/dw = X^T dL/dz (+ l2 w),      dL/db = sum_i dL/dz_i   (the bias is not penalised).
    The loss is convex in (w, b), so gradient descent from zeros reaches the one minimum --
    when it exists: on linearly separable data ||w|| grows forever (try all 30 breast-cancer
    features), which is why libraries add an L2 penalty by default.

    A stable sigmoid: exp(-z) overflows for z < -709. Compute e = exp(-|z|) (always in (0, 1])
    and return 1 / (1 + e) where z >= 0 and e / (1 + e) where z < 0: the same function,
    and no exponent ever exceeds 0.

    Class weights: with 95% negatives, predicting "negative" always costs little loss, so the
    minority class gets low recall. "balanced" weights s_i = n / (2 n_c) for a sample of class
    c (scikit-learn's rule) make both classes contribute equally to the loss; the boundary
    moves towards the majority class and minority recall goes up (precision goes down).

    The decision boundary p = t is the line w . x + b = logit(t) = log(t / (1 - t)); in 2-D,
    x1 = (logit(t) - b - w0 x0) / w1. Changing the threshold t shifts it, parallel.

Shapes
    X: (n, d), y: (n,) in {0, 1}, logits z: (n,), coef_: (d,), intercept_: float.

You should be able to explain
    - why cross-entropy and not squared error for probabilities (convexity, gradients that do
      not vanish when the prediction is confidently wrong);
    - why the loss is computed from logits, and what the naive sigmoid does at z = -1000;
    - why a model with 95% accuracy can be useless on a 95 / 5 data set, and what class
      weights trade (recall of the rare class for its precision);
    - what the weights mean: a unit step in standardized feature j multiplies the odds by e^w_j.
"""

from __future__ import annotations

import numpy as np


def _as_weights(sample_weight, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    s = np.asarray(sample_weight, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {s.shape}")
    return s


def _check_binary(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    return y


def sigmoid(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + exp(-z)) elementwise, any shape, with no overflow for any finite z."""
    z = np.asarray(z, dtype=np.float64)
    raise NotImplementedError("s02 logistic regression: exponentiate only -|z|; choose 1/(1+e) or e/(1+e) by the sign of z")


def binary_cross_entropy(logits: np.ndarray, y: np.ndarray,
                         sample_weight: np.ndarray | None = None) -> float:
    """L = (1/n) sum_i s_i [softplus(z_i) - y_i z_i], softplus(z) = max(z,0) + log1p(e^-|z|)."""
    z = np.asarray(logits, dtype=np.float64)
    y = _check_binary(y)
    s = _as_weights(sample_weight, len(z))
    raise NotImplementedError("s02 logistic regression: the stable per-sample loss from logits, weighted, averaged over n")


def binary_cross_entropy_grad(logits: np.ndarray, y: np.ndarray,
                              sample_weight: np.ndarray | None = None) -> np.ndarray:
    """dL/dz_i = s_i (sigma(z_i) - y_i) / n, shape (n,), for L = binary_cross_entropy."""
    z = np.asarray(logits, dtype=np.float64)
    y = _check_binary(y)
    s = _as_weights(sample_weight, len(z))
    raise NotImplementedError("s02 logistic regression: weighted residual sigma(z) - y, divided by n")


def class_weights(y: np.ndarray, class_weight: str | dict | None) -> np.ndarray:
    """Per-sample weights (n,): None -> 1; "balanced" -> n / (2 n_c); dict -> {class: weight}.

    n_c is the number of samples of the sample's class c; "balanced" is scikit-learn's rule
    for two classes (with one class present, its samples get n / (2 n) = 0.5). A class
    missing from the dict gets weight 1.0, as in scikit-learn.
    """
    y = _check_binary(y).astype(int)
    if class_weight is None:
        return np.ones(len(y))
    if not isinstance(class_weight, dict) and class_weight != "balanced":
        raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {class_weight!r}")
    raise NotImplementedError("s02 logistic regression: one weight per class (dict, or n / (2 n_c)), then index it by y")


class LogisticRegression:
    """Binary logistic regression fitted by full-batch gradient descent from w = 0, b = 0.

    Each of at most ``n_iters`` steps: z = X w + b; append the current loss (cross-entropy
    with ``class_weights(y, class_weight)`` plus (l2/2)||w||^2) to ``loss_history_``; compute
    the gradients; stop before updating if every |gradient| < ``tol`` (strictly: a gradient
    equal to tol is not converged); else w -= lr * dL/dw, b -= lr * dL/db. ``fit`` returns
    self; after it, ``coef_`` (d,), ``intercept_`` float.
    """

    def __init__(self, lr: float = 1.0, n_iters: int = 3000, l2: float = 0.0,
                 class_weight: str | dict | None = None, tol: float = 1e-7) -> None:
        self.lr, self.n_iters, self.l2, self.tol = lr, n_iters, l2, tol
        self.class_weight = class_weight
        self.coef_: np.ndarray | None = None
        self.intercept_: float = 0.0
        self.loss_history_: list[float] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticRegression:
        X = np.asarray(X, dtype=np.float64)
        y = _check_binary(y)
        s = class_weights(y, self.class_weight)
        self.loss_history_ = []
        raise NotImplementedError("s02 logistic regression: gradient descent on w and b, recording the loss at every step")
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The logits z = X coef_ + intercept_, shape (n,)."""
        if self.coef_ is None:
            raise RuntimeError("call fit(X, y) first")
        raise NotImplementedError("s02 logistic regression: the linear score")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(y = 1 | x) = sigmoid(decision_function(X)), shape (n,)."""
        return sigmoid(self.decision_function(X))

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Labels (n,) of ints: 1 where P(y = 1 | x) >= threshold, else 0."""
        raise NotImplementedError("s02 logistic regression: threshold the probabilities")


def decision_boundary(coef: np.ndarray, intercept: float, x0: np.ndarray,
                      threshold: float = 0.5) -> np.ndarray:
    """For 2 features: x1 on the line where P = threshold, x1 = (logit(t) - b - w0 x0) / w1."""
    w0, w1 = np.asarray(coef, dtype=np.float64)
    if w1 == 0:
        raise ValueError("coef[1] is 0: the boundary is the vertical line x0 = const")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    raise NotImplementedError("s02 logistic regression: solve w0 x0 + w1 x1 + b = log(t / (1 - t)) for x1")

"""s08 · Support vector machines: the hinge loss, kernels, and SMO on the dual.

You build
    hinge_loss(w, b, X, y, lam)          the regularised primal objective of a linear SVM
    hinge_subgradient(w, b, X, y, lam)   one subgradient of it, (grad_w, grad_b)
    LinearSVM                            Pegasos: stochastic subgradient descent on the primal
    linear_kernel / polynomial_kernel / rbf_kernel   Gram matrices K[i, j] = k(X[i], Z[j])
    smo(K, y, C)                         the dual solved two multipliers at a time
    KernelSVM                            the dual with any kernel: support vectors, decision values

How it differs from logistic regression (s02)
    Both are linear classifiers f(x) = w.x + b with an L2 penalty; only the loss differs. The
    logistic loss log(1 + exp(-y f)) is never zero, so every sample pulls on w. The hinge loss
    max(0, 1 - y f) is exactly zero once a sample is on the right side with margin y f >= 1:
    the solution depends only on the samples on or inside the margin, the support vectors.

The math (labels y_i in {-1, +1})
    Primal:  J(w, b) = lam/2 ||w||^2 + (1/n) sum_i max(0, 1 - y_i (w.x_i + b)).
    The hinge has a kink at y f = 1, so J has a subgradient, not a gradient. With the active set
    A = {i : y_i f_i < 1} (we take 0 at the kink):
        dJ/dw = lam w - (1/n) sum_{i in A} y_i x_i,      dJ/db = -(1/n) sum_{i in A} y_i.
    The bias is not regularised: penalising b would make the answer depend on where the origin is.
    Pegasos (Shalev-Shwartz et al. 2007): at update t, step eta_t = 1 / (lam t) on a mini-batch,
    then project w onto the ball ||w|| <= 1 / sqrt(lam) that holds the optimum. The error
    shrinks like 1 / (lam T) after T updates: a tiny lam (weak regularisation) needs many epochs.
    The bias pays for being unregularised: nothing pulls it towards its optimum but the hinge,
    and its steps 1 / (lam t) shrink fast, so when the data sits far from the origin (b must
    travel far) Pegasos converges very slowly: 50 epochs on blobs shifted by +5 reach 0.85
    training accuracy where the centred blobs reach 0.935 (the lab measures it). Centre or
    standardise the features first; keep b out of the penalty all the same, as above.
    scikit-learn writes the same problem as C sum_i hinge_i + 1/2 ||w||^2, i.e. C = 1 / (lam n).

    Dual (with C): maximise sum_i a_i - 1/2 sum_ij a_i a_j y_i y_j K(x_i, x_j)
                   subject to 0 <= a_i <= C and sum_i a_i y_i = 0,
    and f(x) = sum_i a_i y_i K(x_i, x) + b. Only inner products of samples appear, so any
    kernel K(x, z) = phi(x).phi(z) turns the linear machine into a non-linear one without ever
    building phi: RBF K = exp(-gamma ||x - z||^2) (gamma as in scikit-learn; a large gamma
    means a narrow bump around each support vector), polynomial K = (gamma x.z + coef0)^degree.
    Samples with a_i = 0 are outside the margin; 0 < a_i < C sit exactly on it (y f = 1);
    a_i = C are inside it or misclassified.

    SMO (Platt 1998) changes two multipliers at a time, the smallest move that keeps
    sum a_i y_i = 0: with F_i = sum_j a_j y_j K_ij - y_i (the error without the bias), take
    i = argmin F over I_up = {y=+1, a<C} u {y=-1, a>0} and j = argmax F over
    I_low = {y=+1, a>0} u {y=-1, a<C} (the maximal violating pair, as libsvm); stop when
    F_j - F_i < tol. Then a_j <- clip(a_j - y_j (F_i - F_j) / eta, L, H) with
    eta = 2 K_ij - K_ii - K_jj < 0 and [L, H] the part of the box the constraint line crosses,
    and a_i <- a_i + y_i y_j (a_j_old - a_j). Finally b = -mean(F over 0 < a < C).
    This is a simplified SMO: no shrinking, no kernel cache, so keep it to small data.

Shapes
    X: (n, d), y: (n,), w: (d,), b: float, K: (n, m) for X (n, d) and Z (m, d).

You should be able to explain
    - why only support vectors matter, and why C (or 1/lam) trades margin width for errors;
    - why the hinge needs a subgradient, and what happens at the kink;
    - why a linear SVM cannot separate two circles and an RBF kernel can (the kernel trick);
    - what gamma does to the RBF boundary (small: nearly linear; large: memorises points).
"""

from __future__ import annotations

import numpy as np


def _to_signs(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, signs): the two sorted labels; y as -1 (classes[0]) or +1 (classes[1])."""
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(f"an SVM separates two classes, got {len(classes)}: {classes[:5]}")
    return classes, np.where(y == classes[1], 1.0, -1.0)


def hinge_loss(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray, lam: float) -> float:
    """J = lam/2 ||w||^2 + mean_i max(0, 1 - y_i (X_i.w + b)), labels y in {-1, +1}."""
    raise NotImplementedError("s08 svm: margins y * (X @ w + b), mean hinge plus lam/2 ||w||^2")


def hinge_subgradient(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray,
                      lam: float) -> tuple[np.ndarray, float]:
    """(lam w - (1/n) sum_{y_i f_i < 1} y_i x_i, -(1/n) sum_{y_i f_i < 1} y_i): 0 at the kink."""
    raise NotImplementedError("s08 svm: active samples have margin < 1; only they contribute")


class LinearSVM:
    """Pegasos: mini-batch subgradient steps eta_t = 1/(lam t), then project ||w|| <= 1/sqrt(lam).

    rng = default_rng(seed), one for the fit. Each epoch: order = rng.permutation(n), batches
    order[start:start + batch_size] (the last may be shorter); t = 1, 2, ... counts every update
    of the fit; w, b -= eta_t * hinge_subgradient on the batch, then w (not b) is projected.
    After ``fit``: ``coef_`` (d,), ``intercept_`` (float), ``classes_`` (2,), and
    ``objective_history_`` (J on the whole training set after each epoch).
    """

    def __init__(self, lam: float = 0.01, n_epochs: int = 50, batch_size: int = 32,
                 seed: int = 0) -> None:
        self.lam, self.n_epochs, self.batch_size, self.seed = lam, n_epochs, batch_size, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearSVM:
        X = np.asarray(X, dtype=np.float64)
        self.classes_, s = _to_signs(np.asarray(y))
        rng = np.random.default_rng(self.seed)
        w, b, t = np.zeros(X.shape[1]), 0.0, 0
        self.objective_history_ = []
        raise NotImplementedError("s08 svm: per epoch: shuffle, step each mini-batch with eta = 1/(lam t), project")
        self.coef_, self.intercept_ = w, float(b)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """f(x) = x.w + b; positive means classes_[1]."""
        raise NotImplementedError("s08 svm: the linear score")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def linear_kernel(X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """K[i, j] = X[i].Z[j], shape (n, m)."""
    raise NotImplementedError("s08 svm: one matrix product")


def polynomial_kernel(X: np.ndarray, Z: np.ndarray, degree: int = 3, gamma: float = 1.0,
                      coef0: float = 1.0) -> np.ndarray:
    """K[i, j] = (gamma X[i].Z[j] + coef0) ** degree, as sklearn.metrics.pairwise."""
    raise NotImplementedError("s08 svm: scale the inner products, shift, raise to the degree")


def rbf_kernel(X: np.ndarray, Z: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """K[i, j] = exp(-gamma ||X[i] - Z[j]||^2), without an (n, m, d) intermediate array."""
    raise NotImplementedError("s08 svm: ||x||^2 + ||z||^2 - 2 x.z, clipped at 0 against round-off, then exp")


def smo(K: np.ndarray, y: np.ndarray, C: float, tol: float = 1e-3,
        max_iter: int = 100_000) -> tuple[np.ndarray, float, int]:
    """Solve the SVM dual for Gram matrix K (n, n), labels y in {-1, +1}: (alpha, b, n_iter).

    Maximal violating pair each iteration, stop when F_low - F_up < tol; alpha within [0, C],
    set to the bound exactly when round-off leaves it within snap = 1e-12 C of 0 or C;
    eta capped at -1e-12 (two coinciding points). b = -mean(F over 0 < alpha < C), or
    -(F_up + F_low) / 2 of the last pair when no alpha is free.
    """
    n = len(y)
    alpha = np.zeros(n)
    F = -y.astype(np.float64)  # F_i = sum_j alpha_j y_j K_ij - y_i, all alpha = 0 at the start
    snap = 1e-12 * C  # round-off must not leave alpha = 1e-17 where a bound was meant
    raise NotImplementedError("s08 svm: pick the pair, move a_j along the constraint, clip, update a_i and F")


class KernelSVM:
    """Soft-margin SVM on the dual, solved by ``smo``.

    ``kernel``: "linear", "poly" or "rbf"; ``gamma=None`` means scikit-learn's "scale",
    1 / (d * X.var()). After ``fit``: ``alpha_`` (n,), ``support_`` (indices with alpha > 0),
    ``support_vectors_``, ``dual_coef_`` (alpha_i y_i of the support vectors), ``intercept_``,
    ``classes_``, ``n_iter_``.
    """

    def __init__(self, C: float = 1.0, kernel: str = "rbf", gamma: float | None = None,
                 degree: int = 3, coef0: float = 1.0, tol: float = 1e-3,
                 max_iter: int = 100_000) -> None:
        if kernel not in ("linear", "poly", "rbf"):
            raise ValueError(f"kernel must be 'linear', 'poly' or 'rbf', got {kernel!r}")
        self.C, self.kernel, self.gamma, self.degree, self.coef0 = C, kernel, gamma, degree, coef0
        self.tol, self.max_iter = tol, max_iter

    def _gram(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        if self.kernel == "linear":
            return linear_kernel(X, Z)
        if self.kernel == "poly":
            return polynomial_kernel(X, Z, self.degree, self.gamma_, self.coef0)
        return rbf_kernel(X, Z, self.gamma_)

    def fit(self, X: np.ndarray, y: np.ndarray) -> KernelSVM:
        X = np.asarray(X, dtype=np.float64)
        self.classes_, s = _to_signs(np.asarray(y))
        self.gamma_ = self.gamma if self.gamma is not None else 1.0 / (X.shape[1] * X.var())
        raise NotImplementedError("s08 svm: Gram matrix, smo, keep the samples with alpha > 0")
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """f(x) = sum_i alpha_i y_i K(x_i, x) + b over the support vectors."""
        raise NotImplementedError("s08 svm: kernel against the support vectors, weight by dual_coef_, add b")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

"""s09 · Unsupervised learning: k-means (k-means++ and Lloyd) and PCA through the SVD.

You build
    squared_distances(X, Z)          all squared Euclidean distances, (n, m), no (n, m, d) array
    kmeans_plus_plus(X, k, rng)      k initial centres by D^2 sampling
    assign_clusters(X, centres)      the nearest centre of every row
    update_centres(X, labels, centres)   cluster means; an empty cluster is re-seeded
    inertia(X, centres, labels)      the k-means objective
    KMeans                           Lloyd's iterations from k-means++ (or given) centres
    PCA                              principal components, explained variance, projection

How it differs from the previous steps
    There are no labels: both methods summarise X itself. k-means replaces each row by one of
    k prototypes; PCA replaces it by its coordinates along the k directions of largest variance.

The math
    k-means minimises the inertia  J = sum_i ||x_i - mu_{c(i)}||^2  (SQUARED distances: the mean
    is the point that minimises a sum of squared distances, which is why the update is a mean).
    Lloyd alternates two steps, and neither can increase J:
        assign:  c(i) = argmin_k ||x_i - mu_k||^2         (best centre for fixed centres)
        update:  mu_k = mean of the rows with c(i) = k    (best centres for fixed assignment)
    so J decreases monotonically and stops at a local minimum: the result depends on the start.
    k-means++ (Arthur & Vassilvitskii 2007): the first centre is a uniformly random row; each
    next one is row i with probability D(x_i)^2 / sum_j D(x_j)^2, D = distance to the nearest
    centre chosen so far. Far points are likely, chosen points (D = 0) impossible; the expected
    inertia is within O(log k) of the optimum. An empty cluster (no row assigned) has no mean:
    we move its centre to the row farthest from its own centre, which cannot increase J.
    ||x - z||^2 = ||x||^2 + ||z||^2 - 2 x.z needs one matrix product; round-off can make it
    slightly negative, so clip at 0.

    PCA: centre the data, Xc = X - mean, and take the thin SVD Xc = U S V^T. The rows of V^T
    are the principal directions (orthonormal, by decreasing variance); the variance along
    direction k is S_k^2 / (n - 1) (the sample covariance is Xc^T Xc / (n - 1) = V S^2 V^T /
    (n - 1)). Explained variance ratio: S_k^2 / sum_j S_j^2. Projection: Z = Xc V_k
    (n, k); reconstruction: X_hat = Z V_k^T + mean. The squared reconstruction error is the
    variance left out: ||Xc - X_hat||_F^2 = sum_{j > k} S_j^2, so it falls as k grows.
    A direction's sign is arbitrary (v and -v span the same line); like scikit-learn we make
    the largest-magnitude entry of each component positive, so results are reproducible.
    Without centring, the first "component" points at the mean instead of along the spread.

Shapes
    X: (n, d); centres: (k, d); labels: (n,) ints in [0, k); components_: (k, d); Z: (n, k).

You should be able to explain
    - why Lloyd's algorithm never increases the inertia, and why it can still end badly;
    - why k-means++ samples by D^2 rather than picking the farthest point (outliers);
    - how to read an elbow curve, and why inertia alone cannot choose k;
    - why PCA must centre the data, and what the explained variance ratio tells you;
    - PCA and k-means both minimise a squared reconstruction error: which constraint differs?
"""

from __future__ import annotations

import numpy as np


def squared_distances(X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """D[i, j] = ||X[i] - Z[j]||^2 >= 0, shape (n, m), via ||x||^2 + ||z||^2 - 2 x.z."""
    raise NotImplementedError("s09 unsupervised: the expansion with one matrix product, clipped at 0")


def kmeans_plus_plus(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k centres (k, d): a uniform row first, then rows drawn with probability D^2 / sum D^2."""
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n_samples = {n}, got k = {k}")
    raise NotImplementedError("s09 unsupervised: first index uniform; then sample by the squared distance to the nearest centre")


def assign_clusters(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """labels[i] = argmin_k ||X[i] - centres[k]||^2, shape (n,)."""
    raise NotImplementedError("s09 unsupervised: nearest centre by squared distance")


def update_centres(X: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """New (k, d) centres: each cluster's mean; an empty cluster's centre moves to the row
    farthest from its own current centre (the next empty one to the next farthest row)."""
    k = len(centres)
    raise NotImplementedError("s09 unsupervised: sums via a one-hot (k, n) matrix, divide by counts, re-seed the empty ones")


def inertia(X: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> float:
    """sum_i ||X[i] - centres[labels[i]]||^2 (squared, not plain distances)."""
    raise NotImplementedError("s09 unsupervised: squared distance of each row to its own centre, summed")


class KMeans:
    """Lloyd's algorithm. ``init``: "k-means++" or a (k, d) array of starting centres.

    Stops when the summed squared centre shift is <= tol * mean(X.var(axis=0)) (as
    scikit-learn) or after ``max_iter`` updates. After ``fit``: ``cluster_centers_``,
    ``labels_`` and ``inertia_`` (consistent with each other), ``n_iter_``, and
    ``inertia_history_`` (the inertia after each assignment step).
    """

    def __init__(self, n_clusters: int = 8, init: str | np.ndarray = "k-means++",
                 max_iter: int = 300, tol: float = 1e-4, seed: int = 0) -> None:
        self.n_clusters, self.init, self.max_iter, self.tol, self.seed = (
            n_clusters, init, max_iter, tol, seed)

    def fit(self, X: np.ndarray) -> KMeans:
        X = np.asarray(X, dtype=np.float64)
        if isinstance(self.init, str):
            centres = kmeans_plus_plus(X, self.n_clusters, np.random.default_rng(self.seed))
        else:
            centres = np.array(self.init, dtype=np.float64, copy=True)
        tol = self.tol * X.var(axis=0).mean()
        self.inertia_history_ = []
        raise NotImplementedError("s09 unsupervised: alternate assign / record inertia / update until the shift is small")
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return assign_clusters(np.asarray(X, dtype=np.float64), self.cluster_centers_)


class PCA:
    """Principal component analysis through the SVD of the centred data.

    After ``fit``: ``mean_`` (d,), ``components_`` (k, d) with orthonormal rows and the
    largest-|.| entry of each positive, ``singular_values_`` (k,), ``explained_variance_``
    = S^2 / (n - 1) (k,), ``explained_variance_ratio_`` (k,) over the total variance.
    """

    def __init__(self, n_components: int) -> None:
        self.n_components = n_components

    def fit(self, X: np.ndarray) -> PCA:
        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        if not 1 <= self.n_components <= min(n, d):
            raise ValueError(f"n_components must be in [1, {min(n, d)}], got {self.n_components}")
        k = self.n_components
        raise NotImplementedError("s09 unsupervised: centre, thin SVD, fix the signs, keep the top k")
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Z = (X - mean_) @ components_.T, shape (n, k)."""
        raise NotImplementedError("s09 unsupervised: centre with the training mean, project")

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """X_hat = Z @ components_ + mean_, shape (n, d)."""
        raise NotImplementedError("s09 unsupervised: back to feature space, add the mean back")

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

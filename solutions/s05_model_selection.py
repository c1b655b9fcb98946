"""s05 · Model selection: polynomial features, ridge and lasso, k-fold CV, grid and random search.

You build
    polynomial_features(X, degree)        every monomial up to `degree` (more capacity)
    Ridge, Lasso (soft_threshold)         two ways to take capacity away again (L2, L1)
    SelectKBest, Pipeline                 preprocessing that is *fitted*, hence must be refitted
    kfold, stratified_kfold               (train, val) index pairs whose val parts partition rows
    cross_validate, search, grid_search, random_search, validation_curve, learning_curve
The lab shows why only unseen data can judge a degree or a penalty, and how a selector
fitted outside CV "learns" pure noise.

The math (alpha conventions are scikit-learn's, so `alpha` means the same thing there)
    Ridge:  min_w,b ||y - Xw - b||^2 + alpha ||w||^2             (sum of squares, no 1/n)
            Centre X and y (the intercept is not penalised), then
            w = (Xc^T Xc + alpha I)^-1 Xc^T yc,   b = mean(y) - mean(X) . w
    Lasso:  min_w,b (1 / 2n) ||y - Xw - b||^2 + alpha ||w||_1    (note the 1/2n)
            No closed form: cyclic coordinate descent. With the others fixed, coordinate j solves
            a 1-D problem whose answer is w_j = S(rho_j, n alpha) / ||x_j||^2, where
            rho_j = x_j . (y - Xw + x_j w_j) (the residual without feature j) and
            S(z, t) = sign(z) max(|z| - t, 0) is soft-thresholding: small rho_j -> exactly 0.
    Polynomial features: d inputs, degree p give C(d + p, p) - 1 monomials: capacity explodes.
    Leakage: CV takes a factory make_model(**params) (a fresh, unfitted Pipeline) and fits
    all of it inside each fold.

Shapes
    X: (n, d) float, y: (n,). A fold is (train_idx, val_idx), int arrays whose val parts over
    the k folds partition range(n). Scores: higher is better (r2_score, accuracy below).

You should be able to explain
    - why the lasso gives exact zeros and ridge does not (the corner of the L1 ball);
    - why the intercept is not penalised, and why features are standardised before a penalty;
    - why the score of the best of 50 candidates is optimistic, and what a test set is for;
    - where the scaler and the feature selector must be fitted, and what goes wrong otherwise;
    - what a learning curve tells you that one score does not (more data or more capacity?).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations_with_replacement, product
from typing import Any, NamedTuple

import numpy as np

Fold = tuple[np.ndarray, np.ndarray]
Scorer = Callable[[np.ndarray, np.ndarray], float]


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """1 - SS_res / SS_tot: 1 is perfect, 0 is predicting the mean, below 0 is worse."""
    ss_tot = float(np.sum((y_true - np.mean(y_true)) ** 2))
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / max(ss_tot, 1e-300)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def polynomial_features(X: np.ndarray, degree: int, include_bias: bool = False) -> np.ndarray:
    """(n, d) -> every product of 1..degree input columns, in scikit-learn's column order.

    Order: a column of ones first if include_bias, then for deg = 1, ..., degree the monomials
    x_i1 * ... * x_ideg for (i1 <= ... <= ideg) in itertools.combinations_with_replacement order.
    """
    X = np.asarray(X, dtype=np.float64)
    if degree < 1:
        raise ValueError(f"degree must be at least 1, got {degree}")
    # BEGIN SOLUTION: loop over degrees and combinations_with_replacement, multiply the columns
    cols = [np.ones(len(X))] if include_bias else []
    for deg in range(1, degree + 1):
        for combo in combinations_with_replacement(range(X.shape[1]), deg):
            cols.append(np.prod(X[:, list(combo)], axis=1))
    return np.column_stack(cols)
    # END SOLUTION


def soft_threshold(z: np.ndarray | float, t: float) -> np.ndarray:
    """S(z, t) = sign(z) * max(|z| - t, 0), elementwise: shrink towards 0, exactly 0 if |z| <= t."""
    # BEGIN SOLUTION: shrink the magnitude by t, clip at zero, keep the sign
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)
    # END SOLUTION


def _centre(X: np.ndarray, y: np.ndarray):
    """(Xc, yc, x_mean, y_mean): centred copies, so the intercept drops out of the penalty."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x_mean, y_mean = X.mean(axis=0), y.mean()
    return X - x_mean, y - y_mean, x_mean, y_mean


class _LinearModel:
    """predict = X @ coef_ + intercept_ (given)."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_


class Ridge(_LinearModel):
    """min ||y - Xw - b||^2 + alpha ||w||^2 (scikit-learn's Ridge); b is not penalised."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: np.ndarray) -> Ridge:
        Xc, yc, x_mean, y_mean = _centre(X, y)
        # BEGIN SOLUTION: solve (Xc^T Xc + alpha I) w = Xc^T yc; intercept_ = y_mean - x_mean . w
        A = Xc.T @ Xc + self.alpha * np.eye(Xc.shape[1])
        self.coef_ = np.linalg.solve(A, Xc.T @ yc)
        self.intercept_ = y_mean - x_mean @ self.coef_
        # END SOLUTION
        return self


class Lasso(_LinearModel):
    """min (1/2n) ||y - Xw - b||^2 + alpha ||w||_1 (scikit-learn's Lasso), by coordinate descent.

    Sweeps j = 0..d-1 in order until no coefficient moves by more than `tol` (or `max_iter`
    sweeps); `n_iter_` records the sweeps done. Works on the centred data's Gram matrix
    G = Xc^T Xc, so rho_j = (Xc^T yc)_j - G_j . w + G_jj w_j costs O(d), not O(n).
    """

    def __init__(self, alpha: float = 1.0, max_iter: int = 10_000, tol: float = 1e-10) -> None:
        self.alpha, self.max_iter, self.tol = alpha, max_iter, tol

    def fit(self, X: np.ndarray, y: np.ndarray) -> Lasso:
        Xc, yc, x_mean, y_mean = _centre(X, y)
        n, d = Xc.shape
        G, Xty, w = Xc.T @ Xc, Xc.T @ yc, np.zeros(d)
        # BEGIN SOLUTION: cyclic coordinate updates w_j = S(rho_j, n alpha) / G_jj until converged
        self.n_iter_ = 0
        while self.n_iter_ < self.max_iter:
            self.n_iter_ += 1
            biggest_step = 0.0
            for j in range(d):
                if G[j, j] == 0.0:  # a constant column: its coefficient stays 0
                    continue
                rho = Xty[j] - G[j] @ w + G[j, j] * w[j]
                new = soft_threshold(rho, n * self.alpha) / G[j, j]
                biggest_step = max(biggest_step, abs(new - w[j]))
                w[j] = new
            if biggest_step <= self.tol:
                break
        self.coef_ = w
        self.intercept_ = y_mean - x_mean @ w
        # END SOLUTION
        return self


class Standardizer:
    """z-scores with the mean / population std of the data given to `fit` (given: see s00)."""

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Standardizer:
        self.mean_, std = np.mean(X, axis=0), np.std(X, axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_


class PolynomialFeatures:
    """Transformer wrapper around polynomial_features (learns nothing; given)."""

    def __init__(self, degree: int = 2) -> None:
        self.degree = degree

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> PolynomialFeatures:
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return polynomial_features(X, self.degree)


class SelectKBest:
    """Keep the k columns with the largest |Pearson correlation| with y (learned in `fit`).

    `support_`: the kept column indices, sorted ascending. A constant column has correlation 0.
    """

    def __init__(self, k: int = 10) -> None:
        self.k = k

    def fit(self, X: np.ndarray, y: np.ndarray) -> SelectKBest:
        Xc, yc, _, _ = _centre(X, y)
        # BEGIN SOLUTION: |corr_j| = |Xc_j . yc| / (||Xc_j|| ||yc||); keep the top k, sorted
        norms = np.linalg.norm(Xc, axis=0) * np.linalg.norm(yc)
        corr = np.abs(Xc.T @ yc) / np.where(norms > 0, norms, np.inf)
        self.support_ = np.sort(np.argsort(-corr, kind="stable")[:self.k])
        # END SOLUTION
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)[:, self.support_]


class Pipeline:
    """transformers in order, then a model: fit learns every statistic from fit's data only."""

    def __init__(self, transformers: Sequence[Any], model: Any) -> None:
        self.transformers, self.model = list(transformers), model

    def fit(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        # BEGIN SOLUTION: fit each transformer on the (transformed) data, transform, fit the model
        for t in self.transformers:
            X = t.fit(X, y).transform(X)
        self.model.fit(X, y)
        # END SOLUTION
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION: transform with the already fitted transformers (never refit), predict
        for t in self.transformers:
            X = t.transform(X)
        return self.model.predict(X)
        # END SOLUTION


def kfold(n: int, k: int = 5, *, shuffle: bool = True, seed: int = 0) -> list[Fold]:
    """k folds: rows (np.random.default_rng(seed).permutation(n) if shuffle, else 0..n-1) cut
    by np.array_split into k validation parts, in that order (the first n % k parts one longer,
    as scikit-learn); each fold trains on the rows of the other parts (in any order)."""
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= k <= n, got k={k}, n={n}")
    # BEGIN SOLUTION: order the rows, array_split into k parts, fold i validates on part i
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    parts = np.array_split(order, k)
    return [(np.concatenate(parts[:i] + parts[i + 1:]), parts[i]) for i in range(k)]
    # END SOLUTION


def stratified_kfold(y: np.ndarray, k: int = 5, *, seed: int = 0) -> list[Fold]:
    """k folds in which every class keeps its share: a class with n_c rows puts floor(n_c / k)
    or ceil(n_c / k) of them in each validation fold. ONE generator for the call, rng =
    np.random.default_rng(seed): for each class c in np.unique(y) order, rng.permutation of its
    row indices; line these up one after another and deal the rows to folds 0, 1, ..., k-1,
    0, 1, ... in turn (this also keeps fold sizes within one). Labels may be of any kind."""
    y = np.asarray(y)
    if not 2 <= k <= len(y):
        raise ValueError(f"need 2 <= k <= n, got k={k}, n={len(y)}")
    # BEGIN SOLUTION: per class permute its rows; deal the concatenation round-robin to k folds
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)])
    fold_of = np.empty(len(y), dtype=int)
    fold_of[order] = np.arange(len(y)) % k
    return [(np.flatnonzero(fold_of != i), np.flatnonzero(fold_of == i)) for i in range(k)]
    # END SOLUTION


class CVResult(NamedTuple):
    train_scores: np.ndarray  # (k,) score of each fold's model on its own training rows
    val_scores: np.ndarray    # (k,) score on the fold's held-out rows


def cross_validate(make_model: Callable[[], Any], X: np.ndarray, y: np.ndarray,
                   folds: Sequence[Fold], scorer: Scorer) -> CVResult:
    """Per fold: model = make_model() (fresh), fit on X[train], y[train]; score on train and val.

    Nothing may be fitted on all of X: every statistic comes from the training rows of a fold.
    """
    # BEGIN SOLUTION: a fresh model per fold, fitted on the training rows only
    train, val = [], []
    for tr, va in folds:
        model = make_model().fit(X[tr], y[tr])
        train.append(scorer(y[tr], model.predict(X[tr])))
        val.append(scorer(y[va], model.predict(X[va])))
    return CVResult(np.array(train), np.array(val))
    # END SOLUTION


class SearchResult(NamedTuple):
    best_params: dict
    best_score: float
    params: list[dict]         # every candidate, in the order evaluated
    mean_scores: np.ndarray    # (len(params),) mean validation score of each candidate


def _stack(runs: Sequence[CVResult]) -> CVResult:
    """Several CV runs -> one CVResult of (len(runs), k) arrays (given)."""
    return CVResult(np.array([r.train_scores for r in runs]),
                    np.array([r.val_scores for r in runs]))


def search(make_model: Callable[..., Any], candidates: Sequence[dict], X: np.ndarray,
           y: np.ndarray, folds: Sequence[Fold], scorer: Scorer) -> SearchResult:
    """Score every candidate by its mean CV validation score; the best is the highest (the first
    one on ties). make_model(**params) builds a fresh model from the raw features."""
    # BEGIN SOLUTION: mean of cross_validate(lambda: make_model(**p), ...).val_scores; argmax
    means = np.array([cross_validate(lambda p=p: make_model(**p), X, y, folds, scorer)
                      .val_scores.mean() for p in candidates])
    best = int(np.argmax(means))
    return SearchResult(dict(candidates[best]), float(means[best]), list(candidates), means)
    # END SOLUTION


def grid_search(make_model: Callable[..., Any], grid: dict[str, Sequence], X: np.ndarray,
                y: np.ndarray, folds: Sequence[Fold], scorer: Scorer) -> SearchResult:
    """Every combination of the grid's values (itertools.product, keys in dict order)."""
    # BEGIN SOLUTION: build one dict per combination, then search
    candidates = [dict(zip(grid, values, strict=True)) for values in product(*grid.values())]
    return search(make_model, candidates, X, y, folds, scorer)
    # END SOLUTION


def random_search(make_model: Callable[..., Any], distributions: dict[str, Any], n_iter: int,
                  X: np.ndarray, y: np.ndarray, folds: Sequence[Fold], scorer: Scorer, *,
                  seed: int = 0) -> SearchResult:
    """n_iter candidates drawn with rng = np.random.default_rng(seed), key by key in dict order:
    a callable value is a sampler, called as f(rng); a sequence is drawn from uniformly
    (seq[rng.integers(len(seq))])."""
    # BEGIN SOLUTION: draw n_iter dicts (callable -> f(rng), sequence -> a uniform pick), search
    rng = np.random.default_rng(seed)
    candidates = [{key: dist(rng) if callable(dist) else dist[rng.integers(len(dist))]
                   for key, dist in distributions.items()} for _ in range(n_iter)]
    return search(make_model, candidates, X, y, folds, scorer)
    # END SOLUTION


def validation_curve(make_model: Callable[..., Any], name: str, values: Sequence,
                     X: np.ndarray, y: np.ndarray, folds: Sequence[Fold],
                     scorer: Scorer) -> CVResult:
    """cross_validate(lambda: make_model(**{name: v})) for each v: arrays (len(values), k)."""
    # BEGIN SOLUTION: one cross_validate per value; stack the train and the val scores
    runs = [cross_validate(lambda v=v: make_model(**{name: v}), X, y, folds, scorer)
            for v in values]
    return _stack(runs)
    # END SOLUTION


def learning_curve(make_model: Callable[[], Any], X: np.ndarray, y: np.ndarray,
                   train_sizes: Sequence[int], folds: Sequence[Fold], scorer: Scorer, *,
                   seed: int = 0) -> CVResult:
    """ONE generator for the call, rng = np.random.default_rng(seed); fold by fold in order,
    shuffle the training rows once, rng.permutation(tr). For each size m fit on the first m
    shuffled rows -- a random subset of the TRAINING fold, nested as m grows -- and score on
    those m rows and on ALL of va. Arrays (len(train_sizes), k); each m <= len(tr)."""
    if any(m > min(len(tr) for tr, _ in folds) for m in train_sizes):
        raise ValueError("a train size is larger than a training fold")
    # BEGIN SOLUTION: permute each training fold once; cross_validate on its first m rows
    rng = np.random.default_rng(seed)
    shuffled = [(rng.permutation(tr), va) for tr, va in folds]
    runs = [cross_validate(make_model, X, y, [(tr[:m], va) for tr, va in shuffled], scorer)
            for m in train_sizes]
    return _stack(runs)
    # END SOLUTION

"""s06 · Decision trees: impurity, a vectorised best-split search, CART for classes and numbers.

You build
    gini(p), entropy(p)              impurity of a node from its class PROPORTIONS p (..., K)
    node_impurity(Y, criterion)      impurity of a node from its rows' targets
    best_split(X, Y, ...)            the (feature, threshold) that lowers impurity the most
    DecisionTreeClassifier / DecisionTreeRegressor   greedy recursive CART, stored as flat arrays

How it differs from s01-s05
    No gradients and no global objective: a tree is grown greedily, one node at a time, each
    node asking "which single question `x_j <= t` makes my two children purest?". The model is
    piecewise constant: axis-aligned boxes, each predicting the class proportions (classifier)
    or the mean target (regressor) of the training rows that fall in it.

The math
    Proportions p_k = n_k / n of class k in a node.
        gini(p)    = 1 - sum_k p_k^2                  (chance two random draws disagree)
        entropy(p) = -sum_k p_k log2 p_k, 0 log 0 = 0 (bits; scikit-learn's convention)
        mse        = (1/n) sum_i ||y_i - mean(y)||^2  (regression: the variance)
    Both must see proportions: 1 - sum n_k^2 on counts is not an impurity at all.
    A split sends n_L rows left and n_R right; its quality is the weighted child impurity
        I_children = (n_L / n) I(left) + (n_R / n) I(right),   gain = I(node) - I_children.
    Weighting by size matters: otherwise peeling off one pure row looks like a great split.

Vectorised split search (the speed trick)
    For each feature sort the rows once, (n, d) -> argsort per column. With one-hot targets
    Y (n, K), the class counts left of a cut after sorted row i are a cumulative sum:
    left = cumsum(Y[order], axis=0)[i], right = total - left. One cumsum gives every
    threshold of every feature at once, O(n d log n) per node instead of O(n^2 d). For mse
    use cumulative sums of y and y^2: SSE = sum y^2 - (sum y)^2 / n on each side.
    Only cut between DIFFERENT values (x_(i) < x_(i+1)); the threshold is their midpoint,
    so `x <= t` sends exactly rows 0..i left, and unseen values in between split fairly.

Stopping (as scikit-learn): a node is a leaf when depth == max_depth, when it has fewer than
min_samples_split rows, when it is pure, or when no cut leaves min_samples_leaf rows per side.

Shapes
    X (n, d) float. Classifier: y (n,) labels of any kind (mapped to 0..K-1 via np.unique).
    The tree is stored in flat arrays indexed by node id, root = 0: feature_ (-1 at leaves),
    threshold_, left_, right_ (-1 at leaves) and value_ (n_nodes, K): leaf class proportions
    (classifier) or (n_nodes, 1) mean target (regressor).

You should be able to explain
    - why impurity is computed on proportions, and why children are weighted by their size;
    - why a deep tree fits any training set perfectly and what max_depth / min_samples_leaf
      trade (variance for bias);
    - why greedy splitting cannot solve XOR in one step yet still fits it (zero-gain splits);
    - why trees need no feature scaling, and why they cannot extrapolate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def gini(p: np.ndarray) -> np.ndarray:
    """1 - sum_k p_k^2 over the last axis. p: proportions (..., K) -> (...)."""
    # BEGIN SOLUTION: one minus the sum of squared proportions over the last axis
    p = np.asarray(p, dtype=np.float64)
    return 1.0 - np.sum(p * p, axis=-1)
    # END SOLUTION


def entropy(p: np.ndarray) -> np.ndarray:
    """-sum_k p_k log2 p_k over the last axis, with 0 log 0 taken as 0. (..., K) -> (...)."""
    # BEGIN SOLUTION: -sum p log2 p, skipping zero proportions (log2(0) is -inf)
    p = np.asarray(p, dtype=np.float64)
    return -np.sum(p * np.log2(np.where(p > 0, p, 1.0)), axis=-1)
    # END SOLUTION


IMPURITY = {"gini": gini, "entropy": entropy}


def node_impurity(Y: np.ndarray, criterion: str = "gini") -> float:
    """Impurity of a node holding rows Y (n, K): one-hot classes for gini / entropy (use their
    proportions Y.mean(0)), targets for "mse" (the variance, summed over the K columns)."""
    # BEGIN SOLUTION: mse -> summed column variance; otherwise impurity of the mean one-hot row
    if criterion == "mse":
        return float(np.sum(np.var(Y, axis=0)))
    return float(IMPURITY[criterion](np.mean(Y, axis=0)))
    # END SOLUTION


class Split(NamedTuple):
    feature: int
    threshold: float  # rows with x[feature] <= threshold go left
    gain: float       # node_impurity(node) - weighted impurity of the two children


def best_split(X: np.ndarray, Y: np.ndarray, criterion: str = "gini",
               min_samples_leaf: int = 1) -> Split | None:
    """The cut that minimises the weighted child impurity over all features and thresholds.

    Y (n, K) as in node_impurity. Cuts only between distinct sorted values, at their midpoint,
    leaving >= min_samples_leaf rows on each side; `gain` is that cut's own gain. Exact ties in
    impurity may go to any of the tied cuts (here: the smallest left size, then the lowest
    feature index). None when no cut is allowed.
    """
    n = len(X)
    if n < 2:
        return None
    if criterion == "mse":
        Y = Y - Y.mean(axis=0)  # centring keeps sum y^2 - (sum y)^2 / n accurate
    # BEGIN SOLUTION: sort each column, cumsum the sorted targets, score every cut at once
    order = np.argsort(X, axis=0, kind="stable")               # (n, d)
    Xs = np.take_along_axis(X, order, axis=0)                  # (n, d) sorted columns
    Ys = Y[order]                                              # (n, d, K)
    left = np.cumsum(Ys, axis=0)[:-1]                          # (n-1, d, K) sums left of cut i
    right = Ys.sum(axis=0) - left                              # (n-1, d, K)
    n_left = np.arange(1, n, dtype=np.float64)[:, None, None]  # (n-1, 1, 1)
    n_right = n - n_left
    if criterion == "mse":  # SSE_L + SSE_R = sum y^2 - S_L^2 / n_L - S_R^2 / n_R
        sse = (Ys * Ys).sum(axis=0) - left**2 / n_left - right**2 / n_right
        child = sse.sum(axis=-1) / n                            # (n-1, d)
    else:
        imp = IMPURITY[criterion]
        child = (n_left[..., 0] * imp(left / n_left)
                 + n_right[..., 0] * imp(right / n_right)) / n  # (n-1, d)
    ok = ((Xs[1:] > Xs[:-1]) & (n_left[..., 0] >= min_samples_leaf)
          & (n_right[..., 0] >= min_samples_leaf))
    child = np.where(ok, child, np.inf)
    i, j = np.unravel_index(np.argmin(child), child.shape)
    if not np.isfinite(child[i, j]):
        return None
    threshold = (Xs[i, j] + Xs[i + 1, j]) / 2
    if threshold >= Xs[i + 1, j]:  # adjacent floats: the midpoint rounds up to the right value
        threshold = Xs[i, j]
    return Split(int(j), float(threshold), node_impurity(Y, criterion) - float(child[i, j]))
    # END SOLUTION


class DecisionTree:
    """CART core shared by the classifier and the regressor: grow, then route rows to leaves."""

    criterion = "gini"

    def __init__(self, max_depth: int | None = None, min_samples_split: int = 2,
                 min_samples_leaf: int = 1, criterion: str | None = None) -> None:
        self.max_depth, self.min_samples_split = max_depth, min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.criterion = criterion or self.criterion

    def _fit_targets(self, X: np.ndarray, Y: np.ndarray) -> DecisionTree:
        self.feature_, self.threshold_, self.left_, self.right_, self.value_ = [], [], [], [], []
        self.depth_ = 0
        self._grow(np.asarray(X, dtype=np.float64), Y, 0)
        for name in ("feature_", "threshold_", "left_", "right_", "value_"):
            setattr(self, name, np.array(getattr(self, name)))
        return self

    def _grow(self, X: np.ndarray, Y: np.ndarray, depth: int) -> int:
        """Append the node for rows (X, Y) at `depth` (and, recursively, its subtree): its id."""
        node = len(self.feature_)
        self.feature_.append(-1)
        self.threshold_.append(0.0)
        self.left_.append(-1)
        self.right_.append(-1)
        self.value_.append(Y.mean(axis=0))
        self.depth_ = max(self.depth_, depth)
        # BEGIN SOLUTION: stop (leaf) or split: record feature/threshold, grow left then right
        if ((self.max_depth is not None and depth >= self.max_depth)
                or len(X) < self.min_samples_split
                or node_impurity(Y, self.criterion) <= 1e-12):
            return node
        split = best_split(X, Y, self.criterion, self.min_samples_leaf)
        if split is None:
            return node
        go_left = X[:, split.feature] <= split.threshold
        self.feature_[node], self.threshold_[node] = split.feature, split.threshold
        self.left_[node] = self._grow(X[go_left], Y[go_left], depth + 1)
        self.right_[node] = self._grow(X[~go_left], Y[~go_left], depth + 1)
        return node
        # END SOLUTION

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf id reached by every row: (n,) ints. Route all rows together, level by level."""
        X = np.asarray(X, dtype=np.float64)
        # BEGIN SOLUTION: start at node 0; move rows at internal nodes left / right until leaves
        node = np.zeros(len(X), dtype=int)
        while True:
            rows = np.flatnonzero(self.feature_[node] >= 0)
            if rows.size == 0:
                return node
            at = node[rows]
            go_left = X[rows, self.feature_[at]] <= self.threshold_[at]
            node[rows] = np.where(go_left, self.left_[at], self.right_[at])
        # END SOLUTION

    @property
    def n_leaves(self) -> int:
        return int(np.sum(self.feature_ < 0))


class DecisionTreeClassifier(DecisionTree):
    """criterion "gini" (default) or "entropy"; value_ rows are leaf class proportions."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> DecisionTreeClassifier:
        self.classes_, codes = np.unique(y, return_inverse=True)
        return self._fit_targets(X, np.eye(len(self.classes_))[codes])  # one-hot (n, K)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.value_[self.apply(X)]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class DecisionTreeRegressor(DecisionTree):
    """criterion "mse"; value_ rows hold the leaf's mean target."""

    criterion = "mse"

    def fit(self, X: np.ndarray, y: np.ndarray) -> DecisionTreeRegressor:
        return self._fit_targets(X, np.asarray(y, dtype=np.float64).reshape(len(y), 1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.value_[self.apply(X), 0]

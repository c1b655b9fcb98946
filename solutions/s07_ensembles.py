"""s07 · Ensembles: bagging, random forests with an out-of-bag score, gradient boosting.

You build
    bootstrap_sample(n, rng)          n row indices drawn WITH replacement, and the rows left out
    feature_subset(d, max_features)   the candidate features for one split of a random forest
    RandomForestClassifier            bagged trees (+ feature subsampling), OOB score
    GradientBoostingRegressor         shallow trees fitted one after another to the residuals

Given (read it, do not rewrite it): RegressionTree, a compact CART like s06's that minimises
the squared error of targets Y (n, K). On one-hot class targets the squared error of a node is
n * gini, so the same tree is a Gini classification tree; its leaves hold class proportions.
It asks `feature_subset` for its candidate features at EVERY split.

Why ensembles work
    A deep tree has low bias and high variance: a different sample gives a different tree.
    Averaging B predictors with variance s^2 and pairwise correlation rho gives variance
        rho s^2 + (1 - rho) s^2 / B,
    so averaging helps only as far as the trees disagree. Bagging decorrelates them by
    training each on a bootstrap sample; a random forest decorrelates them further by letting
    each split look at only max_features random features (sqrt(d) for classification), so one
    strong feature cannot sit at the root of every tree. Bias stays that of one deep tree.

    Boosting attacks bias instead: start from F_0 = mean(y), then repeatedly fit a small tree
    h_m to the residuals r = y - F_{m-1} (the negative gradient of (1/2)(y - F)^2) and step
        F_m = F_{m-1} + learning_rate * h_m.
    Shrinkage (learning_rate < 1) takes small steps, so later trees correct earlier ones
    gently; more trees are needed, but they generalise better. Training loss never rises:
    ||r - lr h||^2 = ||r||^2 - (2 lr - lr^2) ||h||^2 for a least-squares tree h.

Out-of-bag (OOB) estimate
    A bootstrap sample of n rows misses each row with probability (1 - 1/n)^n -> 1/e ~ 0.368.
    Each row is therefore "held out" by about a third of the trees; voting with only those
    trees gives a validation estimate for free, close to a cross-validation score. Scoring
    rows with trees that trained on them measures memorisation (~100%), not generalisation.

Shapes
    X (n, d); classifier y (n,) any labels (np.unique -> 0..K-1, one-hot (n, K)); regressor
    y (n,). predict_proba (m, K); a tree's predict returns (m, K) (K = 1 for regression).

You should be able to explain
    - why sampling WITH replacement matters (without it every tree sees the same rows, and
      there is no out-of-bag set);
    - why feature subsampling happens per split, not once per tree;
    - why the OOB score is an honest estimate and the training score is not;
    - bagging / forests reduce variance, boosting reduces bias; what shrinkage trades.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def bootstrap_sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(idx, oob): idx = rng.integers(0, n, size=n), n rows drawn with replacement; oob (n,)
    bool marks the rows that idx never drew (the tree's out-of-bag rows)."""
    # BEGIN SOLUTION: draw n indices with replacement; out-of-bag = drawn zero times
    idx = rng.integers(0, n, size=n)
    oob = np.bincount(idx, minlength=n) == 0
    return idx, oob
    # END SOLUTION


def feature_subset(n_features: int, max_features: int | str | None,
                   rng: np.random.Generator) -> np.ndarray:
    """Sorted candidate features for one split: None -> all of them; "sqrt" ->
    max(1, int(sqrt(d))); an int k -> min(k, d). Drawn with rng.choice(d, k, replace=False)."""
    # BEGIN SOLUTION: resolve k, then draw k distinct features uniformly (all if None)
    if max_features is None:
        return np.arange(n_features)
    k = max(1, int(np.sqrt(n_features))) if max_features == "sqrt" else int(max_features)
    return np.sort(rng.choice(n_features, min(k, n_features), replace=False))
    # END SOLUTION


def _best_split(X: np.ndarray, Y: np.ndarray, min_leaf: int) -> tuple[int, float] | None:
    """(column, threshold) minimising the children's summed squared error (as s06, given).

    With Y centred, the right sums are minus the left sums, and the SSE decrease of a cut
    with n_L rows left is n ||S_L||^2 / (n_L n_R): one cumsum scores every cut.
    """
    n = len(X)
    order = np.argsort(X, axis=0, kind="stable")                      # (n, d)
    Xs = np.take_along_axis(X, order, axis=0)                         # (n, d) sorted columns
    s_left = np.cumsum((Y - Y.mean(axis=0))[order], axis=0)[:-1]      # (n-1, d, K)
    n_left = np.arange(1, n, dtype=np.float64)[:, None]               # (n-1, 1)
    score = (s_left * s_left).sum(axis=-1) / (n_left * (n - n_left))  # (n-1, d)
    ok = (Xs[1:] > Xs[:-1]) & (n_left >= min_leaf) & (n - n_left >= min_leaf)
    score = np.where(ok, score, -1.0)
    i, j = np.unravel_index(np.argmax(score), score.shape)
    if score[i, j] < 0:
        return None
    t = (Xs[i, j] + Xs[i + 1, j]) / 2
    return int(j), float(t if t < Xs[i + 1, j] else Xs[i, j])


class RegressionTree:
    """Given: CART on targets Y (n, K) by squared error, leaves = mean rows of Y."""

    def __init__(self, max_depth: int | None = None, min_samples_leaf: int = 1,
                 max_features: int | str | None = None,
                 rng: np.random.Generator | None = None) -> None:
        self.max_depth, self.min_samples_leaf = max_depth, min_samples_leaf
        self.max_features = max_features
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> RegressionTree:
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        self.nodes: list[list] = []  # [feature, threshold, left, right, value]
        self._grow(X, Y.reshape(len(Y), -1), 0)
        self.feature_ = np.array([nd[0] for nd in self.nodes])
        self.threshold_ = np.array([nd[1] for nd in self.nodes])
        self.children_ = np.array([nd[2:4] for nd in self.nodes])
        self.value_ = np.array([nd[4] for nd in self.nodes])
        return self

    def _grow(self, X: np.ndarray, Y: np.ndarray, depth: int) -> int:
        node = len(self.nodes)
        self.nodes.append([-1, 0.0, -1, -1, Y.mean(axis=0)])
        if ((self.max_depth is not None and depth >= self.max_depth)
                or len(Y) < 2 * self.min_samples_leaf or np.all(Y == Y[0])):
            return node
        feats = feature_subset(X.shape[1], self.max_features, self.rng)  # per split
        split = _best_split(X[:, feats], Y, self.min_samples_leaf)
        if split is None:
            return node
        f, t = int(feats[split[0]]), split[1]
        left = X[:, f] <= t
        self.nodes[node][:2] = f, t
        self.nodes[node][2] = self._grow(X[left], Y[left], depth + 1)
        self.nodes[node][3] = self._grow(X[~left], Y[~left], depth + 1)
        return node

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(m, K): the value of the leaf each row reaches."""
        X = np.asarray(X, dtype=np.float64)
        node = np.zeros(len(X), dtype=int)
        while (rows := np.flatnonzero(self.feature_[node] >= 0)).size:
            at = node[rows]
            right = X[rows, self.feature_[at]] > self.threshold_[at]
            node[rows] = self.children_[at, right.astype(int)]
        return self.value_[node]


class RandomForestClassifier:
    """Bootstrap + per-split feature subsampling + averaged leaf proportions.

    ONE generator for the forest, rng = default_rng(seed); per tree, in order: idx, oob =
    bootstrap_sample(n, rng), then RegressionTree(max_depth, min_samples_leaf, max_features,
    rng) fitted on the in-bag rows (its splits draw features from the same rng).
    max_features=None makes it plain bagging. After fit: classes_, trees_, oob_masks_ (one bool
    (n,) array per tree), oob_decision_function_ (n, K) (NaN rows where no tree left the row
    out) and oob_score_ (accuracy over rows with at least one out-of-bag vote).
    """

    def __init__(self, n_estimators: int = 100, max_features: int | str | None = "sqrt",
                 max_depth: int | None = None, min_samples_leaf: int = 1,
                 seed: int = 0) -> None:
        self.n_estimators, self.max_features = n_estimators, max_features
        self.max_depth, self.min_samples_leaf, self.seed = max_depth, min_samples_leaf, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> RandomForestClassifier:
        X = np.asarray(X, dtype=np.float64)
        self.classes_, codes = np.unique(y, return_inverse=True)
        Y = np.eye(len(self.classes_))[codes]  # (n, K) one-hot
        rng = np.random.default_rng(self.seed)  # one generator for the whole forest
        self.trees_, self.oob_masks_ = [], []
        votes = np.zeros_like(Y)  # summed class proportions from out-of-bag trees
        # BEGIN SOLUTION: per tree: bootstrap, fit on in-bag rows, add its votes on OOB rows
        for _ in range(self.n_estimators):
            idx, oob = bootstrap_sample(len(X), rng)
            tree = RegressionTree(self.max_depth, self.min_samples_leaf, self.max_features,
                                  rng).fit(X[idx], Y[idx])
            votes[oob] += tree.predict(X[oob])
            self.trees_.append(tree)
            self.oob_masks_.append(oob)
        voted = votes.sum(axis=1) > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            self.oob_decision_function_ = votes / votes.sum(axis=1, keepdims=True)
        self.oob_score_ = float(np.mean(votes[voted].argmax(axis=1) == codes[voted]))
        # END SOLUTION
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION: the mean of the trees' leaf proportions
        return np.mean([tree.predict(X) for tree in self.trees_], axis=0)
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class GradientBoostingRegressor:
    """Squared-error boosting: F_0 = mean(y); F_m = F_{m-1} + learning_rate * tree_m(X).

    After fit: init_ (F_0), trees_, train_loss_ (n_estimators,): mean (y - F_m)^2 after each
    stage m = 1..n_estimators.
    """

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3,
                 min_samples_leaf: int = 1) -> None:
        self.n_estimators, self.learning_rate = n_estimators, learning_rate
        self.max_depth, self.min_samples_leaf = max_depth, min_samples_leaf

    def fit(self, X: np.ndarray, y: np.ndarray) -> GradientBoostingRegressor:
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.trees_, self.train_loss_ = [], []
        # BEGIN SOLUTION: start at the mean; each stage fits a tree to the residuals, shrinks it
        self.init_ = float(np.mean(y))
        F = np.full(len(y), self.init_)
        for _ in range(self.n_estimators):
            tree = RegressionTree(self.max_depth, self.min_samples_leaf).fit(X, y - F)
            F += self.learning_rate * tree.predict(X)[:, 0]
            self.trees_.append(tree)
            self.train_loss_.append(float(np.mean((y - F) ** 2)))
        # END SOLUTION
        self.train_loss_ = np.array(self.train_loss_)
        return self

    def staged_predict(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """Predictions after 1, 2, ..., n_estimators stages: (m,) each."""
        # BEGIN SOLUTION: start from init_, add the shrunk prediction of each tree in turn
        F = np.full(len(X), self.init_)
        for tree in self.trees_:
            F = F + self.learning_rate * tree.predict(X)[:, 0]
            yield F
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        stages = list(self.staged_predict(X))
        return stages[-1] if stages else np.full(len(X), self.init_)

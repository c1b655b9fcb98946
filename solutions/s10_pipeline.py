"""s10 · Pipelines: preprocessing that learns from the training rows only, end to end.

You build
    StandardScaler, OneHotEncoder, QuantileBinner   transformers: fit learns, transform applies
    ColumnTransformer                    different transformers for different columns, side by side
    Pipeline                             transformers in sequence, then a model: one fit, predict
    MajorityClassifier, MeanRegressor    the baselines every score must beat
    cross_val_score, end_to_end_report   k-fold CV of a whole pipeline, and a held-out test report
Given: accuracy, kfold_indices, Ridge and RidgeClassifier (the model at the end), format_report.

Every preparation step learns parameters (a mean, a category list, quantile edges) that belong
to the model: learned on training rows only, then frozen; the lab measures the leak otherwise.

The contract
    transformer.fit(X, y=None) learns state and returns self; transformer.transform(X) applies
    it, never learns, and returns a NumPy array (n, columns). fit_transform(X) =
    fit(X).transform(X) on the same rows. A model's fit also returns self.
    Pipeline([(name, step), ..., (name, model)]).fit(X, y): for every step but the last,
    Xt = step.fit(Xt, y).transform(Xt); then model.fit(Xt, y). predict(X) only transforms.

The pieces
    StandardScaler: z = (x - mean) / std with the population std (ddof = 0), std 0 -> 1.
    OneHotEncoder: per column, categories_ = the sorted distinct training values; a value
    becomes a 0/1 indicator block of that column's width; blocks are concatenated in column
    order. A category never seen in training is an explicit decision: "error" raises a
    ValueError naming the column and value; "ignore" encodes it as all zeros.
    QuantileBinner: per column, n_bins - 1 inner edges at the training quantiles
    (np.quantile, linear interpolation); bin(x) = number of inner edges <= x, in 0..n_bins-1
    (then one-hot, a linear model can fit a non-monotone effect: the lab does).
    Baselines: the most frequent training class (ties: the smallest label), or the mean.
Shapes: X (n, d) array, numeric or object (mixed strings and numbers); y (n,).

You should be able to explain
    - why every learned preprocessing statistic belongs inside the cross-validation loop;
    - what to do with a category that appears only at test time, and why it must be decided;
    - why a baseline is part of every report;
    - why the test split is touched once, at the very end.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def kfold_indices(n: int, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled k-fold (as s05): (train_idx, val_idx) pairs; the val folds partition range(n)."""
    folds = np.array_split(np.random.default_rng(seed).permutation(n), n_splits)
    return [(np.concatenate(folds[:i] + folds[i + 1:]), folds[i]) for i in range(n_splits)]


class Ridge:
    """Given: least squares with an L2 penalty on the weights (not the intercept), closed form."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: np.ndarray) -> Ridge:
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        x_mean, y_mean = X.mean(axis=0), y.mean(axis=0)
        Xc = X - x_mean
        A = Xc.T @ Xc + self.alpha * np.eye(X.shape[1])
        self.coef_ = np.linalg.solve(A, Xc.T @ (y - y_mean))
        self.intercept_ = y_mean - x_mean @ self.coef_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_


class RidgeClassifier:
    """Given: ridge regression on +-1 targets, one column per class; predict the argmax."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeClassifier:
        self.classes_ = np.unique(y)
        targets = np.where(np.asarray(y)[:, None] == self.classes_[None, :], 1.0, -1.0)
        self.ridge_ = Ridge(self.alpha).fit(X, targets)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.ridge_.predict(X), axis=1)]


class _Transformer:
    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """fit then transform the same rows (given; says so when fit forgets `return self`)."""
        fitted = self.fit(X, y)
        if fitted is not self:
            raise TypeError(f"{type(self).__name__}.fit returned {type(fitted).__name__}, "
                            "not the transformer: end fit with `return self`")
        return self.transform(X)


class StandardScaler(_Transformer):
    """z = (x - mean_) / scale_: ``fit`` stores the column means ``mean_`` and population stds
    ``scale_`` (zero std replaced by 1.0); ``transform`` applies them to any rows."""

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> StandardScaler:
        # BEGIN SOLUTION: column means and population stds of the training rows
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self
        # END SOLUTION

    def transform(self, X: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION: apply the stored statistics
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        # END SOLUTION


class OneHotEncoder(_Transformer):
    """0/1 indicator columns per input column; categories_[j] = sorted distinct training values.

    ``handle_unknown="error"``: an unseen value raises ValueError; ``"ignore"``: all zeros.
    """

    def __init__(self, handle_unknown: str = "error") -> None:
        if handle_unknown not in ("error", "ignore"):
            raise ValueError(f"handle_unknown must be 'error' or 'ignore', got {handle_unknown!r}")
        self.handle_unknown = handle_unknown

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> OneHotEncoder:
        # BEGIN SOLUTION: the sorted distinct values of every column
        X = np.asarray(X)
        self.categories_ = [np.unique(X[:, j]) for j in range(X.shape[1])]
        return self
        # END SOLUTION

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        out = np.zeros((len(X), sum(len(c) for c in self.categories_)))
        # BEGIN SOLUTION: locate each value among its column's categories; decide the unknowns
        offset = 0
        for j, cats in enumerate(self.categories_):
            pos = np.minimum(np.searchsorted(cats, X[:, j]), len(cats) - 1)
            known = cats[pos] == X[:, j]
            if not known.all() and self.handle_unknown == "error":
                raise ValueError(f"column {j}: category {X[~known, j][0]!r} was not seen in fit")
            out[np.flatnonzero(known), offset + pos[known]] = 1.0
            offset += len(cats)
        # END SOLUTION
        return out


class QuantileBinner(_Transformer):
    """Ordinal bins per column: inner edges at training quantiles, bin = #(inner edges <= x)."""

    def __init__(self, n_bins: int = 5) -> None:
        self.n_bins = n_bins

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> QuantileBinner:
        # BEGIN SOLUTION: n_bins - 1 inner quantile edges per column, from the training rows
        X = np.asarray(X, dtype=np.float64)
        qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        self.edges_ = [np.quantile(X[:, j], qs) for j in range(X.shape[1])]
        return self
        # END SOLUTION

    def transform(self, X: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION: count the inner edges at or below each value
        X = np.asarray(X, dtype=np.float64)
        return np.column_stack([np.searchsorted(e, X[:, j], side="right")
                                for j, e in enumerate(self.edges_)]).astype(np.float64)
        # END SOLUTION


class ColumnTransformer(_Transformer):
    """[(name, transformer, column indices)]: each fitted on its columns; outputs side by side.

    Columns not listed are dropped.
    """

    def __init__(self, transformers: list[tuple[str, object, list[int]]]) -> None:
        self.transformers = transformers

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> ColumnTransformer:
        # BEGIN SOLUTION: fit every transformer on its own columns
        X = np.asarray(X)
        for _, transformer, cols in self.transformers:
            transformer.fit(X[:, cols], y)
        return self
        # END SOLUTION

    def transform(self, X: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION: transform each block of columns, stack the results left to right
        X = np.asarray(X)
        return np.hstack([np.asarray(t.transform(X[:, cols]), dtype=np.float64)
                          for _, t, cols in self.transformers])
        # END SOLUTION


class Pipeline:
    """[(name, step), ...]: every step but the last is a transformer; the last may be a model."""

    def __init__(self, steps: list[tuple[str, object]]) -> None:
        names = [name for name, _ in steps]
        if not steps or len(set(names)) != len(names):
            raise ValueError(f"a pipeline needs at least one step and unique names, got {names}")
        self.steps = steps

    @property
    def named_steps(self) -> dict[str, object]:
        return dict(self.steps)

    def _transform_all_but_last(self, X: np.ndarray) -> np.ndarray:
        """X through step.transform of every step but the last, in order (no fitting)."""
        # BEGIN SOLUTION: apply (never fit) each fitted transformer in order
        for _, step in self.steps[:-1]:
            X = step.transform(X)
        return X
        # END SOLUTION

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Pipeline:
        """Each step but the last: X = step.fit(X, y).transform(X); then last.fit(X, y)."""
        # BEGIN SOLUTION: fit then transform each transformer in turn; fit the last step on that
        for _, step in self.steps[:-1]:
            X = step.fit(X, y).transform(X)
        self.steps[-1][1].fit(X, y)
        return self
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.steps[-1][1].predict(self._transform_all_but_last(X))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.steps[-1][1].transform(self._transform_all_but_last(X))


class MajorityClassifier:
    """Predicts the most frequent training class (ties: the smallest label)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> MajorityClassifier:
        # BEGIN SOLUTION: count the labels, keep the most frequent
        values, counts = np.unique(y, return_counts=True)
        self.majority_ = values[np.argmax(counts)]
        return self
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.majority_)


class MeanRegressor:
    """Predicts the training mean of y."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> MeanRegressor:
        # BEGIN SOLUTION: remember the training mean
        self.mean_ = float(np.mean(y))
        return self
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.mean_)


def cross_val_score(estimator, X: np.ndarray, y: np.ndarray, n_splits: int = 5, seed: int = 0,
                    scoring: Callable = accuracy) -> np.ndarray:
    """Per fold of kfold_indices(len(y), n_splits, seed): fit a fresh copy.deepcopy(estimator)
    on the training rows, score its predictions on the validation rows. The estimator passed
    in is never fitted. Returns the (n_splits,) scores."""
    # BEGIN SOLUTION: one fresh copy per fold, fitted on that fold's training rows only
    scores = []
    for train, val in kfold_indices(len(y), n_splits, seed):
        model = copy.deepcopy(estimator).fit(X[train], y[train])
        scores.append(scoring(y[val], model.predict(X[val])))
    return np.array(scores)
    # END SOLUTION


def end_to_end_report(model, baseline, X: np.ndarray, y: np.ndarray, *, test_frac: float = 0.2,
                      n_splits: int = 5, seed: int = 0,
                      scoring: Callable = accuracy) -> dict:
    """Hold out round(test_frac * n) rows (the first ones of default_rng(seed).permutation(n));
    cross-validate model and baseline on the rest; fit copies on the rest; score them once on
    the held-out rows. Keys: cv_scores, baseline_cv_scores, test_score, baseline_test_score,
    test_index, fitted_model (the copy fitted on the training rows)."""
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = round(test_frac * len(y))
    test, train = perm[:n_test], perm[n_test:]
    # BEGIN SOLUTION: CV both on the training rows, then one fit on them and one test score
    report = {"test_index": test}
    for prefix, est in (("", model), ("baseline_", baseline)):
        report[prefix + "cv_scores"] = cross_val_score(est, X[train], y[train], n_splits, seed,
                                                       scoring)
        fitted = copy.deepcopy(est).fit(X[train], y[train])
        report[prefix + "test_score"] = scoring(y[test], fitted.predict(X[test]))
        if not prefix:
            report["fitted_model"] = fitted
    return report
    # END SOLUTION


def format_report(report: dict) -> str:
    """Given: the report as a few readable lines."""
    cv, base = report["cv_scores"], report["baseline_cv_scores"]
    return (f"cross-validation: {cv.mean():.3f} +- {cv.std():.3f} over {len(cv)} folds "
            f"(baseline {base.mean():.3f} +- {base.std():.3f})\n"
            f"held-out test ({len(report['test_index'])} rows): {report['test_score']:.3f} "
            f"(baseline {report['baseline_test_score']:.3f})")

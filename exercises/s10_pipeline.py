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
        raise NotImplementedError("s10 pipeline: column means and population stds of the training rows")

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s10 pipeline: apply the stored statistics")


class OneHotEncoder(_Transformer):
    """0/1 indicator columns per input column; categories_[j] = sorted distinct training values.

    ``handle_unknown="error"``: an unseen value raises ValueError; ``"ignore"``: all zeros.
    """

    def __init__(self, handle_unknown: str = "error") -> None:
        if handle_unknown not in ("error", "ignore"):
            raise ValueError(f"handle_unknown must be 'error' or 'ignore', got {handle_unknown!r}")
        self.handle_unknown = handle_unknown

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> OneHotEncoder:
        raise NotImplementedError("s10 pipeline: the sorted distinct values of every column")

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        out = np.zeros((len(X), sum(len(c) for c in self.categories_)))
        raise NotImplementedError("s10 pipeline: locate each value among its column's categories; decide the unknowns")
        return out


class QuantileBinner(_Transformer):
    """Ordinal bins per column: inner edges at training quantiles, bin = #(inner edges <= x)."""

    def __init__(self, n_bins: int = 5) -> None:
        self.n_bins = n_bins

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> QuantileBinner:
        raise NotImplementedError("s10 pipeline: n_bins - 1 inner quantile edges per column, from the training rows")

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s10 pipeline: count the inner edges at or below each value")


class ColumnTransformer(_Transformer):
    """[(name, transformer, column indices)]: each fitted on its columns; outputs side by side.

    Columns not listed are dropped.
    """

    def __init__(self, transformers: list[tuple[str, object, list[int]]]) -> None:
        self.transformers = transformers

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> ColumnTransformer:
        raise NotImplementedError("s10 pipeline: fit every transformer on its own columns")

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s10 pipeline: transform each block of columns, stack the results left to right")


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
        raise NotImplementedError("s10 pipeline: apply (never fit) each fitted transformer in order")

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Pipeline:
        """Each step but the last: X = step.fit(X, y).transform(X); then last.fit(X, y)."""
        raise NotImplementedError("s10 pipeline: fit then transform each transformer in turn; fit the last step on that")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.steps[-1][1].predict(self._transform_all_but_last(X))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.steps[-1][1].transform(self._transform_all_but_last(X))


class MajorityClassifier:
    """Predicts the most frequent training class (ties: the smallest label)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> MajorityClassifier:
        raise NotImplementedError("s10 pipeline: count the labels, keep the most frequent")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.majority_)


class MeanRegressor:
    """Predicts the training mean of y."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> MeanRegressor:
        raise NotImplementedError("s10 pipeline: remember the training mean")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.mean_)


def cross_val_score(estimator, X: np.ndarray, y: np.ndarray, n_splits: int = 5, seed: int = 0,
                    scoring: Callable = accuracy) -> np.ndarray:
    """Per fold of kfold_indices(len(y), n_splits, seed): fit a fresh copy.deepcopy(estimator)
    on the training rows, score its predictions on the validation rows. The estimator passed
    in is never fitted. Returns the (n_splits,) scores."""
    raise NotImplementedError("s10 pipeline: one fresh copy per fold, fitted on that fold's training rows only")


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
    raise NotImplementedError("s10 pipeline: CV both on the training rows, then one fit on them and one test score")


def format_report(report: dict) -> str:
    """Given: the report as a few readable lines."""
    cv, base = report["cv_scores"], report["baseline_cv_scores"]
    return (f"cross-validation: {cv.mean():.3f} +- {cv.std():.3f} over {len(cv)} folds "
            f"(baseline {base.mean():.3f} +- {base.std():.3f})\n"
            f"held-out test ({len(report['test_index'])} rows): {report['test_score']:.3f} "
            f"(baseline {report['baseline_test_score']:.3f})")

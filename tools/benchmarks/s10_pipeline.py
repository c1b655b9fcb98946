"""Benchmark for s10: a scale + one-hot + ridge pipeline, 5-fold CV, against scikit-learn."""

from __future__ import annotations

import time

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tools.course import find_step
from tools.loader import load_implementation


def _best_of_3(fn):
    best, out = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench() -> list[dict]:
    mod = load_implementation(find_step("s10_pipeline"), "solutions")
    X, y = make_classification(5000, 18, n_informative=8, random_state=0)
    g = np.random.default_rng(0)
    cats = np.column_stack([g.integers(0, 6, 5000), g.integers(0, 12, 5000)])
    X = np.column_stack([X, cats])  # 5000 x 20: 18 numeric columns, 2 categorical codes
    num, cat = list(range(18)), [18, 19]

    ours_pipe = mod.Pipeline([
        ("features", mod.ColumnTransformer([("num", mod.StandardScaler(), num),
                                            ("cat", mod.OneHotEncoder("ignore"), cat)])),
        ("model", mod.RidgeClassifier(alpha=1.0))])
    ours_s, ours = _best_of_3(lambda: mod.cross_val_score(ours_pipe, X, y, n_splits=5, seed=0))

    ref_pipe = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), num),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), cat)]),
        RidgeClassifier(alpha=1.0))
    folds = KFold(5, shuffle=True, random_state=0)
    ref_s, ref = _best_of_3(lambda: cross_val_score(ref_pipe, X, y, cv=folds))
    return [{"step": "s10_pipeline", "task": "scale + one-hot + ridge, 5-fold CV",
             "data": "5000x20 synthetic (2 categorical)", "ours_s": ours_s, "sklearn_s": ref_s,
             "metric": "mean CV accuracy", "ours": float(np.mean(ours)),
             "sklearn": float(np.mean(ref))}]


if __name__ == "__main__":
    for row in bench():
        print(row)

"""Benchmark for s07: the reference random forest and gradient boosting against scikit-learn."""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

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
    mod = load_implementation(find_step("s07_ensembles"), "solutions")
    rows = []
    X, y = make_classification(6000, 20, n_informative=10, random_state=0)
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb_tr, Xb_te, yb_tr, yb_te = train_test_split(Xb, yb, test_size=0.5, random_state=0,
                                                  stratify=yb)
    for data, n_trees, (X_tr, X_te, y_tr, y_te) in (
            ("5000x20 synthetic", 20, (X[:5000], X[5000:], y[:5000], y[5000:])),
            ("284x30 breast_cancer", 100, (Xb_tr, Xb_te, yb_tr, yb_te))):
        ours_s, ours = _best_of_3(lambda: mod.RandomForestClassifier(  # noqa: B023
            n_trees, seed=0).fit(X_tr, y_tr))  # noqa: B023
        ref_s, ref = _best_of_3(lambda: RandomForestClassifier(  # noqa: B023
            n_trees, random_state=0, n_jobs=1).fit(X_tr, y_tr))  # noqa: B023
        rows.append({"step": "s07_ensembles",
                     "task": f"random forest, {n_trees} unpruned trees, sqrt features",
                     "data": data, "ours_s": ours_s, "sklearn_s": ref_s, "metric": "accuracy",
                     "ours": float(np.mean(ours.predict(X_te) == y_te)),
                     "sklearn": float(ref.score(X_te, y_te))})
    Xr, yr = make_regression(6000, 20, n_informative=10, noise=10.0, random_state=0)
    ours_s, ours = _best_of_3(lambda: mod.GradientBoostingRegressor(100, 0.1, 3).fit(
        Xr[:5000], yr[:5000]))
    ref_s, ref = _best_of_3(lambda: GradientBoostingRegressor(
        n_estimators=100, learning_rate=0.1, max_depth=3, random_state=0).fit(Xr[:5000],
                                                                              yr[:5000]))
    rows.append({"step": "s07_ensembles", "task": "gradient boosting, 100 depth-3 trees, lr 0.1",
                 "data": "5000x20 synthetic", "ours_s": ours_s, "sklearn_s": ref_s,
                 "metric": "test R^2", "ours": float(r2_score(yr[5000:], ours.predict(Xr[5000:]))),
                 "sklearn": float(ref.score(Xr[5000:], yr[5000:]))})
    return rows

"""Benchmark for s06: the reference CART classifier / regressor against scikit-learn."""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

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
    mod = load_implementation(find_step("s06_decision_tree"), "solutions")
    rows = []
    X, y = make_classification(6000, 20, n_informative=10, random_state=0)
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb_tr, Xb_te, yb_tr, yb_te = train_test_split(Xb, yb, test_size=0.3, random_state=0,
                                                  stratify=yb)
    for data, depth, (X_tr, X_te, y_tr, y_te) in (
            ("5000x20 synthetic", 8, (X[:5000], X[5000:], y[:5000], y[5000:])),
            ("398x30 breast_cancer", 4, (Xb_tr, Xb_te, yb_tr, yb_te))):
        ours_s, ours = _best_of_3(
            lambda: mod.DecisionTreeClassifier(max_depth=depth).fit(X_tr, y_tr))  # noqa: B023
        ref_s, ref = _best_of_3(
            lambda: DecisionTreeClassifier(max_depth=depth,  # noqa: B023
                                           random_state=0).fit(X_tr, y_tr))  # noqa: B023
        rows.append({"step": "s06_decision_tree", "task": f"CART classifier, depth {depth}, gini",
                     "data": data, "ours_s": ours_s, "sklearn_s": ref_s, "metric": "accuracy",
                     "ours": float(np.mean(ours.predict(X_te) == y_te)),
                     "sklearn": float(ref.score(X_te, y_te))})
    Xr, yr = make_regression(6000, 20, n_informative=10, noise=10.0, random_state=0)
    ours_s, ours = _best_of_3(lambda: mod.DecisionTreeRegressor(max_depth=8).fit(Xr[:5000],
                                                                               yr[:5000]))
    ref_s, ref = _best_of_3(lambda: DecisionTreeRegressor(max_depth=8, random_state=0)
                            .fit(Xr[:5000], yr[:5000]))
    rows.append({"step": "s06_decision_tree", "task": "CART regressor, depth 8, mse",
                 "data": "5000x20 synthetic", "ours_s": ours_s, "sklearn_s": ref_s,
                 "metric": "test R^2", "ours": float(r2_score(yr[5000:], ours.predict(Xr[5000:]))),
                 "sklearn": float(ref.score(Xr[5000:], yr[5000:]))})
    return rows

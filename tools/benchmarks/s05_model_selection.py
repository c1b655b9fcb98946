"""Benchmark for s05: the reference ridge / lasso and a CV grid search against scikit-learn."""

from __future__ import annotations

import time

from sklearn.datasets import load_diabetes, make_regression
from sklearn.linear_model import Lasso, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

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
    mod = load_implementation(find_step("s05_model_selection"), "solutions")
    rows = []
    X, y = make_regression(6000, 20, n_informative=8, noise=5.0, random_state=0)
    X_tr, X_te, y_tr, y_te = X[:5000], X[5000:], y[:5000], y[5000:]
    for task, ours_fn, ref_fn in (
            ("ridge (alpha 1, closed form)", lambda: mod.Ridge(1.0).fit(X_tr, y_tr),
             lambda: Ridge(alpha=1.0).fit(X_tr, y_tr)),
            ("lasso (alpha 1, coordinate descent)", lambda: mod.Lasso(1.0).fit(X_tr, y_tr),
             lambda: Lasso(alpha=1.0).fit(X_tr, y_tr))):
        ours_s, ours = _best_of_3(ours_fn)
        ref_s, ref = _best_of_3(ref_fn)
        rows.append({"step": "s05_model_selection", "task": task, "data": "5000x20 synthetic",
                     "ours_s": ours_s, "sklearn_s": ref_s, "metric": "test R^2",
                     "ours": float(r2_score(y_te, ours.predict(X_te))),
                     "sklearn": float(ref.score(X_te, y_te))})

    Xd, yd = load_diabetes(return_X_y=True)
    folds = list(KFold(5, shuffle=True, random_state=0).split(Xd))
    grid = {"degree": [1, 2], "alpha": [0.1, 1.0, 10.0, 100.0]}

    def ours_search():
        return mod.grid_search(lambda degree, alpha: mod.Pipeline(
            [mod.PolynomialFeatures(degree), mod.Standardizer()], mod.Ridge(alpha)),
            grid, Xd, yd, folds, mod.r2_score)

    pipe = make_pipeline(PolynomialFeatures(include_bias=False), StandardScaler(), Ridge())
    ref_grid = {"polynomialfeatures__degree": grid["degree"], "ridge__alpha": grid["alpha"]}
    ours_s, ours = _best_of_3(ours_search)
    ref_s, ref = _best_of_3(lambda: GridSearchCV(pipe, ref_grid, cv=folds).fit(Xd, yd))
    rows.append({"step": "s05_model_selection",
                 "task": "grid search, 8 candidates x 5 folds (poly + scaler + ridge)",
                 "data": "442x10 diabetes", "ours_s": ours_s, "sklearn_s": ref_s,
                 "metric": "best mean CV R^2", "ours": float(ours.best_score),
                 "sklearn": float(ref.best_score_)})
    return rows

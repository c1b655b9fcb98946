"""Benchmark for s02: the reference logistic regression against scikit-learn on the same data."""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tools.course import find_step
from tools.loader import load_implementation


def _best_of_3(fn):
    best, out = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _split_scaled(X, y, test_size):
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=0,
                                              stratify=y)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


def bench() -> list[dict]:
    mod = load_implementation(find_step("s02_logistic_regression"), "solutions")
    rows = []
    X, y = make_classification(6000, 20, n_informative=10, random_state=0)
    # (split, GD steps): the synthetic fit stops at its gradient tolerance (~160 steps);
    # breast_cancer's 30 collinear features are ill-conditioned, so GD crawls towards the
    # exact optimum after ~500 steps without changing a single test prediction
    data = {"5000x20 synthetic": (_split_scaled(X, y, 1000), 3000),
            "398x30 breast_cancer": (_split_scaled(*load_breast_cancer(return_X_y=True), 0.3),
                                     500)}
    for name, ((X_tr, X_te, y_tr, y_te), steps) in data.items():
        C = 1.0  # sklearn's default penalty; ours is l2 = 1 / (C n), the same minimiser
        ours_s, ours = _best_of_3(lambda: mod.LogisticRegression(  # noqa: B023
            lr=1.0, n_iters=steps, l2=1.0 / (C * len(y_tr))).fit(X_tr, y_tr))  # noqa: B023
        ref_s, ref = _best_of_3(lambda: LogisticRegression(C=C).fit(X_tr, y_tr))  # noqa: B023
        rows.append({"step": "s02_logistic_regression",
                     "task": f"logistic regression, L2 (<= {steps} GD steps vs lbfgs)",
                     "data": name,
                     "ours_s": ours_s, "sklearn_s": ref_s, "metric": "accuracy",
                     "ours": float(np.mean(ours.predict(X_te) == y_te)),
                     "sklearn": float(ref.score(X_te, y_te))})
    return rows

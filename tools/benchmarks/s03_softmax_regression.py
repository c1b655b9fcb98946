"""Benchmark for s03: the reference softmax regression against scikit-learn's multinomial
logistic regression on the same data and split."""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits, make_classification
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
    mod = load_implementation(find_step("s03_softmax_regression"), "solutions")
    rows = []
    X, y = make_classification(6000, 20, n_informative=10, n_classes=5, random_state=0)
    # full-batch epochs: a step on 5000x5 logits costs ~4 ms (NumPy's reductions over a short
    # class axis dominate); 40 epochs already match lbfgs's test accuracy
    data = {"5000x20 synthetic, 5 classes": (_split_scaled(X, y, 1000), 40),
            "1347x64 digits, 10 classes": (_split_scaled(*load_digits(return_X_y=True), 0.25),
                                           150)}
    for name, ((X_tr, X_te, y_tr, y_te), epochs) in data.items():
        C = 1.0  # sklearn's default; ours l2 = 1 / (C n) has the same minimiser
        ours_s, ours = _best_of_3(lambda: mod.SoftmaxRegression(  # noqa: B023
            lr=1.0, n_epochs=epochs, l2=1.0 / (C * len(y_tr))).fit(X_tr, y_tr))  # noqa: B023
        ref_s, ref = _best_of_3(lambda: LogisticRegression(  # noqa: B023
            C=C, max_iter=2000).fit(X_tr, y_tr))  # noqa: B023
        rows.append({"step": "s03_softmax_regression",
                     "task": f"softmax regression, L2 ({epochs} GD epochs vs lbfgs)",
                     "data": name, "ours_s": ours_s, "sklearn_s": ref_s, "metric": "accuracy",
                     "ours": float(np.mean(ours.predict(X_te) == y_te)),
                     "sklearn": float(ref.score(X_te, y_te))})
    return rows

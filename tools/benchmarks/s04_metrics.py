"""Benchmark for s04: the reference metrics against sklearn.metrics on the same large inputs."""

from __future__ import annotations

import time

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

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
    mod = load_implementation(find_step("s04_metrics"), "solutions")
    rng = np.random.default_rng(0)
    n = 100_000
    y = rng.integers(0, 2, size=n)
    scores = np.round(y + rng.normal(0.0, 1.0, size=n), 3)  # many ties
    prob = 1.0 / (1.0 + np.exp(-scores))
    y_true = rng.integers(0, 10, size=n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, 10, size=n))
    cases = [
        ("ROC AUC", f"{n} binary scores with ties",
         lambda: mod.roc_auc(y, scores), lambda: skm.roc_auc_score(y, scores)),
        ("average precision", f"{n} binary scores with ties",
         lambda: mod.average_precision(y, scores),
         lambda: skm.average_precision_score(y, scores)),
        ("macro F1", f"{n} labels, 10 classes",
         lambda: mod.precision_recall_f1(y_true, y_pred, average="macro")[2],
         lambda: skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        ("calibration curve (10 bins)", f"{n} probabilities",
         lambda: float(mod.calibration_curve(y, prob, 10)[0].mean()),
         lambda: float(calibration_curve(y, prob, n_bins=10)[0].mean())),
    ]
    rows = []
    for task, data, ours_fn, ref_fn in cases:
        ours_s, ours = _best_of_3(ours_fn)
        ref_s, ref = _best_of_3(ref_fn)
        rows.append({"step": "s04_metrics", "task": task, "data": data, "ours_s": ours_s,
                     "sklearn_s": ref_s, "metric": "value", "ours": float(ours),
                     "sklearn": float(ref)})
    return rows

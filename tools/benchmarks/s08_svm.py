"""Benchmark for s08: the reference SVMs against scikit-learn on the same data and split."""

from __future__ import annotations

import time
import warnings

from sklearn.datasets import make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC, LinearSVC

from tools.course import find_step
from tools.loader import load_implementation


def _best_of_3(fn):
    best, out = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _accuracy(model, X, y) -> float:
    return float((model.predict(X) == y).mean())


def bench() -> list[dict]:
    mod = load_implementation(find_step("s08_svm"), "solutions")
    rows = []

    X, y = make_classification(6000, 20, n_informative=10, random_state=0)
    Xtr, ytr, Xte, yte = X[:5000], y[:5000], X[5000:], y[5000:]
    lam = 1e-2  # Pegasos converges as O(1 / (lam T)): a tiny lam needs many more epochs
    ours_s, ours = _best_of_3(lambda: mod.LinearSVM(lam=lam, n_epochs=30).fit(Xtr, ytr))
    with warnings.catch_warnings():  # liblinear's hinge dual stops at max_iter: still accurate
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref_s, ref = _best_of_3(lambda: LinearSVC(loss="hinge", C=1 / (lam * len(ytr)),
                                                  max_iter=10_000).fit(Xtr, ytr))
    rows.append({"step": "s08_svm", "task": "linear SVM (Pegasos vs LinearSVC hinge)",
                 "data": "5000x20 synthetic", "ours_s": ours_s, "sklearn_s": ref_s,
                 "metric": "accuracy", "ours": _accuracy(ours, Xte, yte),
                 "sklearn": _accuracy(ref, Xte, yte)})

    Xm, ym = make_moons(1200, noise=0.25, random_state=0)
    ours_s, ours = _best_of_3(lambda: mod.KernelSVM(C=1.0, gamma=1.0).fit(Xm[:1000], ym[:1000]))
    ref_s, ref = _best_of_3(lambda: SVC(C=1.0, gamma=1.0).fit(Xm[:1000], ym[:1000]))
    rows.append({"step": "s08_svm", "task": "RBF kernel SVM (SMO vs SVC)",
                 "data": "1000x2 moons", "ours_s": ours_s, "sklearn_s": ref_s,
                 "metric": "accuracy", "ours": _accuracy(ours, Xm[1000:], ym[1000:]),
                 "sklearn": _accuracy(ref, Xm[1000:], ym[1000:])})

    ours_s, ours = _best_of_3(lambda: mod.KernelSVM(C=1.0).fit(Xtr, ytr))
    ref_s, ref = _best_of_3(lambda: SVC(C=1.0).fit(Xtr, ytr))
    rows.append({"step": "s08_svm", "task": "RBF kernel SVM (SMO vs SVC)",
                 "data": "5000x20 synthetic", "ours_s": ours_s, "sklearn_s": ref_s,
                 "metric": "accuracy", "ours": _accuracy(ours, Xte, yte),
                 "sklearn": _accuracy(ref, Xte, yte)})
    return rows


if __name__ == "__main__":
    for row in bench():
        print(row)

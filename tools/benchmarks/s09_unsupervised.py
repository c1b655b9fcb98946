"""Benchmark for s09: the reference k-means and PCA against scikit-learn on the same data."""

from __future__ import annotations

import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA

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
    mod = load_implementation(find_step("s09_unsupervised"), "solutions")
    X, _ = make_blobs(5000, n_features=20, centers=8, cluster_std=3.0, random_state=0)
    init = mod.kmeans_plus_plus(X, 8, np.random.default_rng(0))
    ours_s, ours = _best_of_3(lambda: mod.KMeans(n_clusters=8, init=init).fit(X))
    ref_s, ref = _best_of_3(lambda: KMeans(n_clusters=8, init=init, n_init=1,
                                           algorithm="lloyd").fit(X))
    rows = [{"step": "s09_unsupervised", "task": "k-means, same initial centres",
             "data": "5000x20 blobs", "ours_s": ours_s, "sklearn_s": ref_s,
             "metric": "inertia", "ours": ours.inertia_, "sklearn": float(ref.inertia_)}]

    g = np.random.default_rng(0)
    Xp = g.normal(size=(5000, 20)) @ g.normal(size=(20, 20))
    ours_s, ours = _best_of_3(lambda: mod.PCA(n_components=5).fit(Xp))
    ref_s, ref = _best_of_3(lambda: PCA(n_components=5).fit(Xp))
    rows.append({"step": "s09_unsupervised", "task": "PCA, 5 components",
                 "data": "5000x20 correlated Gaussian", "ours_s": ours_s, "sklearn_s": ref_s,
                 "metric": "explained variance ratio (sum)",
                 "ours": float(ours.explained_variance_ratio_.sum()),
                 "sklearn": float(ref.explained_variance_ratio_.sum())})
    return rows


if __name__ == "__main__":
    for row in bench():
        print(row)

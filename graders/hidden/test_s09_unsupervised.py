"""Hidden graders for s09 unsupervised: properties on arbitrary shapes, edge cases, new data."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import load_iris, load_wine
from sklearn.decomposition import PCA as SkPCA

from graders.helpers import assert_close, check_shape


@pytest.mark.points(2)
@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 8), extra=st.integers(3, 30), seed=st.integers(0, 2**16),
       data=st.data())
def test_pca_matches_sklearn_on_any_shape(impl, d, extra, seed, data):
    n = d + extra
    k = data.draw(st.integers(1, d), label="n_components")
    g = np.random.default_rng(seed)
    # distinct spreads per feature keep the singular values apart, so components are unique
    X = g.normal(size=(n, d)) * (2.0 ** np.arange(d, 0, -1)) + g.normal(size=d) * 10
    ours = impl.PCA(n_components=k).fit(X)
    ref = SkPCA(n_components=k).fit(X)
    check_shape(ours.components_, (k, d), f"components_ for n_components={k}, d={d}")
    assert_close(ours.components_ @ ours.components_.T, np.eye(k),
                 "components_ @ components_.T (the rows must be orthonormal)", atol=1e-9)
    signs = np.sign((ours.components_ * ref.components_).sum(axis=1))
    # float64 SVDs of the same well-conditioned matrix
    assert_close(ours.components_ * signs[:, None], ref.components_,
                 f"components_ up to sign, X of shape ({n}, {d}), k={k}", rtol=1e-5, atol=1e-7)
    assert_close(ours.transform(X) * signs, ref.transform(X), "transform(X) up to sign",
                 rtol=1e-5, atol=1e-6)
    assert_close(ours.explained_variance_, ref.explained_variance_, "explained_variance_",
                 rtol=1e-7)


@pytest.mark.points(1)
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 15), m=st.integers(1, 15), d=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_squared_distances_on_any_shape(impl, n, m, d, seed):
    g = np.random.default_rng(seed)
    X, Z = g.normal(size=(n, d)) * 5, g.normal(size=(m, d)) * 5
    D = impl.squared_distances(X, Z)
    check_shape(D, (n, m), f"squared_distances of ({n}, {d}) and ({m}, {d})")
    # the expansion loses a few ulps of ||x||^2 against the direct difference
    assert_close(D, ((X[:, None] - Z[None]) ** 2).sum(-1), "squared_distances", rtol=1e-8,
                 atol=1e-9)


@pytest.mark.points(1)
def test_kmeans_plus_plus_never_picks_a_point_twice(impl):
    X = np.random.default_rng(3).normal(size=(12, 2))
    for seed in range(20):
        centres = impl.kmeans_plus_plus(X, 12, np.random.default_rng(seed))
        rows = {tuple(c) for c in centres}
        assert len(rows) == 12, (
            f"with k = n = 12 distinct points every point must be chosen once; got {len(rows)} "
            "distinct centres. A chosen point has D = 0, so its probability must be 0")
        assert rows <= {tuple(x) for x in X}, "k-means++ centres must be rows of X"


@pytest.mark.points(1)
def test_kmeans_plus_plus_uses_the_given_generator(impl):
    X = np.random.default_rng(4).normal(size=(200, 3))
    a = impl.kmeans_plus_plus(X, 5, np.random.default_rng(7))
    b = impl.kmeans_plus_plus(X, 5, np.random.default_rng(7))
    c = impl.kmeans_plus_plus(X, 5, np.random.default_rng(8))
    assert np.array_equal(a, b), "the same generator seed gave different centres"
    assert not np.array_equal(a, c), "seeds 7 and 8 gave the same centres: draw from `rng`"


@pytest.mark.points(2)
def test_kmeans_matches_sklearn_on_wine_from_the_same_centres(impl):
    X = load_wine().data
    X = (X - X.mean(0)) / X.std(0)
    init = impl.kmeans_plus_plus(X, 4, np.random.default_rng(0))
    ours = impl.KMeans(n_clusters=4, init=init).fit(X)
    ref = SkKMeans(n_clusters=4, init=init, n_init=1, algorithm="lloyd").fit(X)
    assert abs(ours.inertia_ - ref.inertia_) <= 0.01 * ref.inertia_, (
        f"inertia {ours.inertia_:.3f} vs scikit-learn {ref.inertia_:.3f} from the same centres")
    assert np.array_equal(ours.predict(X), ours.labels_), "predict(X) disagrees with labels_"


@pytest.mark.points(1)
def test_several_empty_clusters_go_to_the_farthest_points(impl):
    X = np.array([[0.0], [1.0], [2.0], [10.0], [30.0]])
    centres = np.array([[1.0], [100.0], [200.0]])  # only cluster 0 receives rows
    labels = np.zeros(5, dtype=int)
    new = impl.update_centres(X, labels, centres)
    check_shape(new, (3, 1), "update_centres")
    assert np.all(np.isfinite(new)), "an empty cluster produced a NaN centre"
    assert_close(new[0], [8.6], "the non-empty cluster's mean", atol=1e-12)
    assert sorted(new[1:, 0].tolist()) == [10.0, 30.0], (
        "with two empty clusters, their centres should move to the two rows farthest from "
        "their own current centres (one row each, the farthest first)")


@pytest.mark.points(1)
def test_pca_transform_of_new_data_uses_the_training_mean(impl, rng):
    X = load_iris().data
    train, test = X[:100], X[100:] + 3.0  # shifted new data: refitting the mean would hide it
    ours = impl.PCA(n_components=2).fit(train)
    ref = SkPCA(n_components=2).fit(train)
    signs = np.sign((ours.components_ * ref.components_).sum(axis=1))
    # float64 SVD of the same matrix
    assert_close(ours.transform(test) * signs, ref.transform(test),
                 "transform(new rows) after fit(train): centre with mean_ from fit", rtol=1e-6,
                 atol=1e-8)


@pytest.mark.points(1)
def test_full_pca_is_a_rotation(impl, rng):
    X = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4)) + 5.0
    pca = impl.PCA(n_components=4).fit(X)
    assert_close(pca.explained_variance_ratio_.sum(), 1.0,
                 "explained_variance_ratio_ summed over all components", atol=1e-12)
    assert_close(pca.inverse_transform(pca.transform(X)), X,
                 "inverse_transform(transform(X)) with every component kept", atol=1e-9)
    assert_close(pca.explained_variance_.sum(), X.var(axis=0, ddof=1).sum(),
                 "total explained variance vs the sum of feature variances (ddof=1)", rtol=1e-9)


@pytest.mark.points(1)
def test_kmeans_plus_plus_on_identical_rows(impl):
    X = np.full((6, 2), 3.5)
    centres = impl.kmeans_plus_plus(X, 3, np.random.default_rng(0))
    check_shape(centres, (3, 2), "kmeans_plus_plus on 6 identical rows, k=3")
    assert np.all(centres == 3.5), (
        "all rows are equal, so every D^2 is 0 and D^2 / sum D^2 is 0 / 0: pick any row (e.g. "
        "uniformly) instead of sampling with NaN probabilities")


@pytest.mark.points(1)
def test_empty_clusters_take_the_farthest_rows_in_order(impl):
    X = np.array([[0.0], [1.0], [2.0], [10.0], [30.0], [45.0]])
    centres = np.array([[1.0], [100.0], [200.0], [40.0]])
    labels = np.array([0, 0, 0, 0, 3, 3])  # clusters 1 and 2 are empty
    new = impl.update_centres(X, labels, centres)
    assert_close(new, [[3.25], [30.0], [10.0], [37.5]], "update_centres with two empty "
                 "clusters: the first empty cluster takes the row farthest from its own "
                 "centre, the next empty one the next farthest", atol=1e-12)


@pytest.mark.points(1)
def test_kmeans_seed_drives_kmeans_plus_plus(impl):
    X = np.random.default_rng(2).normal(size=(60, 2)) * 3
    for seed in (0, 5):
        km = impl.KMeans(n_clusters=3, seed=seed, max_iter=1).fit(X)
        ref = impl.KMeans(n_clusters=3, max_iter=1,
                          init=impl.kmeans_plus_plus(X, 3, np.random.default_rng(seed))).fit(X)
        assert np.array_equal(km.cluster_centers_, ref.cluster_centers_), (
            f"KMeans(seed={seed}) should start from kmeans_plus_plus(X, k, default_rng(seed))")
    pca = impl.PCA(n_components=2).fit(X)
    assert_close(impl.PCA(n_components=2).fit_transform(X), pca.transform(X),
                 "PCA.fit_transform(X) = fit(X).transform(X)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_a_cluster_of_one_row_is_not_empty(impl):
    X = np.array([[0.0], [4.0], [10.0]])
    centres = np.array([[1.0], [10.5]])
    labels = np.array([0, 0, 1])  # cluster 1 holds exactly one row, which is near its centre
    new = impl.update_centres(X, labels, centres)
    assert_close(new, [[2.0], [10.0]], "update_centres with a one-row cluster: its mean is that "
                 "row; only a cluster with NO rows moves to a far row", atol=1e-12)

"""Public graders for s09 unsupervised: distances, k-means++, Lloyd's iterations, PCA."""

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.decomposition import PCA as SkPCA
from sklearn.metrics import adjusted_rand_score

from graders.helpers import assert_close, check_shape


def _match_signs(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Flip each row of `ours` to the sign of the matching row of `ref` (PCA signs are free)."""
    signs = np.sign((ours * ref).sum(axis=1, keepdims=True))
    return ours * np.where(signs == 0, 1.0, signs)


# --- distances and the two Lloyd steps --------------------------------------------------------

@pytest.mark.points(1)
def test_squared_distances_match_the_definition(impl, rng):
    X, Z = rng.normal(size=(9, 4)), rng.normal(size=(6, 4))
    D = impl.squared_distances(X, Z)
    check_shape(D, (9, 6), "squared_distances(X (9, 4), Z (6, 4))")
    # the expansion ||x||^2 + ||z||^2 - 2 x.z loses a few ulps against the direct difference
    assert_close(D, ((X[:, None, :] - Z[None, :, :]) ** 2).sum(-1),
                 "squared_distances (squared, not plain distances)", rtol=1e-9, atol=1e-12)
    assert np.all(impl.squared_distances(X, X) >= 0), (
        "squared_distances(X, X) has negative entries: round-off in the expansion; clip at 0")


@pytest.mark.points(1)
def test_assign_update_and_inertia_on_a_tiny_example(impl):
    X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [12.0, 0.0]])
    centres = np.array([[1.0, 1.0], [9.0, 0.0]])
    labels = impl.assign_clusters(X, centres)
    assert labels.tolist() == [0, 0, 1, 1], f"nearest centres should be [0, 0, 1, 1], got {labels}"
    # squared distances 2 + 2 + 1 + 9 = 14: an exact small-integer sum
    assert_close(impl.inertia(X, centres, labels), 14.0,
                 "inertia = sum of SQUARED distances to the assigned centre", atol=1e-12)
    new = impl.update_centres(X, labels, centres)
    assert_close(new, np.array([[0.0, 1.0], [11.0, 0.0]]), "update_centres: cluster means",
                 atol=1e-12)


# --- k-means++ ------------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_kmeans_plus_plus_samples_by_squared_distance(impl):
    """Three points on a line; given the first centre, the second follows D^2 exactly."""
    X = np.array([[0.0], [1.0], [3.0]])
    expected = {0.0: {1.0: 1 / 10, 3.0: 9 / 10},  # D^2 = 0, 1, 9
                1.0: {0.0: 1 / 5, 3.0: 4 / 5},    # D^2 = 1, 0, 4
                3.0: {0.0: 9 / 13, 1.0: 4 / 13}}  # D^2 = 9, 4, 0
    pairs = [tuple(impl.kmeans_plus_plus(X, 2, np.random.default_rng(seed))[:, 0])
             for seed in range(900)]
    for first, probs in expected.items():
        seconds = [b for a, b in pairs if a == first]
        assert 200 <= len(seconds) <= 400, (
            f"the first centre should be a uniformly random row; row {first} came first in "
            f"{len(seconds)} of 900 runs (about 300 expected)")
        for second, p in probs.items():
            freq = seconds.count(second) / len(seconds)
            # 5 binomial standard deviations: a correct sampler fails this about once in 10^6
            assert abs(freq - p) < 5 * np.sqrt(p * (1 - p) / len(seconds)), (
                f"after a first centre at {first}, the second was {second} in {freq:.2f} of the "
                f"runs; D^2 sampling gives probability {p:.2f}. Sample with p = D^2 / sum D^2 "
                "(squared distances, and not uniformly)")


@pytest.mark.points(1)
def test_kmeans_plus_plus_picks_the_far_group(impl):
    X = np.vstack([np.zeros((95, 2)) + np.random.default_rng(0).normal(0, 0.1, (95, 2)),
                   np.full((5, 2), 50.0)])
    hits = 0
    for seed in range(100):
        centres = impl.kmeans_plus_plus(X, 2, np.random.default_rng(seed))
        check_shape(centres, (2, 2), "kmeans_plus_plus(X, k=2, rng)")
        hits += int((centres[:, 0] > 25).sum() == 1)
    # uniform picks would split the groups in about 10% of runs; D^2 sampling almost always
    assert hits >= 90, (
        f"5 far points and 95 near the origin: k-means++ should put one centre in each group "
        f"nearly every time, it did so in {hits} of 100 runs")


# --- Lloyd's algorithm ----------------------------------------------------------------------------

@pytest.mark.points(2)
def test_inertia_never_increases(impl):
    X, _ = make_blobs(300, centers=6, cluster_std=2.5, random_state=3)
    init = X[:6].copy()  # a poor start, so Lloyd needs many iterations
    km = impl.KMeans(n_clusters=6, init=init, max_iter=100).fit(X)
    hist = np.asarray(km.inertia_history_)
    assert len(hist) >= 3, f"expected several iterations from a poor start, got {len(hist)}"
    # each step is a minimisation; 1e-9 relative covers float64 sums in another order
    rises = np.flatnonzero(np.diff(hist) > 1e-9 * hist[:-1])
    assert len(rises) == 0, (
        f"the inertia went up at iteration {rises[0] + 1}: {hist[rises[0]]:.4f} -> "
        f"{hist[rises[0] + 1]:.4f}. Assign to the nearest centre, then move centres to means.")
    assert km.inertia_ <= hist[-1] + 1e-9 * hist[-1], "inertia_ is above the last history value"


@pytest.mark.points(2)
def test_kmeans_inertia_matches_sklearn_from_the_same_centres(impl):
    X, _ = make_blobs(400, centers=5, cluster_std=2.0, random_state=0)
    init = X[np.random.default_rng(1).choice(400, 5, replace=False)]
    ours = impl.KMeans(n_clusters=5, init=init).fit(X)
    ref = SkKMeans(n_clusters=5, init=init, n_init=1, algorithm="lloyd").fit(X)
    assert abs(ours.inertia_ - ref.inertia_) <= 0.01 * ref.inertia_, (
        f"from the same initial centres, inertia {ours.inertia_:.2f} vs scikit-learn's "
        f"{ref.inertia_:.2f} (1% allowed)")
    assert_close(ours.inertia_, impl.inertia(X, ours.cluster_centers_, ours.labels_),
                 "inertia_ vs inertia(X, cluster_centers_, labels_) (they must agree)",
                 rtol=1e-9)


@pytest.mark.points(1)
def test_kmeans_recovers_planted_blobs(impl):
    X, y = make_blobs(300, centers=[[-6, 0], [0, 6], [6, 0], [0, -6]], cluster_std=0.8,
                      random_state=2)
    km = impl.KMeans(n_clusters=4, seed=0).fit(X)
    check_shape(km.labels_, (300,), "labels_")
    ari = adjusted_rand_score(y, km.labels_)
    assert ari > 0.99, (
        f"four well separated blobs should be recovered exactly (adjusted Rand index 1), got "
        f"{ari:.3f}")


@pytest.mark.points(1)
def test_empty_cluster_is_reseeded(impl):
    X, _ = make_blobs(120, centers=3, cluster_std=1.0, random_state=5)
    init = np.vstack([X[:2], [[1e3, 1e3]]])  # the third centre is far from every point
    km = impl.KMeans(n_clusters=3, init=init).fit(X)
    assert np.all(np.isfinite(km.cluster_centers_)), (
        "a centre became NaN: a cluster with no rows has no mean. Move its centre to the row "
        "farthest from its own centre instead")
    assert len(np.unique(km.labels_)) == 3, (
        f"only {len(np.unique(km.labels_))} of 3 clusters are used: the empty one should have "
        "been re-seeded at a data point")


# --- PCA --------------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_pca_matches_sklearn_up_to_sign(impl):
    X = load_digits().data[:300]
    ours = impl.PCA(n_components=5).fit(X)
    ref = SkPCA(n_components=5).fit(X)
    check_shape(ours.components_, (5, 64), "components_ (n_components, n_features)")
    # two float64 SVD routes of the same matrix
    assert_close(_match_signs(ours.components_, ref.components_), ref.components_,
                 "components_ (each row compared up to its sign)", rtol=1e-6, atol=1e-8)
    assert_close(ours.explained_variance_, ref.explained_variance_,
                 "explained_variance_ = S^2 / (n - 1)", rtol=1e-8)
    assert_close(ours.explained_variance_ratio_, ref.explained_variance_ratio_,
                 "explained_variance_ratio_", rtol=1e-8)


@pytest.mark.points(1)
def test_pca_centres_the_data(impl, rng):
    X = rng.normal(size=(200, 3)) * np.array([3.0, 1.0, 0.3]) + np.array([100.0, -50.0, 20.0])
    pca = impl.PCA(n_components=1).fit(X)
    assert_close(pca.mean_, X.mean(axis=0), "mean_", rtol=1e-12)
    first = np.abs(pca.components_[0])
    assert first[0] > 0.99, (
        f"the first component should follow the widest spread (feature 0), got {first.round(3)}. "
        "Subtract the mean before the SVD, or the first direction points at the mean")
    shifted = X[:5] + np.array([1.0, 2.0, 3.0])
    # transform is affine with the TRAINING mean: moving rows by v moves Z by v @ components_.T
    assert_close(pca.transform(shifted),
                 pca.transform(X[:5]) + np.array([1.0, 2.0, 3.0]) @ pca.components_.T,
                 "transform(new rows): subtract mean_ from fit, not the new rows' own mean",
                 rtol=1e-9, atol=1e-9)


@pytest.mark.points(2)
def test_reconstruction_error_decreases_with_k(impl):
    X = load_digits().data[:200]
    errors = []
    for k in (1, 2, 5, 10, 20, 40):
        pca = impl.PCA(n_components=k).fit(X)
        Z = pca.transform(X)
        check_shape(Z, (200, k), f"transform with n_components={k}")
        X_hat = pca.inverse_transform(Z)
        errors.append(((X - X_hat) ** 2).sum())
        left_out = (np.linalg.svd(X - X.mean(0), compute_uv=False)[k:] ** 2).sum()
        # ||Xc - X_hat||^2 = sum of the discarded S_j^2, up to float64 round-off
        assert_close(errors[-1], left_out, f"squared reconstruction error with k={k} (should "
                     "equal the sum of the discarded squared singular values)", rtol=1e-6)
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), (
        f"reconstruction errors for k = 1, 2, 5, 10, 20, 40 should fall: {np.round(errors)}")


# --- exact loops, stopping, the sign convention -------------------------------------------------

def lloyd_reference(X, centres, max_iter, tol):
    """Lloyd's loop as documented: (centres, inertia after each assignment, n_iter)."""
    centres = centres.copy()
    threshold = tol * X.var(axis=0).mean()
    history = []
    for _ in range(max_iter):
        d2 = ((X[:, None, :] - centres[None]) ** 2).sum(-1)
        labels = d2.argmin(1)
        history.append(d2[np.arange(len(X)), labels].sum())
        new = np.array([X[labels == c].mean(0) for c in range(len(centres))])
        shift = ((new - centres) ** 2).sum()
        centres = new
        if shift <= threshold:
            break
    return centres, np.array(history), len(history)


@pytest.mark.points(2)
def test_lloyd_iterations_equal_a_reference_loop(impl):
    X, _ = make_blobs(150, centers=4, cluster_std=2.0, random_state=7)
    X = X + 1e3  # far from the origin
    init = X[[0, 1, 2, 3]].copy()
    for max_iter, tol in ((1, 1e-4), (3, 1e-4), (300, 1e-4), (300, 0.5), (300, 0.0)):
        km = impl.KMeans(n_clusters=4, init=init, max_iter=max_iter, tol=tol).fit(X)
        centres, history, n_iter = lloyd_reference(X, init, max_iter, tol)
        where = f"KMeans(init=given, max_iter={max_iter}, tol={tol})"
        assert km.n_iter_ == n_iter, (
            f"{where}.n_iter_ is {km.n_iter_}, the reference loop ran {n_iter} iterations: stop "
            "after max_iter updates or once the summed squared centre shift is <= tol * "
            "mean(X.var(axis=0))")
        # the same assignments; means and sums in float64 in another order
        assert_close(km.inertia_history_, history, f"{where}.inertia_history_ (the inertia "
                     "after each assignment step)", rtol=1e-9)
        assert_close(km.cluster_centers_, centres, f"{where}.cluster_centers_", rtol=1e-12)
        assert np.array_equal(km.labels_, impl.assign_clusters(X, km.cluster_centers_)), (
            f"{where}: labels_ must be the assignment to the FINAL cluster_centers_ (when "
            "max_iter stops the loop, the labels of the last assignment step are stale)")
        assert_close(km.inertia_, impl.inertia(X, km.cluster_centers_, km.labels_),
                     f"{where}.inertia_ of the final centres and labels", rtol=1e-12)


@pytest.mark.points(1)
def test_pca_signs_follow_the_documented_convention(impl, rng):
    # a random rotation: no component lies along an axis, so each row's largest entry is its own
    Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    X = rng.normal(size=(40, 5)) * np.array([5.0, 4.0, 3.0, 2.0, 1.0]) @ Q - 7.0
    pca = impl.PCA(n_components=4).fit(X)
    comps = np.asarray(pca.components_)
    biggest = comps[np.arange(4), np.abs(comps).argmax(1)]
    assert np.all(biggest > 0), (
        f"the largest-magnitude entry of each component should be positive, got "
        f"{np.round(biggest, 3).tolist()}: flip a component (and its scores) when it is negative")
    ref = SkPCA(n_components=4).fit(X)
    # float64 SVDs of the same matrix
    assert_close(pca.singular_values_, ref.singular_values_, "singular_values_ (the top k S)",
                 rtol=1e-9)
    assert_close(pca.transform(X) @ comps, (X - X.mean(0)) @ comps.T @ comps,
                 "transform(X) uses the sign-fixed components_", rtol=1e-9, atol=1e-9)

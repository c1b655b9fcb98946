"""Public graders for s00 toolbox: determinism, splits, mini-batches, a leak-free scaler."""

import importlib.util
import random
import sys

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from graders.helpers import assert_close, check_shape, expect_array, expect_self


def _indexed_data(n: int, n_classes: int = 3, seed: int = 0):
    """X whose first column is the row index, so a split can be traced back to rows."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.arange(n), rng.normal(size=(n, 2))])
    y = np.arange(n) % n_classes
    return X, y


# --- set_seed ----------------------------------------------------------------------------

@pytest.mark.points(1)
def test_set_seed_makes_random_and_numpy_repeatable(impl):
    impl.set_seed(123)
    ours = (random.random(), np.random.rand(3).tolist())
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand(3).tolist())
    assert ours == expected, (
        "set_seed(123) followed by random.random() and np.random.rand(3) gave different "
        "numbers than random.seed(123) and np.random.seed(123): seed both global generators.")


@pytest.mark.points(1)
def test_set_seed_returns_a_seeded_generator(impl):
    gen = impl.set_seed(5)
    assert isinstance(gen, np.random.Generator), (
        f"set_seed should return np.random.default_rng(seed), got {type(gen).__name__}")
    assert gen.integers(0, 10**9, 4).tolist() == \
        np.random.default_rng(5).integers(0, 10**9, 4).tolist(), (
        "the generator returned by set_seed(5) is not seeded with 5")


@pytest.mark.points(1)
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_set_seed_seeds_torch(impl):
    import torch

    impl.set_seed(7)
    ours = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(ours, torch.rand(3)), (
        "torch is installed but set_seed(7) did not seed it: call torch.manual_seed(seed).")


# --- train_val_test_split --------------------------------------------------------------------

@pytest.mark.points(2)
def test_split_sizes_and_disjointness(impl):
    X, y = _indexed_data(200)
    s = impl.train_val_test_split(X, y, val_frac=0.2, test_frac=0.1, seed=0)
    sizes = (len(s.X_train), len(s.X_val), len(s.X_test))
    assert sizes == (140, 40, 20), (
        f"with n=200, val_frac=0.2, test_frac=0.1 the sizes (train, val, test) should be "
        f"(140, 40, 20), got {sizes}")
    ids = [set(part[:, 0].astype(int)) for part in (s.X_train, s.X_val, s.X_test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]), (
        "some rows appear in two splits: the splits must be disjoint")
    assert set.union(*ids) == set(range(200)), "some rows are in no split at all"


@pytest.mark.points(1)
def test_split_keeps_rows_paired(impl):
    X, y = _indexed_data(90)
    s = impl.train_val_test_split(X, y, seed=3)
    for Xs, ys, name in ((s.X_train, s.y_train, "train"), (s.X_val, s.y_val, "val"),
                         (s.X_test, s.y_test, "test")):
        check_shape(ys, (len(Xs),), f"y_{name}")
        assert np.array_equal(ys, y[Xs[:, 0].astype(int)]), (
            f"in the {name} split, X rows and y labels no longer belong together: index X "
            "and y with the same permutation.")


@pytest.mark.points(1)
def test_split_is_deterministic_and_depends_on_the_seed(impl):
    X, y = _indexed_data(100)
    a = impl.train_val_test_split(X, y, seed=11)
    b = impl.train_val_test_split(X, y, seed=11)
    c = impl.train_val_test_split(X, y, seed=12)
    assert np.array_equal(a.X_test, b.X_test), "the same seed gave two different splits"
    assert not np.array_equal(a.X_test, c.X_test), (
        "seeds 11 and 12 gave the same test split: use np.random.default_rng(seed)")


@pytest.mark.points(1)
def test_split_is_shuffled(impl):
    X, y = _indexed_data(100)
    s = impl.train_val_test_split(X, y, seed=0)
    test_ids = np.sort(s.X_test[:, 0])
    assert not (np.array_equal(test_ids, np.arange(85, 100))
                or np.array_equal(test_ids, np.arange(15))), (
        "the test split is the first or last 15 rows: shuffle before cutting, or a sorted "
        "data set gives a test set unlike the training set.")


@pytest.mark.points(2)
def test_stratified_split_keeps_class_proportions(impl):
    y = np.array([0] * 80 + [1] * 20)
    X = np.arange(100, dtype=float)[:, None]
    s = impl.train_val_test_split(X, y, val_frac=0.2, test_frac=0.2, seed=1, stratify=True)
    for ys, name in ((s.y_val, "val"), (s.y_test, "test")):
        counts = np.bincount(ys, minlength=2).tolist()
        assert counts == [16, 4], (
            f"stratified {name} split should hold 16 of class 0 and 4 of class 1 "
            f"(round(0.2 * 80), round(0.2 * 20)), got {counts}")


# --- iterate_minibatches --------------------------------------------------------------------

@pytest.mark.points(2)
def test_minibatches_cover_every_sample_exactly_once(impl):
    X, y = _indexed_data(103)
    seen = []
    for xb, yb in impl.iterate_minibatches(X, y, 10, rng=np.random.default_rng(0)):
        assert np.array_equal(yb, y[xb[:, 0].astype(int)]), "a batch's X and y are not paired"
        seen.extend(xb[:, 0].astype(int).tolist())
    assert sorted(seen) == list(range(103)), (
        f"one epoch should visit each of the 103 rows exactly once; it visited {len(seen)} "
        f"rows, {len(set(seen))} distinct")
    assert seen != list(range(103)), "with an rng the rows should come in a shuffled order"


@pytest.mark.points(1)
def test_minibatch_sizes_and_drop_last(impl):
    X, y = _indexed_data(103)
    sizes = [len(xb) for xb, _ in impl.iterate_minibatches(X, y, 25)]
    assert sizes == [25, 25, 25, 25, 3], f"batch sizes for n=103, batch 25: got {sizes}"
    sizes = [len(xb) for xb, _ in impl.iterate_minibatches(X, y, 25, drop_last=True)]
    assert sizes == [25, 25, 25, 25], f"with drop_last=True: expected 4 full batches, {sizes}"


@pytest.mark.points(1)
def test_minibatches_without_rng_keep_the_order(impl):
    X, y = _indexed_data(12)
    order = [int(i) for xb, _ in impl.iterate_minibatches(X, y, 5) for i in xb[:, 0]]
    assert order == list(range(12)), f"without rng the rows should come in order, got {order}"


# --- Standardizer ---------------------------------------------------------------------------

@pytest.mark.points(1)
def test_standardizer_matches_sklearn(impl, rng):
    X = rng.normal(3.0, 2.0, size=(50, 4))
    ours = impl.Standardizer().fit_transform(X)
    # float64 arithmetic on the same formula: only rounding differences remain
    assert_close(ours, StandardScaler().fit_transform(X), "Standardizer().fit_transform(X)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_standardizer_uses_training_statistics_only(impl, rng):
    X_train = rng.normal(0.0, 1.0, size=(40, 3))
    X_test = rng.normal(5.0, 3.0, size=(10, 3))  # a shifted test set: leakage would hide it
    scaler = impl.Standardizer()
    scaler.fit(X_train)
    expected = (X_test - X_train.mean(0)) / X_train.std(0)
    assert_close(scaler.transform(X_test), expected,
                 "transform(X_test) after fit(X_train) (must use the TRAINING mean and std)",
                 rtol=1e-10, atol=1e-12)
    assert_close(scaler.mean_, X_train.mean(0), "mean_", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_standardizer_constant_feature_maps_to_zero(impl):
    X = np.array([[1.0, 7.0], [2.0, 7.0], [3.0, 7.0]])
    scaler = impl.Standardizer()
    Z = expect_array(scaler.fit_transform(X), "Standardizer.fit_transform", ndim=2)
    assert np.all(np.isfinite(Z)), (
        "a constant column produced NaN or inf: its std is 0, so divide by 1.0 instead")
    assert_close(Z[:, 1], np.zeros(3), "the constant column after scaling", atol=0)
    assert_close(scaler.scale_, [np.std([1.0, 2.0, 3.0]), 1.0],
                 "scale_ (the docstring: the population std, a 0 replaced by exactly 1.0)",
                 rtol=1e-12, atol=0)


@pytest.mark.points(1)
def test_standardizer_fit_returns_self_and_methods_return_arrays(impl, rng):
    X = rng.normal(size=(8, 3))
    scaler = impl.Standardizer()
    assert scaler.mean_ is None and scaler.scale_ is None, (
        "a new Standardizer should have mean_ = scale_ = None until fit is called")
    expect_self(scaler.fit(X), scaler, "Standardizer.fit")
    for name in ("transform", "inverse_transform"):
        out = expect_array(getattr(scaler, name)(X), f"Standardizer.{name}", ndim=2)
        assert out.dtype == np.float64, (
            f"Standardizer.{name} should return float64 (the docstring), got {out.dtype}")


@pytest.mark.points(2)
def test_minibatches_follow_rng_permutation_exactly(impl):
    """The docstring's draw: the rows in the order rng.permutation(n), cut in order."""
    X, y = _indexed_data(23)
    order = np.random.default_rng(42).permutation(23)
    expected = [order[i:i + 5].tolist() for i in range(0, 23, 5)]
    got = [xb[:, 0].astype(int).tolist()
           for xb, _ in impl.iterate_minibatches(X, y, 5, rng=np.random.default_rng(42))]
    assert got == expected, (
        f"with rng=np.random.default_rng(42), n=23 and batch_size=5 the batches should be the "
        f"rows rng.permutation(23) gives, cut in order: {expected}; got {got}. Draw the "
        "order once per epoch with rng.permutation(len(X)) and slice it, the short batch last.")


@pytest.mark.points(1)
def test_stratified_split_with_three_classes_is_a_partition(impl):
    X, y = _indexed_data(150)  # 50 rows of each of 3 classes
    s = impl.train_val_test_split(X, y, val_frac=0.2, test_frac=0.2, seed=5, stratify=True)
    ids = [part[:, 0].astype(int).tolist() for part in (s.X_train, s.X_val, s.X_test)]
    every = sorted(i for part in ids for i in part)
    assert every == list(range(150)), (
        f"a stratified split of 150 rows in 3 classes should use every row exactly once; "
        f"it used {len(every)} rows, {len(set(every))} distinct: take each class's rows "
        "(y == c) once, then cut them")
    counts = [np.bincount(part, minlength=3).tolist() for part in (s.y_val, s.y_test)]
    assert counts == [[10, 10, 10], [10, 10, 10]], (
        f"each class of 50 should put round(0.2 * 50) = 10 rows in val and in test, got "
        f"val {counts[0]}, test {counts[1]}")


@pytest.mark.points(1)
def test_split_sizes_round_non_integral_fractions(impl):
    for n, val_frac, test_frac, want in ((101, 0.15, 0.25, (61, 15, 25)),
                                         (105, 0.15, 0.05, (84, 16, 5))):
        X, y = _indexed_data(n)
        s = impl.train_val_test_split(X, y, val_frac=val_frac, test_frac=test_frac, seed=0)
        sizes = (len(s.X_train), len(s.X_val), len(s.X_test))
        assert sizes == want, (
            f"n={n}, val_frac={val_frac}, test_frac={test_frac}: n_val = round({val_frac} * "
            f"{n}) = {want[1]}, n_test = round({test_frac} * {n}) = {want[2]}, so (train, val, "
            f"test) should be {want}; got {sizes}. Round, do not truncate or take the ceiling.")


@pytest.mark.points(1)
def test_set_seed_works_without_torch_and_mlx(impl, monkeypatch):
    for name in ("torch", "mlx", "mlx.core"):
        monkeypatch.setitem(sys.modules, name, None)  # `import torch` now raises ImportError
    try:
        gen = impl.set_seed(31)
    except ImportError as exc:
        raise AssertionError(
            f"set_seed(31) raised ImportError ({exc}) on a machine without torch or MLX: "
            "they are optional, so catch ImportError around each of their imports") from exc
    assert random.random() == random.Random(31).random(), "set_seed(31) did not seed random"
    assert gen.integers(0, 10**9) == np.random.default_rng(31).integers(0, 10**9), (
        "without torch and MLX, set_seed(31) should still return np.random.default_rng(31)")

"""Hidden graders for s00 toolbox: the same ideas on inputs the public tests do not show."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import StandardScaler

from graders.helpers import assert_close, expect_array


@pytest.mark.points(2)
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), batch=st.integers(1, 70), seed=st.integers(0, 2**16),
       drop_last=st.booleans())
def test_minibatch_epoch_property(impl, n, batch, seed, drop_last):
    X = np.arange(n, dtype=float)[:, None]
    y = np.arange(n)
    batches = list(impl.iterate_minibatches(X, y, batch, rng=np.random.default_rng(seed),
                                            drop_last=drop_last))
    seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], int)
    full = (n // batch) * batch if drop_last else n
    assert len(seen) == full and len(set(seen.tolist())) == full, (
        f"n={n}, batch_size={batch}, drop_last={drop_last}: an epoch must visit {full} "
        f"distinct rows, it visited {len(seen)} ({len(set(seen.tolist()))} distinct)")
    assert all(len(xb) == batch for xb, _ in batches[:-1]), "only the last batch may be short"


@pytest.mark.points(2)
def test_stratified_split_keeps_a_rare_class_in_every_split(impl):
    y = np.array([0] * 190 + [1] * 10)
    X = np.arange(200, dtype=float)[:, None]
    s = impl.train_val_test_split(X, y, val_frac=0.2, test_frac=0.2, seed=4, stratify=True)
    counts = [int((part == 1).sum()) for part in (s.y_train, s.y_val, s.y_test)]
    assert counts == [6, 2, 2], (
        f"a 5% class should keep its share in train / val / test, got counts {counts}")


@pytest.mark.points(1)
def test_split_with_no_validation_set(impl):
    X = np.arange(50, dtype=float)[:, None]
    y = np.zeros(50, dtype=int)
    s = impl.train_val_test_split(X, y, val_frac=0.0, test_frac=0.2, seed=0)
    assert (len(s.X_train), len(s.X_val), len(s.X_test)) == (40, 0, 10), (
        "val_frac=0 should give an empty validation split")


@pytest.mark.points(1)
def test_inverse_transform_round_trips(impl, rng):
    X = rng.normal(-2.0, 4.0, size=(30, 5))
    X[:, 2] = 1.5  # a constant column must round-trip too
    scaler = impl.Standardizer()
    scaler.fit(X)
    assert_close(scaler.inverse_transform(scaler.transform(X)), X,
                 "inverse_transform(transform(X))", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_standardizer_transform_is_stateless(impl, rng):
    """transform must not refit: scaling a batch alone or with others gives the same rows."""
    scaler = impl.Standardizer()
    scaler.fit(rng.normal(size=(20, 2)))
    X_new = rng.normal(10.0, 5.0, size=(6, 2))
    assert_close(scaler.transform(X_new[:2]), scaler.transform(X_new)[:2],
                 "transform of 2 rows vs the same rows inside a larger batch", rtol=1e-12,
                 atol=1e-12)


@pytest.mark.points(1)
@pytest.mark.skipif(importlib.util.find_spec("mlx") is None, reason="mlx is not installed")
def test_set_seed_seeds_mlx(impl):
    import mlx.core as mx

    impl.set_seed(9)
    ours = np.array(mx.random.uniform(shape=(3,)))
    mx.random.seed(9)
    assert np.array_equal(ours, np.array(mx.random.uniform(shape=(3,)))), (
        "mlx is installed but set_seed did not seed it: call mx.random.seed(seed)")


@pytest.mark.points(1)
@pytest.mark.parametrize("labels", ["int32", "str", "one_class"])
def test_stratified_split_with_other_label_types(impl, labels):
    y = {"int32": np.array([3, 7] * 30, dtype=np.int32),
         "str": np.array(["cat", "dog", "dog"] * 20),
         "one_class": np.full(60, 2)}[labels]
    X = np.arange(60, dtype=float)[:, None]
    s = impl.train_val_test_split(X, y, val_frac=0.25, test_frac=0.25, seed=2, stratify=True)
    ids = sorted(int(i) for part in (s.X_train, s.X_val, s.X_test) for i in part[:, 0])
    assert ids == list(range(60)), (
        f"a stratified split with {labels} labels should use each row once, got {len(ids)} "
        f"rows ({len(set(ids))} distinct)")
    for part, Xs, name in ((s.y_val, s.X_val, "val"), (s.y_test, s.X_test, "test")):
        assert part.dtype == y.dtype and np.array_equal(part, y[Xs[:, 0].astype(int)]), (
            f"with {labels} labels the {name} labels must be the rows' own labels, same dtype")
        for c in np.unique(y):
            want = round(0.25 * int(np.sum(y == c)))
            assert int(np.sum(part == c)) == want, (
                f"with {labels} labels class {c!r} should put {want} rows in {name}, got "
                f"{int(np.sum(part == c))}")


@pytest.mark.points(1)
def test_drop_last_with_large_batches(impl):
    X = np.arange(1000, dtype=float)[:, None]
    y = np.arange(1000)
    sizes = [len(xb) for xb, _ in impl.iterate_minibatches(X, y, 300, drop_last=True)]
    assert sizes == [300, 300, 300], (
        f"n=1000, batch_size=300, drop_last=True should give three full batches, got {sizes}"
        ": compare sizes with <, not `is` (ints above 256 are distinct objects)")
    sizes = [len(xb) for xb, _ in impl.iterate_minibatches(X, y, 1500)]
    assert sizes == [1000], f"a batch larger than the data is one batch of all rows: {sizes}"


@pytest.mark.points(1)
@pytest.mark.parametrize("kind", ["far_from_origin", "float32", "int"])
def test_standardizer_on_other_inputs(impl, rng, kind):
    base = rng.normal(0.0, 1.0, size=(40, 3))
    X = {"far_from_origin": 1e8 + base, "float32": base.astype(np.float32),
         "int": np.round(base * 10).astype(np.int64)}[kind]
    scaler = impl.Standardizer()
    scaler.fit(X)
    Z = expect_array(scaler.transform(X), "Standardizer.transform", ndim=2)
    assert Z.dtype == np.float64, f"transform of {kind} input should give float64, got {Z.dtype}"
    expected = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
    # float64 on the same data; two-pass mean / std keeps 1e8-offset data at ~1e-7 relative
    assert_close(Z, expected, f"Standardizer on {kind} data vs StandardScaler", rtol=1e-6,
                 atol=1e-6)


@pytest.mark.points(1)
def test_inverse_transform_of_new_rows_keeps_constant_columns(impl):
    scaler = impl.Standardizer()
    scaler.fit(np.array([[0.0, 4.0], [2.0, 4.0]]))
    back = expect_array(scaler.inverse_transform(np.array([[1.0, 2.0]])),
                        "Standardizer.inverse_transform")
    assert_close(back, [[2.0, 6.0]], "inverse_transform([[1, 2]]) after fitting a constant "
                 "column 4 (its scale_ is 1.0, so z = 2 maps back to 4 + 2)", atol=1e-12)

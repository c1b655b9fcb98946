"""Hidden graders for s00 toolbox: the same ideas on inputs the public tests do not show."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close


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
    scaler = impl.Standardizer().fit(X)
    assert_close(scaler.inverse_transform(scaler.transform(X)), X,
                 "inverse_transform(transform(X))", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_standardizer_transform_is_stateless(impl, rng):
    """transform must not refit: scaling a batch alone or with others gives the same rows."""
    scaler = impl.Standardizer().fit(rng.normal(size=(20, 2)))
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

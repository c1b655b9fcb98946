"""Hidden graders for s07 ensembles: properties, determinism, decorrelation, boosting oracles."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_wine
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import train_test_split

from graders.helpers import assert_close


@pytest.mark.points(1)
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 200), seed=st.integers(0, 10_000))
def test_bootstrap_property(impl, n, seed):
    idx, oob = impl.bootstrap_sample(n, np.random.default_rng(seed))
    idx = np.asarray(idx)
    assert idx.shape == (n,) and idx.min() >= 0 and idx.max() < n, (
        f"bootstrap_sample(n={n}) must return n indices in 0..n-1")
    assert np.array_equal(np.asarray(oob, bool), np.bincount(idx, minlength=n) == 0), (
        "oob must mark exactly the rows that were never drawn")
    again, _ = impl.bootstrap_sample(n, np.random.default_rng(seed))
    assert np.array_equal(idx, again), "the same generator state must give the same sample"


@pytest.mark.points(1)
def test_out_of_bag_share_over_many_draws(impl):
    rng = np.random.default_rng(5)
    shares = [np.mean(impl.bootstrap_sample(50, rng)[1]) for _ in range(400)]
    # E = (1 - 1/50)^50 = 0.364; the mean of 400 draws has sd ~0.003
    assert abs(np.mean(shares) - (1 - 1 / 50) ** 50) < 0.015, (
        f"the average out-of-bag share is {np.mean(shares):.3f}, expected (1 - 1/n)^n = 0.364")


@pytest.mark.points(1)
def test_forest_trees_see_different_bootstrap_samples(impl, rng):
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int)
    forest = impl.RandomForestClassifier(n_estimators=6, seed=2).fit(X, y)
    masks = [np.asarray(m) for m in forest.oob_masks_]
    distinct = len({m.tobytes() for m in masks})
    assert distinct == 6, (
        f"only {distinct} different out-of-bag masks among 6 trees: every tree must draw a "
        "fresh bootstrap sample from ONE generator (do not re-seed it per tree)")


@pytest.mark.points(1)
def test_forest_is_deterministic_under_its_seed(impl, rng):
    X = rng.normal(size=(80, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    X_new = rng.normal(size=(40, 5))
    a = impl.RandomForestClassifier(n_estimators=8, seed=7).fit(X, y).predict_proba(X_new)
    b = impl.RandomForestClassifier(n_estimators=8, seed=7).fit(X, y).predict_proba(X_new)
    c = impl.RandomForestClassifier(n_estimators=8, seed=8).fit(X, y).predict_proba(X_new)
    assert np.array_equal(a, b), "two forests with the same seed must predict identically"
    assert not np.array_equal(a, c), "forests with seeds 7 and 8 predicted identically"


@pytest.mark.points(1)
def test_multiclass_forest_on_wine(impl):
    X, y = load_wine(return_X_y=True)
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    Xtr, Xte, ytr, yte = train_test_split(X, names, test_size=0.4, random_state=0, stratify=y)
    forest = impl.RandomForestClassifier(n_estimators=25, seed=0).fit(Xtr, ytr)
    acc = np.mean(forest.predict(Xte) == yte)
    assert acc >= 0.9, f"a 25-tree forest on wine should reach >= 0.90 test accuracy, got {acc:.3f}"
    assert 0.85 <= forest.oob_score_ <= 1.0, (
        f"wine's OOB accuracy should be high (~0.95), got {forest.oob_score_:.3f}")
    assert_close(forest.predict_proba(Xte).sum(1), np.ones(len(Xte)), "predict_proba rows sum",
                 rtol=1e-12)


@pytest.mark.points(1)
def test_oob_with_a_single_tree_skips_rows_without_votes(impl, rng):
    X = rng.normal(size=(50, 2))
    y = (X[:, 0] > 0).astype(int)
    forest = impl.RandomForestClassifier(n_estimators=1, seed=0).fit(X, y)
    oob = np.asarray(forest.oob_masks_[0])
    assert np.all(np.isnan(forest.oob_decision_function_[~oob])), (
        "rows that every tree trained on have no out-of-bag vote: their "
        "oob_decision_function_ row should be NaN, not a made-up value")
    expected = np.mean(forest.trees_[0].predict(X[oob]).argmax(1) == y[oob])
    assert_close(forest.oob_score_, expected, "oob_score_ of a 1-tree forest (accuracy on the "
                 "tree's out-of-bag rows only)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_boosting_matches_sklearn_on_new_rows(impl):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(250, 4))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + rng.normal(0, 0.1, size=250)
    X_new = rng.normal(size=(100, 4))
    ours = impl.GradientBoostingRegressor(n_estimators=25, learning_rate=0.5, max_depth=2,
                                          min_samples_leaf=10).fit(X, y)
    ref = GradientBoostingRegressor(n_estimators=25, learning_rate=0.5, max_depth=2,
                                    min_samples_leaf=10, random_state=0).fit(X, y)
    assert_close(ours.init_, y.mean(), "init_ (F_0 = mean(y))", rtol=1e-12)
    # min_samples_leaf=10 rules out tied one-row splits: the same trees, so the same values
    for stage, (a, b) in enumerate(zip(ours.staged_predict(X_new), ref.staged_predict(X_new),
                                       strict=True)):
        assert_close(a, b, f"staged_predict at stage {stage + 1} on new rows vs sklearn",
                     rtol=1e-9, atol=1e-7)


@pytest.mark.points(1)
def test_shrinkage_slows_the_first_stages(impl, rng):
    X = rng.normal(size=(150, 2))
    y = 3 * X[:, 0] + rng.normal(0, 0.1, size=150)
    fast = impl.GradientBoostingRegressor(n_estimators=3, learning_rate=1.0, max_depth=2).fit(X, y)
    slow = impl.GradientBoostingRegressor(n_estimators=3, learning_rate=0.1, max_depth=2).fit(X, y)
    assert slow.train_loss_[0] > 0.7 * np.var(y), (
        f"with learning_rate=0.1 one tree removes at most ~20% of the loss; the first stage's "
        f"MSE is {slow.train_loss_[0]:.3f} of var(y) {np.var(y):.3f}: scale each tree by it")
    assert fast.train_loss_[0] < slow.train_loss_[0], "learning_rate=1 must fit faster than 0.1"
    first = slow.init_ + 0.1 * slow.trees_[0].predict(X)[:, 0]
    assert_close(next(iter(slow.staged_predict(X))), first, "the first stage: init_ + "
                 "learning_rate * tree_1(X)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_staged_predictions_can_be_kept(impl, rng):
    X = rng.normal(size=(60, 2))
    y = X[:, 0] ** 2 + rng.normal(0, 0.1, size=60)
    model = impl.GradientBoostingRegressor(n_estimators=4, learning_rate=0.3, max_depth=2).fit(X, y)
    stages = list(model.staged_predict(X[:10]))
    assert len(stages) == 4, f"staged_predict should yield 4 stages, got {len(stages)}"
    F = np.full(10, y.mean())
    for m, (stage, tree) in enumerate(zip(stages, model.trees_, strict=True)):
        F = F + 0.3 * tree.predict(X[:10])[:, 0]
        assert_close(stage, F, f"stage {m + 1} of list(staged_predict(X)): each yielded array "
                     "must keep its own values (yield a new array, do not update one in place "
                     "after yielding it)", rtol=1e-12, atol=1e-12)
    assert_close(model.predict(X[:10]), F, "predict (the last stage)", rtol=1e-12, atol=1e-12)
    loss = [np.mean((y - (y.mean() + 0.3 * sum(t.predict(X)[:, 0] for t in model.trees_[:m])))
                    ** 2) for m in range(1, 5)]
    assert_close(model.train_loss_, loss, "train_loss_[m-1]: the training MSE AFTER stage m",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_feature_subset_compares_sqrt_by_value(impl):
    # the option read from a config file: equal to "sqrt", but not the literal's object
    configured = "".join(["sq", "rt"])
    f = np.asarray(impl.feature_subset(16, configured, np.random.default_rng(0)))
    assert len(f) == 4, (
        f"feature_subset(16, max_features=<a str equal to 'sqrt'>) returned {len(f)} features, "
        "expected int(sqrt(16)) = 4: compare the string with ==, not `is`")

"""Public graders for s07 ensembles: bootstrap, feature subsets, forests, OOB, boosting."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification, make_moons
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.tree import DecisionTreeClassifier

from graders.helpers import assert_close, check_shape

# --- building blocks ---------------------------------------------------------------------------


@pytest.mark.points(2)
def test_bootstrap_draws_with_replacement(impl):
    idx, oob = impl.bootstrap_sample(1000, np.random.default_rng(0))
    check_shape(idx, (1000,), "bootstrap_sample(1000, rng) indices")
    check_shape(oob, (1000,), "bootstrap_sample(1000, rng) out-of-bag mask")
    assert idx.min() >= 0 and idx.max() < 1000, "indices must lie in 0..n-1"
    n_unique = len(np.unique(idx))
    assert n_unique < 1000, (
        "all 1000 drawn indices are distinct: that is a permutation, i.e. sampling WITHOUT "
        "replacement. A bootstrap draws n rows with replacement (rng.integers(0, n, n))")
    expected_oob = ~np.isin(np.arange(1000), idx)
    assert np.array_equal(np.asarray(oob, dtype=bool), expected_oob), (
        "the out-of-bag mask must be True exactly for the rows that idx never drew")
    share = expected_oob.mean()
    # (1 - 1/n)^n -> 1/e = 0.368; the binomial spread at n = 1000 is ~0.015
    assert 0.32 < share < 0.42, f"{share:.3f} of rows are out of bag; expected ~1/e = 0.368"


@pytest.mark.points(1)
def test_feature_subset_sizes_and_distinct_features(impl):
    rng = np.random.default_rng(1)
    assert np.array_equal(impl.feature_subset(7, None, rng), np.arange(7)), (
        "max_features=None means every feature is a candidate")
    counts = np.zeros(30)
    for _ in range(300):
        f = np.asarray(impl.feature_subset(30, "sqrt", rng))
        assert len(f) == 5, f"'sqrt' of 30 features is int(sqrt(30)) = 5, got {len(f)}"
        assert len(np.unique(f)) == len(f), f"features repeat in {f.tolist()}: draw without "\
            "replacement, or a split sees fewer candidates than max_features"
        counts[f] += 1
    assert counts.min() > 0, "some feature was never drawn in 300 subsets: draw uniformly"
    assert len(impl.feature_subset(4, 10, rng)) == 4, "an int larger than d means all d features"


# --- random forest -----------------------------------------------------------------------------

@pytest.mark.points(2)
def test_forest_and_bagging_beat_a_single_tree_on_held_out_data(impl):
    X, y = make_classification(400, 10, n_informative=4, n_redundant=2, flip_y=0.1,
                               random_state=0)  # 10% flipped labels: a deep tree memorises them
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=0)
    tree = DecisionTreeClassifier(random_state=0).fit(Xtr, ytr).score(Xte, yte)
    for name, max_features in (("random forest", "sqrt"), ("bagging", None)):
        model = impl.RandomForestClassifier(n_estimators=30, max_features=max_features, seed=0)
        ours = np.mean(model.fit(Xtr, ytr).predict(Xte) == yte)
        # seen: ensembles 0.81-0.86, single trees 0.72-0.78 over seeds
        assert ours > tree + 0.04, (
            f"{name} of 30 trees scores {ours:.3f} on held-out data, a single deep tree "
            f"{tree:.3f}: averaging bootstrapped trees should cut the variance clearly")


@pytest.mark.points(2)
def test_forest_accuracy_close_to_sklearn_on_breast_cancer(impl):
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    ours = np.mean(impl.RandomForestClassifier(n_estimators=25, seed=0).fit(Xtr, ytr)
                   .predict(Xte) == yte)
    ref = np.mean([RandomForestClassifier(n_estimators=50, random_state=s).fit(Xtr, ytr)
                   .score(Xte, yte) for s in range(3)])
    # both are random; over 285 test rows seed-to-seed spread is about one point (25 trees
    # of ours scored 0.937-0.951 over seeds 0-5 against sklearn's 50-tree 0.939)
    assert abs(ours - ref) <= 0.02, (
        f"25-tree forest on breast_cancer: test accuracy {ours:.3f}, sklearn's {ref:.3f} "
        "(mean of 3 seeds); more than 2 points apart")


@pytest.mark.points(2)
def test_oob_score_is_close_to_cross_validation(impl):
    X, y = make_moons(200, noise=0.35, random_state=0)
    forest = impl.RandomForestClassifier(n_estimators=30, seed=0).fit(X, y)
    # 3 folds keep it fast; over forest seeds the gap to 3-fold CV was 0.005-0.04
    folds = StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)
    cv = np.mean([np.mean(impl.RandomForestClassifier(n_estimators=30, seed=0)
                          .fit(X[tr], y[tr]).predict(X[va]) == y[va]) for tr, va in folds])
    train = np.mean(forest.predict(X) == y)
    assert abs(forest.oob_score_ - cv) <= 0.05, (
        f"oob_score_ = {forest.oob_score_:.3f}, 3-fold CV accuracy {cv:.3f} (training accuracy "
        f"{train:.3f}). The OOB score must vote each row only with trees that did NOT train on it")


@pytest.mark.points(1)
def test_oob_votes_come_from_out_of_bag_trees_only(impl, rng):
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    forest = impl.RandomForestClassifier(n_estimators=15, seed=3).fit(X, y)
    assert len(forest.trees_) == 15 and len(forest.oob_masks_) == 15, (
        "keep one tree and one out-of-bag mask per estimator (trees_, oob_masks_)")
    votes = sum(np.where(m[:, None], t.predict(X), 0.0)
                for t, m in zip(forest.trees_, forest.oob_masks_, strict=True))
    seen = votes.sum(1) > 0
    assert_close(forest.oob_decision_function_[seen], votes[seen] / votes[seen].sum(1,
                 keepdims=True), "oob_decision_function_ (the average of the out-of-bag trees' "
                 "class proportions)", rtol=1e-9, atol=1e-12)
    expected = np.mean(votes[seen].argmax(1) == y[seen])
    assert_close(forest.oob_score_, expected, "oob_score_", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_predict_proba_averages_the_trees(impl, rng):
    X = rng.normal(size=(60, 3))
    y = rng.choice(["a", "b", "c"], size=60)
    forest = impl.RandomForestClassifier(n_estimators=7, seed=1).fit(X, y)
    proba = forest.predict_proba(X[:10])
    check_shape(proba, (10, 3), "predict_proba on 10 rows, 3 classes")
    assert_close(proba, np.mean([t.predict(X[:10]) for t in forest.trees_], axis=0),
                 "predict_proba (the mean of the trees' leaf proportions)", rtol=1e-12)
    assert set(forest.predict(X)) <= {"a", "b", "c"}, "predict must return the original labels"


# --- gradient boosting -------------------------------------------------------------------------

@pytest.mark.points(2)
def test_boosting_matches_sklearn(impl):
    X, y = load_diabetes(return_X_y=True)
    ours = impl.GradientBoostingRegressor(n_estimators=40, learning_rate=0.1,
                                          max_depth=3).fit(X, y)
    ref = GradientBoostingRegressor(n_estimators=40, learning_rate=0.1, max_depth=3,
                                    random_state=0).fit(X, y)
    # the same greedy trees on the same residuals: agreement to float64 rounding
    assert_close(ours.predict(X), ref.predict(X), "GradientBoostingRegressor(40 trees, lr 0.1, "
                 "depth 3) training predictions vs sklearn: start at mean(y), fit each tree to "
                 "the residuals y - F, add learning_rate * tree", rtol=1e-9, atol=1e-7)
    assert_close(ours.train_loss_, ref.train_score_, "train_loss_ (MSE after each stage) vs "
                 "sklearn's train_score_", rtol=1e-9, atol=1e-7)


@pytest.mark.points(1)
def test_boosting_training_loss_decreases_monotonically(impl, rng):
    X = rng.uniform(-2, 2, size=(200, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + rng.normal(0, 0.2, size=200)
    model = impl.GradientBoostingRegressor(n_estimators=60, learning_rate=0.2,
                                           max_depth=2).fit(X, y)
    loss = np.asarray(model.train_loss_)
    check_shape(loss, (60,), "train_loss_ (one entry per stage)")
    assert np.all(np.diff(loss) <= 1e-12), (
        f"the training loss rose at stage {int(np.argmax(np.diff(loss) > 1e-12)) + 1}: each tree "
        "must be fitted to the current residuals y - F, so adding it can only help")
    assert loss[-1] < 0.3 * np.var(y), (
        f"after 60 stages the training MSE is {loss[-1]:.3f}, var(y) = {np.var(y):.3f}: the "
        "ensemble barely learned")


# --- the documented draws, and the forest as an exact reference loop ------------------------

@pytest.mark.points(1)
def test_bootstrap_and_feature_subset_are_the_documented_draws(impl):
    for seed in (0, 9):
        rng, ref = np.random.default_rng(seed), np.random.default_rng(seed)
        idx, _ = impl.bootstrap_sample(37, rng)
        assert np.array_equal(idx, ref.integers(0, 37, size=37)), (
            f"bootstrap_sample(37, default_rng({seed})) should return rng.integers(0, n, size=n) "
            "exactly: the forest's trees are reproducible only if every draw is the documented one")
        f = impl.feature_subset(10, 4, rng)
        assert np.array_equal(f, np.sort(ref.choice(10, 4, replace=False))), (
            f"feature_subset(10, 4, rng) returned {np.asarray(f).tolist()}: draw "
            "np.sort(rng.choice(d, k, replace=False)) from the generator it is given")
        f = impl.feature_subset(10, "sqrt", rng)
        assert np.array_equal(f, np.sort(ref.choice(10, 3, replace=False))), (
            "feature_subset(10, 'sqrt', rng) draws max(1, int(sqrt(10))) = 3 features")
        assert np.array_equal(impl.feature_subset(10, None, rng), np.arange(10)), (
            "max_features=None: every feature, in order")
        one = impl.feature_subset(3, "sqrt", rng)
        assert np.array_equal(one, ref.choice(3, 1, replace=False)), (
            "feature_subset(3, 'sqrt') draws max(1, int(sqrt(3))) = 1 feature (and None, just "
            "before, must not have drawn anything from the generator)")


def reference_forest(impl, X, y, n_estimators, max_features, max_depth, min_leaf, seed):
    """The documented loop: ONE generator; per tree a bootstrap, then a tree using the same rng."""
    classes, codes = np.unique(y, return_inverse=True)
    Y = np.eye(len(classes))[codes]
    rng = np.random.default_rng(seed)
    trees, votes = [], np.zeros_like(Y)
    for _ in range(n_estimators):
        idx = rng.integers(0, len(X), size=len(X))
        oob = np.bincount(idx, minlength=len(X)) == 0
        tree = impl.RegressionTree(max_depth, min_leaf, max_features, rng).fit(X[idx], Y[idx])
        votes[oob] += tree.predict(X[oob])
        trees.append(tree)
    return trees, votes


@pytest.mark.points(2)
def test_forest_equals_the_documented_loop_with_every_option(impl, rng):
    X = rng.normal(size=(50, 5)) + 100.0
    y = np.where(X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=50) > 0, "yes", "no")
    X_new = rng.normal(size=(20, 5)) + 100.0
    for options in ({"max_features": 2, "max_depth": 3, "min_samples_leaf": 4, "seed": 5},
                    {"max_features": None, "max_depth": None, "min_samples_leaf": 1, "seed": 6}):
        forest = impl.RandomForestClassifier(n_estimators=6, **options).fit(X, y)
        trees, votes = reference_forest(impl, X, y, 6, options["max_features"],
                                        options["max_depth"], options["min_samples_leaf"],
                                        options["seed"])
        expected = np.mean([t.predict(X_new) for t in trees], axis=0)
        # the same trees from the same draws: identical leaf values
        assert_close(forest.predict_proba(X_new), expected, f"RandomForestClassifier(6 trees, "
                     f"{options}).predict_proba vs the documented loop: one default_rng(seed) "
                     "for the forest; per tree bootstrap_sample(n, rng), then RegressionTree("
                     "max_depth, min_samples_leaf, max_features, rng) fitted on the in-bag rows",
                     rtol=1e-12, atol=1e-12)
        seen = votes.sum(1) > 0
        assert_close(forest.oob_decision_function_[seen], votes[seen] / votes[seen].sum(1,
                     keepdims=True), "oob_decision_function_ of the documented loop",
                     rtol=1e-12, atol=1e-12)
        assert list(forest.classes_) == ["no", "yes"], "classes_: the sorted labels"

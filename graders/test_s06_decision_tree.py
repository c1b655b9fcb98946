"""Public graders for s06 decision trees: impurity, the split search, CART vs scikit-learn."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_moons
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from graders.helpers import assert_close, check_shape


def _onehot(y, k=None):
    return np.eye(k or int(np.max(y)) + 1)[y]


def brute_force_best_gain(X, y, impurity, min_leaf=1):
    """Best weighted-impurity decrease by trying every midpoint of every feature (slow, simple)."""
    n = len(y)

    def imp(labels):
        p = np.bincount(labels, minlength=int(y.max()) + 1) / len(labels)
        return impurity(p)

    best = -np.inf
    for j in range(X.shape[1]):
        values = np.unique(X[:, j])
        for t in (values[:-1] + values[1:]) / 2:
            left = X[:, j] <= t
            if min(left.sum(), (~left).sum()) < min_leaf:
                continue
            child = (left.sum() * imp(y[left]) + (~left).sum() * imp(y[~left])) / n
            best = max(best, imp(y) - child)
    return best


def _gini(p):
    return 1 - np.sum(p ** 2)


# --- impurity ----------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_gini_and_entropy_values(impl):
    p = np.array([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25] * 4, [0.7, 0.1, 0.1, 0.1]])
    g = impl.gini(p)
    check_shape(g, (4,), "gini(p) for p of shape (4, K=4)")
    assert_close(g, [0.5, 0.0, 0.75, 1 - 0.49 - 0.03], "gini(p) = 1 - sum p_k^2 per row",
                 rtol=1e-12, atol=1e-12)
    e = impl.entropy(p)
    assert_close(e, [1.0, 0.0, 2.0, -(0.7 * np.log2(0.7) + 0.3 * np.log2(0.1))],
                 "entropy(p) = -sum p_k log2 p_k per row (bits; 0 log 0 = 0, so a pure node "
                 "has entropy 0, not NaN)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_node_impurity_uses_proportions_not_counts(impl):
    y = np.array([0, 0, 0, 1, 2, 2])
    once = impl.node_impurity(_onehot(y), "gini")
    assert_close(once, 1 - (0.5 ** 2 + (1 / 6) ** 2 + (1 / 3) ** 2), "node_impurity of labels "
                 "[0, 0, 0, 1, 2, 2] with gini (on proportions 3/6, 1/6, 2/6)", rtol=1e-12)
    twice = impl.node_impurity(_onehot(np.concatenate([y, y])), "gini")
    assert_close(twice, once, "node_impurity after duplicating every row: impurity depends on "
                 "proportions, not on how many rows there are", rtol=1e-12)
    assert_close(impl.node_impurity(np.array([[1.0], [3.0], [8.0]]), "mse"), np.var([1, 3, 8]),
                 "node_impurity with mse (the variance of the targets)", rtol=1e-12)


# --- split search -----------------------------------------------------------------------------

@pytest.mark.points(2)
def test_best_split_on_a_hand_example(impl):
    X = np.array([[5.0, 1.0], [3.0, 2.0], [9.0, 3.0], [1.0, 4.0], [7.0, 5.0]])
    y = np.array([1, 0, 1, 0, 1])  # separable on feature 0 between 3 and 5; feature 1 is noise
    split = impl.best_split(X, _onehot(y), "gini")
    assert split is not None, "best_split returned None although a perfect split exists"
    assert split.feature == 0, f"feature 0 separates the classes; best_split chose {split.feature}"
    assert_close(split.threshold, 4.0, "threshold: the midpoint between the sorted neighbours 3 "
                 "and 5 (x <= threshold goes left)", atol=1e-12)
    assert_close(split.gain, 1 - 0.4 ** 2 - 0.6 ** 2, "gain of a perfect split (the whole node "
                 "impurity 0.48)", rtol=1e-12)


@pytest.mark.points(2)
def test_best_split_gain_equals_brute_force(impl, rng):
    X = rng.integers(0, 6, size=(40, 3)).astype(float)  # many tied values
    y = (X[:, 0] + rng.integers(0, 3, size=40) > 4).astype(int)
    for criterion, fn in (("gini", _gini), ("entropy", lambda p: -np.sum(p[p > 0] *
                                                                           np.log2(p[p > 0])))):
        for min_leaf in (1, 8):
            split = impl.best_split(X, _onehot(y, 2), criterion, min_samples_leaf=min_leaf)
            expected = brute_force_best_gain(X, y, fn, min_leaf)
            # sums of a few dozen float64 terms
            assert_close(split.gain, expected, f"best {criterion} gain with min_samples_leaf="
                         f"{min_leaf} vs trying every midpoint by brute force", rtol=1e-9,
                         atol=1e-12)
            left = X[:, split.feature] <= split.threshold
            assert min(left.sum(), (~left).sum()) >= min_leaf, (
                f"the returned split leaves {min(left.sum(), (~left).sum())} rows on one side; "
                f"min_samples_leaf={min_leaf}")


@pytest.mark.points(1)
def test_best_split_returns_none_when_nothing_can_be_cut(impl):
    X = np.full((6, 2), 3.0)
    assert impl.best_split(X, _onehot(np.array([0, 1, 0, 1, 0, 1])), "gini") is None, (
        "every feature is constant, so no threshold separates any rows: return None")
    X = np.arange(6.0)[:, None]
    assert impl.best_split(X, _onehot(np.array([0, 1, 0, 1, 0, 1])), "gini",
                           min_samples_leaf=4) is None, (
        "6 rows cannot give two children with >= 4 rows each: return None")


# --- trees ------------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_unlimited_tree_fits_separable_data_perfectly(impl):
    X, y = make_moons(200, noise=0.3, random_state=0)
    tree = impl.DecisionTreeClassifier().fit(X, y)
    acc = np.mean(tree.predict(X) == y)
    assert acc == 1.0, (
        f"an unlimited tree should fit distinct training points perfectly, got training "
        f"accuracy {acc:.3f}; check the threshold (x <= t goes left) and the stopping rules")
    Xx = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, dtype=float)
    yx = np.array([0, 1, 1, 0] * 5)
    acc = np.mean(impl.DecisionTreeClassifier().fit(Xx, yx).predict(Xx) == yx)
    assert acc == 1.0, (
        f"XOR: training accuracy {acc:.2f}. No first split has positive gain, yet the tree "
        "must still split (a zero-gain split can enable good splits below it)")


@pytest.mark.points(2)
def test_breast_cancer_accuracy_close_to_sklearn(impl):
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    ours = np.mean(impl.DecisionTreeClassifier(max_depth=4).fit(Xtr, ytr).predict(Xte) == yte)
    ref = DecisionTreeClassifier(max_depth=4, random_state=0).fit(Xtr, ytr).score(Xte, yte)
    # ties between equally good splits may be broken differently: 2 points of slack
    assert abs(ours - ref) <= 0.02, (
        f"depth-4 tree on breast_cancer: test accuracy {ours:.3f}, sklearn's {ref:.3f}; a gap "
        "of more than 2 points points to a wrong impurity or split search")


@pytest.mark.points(1)
def test_max_depth_is_respected(impl, rng):
    X = rng.normal(size=(150, 4))
    y = rng.integers(0, 3, size=150)  # random labels: an unlimited tree would grow deep
    for depth in (0, 1, 3, 5):
        tree = impl.DecisionTreeClassifier(max_depth=depth).fit(X, y)
        assert tree.depth_ == depth, (
            f"max_depth={depth} on random labels: the tree should reach exactly depth {depth}, "
            f"got depth_ {tree.depth_}")
        assert tree.n_leaves <= 2 ** depth, (
            f"a tree of depth {depth} has at most {2 ** depth} leaves, got {tree.n_leaves}")


@pytest.mark.points(2)
def test_regressor_matches_sklearn(impl, rng):
    X = rng.normal(size=(200, 4))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + rng.normal(0, 0.1, size=200)
    X_new = rng.normal(size=(100, 4))
    for depth, leaf in ((3, 1), (6, 5)):
        ours = impl.DecisionTreeRegressor(max_depth=depth, min_samples_leaf=leaf).fit(X, y)
        ref = DecisionTreeRegressor(max_depth=depth, min_samples_leaf=leaf,
                                    random_state=0).fit(X, y)
        # continuous data, no tied splits: the same tree, so the same leaf means
        assert_close(ours.predict(X), ref.predict(X), f"DecisionTreeRegressor(max_depth="
                     f"{depth}, min_samples_leaf={leaf}) training predictions vs sklearn",
                     rtol=1e-9, atol=1e-9)
        if leaf > 1:
            assert_close(ours.predict(X_new), ref.predict(X_new), "predictions on new rows",
                         rtol=1e-9, atol=1e-9)


@pytest.mark.points(1)
def test_min_samples_leaf_is_respected(impl, rng):
    X = rng.normal(size=(120, 3))
    y = rng.integers(0, 2, size=120)
    tree = impl.DecisionTreeClassifier(min_samples_leaf=7).fit(X, y)
    counts = np.bincount(tree.apply(X), minlength=len(tree.feature_))
    leaves = tree.feature_ < 0
    assert counts[leaves].min() >= 7, (
        f"min_samples_leaf=7 but a leaf holds {counts[leaves].min()} training rows")
    proba = tree.predict_proba(X)
    assert_close(proba.sum(1), np.ones(120), "predict_proba rows sum to 1", rtol=1e-12)


# --- edge cases: thresholds, ties, one class, several targets ----------------------------------

@pytest.mark.points(1)
def test_impurity_of_several_targets_and_batched_proportions(impl):
    Y = np.array([[1.0, 10.0], [3.0, 10.0], [8.0, 40.0]])
    mse = "".join(["m", "s", "e"])  # equal to "mse" but another object: compare with ==
    assert_close(impl.node_impurity(Y, mse), np.var(Y[:, 0]) + np.var(Y[:, 1]),
                 "node_impurity(Y (3, 2), 'mse'): the variances of the two target columns, "
                 "SUMMED", rtol=1e-12)
    p = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.25, 0.75], [0.0, 1.0]]])  # (2, 2, K=2)
    check_shape(impl.gini(p), (2, 2), "gini(p) for p of shape (2, 2, K)")
    assert_close(impl.gini(p), [[0.5, 0.0], [0.375, 0.0]], "gini over the last axis of a "
                 "(2, 2, 2) array", rtol=1e-12, atol=1e-15)
    assert_close(impl.entropy(p), [[1.0, 0.0], [-(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75)),
                                                0.0]],
                 "entropy over the last axis of a (2, 2, 2) array", rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
def test_threshold_between_adjacent_floats_still_separates(impl):
    a = np.nextafter(1.0, 2.0)
    b = np.nextafter(a, 2.0)  # the next float: here (a + b) / 2 rounds UP to b
    X = np.array([[a], [b], [a], [b]])
    y = np.array([0, 1, 0, 1])
    split = impl.best_split(X, np.eye(2)[y], "gini")
    left = X[:, 0] <= split.threshold
    assert left.tolist() == [True, False, True, False], (
        f"best_split on the adjacent floats {a!r} and {b!r} returned threshold "
        f"{split.threshold!r}, which sends rows {np.flatnonzero(left).tolist()} left: when the "
        "midpoint rounds up to the right-hand value, use the left-hand value, so x <= t still "
        "separates the two")
    tree = impl.DecisionTreeClassifier().fit(X, y)
    assert tree.predict(X).tolist() == y.tolist(), "a tree on these two values must fit them"


@pytest.mark.points(1)
def test_rows_exactly_at_a_threshold_go_left(impl, rng):
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0.1).astype(int)
    tree = impl.DecisionTreeClassifier(max_depth=1).fit(X, y)
    f, t = int(tree.feature_[0]), float(tree.threshold_[0])
    at = np.zeros((3, 2))
    at[:, f] = t  # exactly on the threshold
    at[1, f] = np.nextafter(t, np.inf)  # just above it
    leaves = tree.apply(at)
    assert leaves.tolist() == [tree.left_[0], tree.right_[0], tree.left_[0]], (
        f"rows with x[{f}] exactly at the root threshold {t!r} went to leaves "
        f"{leaves.tolist()} (left child {tree.left_[0]}, right {tree.right_[0]}): x <= threshold "
        "goes left, anything above goes right")


@pytest.mark.points(1)
def test_single_class_and_duplicate_rows(impl):
    X = np.array([[1.0, 2.0], [3.0, 0.0], [1.0, 5.0]])
    tree = impl.DecisionTreeClassifier().fit(X, np.array([7, 7, 7], dtype=np.int32))
    assert tree.n_leaves == 1 and tree.depth_ == 0, (
        f"one class only: the root is already pure and must stay a leaf; got {tree.n_leaves} "
        f"leaves, depth {tree.depth_}")
    assert tree.predict(np.array([[9.0, 9.0]])).tolist() == [7], "predict the only class, 7"
    assert_close(tree.predict_proba(X), np.ones((3, 1)), "predict_proba with one class",
                 atol=0)
    Xd = np.array([[2.0], [2.0], [2.0], [5.0]])  # three identical rows with different labels
    yd = np.array([3, 8, 8, 3], dtype=np.int32)
    tree = impl.DecisionTreeClassifier().fit(Xd, yd)
    assert_close(tree.predict_proba(np.array([[2.0], [5.0]])), [[1 / 3, 2 / 3], [1.0, 0.0]],
                 "predict_proba on duplicate rows that disagree: the leaf holds their class "
                 "proportions (no cut can separate equal values)", rtol=1e-12, atol=1e-12)
    assert tree.predict(np.array([[2.0]])).tolist() == [8], "majority label 8 of the duplicates"


@pytest.mark.points(1)
def test_unlimited_tree_has_sklearns_depth_and_leaves(impl, rng):
    X = rng.normal(size=(120, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] + rng.normal(0, 0.3, size=120)
    ours = impl.DecisionTreeRegressor(min_samples_leaf=3).fit(X, y)
    ref = DecisionTreeRegressor(min_samples_leaf=3, random_state=0).fit(X, y)
    # continuous features and targets: no tied cuts, so the same greedy tree
    assert (ours.depth_, ours.n_leaves) == (ref.get_depth(), ref.get_n_leaves()), (
        f"DecisionTreeRegressor(min_samples_leaf=3), unlimited depth: depth {ours.depth_}, "
        f"{ours.n_leaves} leaves; sklearn's has depth {ref.get_depth()}, "
        f"{ref.get_n_leaves()} leaves")
    yc = (y > 0).astype(int)
    ours = impl.DecisionTreeClassifier(max_depth=3, min_samples_split=40,
                                       criterion="entropy").fit(X, yc)
    ref = DecisionTreeClassifier(max_depth=3, min_samples_split=40, criterion="entropy",
                                 random_state=0).fit(X, yc)
    assert ours.n_leaves == ref.get_n_leaves(), (
        f"max_depth=3, min_samples_split=40, entropy: {ours.n_leaves} leaves, sklearn "
        f"{ref.get_n_leaves()}: a node with fewer than min_samples_split rows is a leaf")
    assert_close(ours.predict_proba(X), ref.predict_proba(X), "predict_proba of that tree",
                 rtol=1e-12, atol=1e-12)

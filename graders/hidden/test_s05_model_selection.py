"""Hidden graders for s05 model selection: properties on arbitrary inputs, oracles, leaks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.linear_model import Lasso, Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from graders.helpers import assert_close


class Spy:
    def __init__(self, log):
        self.log = log

    def fit(self, X, y):
        self.log.append(np.array(X, dtype=float))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


@pytest.mark.points(2)
@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(2, 10), seed=st.integers(0, 1000),
       shuffle=st.booleans())
def test_kfold_partition_property(impl, n, k, seed, shuffle):
    k = min(k, n)
    folds = impl.kfold(n, k, shuffle=shuffle, seed=seed)
    vals = np.concatenate([va for _, va in folds])
    assert sorted(vals.tolist()) == list(range(n)), (
        f"kfold(n={n}, k={k}): the validation parts are not a partition of the rows")
    sizes = [len(va) for _, va in folds]
    assert max(sizes) - min(sizes) <= 1, f"kfold(n={n}, k={k}) fold sizes {sizes} differ by > 1"
    for tr, va in folds:
        assert len(tr) + len(va) == n and not np.intersect1d(tr, va).size, (
            "each fold's training rows must be exactly the rows outside its validation part")


@pytest.mark.points(2)
@settings(max_examples=25, deadline=None)
@given(labels=st.lists(st.integers(0, 3), min_size=6, max_size=80), k=st.integers(2, 6),
       seed=st.integers(0, 1000))
def test_stratified_kfold_property(impl, labels, k, seed):
    y = np.array(labels)
    k = min(k, len(y))
    folds = impl.stratified_kfold(y, k, seed=seed)
    vals = np.concatenate([va for _, va in folds])
    assert sorted(vals.tolist()) == list(range(len(y))), "validation parts must partition rows"
    sizes = [len(va) for _, va in folds]
    assert max(sizes) - min(sizes) <= 1, f"stratified fold sizes {sizes} differ by more than 1"
    for c in np.unique(y):
        n_c = int((y == c).sum())
        per_fold = [int((y[va] == c).sum()) for _, va in folds]
        assert all(n_c // k <= m <= -(-n_c // k) for m in per_fold), (
            f"a class with {n_c} rows is spread {per_fold} over {k} folds; each fold should "
            f"hold {n_c // k} or {-(-n_c // k)}")


@pytest.mark.points(1)
@settings(max_examples=30, deadline=None)
@given(z=st.floats(-1e6, 1e6), t=st.floats(0, 1e3))
def test_soft_threshold_property(impl, z, t):
    s = float(impl.soft_threshold(np.array([z]), t)[0])
    expected = np.sign(z) * max(abs(z) - t, 0.0)
    assert abs(s - expected) <= 1e-9 * max(1.0, abs(z)), (
        f"soft_threshold({z}, {t}) = {s}, expected sign(z) * max(|z| - t, 0) = {expected}")


@pytest.mark.points(2)
def test_lasso_on_correlated_polynomial_features_matches_sklearn(impl):
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(80, 2))
    X = PolynomialFeatures(3, include_bias=False).fit_transform(x)  # strongly correlated columns
    y = 3.0 + x[:, 0] - 2 * x[:, 1] ** 2 + rng.normal(0, 0.1, size=80)
    for alpha in (0.001, 0.02):
        ours = impl.Lasso(alpha).fit(X, y)
        ref = Lasso(alpha=alpha, tol=1e-14, max_iter=1_000_000).fit(X, y)
        # the optimum is unique; slow coordinate descent on correlated columns limits agreement
        assert_close(ours.coef_, ref.coef_, f"Lasso(alpha={alpha}) on degree-3 features",
                     rtol=1e-4, atol=1e-5)
        assert_close(ours.intercept_, ref.intercept_, "Lasso intercept_", rtol=1e-5, atol=1e-5)


@pytest.mark.points(1)
def test_ridge_with_a_huge_penalty_predicts_the_mean(impl, rng):
    X = rng.normal(size=(30, 4))
    y = rng.normal(50.0, 2.0, size=30)
    model = impl.Ridge(1e12).fit(X, y)
    assert np.max(np.abs(model.coef_)) < 1e-8, "a huge alpha must shrink every coefficient to ~0"
    assert_close(model.intercept_, y.mean(), "the intercept under a huge penalty (mean of y: "
                 "the intercept is not penalised)", rtol=1e-9, atol=1e-9)
    assert_close(impl.Ridge(0.3).fit(X, y).coef_, Ridge(alpha=0.3).fit(X, y).coef_,
                 "Ridge(0.3).coef_", rtol=1e-9, atol=1e-10)


@pytest.mark.points(1)
def test_select_k_best_matches_sklearn_f_regression(impl, rng):
    X = rng.normal(size=(50, 12))
    X[:, 4] = 2.0  # a constant column is never selected
    y = X[:, 2] - 0.5 * X[:, 7] + 0.3 * X[:, 9] + rng.normal(0, 0.5, size=50)
    ours = impl.SelectKBest(4).fit(X, y)
    ref = SelectKBest(f_regression, k=4).fit(X, y)
    assert np.array_equal(np.sort(ours.support_), np.flatnonzero(ref.get_support())), (
        f"SelectKBest(4) kept columns {np.sort(ours.support_).tolist()}, the four with the "
        f"largest |correlation| with y are {np.flatnonzero(ref.get_support()).tolist()}")


@pytest.mark.points(2)
def test_grid_search_scores_equal_sklearn_cross_val_score(impl):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(40, 1))
    y = 1 - 2 * x[:, 0] + 3 * x[:, 0] ** 2 + rng.normal(0, 0.3, size=40)
    folds = list(KFold(5, shuffle=True, random_state=0).split(x))  # not the learner's kfold

    def make(degree, alpha):
        return impl.Pipeline([impl.PolynomialFeatures(degree), impl.Standardizer()],
                             impl.Ridge(alpha))

    grid = {"degree": [1, 2, 12], "alpha": [1e-6, 10.0]}
    res = impl.grid_search(make, grid, x, y, folds, impl.r2_score)
    for params, ours in zip(res.params, res.mean_scores, strict=True):
        pipe = make_pipeline(PolynomialFeatures(params["degree"], include_bias=False),
                             StandardScaler(), Ridge(alpha=params["alpha"]))
        ref = cross_val_score(pipe, x, y, cv=folds, scoring="r2")
        # the same pipeline fold by fold; degree 12 with alpha 1e-6 is ill-conditioned, so
        # the two linear solvers agree to ~1e-8 relative, not to the last digit
        assert_close(ours, ref.mean(), f"mean CV R^2 for {params} vs sklearn's pipeline in "
                     "cross_val_score on the same folds", rtol=1e-5, atol=1e-7)
    assert res.best_params == {"degree": 2, "alpha": 1e-6}, (
        f"the data is quadratic and degree 2 has the best CV score; the search picked "
        f"{res.best_params}")


@pytest.mark.points(2)
def test_search_hands_raw_training_rows_to_the_factory(impl, rng):
    X = rng.normal(10.0, 4.0, size=(24, 2))
    y = rng.normal(size=24)
    folds = impl.kfold(24, 3, seed=2)
    log = []
    impl.grid_search(lambda c: Spy(log), {"c": [0, 1]}, X, y, folds, impl.r2_score)
    impl.random_search(lambda c: Spy(log), {"c": [0, 1]}, 2, X, y, folds, impl.r2_score)
    expected = [sorted(map(tuple, X[tr])) for tr, _ in folds] * 4
    assert [sorted(map(tuple, f)) for f in log] == expected, (
        "the search changed the data before cross-validation (scaled, selected or re-split "
        "it) or did not fit once per fold and candidate: each fold's model must receive that "
        "fold's raw training rows; preprocessing belongs inside the model factory")


@pytest.mark.points(1)
def test_learning_curve_subsets_are_nested_and_random(impl, rng):
    X = np.arange(50.0)[:, None]
    y = rng.normal(size=50)
    folds = impl.kfold(50, 2, shuffle=False)  # training folds are sorted blocks
    log = []
    impl.learning_curve(lambda: Spy(log), X, y, [5, 20], folds, impl.r2_score, seed=0)
    by_size = {5: [], 20: []}
    for f in log:
        by_size[len(f)].append(set(f[:, 0].astype(int).tolist()))
    for small in by_size[5]:
        assert any(small <= big for big in by_size[20]), (
            "the 5-row subset of a fold should be part of its 20-row subset (shuffle each "
            "training fold once, then take its first m rows)")
    firsts = [set(range(25, 30)), set(range(5))]
    assert not all(s in firsts for s in by_size[5]), (
        "the learning-curve subsets are the first rows of each fold in data order: shuffle the "
        "training fold, or a sorted data set gives a biased curve")


@pytest.mark.points(1)
def test_learning_curve_validation_improves_with_data(impl):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 8))
    y = X @ rng.normal(size=8) + rng.normal(0, 0.5, size=120)
    folds = impl.kfold(120, 4, seed=0)
    res = impl.learning_curve(lambda: impl.Ridge(1e-6), X, y, [10, 30, 90], folds,
                              impl.r2_score)
    val = res.val_scores.mean(1)
    assert val[0] < val[1] < val[2], (
        f"validation R^2 of a linear model should improve with more training rows, got "
        f"{np.round(val, 3)} for 10, 30, 90 rows")
    gap = res.train_scores.mean(1) - val
    assert gap[0] > gap[2] + 0.05 and gap[0] > 0.1, (
        f"the train - validation gap should be large with 10 rows (variance) and shrink with "
        f"90; got gaps {np.round(gap, 3)}: score each model on its own training rows too")


@pytest.mark.points(1)
def test_ridge_and_lasso_on_data_far_from_the_origin(impl, rng):
    X = rng.normal(size=(50, 3)) * np.array([1.0, 3.0, 0.5]) + np.array([200.0, -80.0, 35.0])
    y = X @ np.array([1.5, -0.5, 2.0]) + rng.normal(0, 0.3, size=50) + 1e3
    for alpha in (0.1, 25.0):
        # a 3x3 solve on centred data: agreement to ~1e-10 relative
        assert_close(impl.Ridge(alpha).fit(X, y).coef_, Ridge(alpha=alpha).fit(X, y).coef_,
                     f"Ridge({alpha}).coef_ on columns with means 200, -80, 35", rtol=1e-8,
                     atol=1e-9)
        assert_close(impl.Ridge(alpha).fit(X, y).intercept_, Ridge(alpha=alpha).fit(X, y)
                     .intercept_, f"Ridge({alpha}).intercept_ far from the origin: centre X "
                     "as well as y", rtol=1e-9, atol=1e-6)
    ours = impl.Lasso(0.2).fit(X, y)
    ref = Lasso(alpha=0.2, tol=1e-14, max_iter=100_000).fit(X, y)
    # the same unique optimum, reached by coordinate descent to tol 1e-10
    assert_close(ours.coef_, ref.coef_, "Lasso(0.2).coef_ far from the origin", rtol=1e-6,
                 atol=1e-7)
    assert_close(ours.intercept_, ref.intercept_, "Lasso(0.2).intercept_ far from the origin",
                 rtol=1e-8, atol=1e-5)
    assert_close(ours.predict(X[:4]), ref.predict(X[:4]), "Lasso.predict", rtol=1e-8, atol=1e-5)


@pytest.mark.points(1)
def test_soft_threshold_on_scalars_and_at_the_threshold(impl):
    for z, t, expected in ((2.5, 2.5, 0.0), (-2.5, 2.5, 0.0), (-4.0, 1.5, -2.5), (0.0, 0.0, 0.0),
                           (3.0, 0.0, 3.0)):
        got = float(np.asarray(impl.soft_threshold(z, t)))
        assert got == expected, (
            f"soft_threshold({z}, {t}) = {got}, expected {expected}: exactly 0 when |z| <= t, "
            "otherwise shrink |z| by t and keep the sign")


@pytest.mark.points(1)
def test_select_k_best_support_is_sorted_and_transform_keeps_it(impl, rng):
    X = rng.normal(size=(80, 9)) + 30.0  # far from the origin: correlation must centre
    y = 5 * X[:, 7] - 3.5 * X[:, 1] + 3 * X[:, 4] + rng.normal(0, 0.3, size=80)
    X *= np.array([1.0, 1e-3, 5.0, 1e3, 0.02, 1.0, 40.0, 1e-2, 1.0])  # correlation ignores scale
    sel = impl.SelectKBest(3).fit(X, y)
    support = np.asarray(sel.support_)
    assert support.tolist() == [1, 4, 7], (
        f"SelectKBest(3).support_ is {support.tolist()}: keep the 3 columns with the largest "
        "|Pearson correlation| (centre X and y first), listed in ascending column order")
    assert np.array_equal(sel.transform(X[:5]), X[:5, [1, 4, 7]]), (
        "SelectKBest.transform must return the kept columns, in support_ order")
    one = impl.SelectKBest(1).fit(X, y)
    assert np.asarray(one.support_).tolist() == [7], "SelectKBest(1) keeps the single best column"


@pytest.mark.points(1)
def test_pipeline_fit_chains_every_transformer_and_returns_itself(impl, rng):
    x = rng.uniform(1.0, 3.0, size=(25, 2))
    y = x[:, 0] ** 2 - x[:, 1] + rng.normal(0, 0.01, size=25)
    pipe = impl.Pipeline([impl.PolynomialFeatures(2), impl.Standardizer(), impl.SelectKBest(3)],
                         impl.Ridge(1e-3))
    assert pipe.fit(x, y) is pipe, "Pipeline.fit must return the pipeline itself (self)"
    ref = make_pipeline(PolynomialFeatures(2, include_bias=False), StandardScaler(),
                        SelectKBest(f_regression, k=3), Ridge(alpha=1e-3)).fit(x, y)
    new = rng.uniform(0.0, 4.0, size=(6, 2))
    # the same chain of float64 transformations and a small linear solve
    assert_close(pipe.predict(new), ref.predict(new), "Pipeline(poly, standardise, select 3, "
                 "ridge).predict vs the same sklearn pipeline: each transformer is fitted on "
                 "the previous one's output, with y", rtol=1e-8, atol=1e-8)


@pytest.mark.points(1)
def test_lasso_stops_when_the_largest_step_equals_tol(impl, rng):
    X = rng.normal(size=(20, 3))
    y = rng.normal(size=20)
    # far above alpha_max every update is exactly 0: the first sweep moves nothing (step 0)
    model = impl.Lasso(1e3, tol=0.0, max_iter=50).fit(X, y)
    assert model.n_iter_ == 1, (
        f"Lasso(tol=0) above alpha_max made {model.n_iter_} sweeps; the first sweep moves no "
        "coefficient (largest step exactly 0 <= tol), so it must stop after 1: stop when no "
        "coefficient moved by MORE than tol")
    assert np.all(model.coef_ == 0)

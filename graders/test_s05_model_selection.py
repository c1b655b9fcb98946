"""Public graders for s05 model selection: features, ridge / lasso, folds, leak-free CV, search."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso, Ridge
from sklearn.model_selection import KFold
from sklearn.preprocessing import PolynomialFeatures

from graders.helpers import assert_close, check_shape


class Spy:
    """A model that records every array it is fitted on and asked to predict."""

    def __init__(self, log: list):
        self.log = log

    def fit(self, X, y):
        self.log.append(("fit", np.array(X, dtype=float), np.array(y, dtype=float)))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        self.log.append(("predict", np.array(X, dtype=float)))
        return np.full(len(X), self.mean_)


def _rows(A):
    """The rows of A as a sorted list of tuples: compare row sets, whatever their order."""
    return sorted(map(tuple, np.round(np.asarray(A, dtype=float), 12)))


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


# --- polynomial features, ridge, lasso ------------------------------------------------------

@pytest.mark.points(1)
@pytest.mark.parametrize("degree, bias", [(1, False), (2, True), (3, False)])
def test_polynomial_features_match_sklearn(impl, rng, degree, bias):
    X = rng.normal(size=(7, 3))
    expected = PolynomialFeatures(degree, include_bias=bias).fit_transform(X)
    ours = impl.polynomial_features(X, degree, include_bias=bias)
    check_shape(ours, expected.shape, f"polynomial_features(X (7, 3), degree={degree})")
    # products of a few float64 numbers: only rounding differences remain
    assert_close(ours, expected, f"polynomial_features(degree={degree}, include_bias={bias}) "
                 "vs sklearn PolynomialFeatures (same column order)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_soft_threshold_values(impl):
    z = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    ours = impl.soft_threshold(z, 1.0)
    expected = np.array([-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0])
    assert_close(ours, expected, "soft_threshold([-3, -1, -0.5, 0, 0.5, 1, 3], t=1): shrink |z| "
                 "by t, exactly 0 when |z| <= t, keep the sign", atol=1e-15)


@pytest.mark.points(2)
def test_ridge_matches_sklearn_with_an_unpenalised_intercept(impl):
    X, y = _diabetes()
    y = y + 1000.0  # a large offset: penalising the intercept would shrink it visibly
    for alpha in (0.01, 1.0, 10.0):
        ours = impl.Ridge(alpha).fit(X, y)
        ref = Ridge(alpha=alpha).fit(X, y)
        # a 10x10 linear solve in float64: agreement to ~1e-9 relative
        assert_close(ours.coef_, ref.coef_, f"Ridge(alpha={alpha}).coef_ vs sklearn Ridge",
                     rtol=1e-7, atol=1e-6)
        assert_close(ours.intercept_, ref.intercept_, f"Ridge(alpha={alpha}).intercept_: centre "
                     "X and y, so the intercept is not penalised", rtol=1e-9, atol=1e-6)


@pytest.mark.points(2)
@pytest.mark.parametrize("alpha", [0.05, 0.5])
def test_lasso_matches_sklearn(impl, alpha):
    X, y = _diabetes()
    ours = impl.Lasso(alpha).fit(X, y)
    ref = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    # both converge to the same unique optimum; 1e-5 absolute on coefficients of size ~10..800
    assert_close(ours.coef_, ref.coef_, f"Lasso(alpha={alpha}).coef_ vs sklearn Lasso, whose "
                 "objective is (1/2n)||y - Xw - b||^2 + alpha ||w||_1: threshold at n * alpha",
                 rtol=1e-6, atol=1e-5)
    assert np.array_equal(ours.coef_ == 0, ref.coef_ == 0), (
        f"Lasso(alpha={alpha}) zeroed features {np.flatnonzero(ours.coef_ == 0).tolist()}, "
        f"sklearn zeroes {np.flatnonzero(ref.coef_ == 0).tolist()}: soft-thresholding must give "
        "exact zeros")
    assert_close(ours.predict(X[:5]), ref.predict(X[:5]), "Lasso.predict", rtol=1e-6, atol=1e-4)


@pytest.mark.points(1)
def test_lasso_is_all_zero_above_alpha_max(impl):
    X, y = _diabetes()
    Xc, yc = X - X.mean(0), y - y.mean()
    alpha_max = np.max(np.abs(Xc.T @ yc)) / len(y)  # the smallest alpha with w = 0
    above = impl.Lasso(alpha_max * 1.01).fit(X, y)
    below = impl.Lasso(alpha_max * 0.9).fit(X, y)
    assert np.all(above.coef_ == 0), (
        f"above alpha_max = max|Xc^T yc| / n every lasso coefficient is exactly 0; got "
        f"{np.count_nonzero(above.coef_)} non-zero")
    assert_close(above.intercept_, y.mean(), "intercept_ when all coefficients are 0 (the mean "
                 "of y)", rtol=1e-12, atol=1e-9)
    assert np.count_nonzero(below.coef_) >= 1, "just below alpha_max one feature should enter"


# --- folds -----------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_kfold_validation_parts_partition_the_rows(impl):
    folds = impl.kfold(23, 5, shuffle=True, seed=3)
    assert len(folds) == 5, f"kfold(23, 5) should give 5 folds, got {len(folds)}"
    vals = np.concatenate([va for _, va in folds])
    assert sorted(vals.tolist()) == list(range(23)), (
        "the validation parts must together hold every row exactly once (a partition)")
    for i, (tr, va) in enumerate(folds):
        assert sorted(np.concatenate([tr, va]).tolist()) == list(range(23)), (
            f"fold {i}: train and validation must be disjoint and together cover all rows")
    assert sorted(len(va) for _, va in folds) == [4, 4, 5, 5, 5], (
        "23 rows in 5 folds: validation sizes 5, 5, 5, 4, 4")
    assert not np.array_equal(vals, np.arange(23)), "shuffle=True should permute the rows"


@pytest.mark.points(1)
def test_kfold_without_shuffle_matches_sklearn(impl):
    ours = impl.kfold(17, 4, shuffle=False)
    for i, ((tr, va), (rtr, rva)) in enumerate(zip(ours, KFold(4).split(np.zeros(17)),
                                                   strict=True)):
        assert np.array_equal(np.sort(va), rva) and np.array_equal(np.sort(tr), rtr), (
            f"fold {i} of kfold(17, 4, shuffle=False): validation {np.sort(va).tolist()}, "
            f"sklearn KFold has {rva.tolist()} (consecutive blocks, the first n % k one longer)")


@pytest.mark.points(2)
def test_stratified_kfold_keeps_class_shares(impl):
    y = np.array([0] * 50 + [1] * 12 + [2] * 7)
    folds = impl.stratified_kfold(y, 5, seed=1)
    vals = np.concatenate([va for _, va in folds])
    assert sorted(vals.tolist()) == list(range(len(y))), "validation parts must partition rows"
    for i, (tr, va) in enumerate(folds):
        counts = np.bincount(y[va], minlength=3)
        for c, n_c in enumerate((50, 12, 7)):
            assert n_c // 5 <= counts[c] <= -(-n_c // 5), (
                f"fold {i} holds {counts[c]} rows of class {c} (of {n_c}); stratification "
                f"allows only {n_c // 5} or {-(-n_c // 5)}")
        assert not np.intersect1d(tr, va).size, f"fold {i}: a row is in train and validation"


# --- leak-free cross-validation -------------------------------------------------------------

@pytest.mark.points(2)
def test_cross_validate_fits_each_fold_on_its_training_rows_only(impl, rng):
    X = np.column_stack([np.arange(30.0), rng.normal(5.0, 3.0, size=(30, 2))])
    y = rng.normal(size=30)
    folds = impl.kfold(30, 3, seed=0)
    log = []
    res = impl.cross_validate(lambda: Spy(log), X, y, folds, impl.r2_score)
    fits = [entry for entry in log if entry[0] == "fit"]
    assert len(fits) == 3, f"3 folds need 3 fresh fits, saw {len(fits)}"
    for (tr, _va), (_, Xf, yf) in zip(folds, fits, strict=True):
        assert _rows(Xf) == _rows(X[tr]), (
            "a fold's model was fitted on something other than the raw training rows of that "
            "fold: no row of the validation fold, and no transformation (scaling, selection) "
            "computed on all of X, may reach fit")
        assert sorted(yf) == sorted(y[tr]), "fit received the wrong targets"
    check_shape(res.val_scores, (3,), "cross_validate(...).val_scores")
    expected = [impl.r2_score(y[va], np.full(len(va), y[tr].mean())) for tr, va in folds]
    assert_close(res.val_scores, expected, "val_scores of a mean predictor", rtol=1e-12,
                 atol=1e-12)


@pytest.mark.points(2)
def test_pipeline_scaler_uses_each_folds_training_statistics(impl, rng):
    X = rng.normal(3.0, 2.0, size=(40, 3))
    X[:10] += 20.0  # a block of outlying rows: whole-data statistics differ from any fold's
    y = rng.normal(size=40)
    folds = impl.kfold(40, 4, seed=0)
    log = []
    impl.cross_validate(lambda: impl.Pipeline([impl.Standardizer()], Spy(log)), X, y, folds,
                        impl.r2_score)
    fits = [e for e in log if e[0] == "fit"]
    predicts = [e[1] for e in log if e[0] == "predict"]
    for i, (tr, va) in enumerate(folds):
        mu, sd = X[tr].mean(0), X[tr].std(0)
        assert _rows(fits[i][1]) == _rows((X[tr] - mu) / sd), (
            f"fold {i}: the model inside the pipeline should see the training rows scaled with "
            "the TRAINING fold's mean and std")
        seen = [p for p in predicts if len(p) == len(va)]
        assert any(_rows(p) == _rows((X[va] - mu) / sd) for p in seen), (
            f"fold {i}: the validation rows must be scaled with the statistics learned in fit "
            "(the training fold's), not refitted on the validation rows")


@pytest.mark.points(2)
def test_feature_selection_inside_cv_scores_pure_noise_as_noise(impl):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2000)), rng.normal(size=60)  # no signal at all
    folds = impl.kfold(60, 5, seed=0)
    res = impl.cross_validate(lambda: impl.Pipeline([impl.SelectKBest(10)], impl.Ridge(1.0)),
                              X, y, folds, impl.r2_score)
    # honest CV gives R^2 around -0.9 here; selecting on all rows first gives about +0.4
    assert res.val_scores.mean() < 0.1, (
        f"on pure noise the cross-validated R^2 is {res.val_scores.mean():.3f}; an honest "
        "estimate is <= 0. The 10 'best' features were chosen with help from the validation "
        "rows: fit the selector (and every other learned step) inside each fold")


# --- search ------------------------------------------------------------------------------------

class Constant:
    """Predicts a fixed number; used to give each candidate a known CV score."""

    def __init__(self, a, b=0):
        self.value = 10 * a + b

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.full(len(X), float(self.value))


def _neg_mae(y_true, y_pred):
    return -float(np.mean(np.abs(y_true - y_pred)))


@pytest.mark.points(2)
def test_grid_search_picks_the_best_mean_cv_score(impl):
    X = np.zeros((20, 1))
    y = np.full(20, 23.0)
    y[:4] = 33.0  # folds see different targets, so the mean over folds matters
    folds = impl.kfold(20, 4, seed=0)
    res = impl.grid_search(Constant, {"a": [1, 2, 3], "b": [0, 3, 5]}, X, y, folds, _neg_mae)
    expected_params = [{"a": a, "b": b} for a in (1, 2, 3) for b in (0, 3, 5)]
    assert res.params == expected_params, (
        f"grid_search should evaluate itertools.product of the values, first key outermost; "
        f"got {res.params}")
    expected = [np.mean([_neg_mae(y[va], np.full(len(va), 10.0 * p["a"] + p["b"]))
                         for _, va in folds]) for p in expected_params]
    assert_close(res.mean_scores, expected, "mean_scores (mean validation score per candidate)",
                 rtol=1e-12, atol=1e-12)
    assert res.best_params == {"a": 2, "b": 3}, (
        f"the highest mean score belongs to {{'a': 2, 'b': 3}}, got {res.best_params}: pick the "
        "maximum (scores are 'higher is better')")
    assert_close(res.best_score, max(expected), "best_score", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_random_search_draws_candidates_in_the_documented_order(impl):
    X, y = np.zeros((12, 1)), np.full(12, 17.0)
    folds = impl.kfold(12, 3, seed=0)
    dists = {"a": lambda r: float(r.uniform(0.0, 3.0)), "b": [0, 5, 7]}
    res = impl.random_search(Constant, dists, 6, X, y, folds, _neg_mae, seed=4)
    r = np.random.default_rng(4)
    expected = []
    for _ in range(6):
        a = float(r.uniform(0.0, 3.0))
        expected.append({"a": a, "b": [0, 5, 7][r.integers(3)]})
    assert res.params == expected, (
        "random_search(seed=4) should draw, per candidate, key by key with one "
        "default_rng(seed): callables as f(rng), lists as lst[rng.integers(len(lst))]")
    best = int(np.argmax(res.mean_scores))
    assert res.best_params == expected[best], "best_params is not the highest-scoring candidate"


# --- curves ------------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_learning_curve_trains_on_subsets_of_the_training_fold(impl, rng):
    X = np.column_stack([np.arange(40.0), rng.normal(size=40)])
    y = rng.normal(size=40)
    folds = impl.kfold(40, 4, seed=0)
    log = []
    res = impl.learning_curve(lambda: Spy(log), X, y, [5, 15, 30], folds, impl.r2_score)
    check_shape(res.val_scores, (3, 4), "learning_curve(...).val_scores", "sizes, folds")
    fits = [e[1] for e in log if e[0] == "fit"]
    assert sorted(len(f) for f in fits) == sorted([5, 15, 30] * 4), (
        f"each size m should be fitted once per fold on m rows; fit sizes {[len(f) for f in fits]}")
    train_sets = [set(tr.tolist()) for tr, _ in folds]
    for f in fits:
        ids = set(f[:, 0].astype(int).tolist())
        assert any(ids <= s for s in train_sets), (
            "a learning-curve model was fitted on rows outside its training fold: draw the "
            "subset from the fold's training rows only")
    preds = [e[1] for e in log if e[0] == "predict"]
    assert sum(len(p) == 10 for p in preds) >= 12, (
        "every model should be scored on the whole validation fold (10 rows here)")


@pytest.mark.points(1)
def test_validation_curve_shows_overfitting_with_degree(impl):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(40, 1))
    y = np.sin(3 * x[:, 0]) + rng.normal(0, 0.2, size=40)
    folds = impl.kfold(40, 5, seed=0)

    def make(degree):
        return impl.Pipeline([impl.PolynomialFeatures(degree), impl.Standardizer()],
                             impl.Ridge(1e-8))

    res = impl.validation_curve(make, "degree", [1, 4, 15], x, y, folds, impl.r2_score)
    check_shape(res.train_scores, (3, 5), "validation_curve train_scores", "values, folds")
    train, val = res.train_scores.mean(1), res.val_scores.mean(1)
    assert train[0] < train[1] < train[2], (
        f"training R^2 should rise with the degree (more capacity), got {np.round(train, 3)}")
    assert val[1] > val[0] and val[1] > val[2], (
        f"validation R^2 should peak at a middle degree (bias then variance), got "
        f"{np.round(val, 3)} for degrees 1, 4, 15")


# --- documented draws, exact loops, ties -------------------------------------------------------

def lasso_reference(X, y, alpha, max_iter, tol):
    """Cyclic coordinate descent written on residuals (not the Gram matrix): (coef, b, sweeps)."""
    x_mean, y_mean = X.mean(0), y.mean()
    Xc, yc = X - x_mean, y - y_mean
    n, d = Xc.shape
    w, sweeps = np.zeros(d), 0
    while sweeps < max_iter:
        sweeps += 1
        biggest = 0.0
        for j in range(d):
            norm2 = Xc[:, j] @ Xc[:, j]
            if norm2 == 0.0:
                continue
            rho = Xc[:, j] @ (yc - Xc @ w + Xc[:, j] * w[j])
            new = np.sign(rho) * max(abs(rho) - n * alpha, 0.0) / norm2
            biggest = max(biggest, abs(new - w[j]))
            w[j] = new
        if biggest <= tol:
            break
    return w, y_mean - x_mean @ w, sweeps


@pytest.mark.points(2)
def test_lasso_sweeps_equal_an_exact_reference_loop(impl, rng):
    X = rng.normal(size=(40, 4)) @ rng.normal(size=(4, 4)) + 40.0  # correlated, far from 0
    X[:, 2] = 7.0  # a constant column: its coefficient must stay exactly 0
    y = X[:, 0] - 2.0 * X[:, 1] + rng.normal(0, 0.5, size=40) + 300.0
    near = X.copy()  # two nearly collinear columns: coordinate descent crawls
    near[:, 1] = near[:, 0] + rng.normal(0, 1e-3, size=40)
    for alpha, max_iter, tol, data in ((0.05, 1, 1e-10, X), (0.05, 3, 1e-10, X),
                                       (0.05, 10_000, 1e-3, X), (1e-6, 300, 0.0, near)):
        ours = impl.Lasso(alpha, max_iter=max_iter, tol=tol).fit(data, y)
        w, b, sweeps = lasso_reference(data, y, alpha, max_iter, tol)
        assert tol > 0 or sweeps == max_iter  # far from converged: max_iter stops it
        where = f"Lasso({alpha}, max_iter={max_iter}, tol={tol})"
        assert ours.n_iter_ == sweeps, (
            f"{where}.n_iter_ is {ours.n_iter_}, the reference loop made {sweeps} sweeps: count "
            "every sweep over j = 0..d-1, stop after max_iter sweeps or once no coefficient "
            "moved by more than tol")
        # the same updates in the same order; Gram vs residual form differ only by rounding
        assert_close(ours.coef_, w, f"{where}.coef_ after {sweeps} sweep(s) vs a reference loop "
                     "sweeping j = 0, 1, ..., d-1 in order, each update using the latest w",
                     rtol=1e-8, atol=1e-9)
        assert_close(ours.intercept_, b, f"{where}.intercept_ (mean(y) - mean(X) . w)",
                     rtol=1e-9, atol=1e-7)
    assert ours.coef_[2] == 0.0, "a constant column's coefficient must be exactly 0"


@pytest.mark.points(1)
def test_kfold_is_the_documented_permutation(impl):
    for n, k, seed in ((23, 5, 0), (23, 5, 7), (10, 3, 7)):
        parts = np.array_split(np.random.default_rng(seed).permutation(n), k)
        folds = impl.kfold(n, k, shuffle=True, seed=seed)
        for i, (tr, va) in enumerate(folds):
            assert np.array_equal(va, parts[i]), (
                f"kfold({n}, {k}, seed={seed}) fold {i}: validation rows "
                f"{np.asarray(va).tolist()}, expected {parts[i].tolist()} (part {i} of "
                "np.array_split(np.random.default_rng(seed).permutation(n), k))")
            expected_tr = np.sort(np.concatenate(parts[:i] + parts[i + 1:]))
            assert np.array_equal(np.sort(tr), expected_tr), (
                f"kfold({n}, {k}, seed={seed}) fold {i}: the training rows should be the rows "
                "of the other parts")


def stratified_reference(y, k, seed):
    """ONE generator for the call; classes in np.unique order; deal the rows round-robin."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)])
    fold_of = np.empty(len(y), dtype=int)
    fold_of[order] = np.arange(len(y)) % k
    return [np.flatnonzero(fold_of == i) for i in range(k)]


@pytest.mark.points(2)
def test_stratified_kfold_is_the_documented_draw(impl):
    cases = [(np.array([0] * 9 + [1] * 6 + [2] * 2, dtype=np.int32), 4, 3),
             (np.array(["b", "a", "b", "c", "a", "b", "b", "a", "c", "b", "a"]), 3, 11),
             (np.array([0] * 9 + [1] * 6 + [2] * 2, dtype=np.int32), 4, 4)]
    for y, k, seed in cases:
        folds = impl.stratified_kfold(y, k, seed=seed)
        for i, (va_ref, (tr, va)) in enumerate(zip(stratified_reference(y, k, seed), folds,
                                                   strict=True)):
            assert np.array_equal(np.sort(va), va_ref), (
                f"stratified_kfold(y of {len(y)} {y.dtype} labels, k={k}, seed={seed}) fold {i}: "
                f"validation rows {np.sort(va).tolist()}, expected {va_ref.tolist()}. Make ONE "
                "generator per call, rng = np.random.default_rng(seed); permute each class's "
                "rows with it in np.unique order, concatenate, and deal the rows to folds "
                "0, 1, ..., k-1, 0, 1, ... in turn")
            assert np.array_equal(np.sort(tr), np.setdiff1d(np.arange(len(y)), va_ref)), (
                f"fold {i}: the training rows must be all the rows outside the validation part")


class CountingFactory:
    """A model factory that counts its calls and hands out mean predictors."""

    def __init__(self):
        self.made = []

    def __call__(self, **params):
        model = Spy([])
        self.made.append(model)
        return model


@pytest.mark.points(1)
def test_cross_validate_scores_train_and_validation_with_fresh_models(impl, rng):
    X, y = rng.normal(size=(21, 2)), rng.normal(3.0, 2.0, size=21)
    folds = impl.kfold(21, 4, seed=5)
    factory = CountingFactory()
    res = impl.cross_validate(factory, X, y, folds, _neg_mae)
    assert len(factory.made) == 4, (
        f"cross_validate called make_model {len(factory.made)} times for 4 folds: one fresh, "
        "unfitted model per fold (a reused model carries state from the previous fold)")
    train = [_neg_mae(y[tr], np.full(len(tr), y[tr].mean())) for tr, _ in folds]
    val = [_neg_mae(y[va], np.full(len(va), y[tr].mean())) for tr, va in folds]
    # means and absolute differences of a few float64 numbers
    assert_close(res.train_scores, train, "cross_validate(...).train_scores: each fold's model "
                 "scored on its OWN training rows", rtol=1e-12, atol=1e-12)
    assert_close(res.val_scores, val, "cross_validate(...).val_scores: each fold's model "
                 "scored on its held-out rows", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_search_breaks_ties_by_the_first_candidate(impl):
    X, y = np.zeros((12, 1)), np.full(12, 23.0)
    folds = impl.kfold(12, 3, seed=0)
    # predictions 29, 26, 20 for targets 23: scores -6, -3, -3 (the last two tie)
    res = impl.grid_search(Constant, {"a": [2], "b": [9, 6, 0]}, X, y, folds, _neg_mae)
    assert res.best_params == {"a": 2, "b": 6}, (
        f"candidates b = 6 and b = 0 tie for the best mean score; the FIRST of them evaluated "
        f"({{'a': 2, 'b': 6}}) must win, got {res.best_params}")
    assert_close(res.best_score, -3.0, "best_score of tied candidates", atol=1e-12)
    assert_close(res.mean_scores, [-6.0, -3.0, -3.0], "mean_scores", atol=1e-12)
    res = impl.search(Constant, [{"a": 2, "b": 0}, {"a": 2, "b": 6}], X, y, folds, _neg_mae)
    assert res.best_params == {"a": 2, "b": 0}, (
        f"search over two candidates with equal scores must keep the first, got {res.best_params}")


@pytest.mark.points(1)
def test_validation_curve_stacks_cross_validate_per_value(impl):
    X, y = np.zeros((15, 1)), np.arange(15.0)
    folds = impl.kfold(15, 3, seed=2)
    res = impl.validation_curve(Constant, "a", [0.0, 0.7, 3.0], X, y, folds, _neg_mae)
    check_shape(res.val_scores, (3, 3), "validation_curve(...).val_scores", "values, folds")
    for i, a in enumerate((0.0, 0.7, 3.0)):
        # a constant prediction: exact sums of small numbers
        assert_close(res.train_scores[i], [_neg_mae(y[tr], np.full(len(tr), 10 * a))
                                           for tr, _ in folds],
                     f"train_scores[{i}] (value a={a}, every fold)", rtol=1e-12, atol=1e-12)
        assert_close(res.val_scores[i], [_neg_mae(y[va], np.full(len(va), 10 * a))
                                         for _, va in folds],
                     f"val_scores[{i}] (value a={a}, every fold)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_learning_curve_is_the_documented_draw(impl, rng):
    X = np.column_stack([np.arange(30.0), rng.normal(size=30)])
    y = rng.normal(size=30)
    folds = impl.kfold(30, 3, seed=1)
    log = []
    res = impl.learning_curve(lambda: Spy(log), X, y, [4, 11], folds, _neg_mae, seed=6)
    r = np.random.default_rng(6)  # ONE generator for the call, fold by fold in order
    shuffled = [r.permutation(tr) for tr, _ in folds]
    fits = [set(e[1][:, 0].astype(int).tolist()) for e in log if e[0] == "fit"]
    for m in (4, 11):
        for f in range(len(folds)):
            subset = shuffled[f][:m]
            assert set(subset.tolist()) in fits, (
                f"learning_curve(seed=6), size {m}, fold {f}: no model was fitted on the rows "
                "expected. Make ONE generator per call, rng = np.random.default_rng(seed), "
                "permute each training fold once with it (folds in order), and fit on the "
                "first m rows of that permutation")
    expected_train = [[_neg_mae(y[s[:m]], np.full(m, y[s[:m]].mean())) for s in shuffled]
                      for m in (4, 11)]
    expected_val = [[_neg_mae(y[va], np.full(len(va), y[s[:m]].mean()))
                     for s, (_, va) in zip(shuffled, folds, strict=True)] for m in (4, 11)]
    assert_close(res.train_scores, expected_train, "learning_curve train_scores (each model "
                 "scored on its own m training rows)", rtol=1e-12, atol=1e-12)
    assert_close(res.val_scores, expected_val, "learning_curve val_scores (each model scored "
                 "on the WHOLE validation fold)", rtol=1e-12, atol=1e-12)

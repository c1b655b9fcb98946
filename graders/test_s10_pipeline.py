"""Public graders for s10 pipeline: transformers against scikit-learn, leak-free fitting,
pipelines equal to manual composition, cross-validation and a report that beats a baseline."""

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer as SkColumnTransformer
from sklearn.datasets import load_wine
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import RidgeClassifier as SkRidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import KBinsDiscretizer
from sklearn.preprocessing import OneHotEncoder as SkOneHotEncoder
from sklearn.preprocessing import StandardScaler as SkStandardScaler

from graders.helpers import assert_close, check_shape


def make_spy():
    """A transformer class that logs (event, instance id, row ids) for every fit / transform.

    Column 0 of X holds the row index, so the log shows exactly which rows each call saw. The
    log lives on the class: it survives copy.deepcopy of the instances.
    """

    class Spy:
        log: list = []

        def fit(self, X, y=None):
            Spy.log.append(("fit", id(self), frozenset(np.asarray(X)[:, 0].astype(int))))
            self.mean_ = np.asarray(X, dtype=np.float64)[:, 1:].mean(axis=0)
            return self

        def transform(self, X):
            X = np.asarray(X, dtype=np.float64)
            Spy.log.append(("transform", id(self), frozenset(X[:, 0].astype(int))))
            return X[:, 1:] - self.mean_

    return Spy


def _indexed(X):
    """Prepend the row index as column 0 (for the spy)."""
    return np.column_stack([np.arange(len(X)), X])


def _mixed_data(rng, n=120):
    """Object array: a numeric column, a city (strings), an age; binary target."""
    income = rng.lognormal(3.0, 0.5, n)
    city = rng.choice(np.array(["lyon", "oslo", "lima", "pune"]), n, p=[0.4, 0.3, 0.2, 0.1])
    age = rng.uniform(18, 80, n)
    risk = 0.03 * np.abs(age - 49) + (city == "lima") - 0.02 * income
    y = (risk + rng.normal(0, 0.3, n) > np.median(risk)).astype(int)
    X = np.empty((n, 3), dtype=object)
    X[:, 0], X[:, 1], X[:, 2] = income, city, age
    return X, y


# --- transformers ------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_scaler_matches_sklearn_and_handles_a_constant_column(impl, rng):
    X = rng.normal(5.0, 3.0, size=(40, 3))
    X[:, 1] = 2.0
    ours = impl.StandardScaler().fit_transform(X)
    # float64 arithmetic on the same formula
    assert_close(ours, SkStandardScaler().fit_transform(X),
                 "StandardScaler().fit_transform (population std; a constant column maps to 0)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_scaler_transforms_new_data_with_training_statistics(impl, rng):
    X_train = rng.normal(0.0, 1.0, size=(50, 2))
    X_test = rng.normal(4.0, 5.0, size=(20, 2))  # shifted: statistics refitted on it would hide it
    scaler = impl.StandardScaler().fit(X_train)
    expected = (X_test - X_train.mean(0)) / X_train.std(0)
    assert_close(scaler.transform(X_test), expected,
                 "transform(X_test) after fit(X_train): use the TRAINING mean and std",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_one_hot_matches_sklearn(impl):
    X = np.array([["b", 3], ["a", 1], ["c", 3], ["a", 2], ["b", 1]], dtype=object)
    ours = impl.OneHotEncoder().fit(X)
    ref = SkOneHotEncoder(sparse_output=False).fit(X)
    for j in range(2):
        assert list(ours.categories_[j]) == list(ref.categories_[j]), (
            f"categories_[{j}] should be the sorted distinct values {list(ref.categories_[j])}, "
            f"got {list(ours.categories_[j])}")
    Z = ours.transform(X)
    check_shape(Z, (5, 6), "one-hot of 2 columns with 3 + 3 categories")
    # exact 0/1 values
    assert_close(Z, ref.transform(X), "OneHotEncoder().transform", atol=0)


@pytest.mark.points(2)
def test_one_hot_unknown_categories_are_handled_explicitly(impl):
    train = np.array([["red"], ["green"], ["blue"], ["green"]], dtype=object)
    new = np.array([["green"], ["purple"], ["aqua"]], dtype=object)  # two unseen colours
    with pytest.raises(ValueError):
        impl.OneHotEncoder(handle_unknown="error").fit(train).transform(new)
    ours = impl.OneHotEncoder(handle_unknown="ignore").fit(train).transform(new)
    ref = SkOneHotEncoder(sparse_output=False, handle_unknown="ignore").fit(train).transform(new)
    # exact 0/1 values: an unseen category is a row of zeros, never a neighbour's column
    assert_close(ours, ref, "handle_unknown='ignore' on unseen categories", atol=0)


@pytest.mark.points(1)
def test_quantile_binner_matches_sklearn_with_training_edges(impl, rng):
    X_train, X_test = rng.normal(size=(200, 2)), rng.normal(1.0, 2.0, size=(50, 2))
    ours = impl.QuantileBinner(n_bins=4).fit(X_train)
    ref = KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="quantile",
                           quantile_method="linear").fit(X_train)
    # integer bin indices: exact
    assert_close(ours.transform(X_test), ref.transform(X_test),
                 "QuantileBinner(4).transform(X_test): edges come from the TRAINING quantiles",
                 atol=0)


@pytest.mark.points(2)
def test_column_transformer_matches_sklearn(impl, rng):
    X, _ = _mixed_data(rng)
    ours = impl.ColumnTransformer([("num", impl.StandardScaler(), [0, 2]),
                                   ("cat", impl.OneHotEncoder(), [1])]).fit(X[:80])
    ref = SkColumnTransformer([("num", SkStandardScaler(), [0, 2]),
                               ("cat", SkOneHotEncoder(sparse_output=False), [1])]).fit(X[:80])
    out = ours.transform(X[80:])
    check_shape(out, (40, 6), "ColumnTransformer: 2 scaled + 4 one-hot columns")
    # float64 scaling, exact one-hot
    assert_close(out, ref.transform(X[80:]), "ColumnTransformer.transform of new rows",
                 rtol=1e-10, atol=1e-12)


# --- Pipeline -------------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_pipeline_equals_manual_composition(impl, rng):
    X, y = _mixed_data(rng, 150)
    Xtr, ytr, Xte = X[:100], y[:100], X[100:]

    def make_columns():  # scale income, one-hot the city, bin then one-hot the age
        age = impl.Pipeline([("bin", impl.QuantileBinner(4)), ("onehot", impl.OneHotEncoder())])
        return impl.ColumnTransformer([("num", impl.StandardScaler(), [0]),
                                       ("city", impl.OneHotEncoder(handle_unknown="ignore"), [1]),
                                       ("age", age, [2])])

    # by hand, step by step
    num = impl.StandardScaler().fit(Xtr[:, [0]])
    city = impl.OneHotEncoder(handle_unknown="ignore").fit(Xtr[:, [1]])
    binner = impl.QuantileBinner(4).fit(Xtr[:, [2]])
    age = impl.OneHotEncoder().fit(binner.transform(Xtr[:, [2]]))

    def features(rows):
        return np.hstack([num.transform(rows[:, [0]]), city.transform(rows[:, [1]]),
                          age.transform(binner.transform(rows[:, [2]]))])

    scale = impl.StandardScaler().fit(features(Xtr))
    model = impl.RidgeClassifier(alpha=0.5).fit(scale.transform(features(Xtr)), ytr)

    pipe = impl.Pipeline([("columns", make_columns()), ("scale", impl.StandardScaler()),
                          ("model", impl.RidgeClassifier(alpha=0.5))]).fit(Xtr, ytr)
    assert np.array_equal(pipe.predict(Xte), model.predict(scale.transform(features(Xte)))), (
        "Pipeline.predict differs from fitting and applying the same steps by hand: fit each "
        "transformer on the output of the previous one, then fit the model on the last output")
    prep = impl.Pipeline([("columns", make_columns()), ("scale", impl.StandardScaler())])
    # the same float64 operations in the same order
    assert_close(prep.fit(Xtr).transform(Xte), scale.transform(features(Xte)),
                 "Pipeline.transform (every step a transformer)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_pipeline_matches_sklearn_pipeline(impl):
    X, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    ours = impl.Pipeline([("scale", impl.StandardScaler()),
                          ("model", impl.RidgeClassifier(alpha=10.0))]).fit(X[:120], y[:120])
    ref = make_pipeline(SkStandardScaler(), SkRidgeClassifier(alpha=10.0)).fit(X[:120], y[:120])
    agree = np.mean(ours.predict(X[120:]) == ref.predict(X[120:]))
    assert agree == 1.0, f"predictions agree with scikit-learn's pipeline on {agree:.0%} of rows"


@pytest.mark.points(3)
def test_pipeline_fits_transformers_on_training_rows_only(impl, rng):
    Spy = make_spy()
    X = _indexed(rng.normal(size=(60, 3)))
    y = (X[:, 1] > 0).astype(int)
    pipe = impl.Pipeline([("spy", Spy()), ("model", impl.RidgeClassifier())])
    pipe.fit(X[:40], y[:40])
    pipe.predict(X[40:])
    fits = [rows for event, _, rows in Spy.log if event == "fit"]
    assert fits == [frozenset(range(40))], (
        f"the transformer inside the pipeline was fitted {len(fits)} time(s); it should be "
        "fitted exactly once, on the 40 training rows. predict must only call transform: "
        "refitting on the rows being predicted lets them set their own statistics (leakage)")
    seen = [rows for event, _, rows in Spy.log if event == "transform"]
    assert frozenset(range(40, 60)) in seen, "predict should transform the new rows"


@pytest.mark.points(3)
def test_cross_val_score_fits_each_fold_on_its_training_rows_only(impl, rng):
    Spy = make_spy()
    X = _indexed(rng.normal(size=(50, 2)))
    y = (X[:, 1] + 0.3 * rng.normal(size=50) > 0).astype(int)
    original = Spy()
    pipe = impl.Pipeline([("spy", original), ("model", impl.RidgeClassifier())])
    scores = impl.cross_val_score(pipe, X, y, n_splits=5, seed=3)
    check_shape(scores, (5,), "cross_val_score with n_splits=5")
    fits = [(who, rows) for event, who, rows in Spy.log if event == "fit"]
    expected = {frozenset(train.tolist()) for train, _ in impl.kfold_indices(50, 5, 3)}
    got = {rows for _, rows in fits}
    assert len(fits) == 5 and got == expected, (
        f"the preprocessing was fitted on {sorted(len(r) for r in got)} rows in {len(fits)} "
        "calls; it must be fitted 5 times, each time on that fold's 40 training rows only. "
        "Fitting it on all the data before splitting leaks the validation rows into training")
    assert all(who != id(original) for who, _ in fits), (
        "the estimator passed to cross_val_score was fitted itself: fit a copy.deepcopy per fold")


@pytest.mark.points(1)
def test_cross_val_score_matches_a_manual_loop(impl):
    X, y = load_wine(return_X_y=True)
    pipe = impl.Pipeline([("scale", impl.StandardScaler()), ("model", impl.RidgeClassifier())])
    scores = impl.cross_val_score(pipe, X, y, n_splits=4, seed=1)
    expected = []
    for train, val in impl.kfold_indices(len(y), 4, 1):
        scaler = SkStandardScaler().fit(X[train])
        model = SkRidgeClassifier().fit(scaler.transform(X[train]), y[train])
        expected.append(np.mean(model.predict(scaler.transform(X[val])) == y[val]))
    # accuracies are ratios of small integers
    assert_close(scores, expected, "cross_val_score fold by fold", atol=1e-12)

    def errors(y_true, y_pred):  # a scorer other than accuracy
        return float(np.sum(y_true != y_pred))

    scores = impl.cross_val_score(pipe, X, y, n_splits=4, seed=1, scoring=errors)
    assert_close(scores, [round((1 - e) * len(val)) for e, (_, val) in
                          zip(expected, impl.kfold_indices(len(y), 4, 1), strict=True)],
                 "cross_val_score(scoring=errors): the scorer passed in, per fold", atol=1e-9)


# --- baselines and the end-to-end report ------------------------------------------------

@pytest.mark.points(1)
def test_majority_baseline_matches_dummy_classifier(impl):
    y = np.array([2, 0, 2, 1, 0, 2, 0])  # 0 and 2 tie: the smallest label wins
    X = np.zeros((7, 1))
    pred = impl.MajorityClassifier().fit(X, y).predict(np.zeros((3, 1)))
    ref = DummyClassifier(strategy="most_frequent").fit(X, y).predict(np.zeros((3, 1)))
    assert pred.tolist() == ref.tolist(), f"majority baseline predicts {pred}, expected {ref}"
    assert impl.MeanRegressor().fit(X, np.array([1.0, 2.0, 6.0, 3.0, 0, 0, 2])).predict(
        np.zeros((2, 1))).tolist() == [2.0, 2.0], "MeanRegressor should predict the training mean"


@pytest.mark.points(2)
def test_end_to_end_pipeline_beats_the_baseline(impl):
    X, y = load_wine(return_X_y=True)
    pipe = impl.Pipeline([("scale", impl.StandardScaler()), ("model", impl.RidgeClassifier())])
    report = impl.end_to_end_report(pipe, impl.MajorityClassifier(), X, y, test_frac=0.25,
                                    n_splits=5, seed=0)
    check_shape(report["cv_scores"], (5,), "report['cv_scores']")
    check_shape(report["test_index"], (round(0.25 * len(y)),), "report['test_index']")
    cv, base = np.mean(report["cv_scores"]), np.mean(report["baseline_cv_scores"])
    assert cv > 0.9 and cv > base + 0.4, (
        f"scaled ridge on wine should score above 0.9 in CV, far above the majority baseline; "
        f"got {cv:.3f} vs baseline {base:.3f}")
    test = report["test_index"]
    train = np.setdiff1d(np.arange(len(y)), test)
    majority = np.bincount(y[train]).argmax()
    # an accuracy is a ratio of small integers
    assert_close(report["baseline_test_score"], np.mean(y[test] == majority),
                 "baseline_test_score (majority class of the TRAINING rows, scored on test)",
                 atol=1e-12)
    assert report["test_score"] > report["baseline_test_score"], "the model loses to the baseline"


# --- the API boundary: what fit and transform return --------------------------------------------

def _transformers(impl):
    """(name, fresh transformer, input) for every transformer the step builds."""
    num = np.arange(12.0).reshape(6, 2) ** 1.5
    cat = np.array([["a", 1], ["b", 2], ["a", 2], ["c", 1], ["b", 1], ["a", 3]], dtype=object)
    return [("StandardScaler", impl.StandardScaler(), num),
            ("OneHotEncoder", impl.OneHotEncoder(), cat),
            ("QuantileBinner", impl.QuantileBinner(3), num),
            ("ColumnTransformer", impl.ColumnTransformer([("s", impl.StandardScaler(), [1])]), num),
            ("Pipeline", impl.Pipeline([("s", impl.StandardScaler()),
                                        ("b", impl.QuantileBinner(2))]), num)]


@pytest.mark.points(1)
def test_fit_returns_self_and_transform_returns_an_array(impl):
    for name, transformer, X in _transformers(impl):
        returned = transformer.fit(X)
        assert returned is transformer, (
            f"{name}.fit returned {type(returned).__name__}, not the transformer itself: end "
            f"{name}.fit with `return self`, so that {name}().fit(X).transform(X) and a "
            "Pipeline's step.fit(X, y).transform(X) work")
        out = transformer.transform(X)
        assert isinstance(out, np.ndarray), (
            f"{name}.transform must return a NumPy array, got {type(out).__name__}: the next "
            "step indexes it as X[:, columns]; wrap the result in np.asarray / np.column_stack")
        assert out.ndim == 2 and len(out) == len(X), (
            f"{name}.transform must return one row per input row, (n, columns); got shape "
            f"{out.shape} for {len(X)} rows")
    for name, model in (("MajorityClassifier", impl.MajorityClassifier()),
                        ("MeanRegressor", impl.MeanRegressor()),
                        ("Pipeline", impl.Pipeline([("m", impl.MeanRegressor())]))):
        returned = model.fit(np.zeros((4, 1)), np.array([1, 1, 2, 3]))
        assert returned is model, (
            f"{name}.fit returned {type(returned).__name__}, not the model itself: end it with "
            "`return self` (cross_val_score calls copy.deepcopy(model).fit(X, y).predict(X))")


@pytest.mark.points(1)
def test_report_returns_the_fitted_copy_and_exact_baseline_scores(impl, rng):
    X = rng.normal(size=(45, 3)) + 20.0
    y = np.where(X[:, 0] + rng.normal(0, 0.5, size=45) > 20, "hi", "lo")
    pipe = impl.Pipeline([("scale", impl.StandardScaler()), ("model", impl.RidgeClassifier())])
    report = impl.end_to_end_report(pipe, impl.MajorityClassifier(), X, y, test_frac=0.3,
                                    n_splits=3, seed=4)
    perm = np.random.default_rng(4).permutation(45)
    test, train = perm[:round(0.3 * 45)], perm[round(0.3 * 45):]  # the given split, in order
    assert sorted(np.asarray(report["test_index"]).tolist()) == sorted(test.tolist()), (
        "test_index: the first round(test_frac * n) = 14 rows of default_rng(seed).permutation(n)")
    fitted = report["fitted_model"]
    assert fitted is not pipe and not hasattr(pipe.steps[-1][1], "classes_"), (
        "report['fitted_model'] must be a fitted COPY: the model passed in stays unfitted")
    manual = impl.Pipeline([("scale", impl.StandardScaler()),
                            ("model", impl.RidgeClassifier())]).fit(X[train], y[train])
    assert np.array_equal(fitted.predict(X), manual.predict(X)), (
        "report['fitted_model'] should be the model fitted on all the non-test rows")
    ytr = y[train]
    expected = []
    for tr, va in impl.kfold_indices(len(ytr), 3, 4):
        values, counts = np.unique(ytr[tr], return_counts=True)
        expected.append(np.mean(ytr[va] == values[np.argmax(counts)]))
    # accuracies are ratios of small integers
    assert_close(report["baseline_cv_scores"], expected, "baseline_cv_scores: the majority "
                 "baseline cross-validated on the training rows (kfold_indices(len(train), "
                 "n_splits, seed))", atol=1e-12)
    assert_close(report["test_score"], np.mean(manual.predict(X[test]) == y[test]),
                 "test_score: the fitted copy scored once on the test rows", atol=1e-12)

"""Hidden graders for s10 pipeline: arbitrary shapes, the test split kept out of every fit,
supervised steps inside a pipeline, a regression report, bin edges."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import OneHotEncoder as SkOneHotEncoder
from sklearn.preprocessing import StandardScaler as SkStandardScaler

from graders.helpers import assert_close, check_shape


def _make_spy():
    class Spy:
        log: list = []

        def fit(self, X, y=None):
            Spy.log.append(("fit", id(self), frozenset(np.asarray(X)[:, 0].astype(int)),
                            None if y is None else np.asarray(y).copy()))
            return self

        def transform(self, X):
            return np.asarray(X, dtype=np.float64)[:, 1:]

    return Spy


@pytest.mark.points(2)
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 25), m=st.integers(1, 4), n_cats=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_one_hot_matches_sklearn_on_any_shape(impl, n, m, n_cats, seed):
    g = np.random.default_rng(seed)
    train = g.integers(0, n_cats, size=(n, m))
    new = g.integers(0, n_cats + 2, size=(7, m))  # values n_cats, n_cats + 1 may be unseen
    ours = impl.OneHotEncoder(handle_unknown="ignore").fit(train)
    ref = SkOneHotEncoder(sparse_output=False, handle_unknown="ignore").fit(train)
    out = ours.transform(new)
    check_shape(out, ref.transform(new).shape, f"one-hot of a ({n}, {m}) training array")
    # exact 0/1 values
    assert_close(out, ref.transform(new), "OneHotEncoder(handle_unknown='ignore')", atol=0)


@pytest.mark.points(1)
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_scaler_matches_sklearn_on_any_shape(impl, n, d, seed):
    g = np.random.default_rng(seed)
    X = g.normal(g.normal(0, 10, d), g.uniform(0.1, 5, d), size=(n, d))
    new = g.normal(size=(4, d)) * 3
    # float64 arithmetic on the same formula; n = 1 makes every std 0 (-> scale 1)
    assert_close(impl.StandardScaler().fit(X).transform(new),
                 SkStandardScaler().fit(X).transform(new), f"StandardScaler on ({n}, {d})",
                 rtol=1e-9, atol=1e-10)


@pytest.mark.points(3)
def test_end_to_end_report_never_fits_on_the_test_rows(impl, rng):
    Spy = _make_spy()
    X = np.column_stack([np.arange(80), rng.normal(size=(80, 2))])
    y = (X[:, 1] > 0).astype(int)
    pipe = impl.Pipeline([("spy", Spy()), ("model", impl.RidgeClassifier())])
    report = impl.end_to_end_report(pipe, impl.MajorityClassifier(), X, y, test_frac=0.25,
                                    n_splits=4, seed=2)
    test = set(np.asarray(report["test_index"]).tolist())
    expected = set(np.random.default_rng(2).permutation(80)[:20].tolist())
    assert test == expected, (
        "test_index should be the first round(test_frac * n) rows of "
        "np.random.default_rng(seed).permutation(n)")
    fits = [rows for event, _, rows, _ in Spy.log if event == "fit"]
    assert len(fits) == 5, (
        f"expected 5 fits (4 CV folds + the final fit on the training rows), got {len(fits)}")
    leaked = [sorted(rows & test)[:5] for rows in fits if rows & test]
    assert not leaked, (
        f"a fit saw held-out test rows (e.g. {leaked[0]}): the test split may only be "
        "predicted, once, at the end; fit the final model on the training rows alone")
    assert frozenset(range(80)) - test in fits, (
        "the final model should be fitted on all the non-test rows")


@pytest.mark.points(1)
def test_pipeline_passes_y_to_its_transformers(impl, rng):
    Spy = _make_spy()
    X = np.column_stack([np.arange(30), rng.normal(size=(30, 2))])
    y = rng.integers(0, 2, 30)
    impl.Pipeline([("spy", Spy()), ("model", impl.MajorityClassifier())]).fit(X, y)
    got = [labels for event, _, _, labels in Spy.log if event == "fit"]
    assert len(got) == 1 and got[0] is not None and np.array_equal(got[0], y), (
        "Pipeline.fit should call step.fit(X, y) with the labels: a supervised step (a feature "
        "selector, a target encoder) needs y")


@pytest.mark.points(2)
def test_regression_report_beats_the_mean_baseline(impl):
    X, y = load_diabetes(return_X_y=True)

    def neg_mse(y_true, y_pred):
        return -float(np.mean((y_true - y_pred) ** 2))

    pipe = impl.Pipeline([("scale", impl.StandardScaler()), ("model", impl.Ridge(alpha=1.0))])
    report = impl.end_to_end_report(pipe, impl.MeanRegressor(), X, y, test_frac=0.2,
                                    n_splits=5, seed=1, scoring=neg_mse)
    test = report["test_index"]
    train = np.setdiff1d(np.arange(len(y)), test)
    # a mean and a squared error in float64
    assert_close(report["baseline_test_score"], neg_mse(y[test], y[train].mean()),
                 "baseline_test_score: the TRAINING mean scored on the test rows", rtol=1e-9)
    assert np.mean(report["cv_scores"]) > 0.8 * np.mean(report["baseline_cv_scores"]), (
        f"ridge should cut the mean baseline's squared error by well over 20%: CV scores "
        f"{np.mean(report['cv_scores']):.0f} vs {np.mean(report['baseline_cv_scores']):.0f}")


@pytest.mark.points(1)
def test_quantile_bins_at_the_edges(impl):
    X = np.arange(1.0, 9.0)[:, None]  # 1..8: quartile inner edges at 2.75, 4.5, 6.25
    binner = impl.QuantileBinner(n_bins=4).fit(X)
    got = binner.transform(np.array([[-100.0], [2.75], [4.5], [4.49], [100.0]]))[:, 0]
    assert got.tolist() == [0, 1, 2, 1, 3], (
        "bins at and around the quantile edges are wrong: a value equal to an inner edge "
        "belongs to the bin above it (searchsorted side='right'), and values beyond the "
        "training range stay in the first / last bin")


@pytest.mark.points(1)
def test_one_hot_error_names_the_unknown_value(impl):
    enc = impl.OneHotEncoder().fit(np.array([["tea", "s"], ["milk", "m"]], dtype=object))
    with pytest.raises(ValueError, match="coffee"):
        enc.transform(np.array([["tea", "m"], ["coffee", "s"]], dtype=object))
    # the option read from a config file: equal to "error", but not the literal's object
    configured = "".join(["err", "or"])
    enc = impl.OneHotEncoder(handle_unknown=configured).fit(np.array([["tea"], ["milk"]]))
    with pytest.raises(ValueError, match="coffee"):
        enc.transform(np.array([["coffee"]]))


@pytest.mark.points(1)
def test_column_transformer_keeps_the_listed_order_and_drops_the_rest(impl, rng):
    X = rng.normal(size=(20, 4))
    ct = impl.ColumnTransformer([("b", impl.StandardScaler(), [3]),
                                 ("a", impl.StandardScaler(), [0, 1])]).fit(X)
    out = ct.transform(X)
    expected = SkStandardScaler().fit_transform(X[:, [3, 0, 1]])
    # float64 arithmetic on the same formula
    assert_close(out, expected, "ColumnTransformer output: blocks in the listed order, "
                 "unlisted column 2 dropped", rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_column_transformer_passes_y_and_string_majority_ties(impl, rng):
    Spy = _make_spy()
    X = np.column_stack([np.arange(12), rng.normal(size=(12, 2))])
    y = rng.integers(0, 2, 12)
    ct = impl.ColumnTransformer([("spy", Spy(), [0, 1])])
    assert ct.fit(X, y) is ct, "ColumnTransformer.fit must return self"
    got = [labels for event, _, _, labels in Spy.log if event == "fit"]
    assert len(got) == 1 and got[0] is not None and np.array_equal(got[0], y), (
        "ColumnTransformer.fit should call transformer.fit(X[:, cols], y): pass the labels on")
    labels = np.array(["pear", "fig", "pear", "fig", "kiwi"])
    pred = impl.MajorityClassifier().fit(np.zeros((5, 1)), labels).predict(np.zeros((2, 1)))
    assert pred.tolist() == ["fig", "fig"], (
        f"'pear' and 'fig' tie for the most frequent label; the smallest ('fig') wins, got "
        f"{pred.tolist()}")


@pytest.mark.points(1)
def test_one_hot_error_names_the_column(impl):
    enc = impl.OneHotEncoder().fit(np.array([["tea", "s"], ["milk", "m"]], dtype=object))
    with pytest.raises(ValueError, match="1"):
        enc.transform(np.array([["tea", "xl"]], dtype=object))
    ignore = impl.OneHotEncoder(handle_unknown="ignore").fit(np.array([[3], [1]], dtype=np.int32))
    assert ignore.transform(np.array([[1], [2], [3]], dtype=np.int32)).tolist() == [
        [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], "int32 categories with an unseen 2 (all zeros)"

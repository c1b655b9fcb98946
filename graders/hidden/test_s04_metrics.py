"""Hidden graders for s04 metrics: property-based agreement with sklearn.metrics on random
inputs (warnings are errors in the learner's code), undefined curves, and AUC's meaning."""

import warnings

import numpy as np
import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import rankdata
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve as sk_calibration_curve

from graders.helpers import assert_close

# no "explain" phase: it re-runs a failing test many times to annotate the example, which
# costs tens of seconds per test on a learner's unfinished code; shrinking is kept
QUICK = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


def _sk(fn, *args, **kwargs):
    """sklearn may warn on undefined cases; we only want its values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@st.composite
def label_pairs(draw, max_label=4):
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, max_label))
    y_true = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    y_pred = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    return y_true, y_pred


@st.composite
def scored_labels(draw, both_classes=True):
    n = draw(st.integers(2, 40))
    y = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    if both_classes:
        assume(0 < y.sum() < n)
    # a few distinct values make many ties; floats in [0, 1] make none
    if draw(st.booleans()):
        s = draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])))
    else:
        s = draw(arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
    return y, s


@pytest.mark.points(3)
@settings(max_examples=25, deadline=None, phases=QUICK)
@given(pair=label_pairs())
def test_precision_recall_f1_property_all_averages(impl, pair):
    y_true, y_pred = pair
    averages = ["macro", "micro", "weighted", None]
    if len(np.union1d(y_true, y_pred)) <= 2 and set(np.union1d(y_true, y_pred)) <= {0, 1}:
        averages.append("binary")
    for average in averages:
        ours = _quiet(impl.precision_recall_f1, y_true, y_pred, average=average)
        expected = skm.precision_recall_fscore_support(y_true, y_pred, average=average,
                                                       zero_division=0)[:3]
        for name, o, e in zip(("precision", "recall", "F1"), ours, expected, strict=True):
            # ratios of small counts: rounding only
            assert_close(o, e, f"{name}, average={average!r}, on {len(y_true)} labels drawn "
                         f"from {len(np.union1d(y_true, y_pred))} classes", rtol=1e-12,
                         atol=1e-15)


@pytest.mark.points(1)
@settings(max_examples=25, deadline=None, phases=QUICK)
@given(pair=label_pairs(max_label=5))
def test_confusion_matrix_property(impl, pair):
    y_true, y_pred = pair
    C = np.asarray(_quiet(impl.confusion_matrix, y_true, y_pred))
    assert np.array_equal(C, _sk(skm.confusion_matrix, y_true, y_pred)), (
        "confusion_matrix differs from sklearn's on random labels (rows true, columns "
        "predicted, labels = sorted union of both arrays)")
    assert C.sum() == len(y_true), "every sample must be counted exactly once"


@pytest.mark.points(3)
@settings(max_examples=25, deadline=None, phases=QUICK)
@given(data=scored_labels())
def test_ranking_curves_property(impl, data):
    y, s = data
    fpr, tpr, thr = _quiet(impl.roc_curve, y, s)
    efpr, etpr, ethr = skm.roc_curve(y, s, drop_intermediate=False)
    assert len(thr) == len(ethr) and np.array_equal(thr, ethr), (
        "roc_curve thresholds should be +inf then each distinct score, decreasing")
    # count ratios: rounding only
    assert_close(fpr, efpr, "roc_curve fpr", rtol=1e-12, atol=1e-15)
    assert_close(tpr, etpr, "roc_curve tpr", rtol=1e-12, atol=1e-15)
    assert_close(_quiet(impl.roc_auc, y, s), skm.roc_auc_score(y, s), "roc_auc", rtol=1e-12,
                 atol=1e-15)
    prec, rec, pthr = _quiet(impl.precision_recall_curve, y, s)
    eprec, erec, epthr = skm.precision_recall_curve(y, s)
    assert np.array_equal(pthr, epthr), "PR thresholds: each distinct score, increasing"
    assert_close(prec, eprec, "precision_recall_curve precision", rtol=1e-12, atol=1e-15)
    assert_close(rec, erec, "precision_recall_curve recall", rtol=1e-12, atol=1e-15)
    assert_close(_quiet(impl.average_precision, y, s), skm.average_precision_score(y, s),
                 "average_precision", rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
@pytest.mark.parametrize("label", [0, 1])
def test_curves_with_a_single_class_match_sklearn_quietly(impl, label):
    y = np.full(6, label)
    s = np.array([0.1, 0.4, 0.4, 0.8, 0.3, 0.9])
    fpr, tpr, _ = _quiet(impl.roc_curve, y, s)
    efpr, etpr, _ = _sk(skm.roc_curve, y, s, drop_intermediate=False)
    for name, o, e in (("fpr", fpr, efpr), ("tpr", tpr, etpr)):
        assert np.array_equal(np.isnan(o), np.isnan(e)) and np.allclose(
            o[~np.isnan(o)], e[~np.isnan(e)]), (
            f"with only class {label} in y_true, roc_curve's {name} should be {e.tolist()} "
            f"(NaN where the class total is 0), got {np.asarray(o).tolist()}")
    auc = _quiet(impl.roc_auc, y, s)
    assert np.isnan(auc), f"ROC AUC with one class is undefined: return NaN, got {auc}"
    ap = _quiet(impl.average_precision, y, s)
    assert_close(ap, _sk(skm.average_precision_score, y, s),
                 f"average_precision with only class {label}", rtol=1e-12)
    prec, rec, _ = _quiet(impl.precision_recall_curve, y, s)
    eprec, erec, _ = _sk(skm.precision_recall_curve, y, s)
    assert_close(rec, erec, f"PR recall with only class {label} (1 if there are no positives)",
                 rtol=1e-12)
    assert_close(prec, eprec, f"PR precision with only class {label}", rtol=1e-12)


@pytest.mark.points(1)
@settings(max_examples=30, deadline=None, phases=QUICK)
@given(data=scored_labels())
def test_auc_is_the_probability_a_positive_outranks_a_negative(impl, data):
    y, s = data
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    mann_whitney = np.mean((diff > 0) + 0.5 * (diff == 0))
    # the trapezoid rule counts a tie as half: exact up to rounding
    assert_close(_quiet(impl.roc_auc, y, s), mann_whitney,
                 "roc_auc vs the fraction of (positive, negative) pairs ranked correctly",
                 rtol=1e-12, atol=1e-15)
    assert_close(_quiet(impl.roc_auc, y, rankdata(s)), mann_whitney,
                 "roc_auc on the ranks of the scores (only the order matters)",
                 rtol=1e-12, atol=1e-15)


@pytest.mark.points(2)
@settings(max_examples=25, deadline=None, phases=QUICK)
@given(data=scored_labels(both_classes=False), n_bins=st.integers(1, 12))
def test_calibration_curve_and_ece_property(impl, data, n_bins):
    y, p = data
    prob_true, prob_pred, counts = _quiet(impl.calibration_curve, y, p, n_bins=n_bins)
    e_true, e_pred = sk_calibration_curve(y, p, n_bins=n_bins)
    # bin means of the same numbers: rounding only
    assert_close(prob_true, e_true, f"prob_true with n_bins={n_bins}", rtol=1e-12, atol=1e-15)
    assert_close(prob_pred, e_pred, f"prob_pred with n_bins={n_bins}", rtol=1e-12, atol=1e-15)
    ids = np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], p)
    expected_counts = np.bincount(ids, minlength=n_bins)
    assert np.array_equal(counts, expected_counts[expected_counts > 0]), (
        f"calibration counts per non-empty bin should be "
        f"{expected_counts[expected_counts > 0].tolist()}, got {np.asarray(counts).tolist()}")
    ece = _quiet(impl.expected_calibration_error, y, p, n_bins=n_bins)
    w = expected_counts[expected_counts > 0] / len(p)
    assert_close(ece, np.sum(w * np.abs(e_true - e_pred)), f"ECE with n_bins={n_bins}",
                 rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
def test_ece_separates_calibrated_from_overconfident(impl):
    gen = np.random.default_rng(0)
    p = gen.random(20_000)
    y = (gen.random(20_000) < p).astype(int)  # calibrated by construction
    ece = impl.expected_calibration_error(y, p)
    # sampling noise of 20k Bernoulli draws in 10 bins: ~0.005
    assert ece < 0.02, f"a calibrated model should have ECE near 0, got {ece:.4f}"
    p_over = np.where(p > 0.5, 0.99, 0.01)  # same ranking, overconfident
    ece_over = impl.expected_calibration_error(y, p_over)
    # the true positive rate among p > 0.5 is ~0.75: the gap is ~0.24
    assert ece_over > 0.2, (
        f"pushing every probability to 0.01 / 0.99 should raise ECE above 0.2, got "
        f"{ece_over:.4f}")


@pytest.mark.points(1)
def test_average_names_are_compared_by_value(impl):
    """A name built at run time (read from a config file, say) is equal to, but not the same
    object as, the literal: `average is "macro"` fails on it, `average == "macro"` works."""
    y_true = np.array([0, 1, 2, 2, 1, 0, 2, 1])
    y_pred = np.array([0, 2, 2, 1, 1, 0, 2, 0])
    for name in ("macro", "micro", "weighted"):
        built = "".join(list(name))
        assert built == name and built is not name
        got = _quiet(impl.precision_recall_f1, y_true, y_pred, average=built)
        want = skm.precision_recall_fscore_support(y_true, y_pred, average=name,
                                                   zero_division=0)[:3]
        # counts over 8 labels: exact up to one rounding
        assert_close(np.array(got, dtype=float), np.array(want),
                     f"precision_recall_f1(..., average={name!r}) with the name built at run "
                     "time (compare strings with ==, never with `is`)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_pr_curve_with_exactly_one_positive(impl):
    y = np.array([0, 0, 1, 0, 0])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2])
    precision, recall, thresholds = _quiet(impl.precision_recall_curve, y, scores)
    sk_p, sk_r, sk_t = skm.precision_recall_curve(y, scores)
    # ratios of small counts: exact up to one rounding
    assert_close(recall, sk_r, "recall of the PR curve with exactly one positive (tps / #pos "
                 "with #pos = 1)", rtol=1e-12, atol=1e-12)
    assert_close(precision, sk_p, "precision of the PR curve with one positive", rtol=1e-12,
                 atol=1e-12)
    assert_close(_quiet(impl.average_precision, y, scores),
                 skm.average_precision_score(y, scores),
                 "average_precision with exactly one positive", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_probabilities_exactly_on_bin_edges(impl):
    """Bins are closed on the right: 0.1 is in [0, 0.1], 0.2 in (0.1, 0.2], 1.0 in the last."""
    edges = np.linspace(0.0, 1.0, 6)  # n_bins = 5: edges 0, .2, .4, .6, .8, 1
    prob = np.array([edges[1], edges[1], edges[2], edges[3], 1.0, 0.0])
    y = np.array([1, 0, 1, 0, 1, 0])
    prob_true, prob_pred, counts = _quiet(impl.calibration_curve, y, prob, n_bins=5)
    assert np.asarray(counts).tolist() == [3, 1, 1, 1], (
        f"with 5 bins, probabilities {prob.tolist()} fall in bins [0, .2] x3 (0.2 is its right "
        f"edge), (.2, .4], (.4, .6] and (.8, 1]: counts [3, 1, 1, 1]; got "
        f"{np.asarray(counts).tolist()}. Use np.searchsorted(edges[1:-1], p) (side='left').")
    assert_close(prob_true, [1 / 3, 1.0, 0.0, 1.0], "prob_true with probabilities on the bin "
                 "edges", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_threshold_counts_by_hand_with_ties(impl):
    y = np.array([1, 0, 1, 1, 0, 0, 1], dtype=np.int32)
    scores = np.array([0.9, 0.7, 0.7, 0.3, 0.3, 0.3, 0.1])
    fps, tps, thresholds = _quiet(impl.threshold_counts, y, scores)
    # counts: exact
    got = [np.asarray(a, dtype=float).tolist() for a in (fps, tps, thresholds)]
    want = [[0.0, 1.0, 3.0, 3.0], [1.0, 2.0, 3.0, 4.0], [0.9, 0.7, 0.3, 0.1]]
    assert got == want, (
        f"threshold_counts(y, scores) should give (fps, tps, thresholds) = {want}: one point "
        "per distinct score from the highest down, tied scores counted together; got "
        f"{got}")


@pytest.mark.points(1)
@pytest.mark.parametrize("average", [None, "macro", "weighted", "micro"])
def test_labels_pick_and_order_the_classes(impl, average):
    y_true = np.array(["b", "a", "c", "c", "a", "b", "c", "a", "d"])
    y_pred = np.array(["b", "c", "c", "a", "a", "b", "b", "a", "c"])
    labels = np.array(["c", "a"])  # a subset, in a given order
    got = _quiet(impl.precision_recall_f1, y_true, y_pred, average=average, labels=labels)
    want = skm.precision_recall_fscore_support(y_true, y_pred, average=average, labels=labels,
                                               zero_division=0)[:3]
    # ratios of small counts: exact up to rounding
    assert_close(np.array(got, dtype=float), np.array(want, dtype=float),
                 f"precision_recall_f1(..., average={average!r}, labels=['c', 'a']) on string "
                 "labels: only the given labels, in the given order", rtol=1e-12, atol=1e-12)

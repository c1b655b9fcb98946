"""Public graders for s04 metrics: every number equals sklearn.metrics (zero_division=0) on the
same inputs, and the edge cases give sklearn's defined values with no warning."""

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve as sk_calibration_curve

from graders.helpers import assert_close, check_shape

AVERAGES = ["macro", "micro", "weighted"]


def _quiet(fn, *args, what: str, **kwargs):
    """Call the learner's fn with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return fn(*args, **kwargs)
        except Warning as exc:
            raise AssertionError(
                f"{what} emitted a warning: {type(exc).__name__}: {exc}. Edge cases must give "
                "their defined value quietly: guard every division whose denominator can be "
                "0 (the value is then 0, like sklearn's zero_division=0).") from None
        except ZeroDivisionError as exc:
            raise AssertionError(f"{what} divided by zero: {exc}") from None


def _sk_prf(y_true, y_pred, **kw):
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, zero_division=0, **kw)
    return p, r, f


# --- confusion matrix and accuracy ---------------------------------------------------------

@pytest.mark.points(1)
def test_confusion_matrix_matches_sklearn(impl, rng):
    y_true = rng.integers(0, 4, size=60)
    y_pred = rng.integers(0, 5, size=60)  # label 4 is only ever predicted
    C = np.asarray(impl.confusion_matrix(y_true, y_pred))
    check_shape(C, (5, 5), "confusion_matrix for labels 0..4 (4 appears only in y_pred)")
    assert np.array_equal(C, skm.confusion_matrix(y_true, y_pred)), (
        "confusion_matrix differs from sklearn's: rows are TRUE labels, columns PREDICTED, "
        f"labels sorted.\nyours:\n{C}\nexpected:\n{skm.confusion_matrix(y_true, y_pred)}")


@pytest.mark.points(1)
def test_confusion_matrix_follows_the_given_label_order(impl):
    y_true = np.array([0, 1, 2, 2, 1])
    y_pred = np.array([2, 1, 0, 2, 0])
    C = np.asarray(impl.confusion_matrix(y_true, y_pred, labels=np.array([2, 0])))
    assert np.array_equal(C, [[1, 1], [1, 0]]), (
        f"confusion_matrix(..., labels=[2, 0]) should be [[1, 1], [1, 0]] (row = true label "
        f"in the order given, samples with other labels ignored), got {C.tolist()}")


@pytest.mark.points(1)
def test_accuracy(impl, rng):
    y_true = rng.integers(0, 3, size=50)
    y_pred = np.where(rng.random(50) < 0.7, y_true, rng.integers(0, 3, size=50))
    assert_close(impl.accuracy(y_true, y_pred), skm.accuracy_score(y_true, y_pred),
                 "accuracy", rtol=1e-12)


# --- precision, recall, F1 -----------------------------------------------------------------

@pytest.mark.points(1)
def test_binary_precision_recall_f1_match_sklearn(impl, rng):
    y_true = rng.integers(0, 2, size=40)
    y_pred = np.where(rng.random(40) < 0.75, y_true, 1 - y_true)
    ours = impl.precision_recall_f1(y_true, y_pred, average="binary")
    # counts divided by counts: exact up to rounding
    assert_close(np.array(ours), np.array(_sk_prf(y_true, y_pred, average="binary")),
                 "(precision, recall, F1) with average='binary', pos_label=1", rtol=1e-12)
    ours0 = impl.precision_recall_f1(y_true, y_pred, average="binary", pos_label=0)
    assert_close(np.array(ours0),
                 np.array(_sk_prf(y_true, y_pred, average="binary", pos_label=0)),
                 "(precision, recall, F1) with pos_label=0", rtol=1e-12)


@pytest.mark.points(1)  # per average: 4 points in all
@pytest.mark.parametrize("average", AVERAGES + [None])
def test_multiclass_averages_match_sklearn(impl, rng, average):
    # imbalanced classes, so that macro, micro and weighted all differ
    y_true = rng.choice(4, size=80, p=[0.55, 0.25, 0.15, 0.05])
    y_pred = np.where(rng.random(80) < 0.6, y_true, rng.integers(0, 4, size=80))
    ours = impl.precision_recall_f1(y_true, y_pred, average=average)
    expected = _sk_prf(y_true, y_pred, average=average)
    for name, o, e in zip(("precision", "recall", "F1"), ours, expected, strict=True):
        assert_close(o, e, f"{name} with average={average!r} (macro: mean over labels; micro: "
                     "pool the counts first; weighted: mean weighted by support)", rtol=1e-12)


@pytest.mark.points(1)
def test_micro_average_equals_accuracy_on_multiclass(impl, rng):
    y_true = rng.integers(0, 5, size=70)
    y_pred = rng.integers(0, 5, size=70)
    p, r, f = impl.precision_recall_f1(y_true, y_pred, average="micro")
    acc = float(np.mean(y_true == y_pred))
    # each sample is one tp or one (fp, fn) pair: all three equal accuracy exactly
    assert_close(np.array([p, r, f]), np.full(3, acc),
                 "micro (precision, recall, F1) on single-label multiclass data = accuracy",
                 rtol=1e-12)


EDGE_CASES = {
    "no positive labels": ([0, 0, 0, 0], [0, 1, 0, 1]),
    "a single class everywhere": ([0, 0, 0], [0, 0, 0]),
    "no predicted positives": ([1, 0, 1, 0, 0], [0, 0, 0, 0, 0]),
    "all positive, all right": ([1, 1, 1], [1, 1, 1]),
}


@pytest.mark.points(1)  # per case: 4 points in all
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edge_cases_give_sklearn_zero_division_values_without_warnings(impl, case):
    y_true, y_pred = (np.array(a) for a in EDGE_CASES[case])
    for average in ["binary"] + AVERAGES:
        ours = _quiet(impl.precision_recall_f1, y_true, y_pred, average=average,
                      what=f"precision_recall_f1 with {case}, average={average!r}")
        expected = _sk_prf(y_true, y_pred, average=average)
        # small integer ratios: exact up to rounding
        assert_close(np.array(ours, dtype=float), np.array(expected, dtype=float),
                     f"(precision, recall, F1) with {case}, average={average!r}: a 0/0 is 0",
                     rtol=1e-12)


# --- ROC and PR curves ---------------------------------------------------------------------

def _scores_with_ties(rng, n):
    y = rng.integers(0, 2, size=n)
    y[:2] = [0, 1]  # both classes present
    scores = np.round(0.5 * y + rng.normal(0.0, 0.4, size=n), 1)  # rounding makes ties
    return y, scores


@pytest.mark.points(2)
def test_roc_curve_matches_sklearn_with_ties(impl, rng):
    y, s = _scores_with_ties(rng, 60)
    fpr, tpr, thr = impl.roc_curve(y, s)
    efpr, etpr, ethr = skm.roc_curve(y, s, drop_intermediate=False)
    check_shape(thr, ethr.shape, "roc_curve thresholds (the +inf start, then one per "
                "DISTINCT score: tied scores cross the threshold together)")
    assert np.isinf(thr[0]) and thr[0] > 0, (
        f"the first threshold must be +inf (the point (0, 0): nothing flagged), got {thr[0]}")
    # the thresholds are the scores themselves: exact
    assert_close(thr[1:], ethr[1:], "roc_curve thresholds after +inf (the distinct scores, "
                 "DECREASING)", rtol=0, atol=0)
    # cumulative counts divided by totals: rounding only
    assert_close(fpr, efpr, "fpr from roc_curve", rtol=1e-12, atol=1e-15)
    assert_close(tpr, etpr, "tpr from roc_curve", rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
def test_roc_auc_matches_sklearn(impl, rng):
    y, s = _scores_with_ties(rng, 80)
    # the same trapezoids (sklearn drops collinear points, which changes only rounding)
    assert_close(impl.roc_auc(y, s), skm.roc_auc_score(y, s), "roc_auc", rtol=1e-12)
    assert_close(impl.roc_auc(y, -s), 1.0 - skm.roc_auc_score(y, s),
                 "roc_auc of negated scores (= 1 - AUC)", rtol=1e-12)


@pytest.mark.points(2)
def test_precision_recall_curve_and_average_precision_match_sklearn(impl, rng):
    y, s = _scores_with_ties(rng, 60)
    prec, rec, thr = impl.precision_recall_curve(y, s)
    eprec, erec, ethr = skm.precision_recall_curve(y, s)
    check_shape(thr, ethr.shape, "precision_recall_curve thresholds (one per distinct score)")
    assert_close(thr, ethr, "PR thresholds (increasing)", rtol=0, atol=0)
    # count ratios: rounding only
    assert_close(prec, eprec, "precision from precision_recall_curve (ends with 1)",
                 rtol=1e-12, atol=1e-15)
    assert_close(rec, erec, "recall from precision_recall_curve (ends with 0)",
                 rtol=1e-12, atol=1e-15)
    assert_close(impl.average_precision(y, s), skm.average_precision_score(y, s),
                 "average_precision = sum_k (R_k - R_k+1) P_k (not a trapezoid)", rtol=1e-12)


# --- calibration ---------------------------------------------------------------------------

@pytest.mark.points(1)
def test_calibration_curve_matches_sklearn(impl, rng):
    prob = rng.beta(0.7, 0.7, size=300)
    y = (rng.random(300) < prob ** 1.5).astype(int)  # a miscalibrated model
    prob_true, prob_pred, counts = impl.calibration_curve(y, prob, n_bins=8)
    e_true, e_pred = sk_calibration_curve(y, prob, n_bins=8)
    check_shape(prob_true, e_true.shape, "prob_true (one value per NON-EMPTY bin)")
    # bin means of the same numbers: rounding only
    assert_close(prob_true, e_true, "prob_true (fraction of positives per bin)", rtol=1e-12)
    assert_close(prob_pred, e_pred, "prob_pred (mean predicted probability per bin)",
                 rtol=1e-12)
    assert int(np.sum(counts)) == 300, f"the bin counts should add up to 300, got {counts}"


@pytest.mark.points(1)
def test_expected_calibration_error_by_hand(impl):
    # bin (0.8, 0.9]: 4 samples at 0.85, 2 positive -> gap |0.5 - 0.85| = 0.35, weight 4/6
    # bin (0.1, 0.2]: 2 samples at 0.15, 0 positive -> gap 0.15, weight 2/6
    prob = np.array([0.85, 0.85, 0.85, 0.85, 0.15, 0.15])
    y = np.array([1, 1, 0, 0, 0, 0])
    expected = 4 / 6 * 0.35 + 2 / 6 * 0.15
    assert_close(impl.expected_calibration_error(y, prob, n_bins=10), expected,
                 "ECE = sum_b (n_b / n) |prob_true_b - prob_pred_b|", rtol=1e-12)

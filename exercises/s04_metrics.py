"""s04 · Metrics: what "good" means for a classifier, computed from counts.

You build
    confusion_matrix(y_true, y_pred)               counts C[i, j]: true label i, predicted j
    accuracy(y_true, y_pred)                       the fraction of correct predictions
    precision_recall_f1(y_true, y_pred, average)   binary, macro, micro, weighted or per label
    threshold_counts(y_true, scores)               false / true positives at every threshold
    roc_curve, roc_auc                             TPR against FPR as the threshold falls
    precision_recall_curve, average_precision      precision against recall, and its area
    calibration_curve, expected_calibration_error  do predicted probabilities come true?

How it differs from s02 / s03
    Those steps produced predictions; this one judges them, the way scikit-learn does
    (``zero_division=0``): every function returns the same numbers as ``sklearn.metrics`` and
    never warns or divides by zero.

The math
    For one label l: tp = #(true = l and pred = l), pred_l = #(pred = l), support_l = #(true = l).
        precision = tp / pred_l           (of what we flagged, how much was right)
        recall    = tp / support_l        (of what was there, how much we found)
        F1        = 2 tp / (pred_l + support_l)    (= 2PR / (P + R), their harmonic mean)
    A 0/0 (nothing predicted, nothing present) is defined as 0 -- never NaN, never a warning.
    Averages over the labels (by default every label in y_true or y_pred, sorted):
        binary   the scores of ``pos_label`` alone (y may hold at most two labels);
        macro    the plain mean of the per-label scores: every class counts the same;
        micro    pool tp, pred and support over labels, then divide: every *sample* counts
                 the same; with all labels, micro P = micro R = micro F1 = accuracy;
        weighted the mean of per-label scores weighted by support_l / sum support (0 if 0).
    Macro F1 is the mean of per-label F1s, not the F1 of macro P and macro R.

    Ranking curves. Sort the scores from high to low; at each distinct score t, count the
    positives (tps) and negatives (fps) with score >= t (tied scores enter together: one
    point per distinct score). Then
        ROC: FPR = fps / #neg, TPR = tps / #pos, starting at (0, 0) with threshold +inf;
             AUC is the trapezoid area under it = P(score of a random positive > score of a
             random negative), ties counting 1/2.
        PR:  precision = tps / (tps + fps), recall = tps / #pos, reported by increasing
             threshold and closed with the point (recall 0, precision 1), as scikit-learn.
             Average precision AP = sum_k (R_k - R_{k+1}) P_k: a step-function area, not a
             trapezoid (linear interpolation between PR points is optimistic).
    Undefined cases follow scikit-learn's values: TPR is NaN without positives (FPR without
    negatives), so AUC is NaN; PR recall is 1 at every threshold without positives, AP = 0.

    Calibration. Split [0, 1] into n_bins equal bins; probability p falls in bin
    np.searchsorted(edges[1:-1], p) (bins closed on the right: [0, .1], (.1, .2], ...). In every
    non-empty bin compare the fraction of positives (prob_true) with the mean predicted
    probability (prob_pred). ECE = sum_b (n_b / n) |prob_true_b - prob_pred_b|.

Shapes
    y_true, y_pred: (n,) labels; scores, prob: (n,) floats, higher = more likely positive.

You should be able to explain
    - why 95% accuracy can be worthless on a 95 / 5 data set (predict the majority class);
    - when macro and micro averages disagree, and which one protects a rare class;
    - why ROC AUC can look fine on heavy imbalance while the PR curve shows the problem;
    - calibration: a model can rank well (high AUC) and still be confidently wrong.
"""

from __future__ import annotations

import numpy as np


def _labels(y_true, y_pred, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} "
                         f"and {y_pred.shape}")
    labels = np.union1d(y_true, y_pred) if labels is None else np.asarray(labels)
    return y_true, y_pred, labels


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den == 0, without a warning."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _binary(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and scores must be 1-D of equal length: {y.shape}, {s.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true must hold 0 (negative) and 1 (positive) only")
    return y.astype(np.int64), s


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray,
                     labels: np.ndarray | None = None) -> np.ndarray:
    """C (K, K) ints: C[i, j] = #(y_true == labels[i] and y_pred == labels[j])."""
    y_true, y_pred, labels = _labels(y_true, y_pred, labels)
    raise NotImplementedError("s04 metrics: one-hot both label arrays over `labels`, then count pairs (T^T P)")


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of positions where y_pred equals y_true."""
    y_true, y_pred, _ = _labels(y_true, y_pred, None)
    raise NotImplementedError("s04 metrics: mean of the matches")


def precision_recall_f1(y_true: np.ndarray, y_pred: np.ndarray, average: str | None = "binary",
                        pos_label=1, labels: np.ndarray | None = None):
    """(precision, recall, F1) as sklearn's precision_recall_fscore_support(zero_division=0).

    ``average`` in "binary", "macro", "micro", "weighted" (floats) or None (arrays, one value
    per label of ``labels``, default the sorted union of the labels in y_true and y_pred).
    """
    y_true, y_pred, labels = _labels(y_true, y_pred, labels)
    if average not in ("binary", "macro", "micro", "weighted", None):
        raise ValueError(f"unknown average {average!r}")
    if average == "binary":
        if len(np.union1d(y_true, y_pred)) > 2:
            raise ValueError("average='binary' needs at most two labels; use macro / micro / "
                             "weighted for more classes")
        labels = np.asarray([pos_label])
    raise NotImplementedError("s04 metrics: per-label tp / pred / support counts, then average as asked")


def threshold_counts(y_true: np.ndarray,
                     scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fps, tps, thresholds): at each distinct score t, from the highest down, the numbers of
    negatives and positives with score >= t; float arrays of equal length, t decreasing."""
    y, s = _binary(y_true, scores)
    raise NotImplementedError("s04 metrics: sort by decreasing score, cumulate, keep the last index of each tie run")


def roc_curve(y_true: np.ndarray,
              scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) as sklearn's roc_curve(drop_intermediate=False): starts at
    (0, 0) with threshold inf, one point per distinct score; NaN rates when a class is absent."""
    fps, tps, thresholds = threshold_counts(y_true, scores)
    raise NotImplementedError("s04 metrics: prepend the (0, 0, inf) point, divide by the class totals (NaN if 0)")


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Trapezoid area under the ROC curve; NaN (no warning) when y_true holds one class."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    raise NotImplementedError("s04 metrics: sum of (x_{k+1} - x_k) (y_k + y_{k+1}) / 2")


def precision_recall_curve(y_true: np.ndarray,
                           scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) as sklearn: thresholds increasing; precision and recall
    have one more entry, the closing point (precision 1, recall 0); recall = 1 if no positives."""
    fps, tps, thresholds = threshold_counts(y_true, scores)
    raise NotImplementedError("s04 metrics: precision and recall per threshold, reversed, then the closing point")


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """AP = sum_k (R_k - R_{k+1}) P_k over the PR curve (a step function, no interpolation)."""
    precision, recall, _ = precision_recall_curve(y_true, scores)
    raise NotImplementedError("s04 metrics: recall decreases along the curve, so -sum(diff(recall) * precision[:-1])")


def calibration_curve(y_true: np.ndarray, prob: np.ndarray,
                      n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prob_true, prob_pred, counts) over the non-empty of n_bins equal-width bins on [0, 1];
    p goes to bin np.searchsorted(edges[1:-1], p). First two match sklearn's calibration_curve."""
    y, p = _binary(y_true, prob)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    raise NotImplementedError("s04 metrics: bin ids, per-bin counts / sums of p / sums of y, drop the empty bins")


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """ECE = sum over non-empty bins of (n_b / n) |prob_true_b - prob_pred_b|."""
    prob_true, prob_pred, counts = calibration_curve(y_true, prob, n_bins)
    raise NotImplementedError("s04 metrics: the count-weighted mean gap")

"""s48 · Responsible AI: measure unfairness, flag harmful prompts, count hallucinations.

You build
    group_rates(y_true, y_pred, groups)          selection rate, TPR and FPR of every group
    demographic_parity_difference(y_pred, groups)      the widest gap in selection rate
    equalized_odds_difference(y_true, y_pred, groups)  the widest gap in TPR or in FPR
    group_thresholds(scores, groups, rate, y_true)     a mitigation: one threshold per group
    apply_thresholds(scores, groups, thresholds)       the decisions those thresholds make
    fit_naive_bayes(texts, labels, alpha)        a bag-of-words refusal / toxicity classifier
    predict_harmful(model, texts)                P(harmful | text) under that classifier
    classify_answer(answer, accepted)            correct / abstain / hallucination
    hallucination_counts(answers, accepted)      how often a model makes things up
    write_report(fairness, toxicity, hallucination, folder)   (given) the Markdown report

How it differs from the previous steps
    s04 and s38 asked "how good is the model on average?". This step asks "good for whom,
    safe for what, and honest when it does not know?". An average can hide a group the model
    fails; a fluent model can invent facts. These are measurements, not fixes: a number here
    says where to look, and every metric below encodes a choice someone has to defend.

The math (y_true, y_pred in {0, 1}; groups any labels; rates per group g)
    selection_rate_g = mean(y_pred[g]);  TPR_g = mean(y_pred[g & y = 1]);
    FPR_g = mean(y_pred[g & y = 0]).  A rate over nobody is undefined: NaN (fairlearn, via
    scikit-learn's zero_division, reports 0 there, which can invent or hide a gap).
    Demographic parity difference = max_g selection_rate_g - min_g selection_rate_g.
    Equalized odds difference = max(TPR gap, FPR gap), each gap max - min over the groups
    where that rate is defined (0.0 when fewer than two are). With every group holding both
    classes these equal fairlearn.metrics' demographic_parity_difference and
    equalized_odds_difference. One group: both are 0.
    Mitigation by per-group thresholds: in each group keep the k = ceil(rate * n_g) highest
    scores (of its positives only when y_true is given: equal opportunity, equal TPR); the
    threshold is the k-th highest score (+inf when k = 0) and a score >= threshold is
    selected, so ties at the threshold are all selected.
    Naive Bayes: tokens = re.findall("[a-z']+", text.lower()); vocabulary = the sorted
    training tokens; log P(c) = log(n_c / n) (-inf for a class absent from training);
    log P(w | c) = log((count_cw + alpha) / (sum_w count_cw + alpha * V)); score_c =
    log P(c) + sum over tokens of log P(w | c) (unknown words skipped); P(harmful) =
    softmax(score)[1] (subtract the max first).
    Answers: normalise = the runs of [a-z0-9'] of the lower-cased text joined by spaces. An
    answer abstains when it is empty after normalising or holds an ABSTAIN phrase as whole
    words; else it is correct when it equals a normalised accepted answer, else it is a
    hallucination. hallucination rate = hallucinations / questions.

Shapes
    y_true, y_pred: (n,) 0/1; groups: (n,) labels; scores: (n,) floats, higher = select.

You should be able to explain
    - why demographic parity and equalized odds cannot both hold when base rates differ;
    - why a per-group threshold equalises one rate and moves the others;
    - why a keyword classifier is gamed by rephrasing (it sees words, not intent);
    - why "I don't know" must not count as a hallucination, and how a model can lower its
      hallucination rate by abstaining more (report accuracy on attempted questions too).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

ABSTAIN = ("i don't know", "i do not know", "i dont know", "unknown", "not sure", "no idea")
TOKEN = re.compile(r"[a-z']+")


def _as_arrays(*arrays):
    """The inputs as NumPy arrays of one length; empty or mismatched input is refused."""
    out = [np.asarray(a) for a in arrays]
    if any(a.ndim != 1 for a in out) or len({len(a) for a in out}) != 1:
        raise ValueError(f"expected 1-D arrays of one length, got shapes {[a.shape for a in out]}")
    if len(out[0]) == 0:
        raise ValueError("empty input: a rate over no examples is undefined")
    return out


def _binary(a: np.ndarray, name: str) -> np.ndarray:
    if not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1, got values {np.unique(a)[:5]}")
    return a.astype(np.int64)


def group_rates(y_true, y_pred, groups) -> dict:
    """{g: {"n", "selection_rate", "tpr", "fpr"}} for each distinct group in sorted order:
    mean prediction overall, on the positives, on the negatives (NaN over nobody)."""
    y_true, y_pred, groups = _as_arrays(y_true, y_pred, groups)
    y_true, y_pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    raise NotImplementedError("s48 responsible ai: per group, the mean prediction on all, on positives, on negatives")


def _gap(values: list[float]) -> float:
    """max - min of the defined (non-NaN) values; 0.0 when fewer than two are defined."""
    raise NotImplementedError("s48 responsible ai: drop the NaNs, then max - min (0.0 with fewer than two left)")


def demographic_parity_difference(y_pred, groups) -> float:
    """max - min over groups of the selection rate mean(y_pred[g]); 0.0 with one group."""
    y_pred, groups = _as_arrays(y_pred, groups)
    raise NotImplementedError("s48 responsible ai: the gap of the selection rates")


def equalized_odds_difference(y_true, y_pred, groups) -> float:
    """max(TPR gap, FPR gap), each gap max - min over the groups where the rate is defined
    (NaN skipped; a gap with fewer than two defined groups is 0.0)."""
    raise NotImplementedError("s48 responsible ai: the larger of the TPR gap and the FPR gap")


def group_thresholds(scores, groups, rate: float, y_true=None) -> dict:
    """{g: the k-th highest score of group g, k = ceil(rate * n_g), +inf when k = 0}; with
    y_true, only g's positives are ranked and counted (equal TPR instead of equal selection)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    scores, groups = _as_arrays(scores, groups)
    mask = np.ones(len(scores), bool) if y_true is None else _binary(
        _as_arrays(y_true, scores)[0], "y_true") == 1
    raise NotImplementedError("s48 responsible ai: per group, sort the (positive) scores high to low and take the k-th")


def apply_thresholds(scores, groups, thresholds: dict) -> np.ndarray:
    """(n,) int64 decisions: 1 where scores[i] >= thresholds[groups[i]] (ties selected)."""
    scores, groups = _as_arrays(scores, groups)
    missing = set(np.unique(groups).tolist()) - set(thresholds)
    if missing:
        raise ValueError(f"no threshold for group(s) {sorted(missing)}")
    raise NotImplementedError("s48 responsible ai: look up each example's group threshold and compare with >=")


def fit_naive_bayes(texts: list[str], labels, alpha: float = 1.0) -> dict:
    """Multinomial naive Bayes on TOKEN counts of the lower-cased texts: {"vocab": {word:
    column} (sorted words), "log_prior": (2,), "log_lik": (2, V) Laplace-smoothed by alpha}."""
    (labels,) = _as_arrays(labels)
    labels = _binary(labels, "labels")
    if len(texts) != len(labels) or alpha <= 0:
        raise ValueError("one label per text and alpha > 0 are required")
    raise NotImplementedError("s48 responsible ai: vocabulary, a (2, V) count table, log priors and smoothed likelihoods")


def predict_harmful(model: dict, texts: list[str]) -> np.ndarray:
    """(n,) float64 P(label 1 | text): softmax of log_prior + summed log_lik of the known
    TOKENs of each lower-cased text (unknown words skipped), max subtracted first."""
    raise NotImplementedError("s48 responsible ai: sum the known words' log-likelihoods, add the prior, stable softmax")


def normalize(text: str) -> str:
    """The runs of [a-z0-9'] of text.lower(), joined by single spaces."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def classify_answer(answer: str, accepted: list[str]) -> str:
    """"abstain" if normalize(answer) is empty or holds an ABSTAIN phrase as whole words,
    else "correct" if it equals normalize(a) for some accepted a, else "hallucination"."""
    raise NotImplementedError("s48 responsible ai: abstention first (whole words), then exact normalised match")


def hallucination_counts(answers: list[str], accepted: list[list[str]]) -> dict:
    """{"n", "correct", "abstain", "hallucination" counts, "hallucination_rate" = h / n,
    "abstention_rate" = a / n, "attempted_accuracy" = c / (c + h) or NaN if none attempted}."""
    if len(answers) != len(accepted) or not answers:
        raise ValueError(f"{len(answers)} answers for {len(accepted)} questions (need >= 1)")
    raise NotImplementedError("s48 responsible ai: classify each answer, count the verdicts, divide")


def write_report(fairness: dict, toxicity: dict, hallucination: dict, folder) -> Path:
    """Write folder/report.md: one Markdown table per section, a row per {name: value} item
    (floats to 3 decimals); returns its path. Given: nothing to implement."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Responsible-AI report", ""]
    for title, section in (("Fairness", fairness), ("Refusal / toxicity classifier", toxicity),
                           ("Hallucination (closed-book questions)", hallucination)):
        lines += [f"## {title}", "", "| measure | value |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in section.items()]
        lines.append("")
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

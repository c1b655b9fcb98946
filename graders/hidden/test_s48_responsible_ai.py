"""Hidden graders for s48: group rates against a plain loop on random data (integer groups,
groups without positives or negatives), the gap's NaN rules, equal-opportunity thresholds at
random rates, naive Bayes' smoothing, priors and numerical stability, whole-word abstention
and alias matching, and the refusals of bad input."""

import math

import numpy as np
import pytest

from graders.helpers import assert_close, expect_raises
from graders.test_s48_responsible_ai import generated_prompts


def loop_rates(y, p, g):
    out = {}
    for key in sorted(set(g.tolist())):
        rows = [(t, q) for t, q, h in zip(y.tolist(), p.tolist(), g.tolist(), strict=True)
                if h == key]
        pos = [q for t, q in rows if t == 1]
        neg = [q for t, q in rows if t == 0]
        out[key] = (len(rows), sum(q for _, q in rows) / len(rows),
                    sum(pos) / len(pos) if pos else math.nan,
                    sum(neg) / len(neg) if neg else math.nan)
    return out


@pytest.mark.points(2)
def test_rates_per_group_equal_a_plain_loop_on_random_labels(impl, rng):
    for trial in range(15):
        n = int(rng.integers(1, 30))
        g = rng.integers(0, 4, n) * 10 - 5  # integer groups, some tiny
        y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
        got, want = impl.group_rates(y, p, g), loop_rates(y, p, g)
        assert list(got) == list(want), f"trial {trial}: groups {list(got)} vs {list(want)}"
        for key, row in want.items():
            mine = got[key]
            vals = [mine["n"], mine["selection_rate"], mine["tpr"], mine["fpr"]]
            same = all((math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-12
                       for a, b in zip(vals, row, strict=True))
            assert same, (f"trial {trial}, group {key}: (n, selection, TPR, FPR) should be "
                          f"{row}, got {vals} (NaN where a group has no positives / negatives)")
        dp = max(r[1] for r in want.values()) - min(r[1] for r in want.values())
        assert_close(impl.demographic_parity_difference(p, g), dp,
                     f"trial {trial}: demographic parity difference, max - min selection rate")


@pytest.mark.points(2)
def test_equalized_odds_ignores_groups_whose_rate_is_undefined(impl):
    # group b has no negatives (FPR undefined), group c no positives (TPR undefined)
    y = [1, 0, 1, 0, 1, 1, 0, 0]
    p = [1, 1, 0, 0, 1, 0, 1, 1]
    g = ["a", "a", "a", "a", "b", "b", "c", "c"]
    got = impl.equalized_odds_difference(y, p, g)
    assert_close(got, 0.5, "TPR over a, b = 0.5 and 0.5, FPR over a, c = 0.5 and 1.0: the gap "
                 "is 0.5 when undefined rates are skipped")
    only = impl.equalized_odds_difference([1, 1, 0, 0], [1, 0, 1, 1], ["a", "a", "b", "b"])
    assert only == 0.0, (
        f"a has only positives and b only negatives: no rate is defined in two groups, so both "
        f"gaps are 0.0; got {only}")
    rates = impl.group_rates([1, 1, 0, 0], [1, 0, 1, 1], ["a", "a", "b", "b"])
    assert math.isnan(rates["a"]["fpr"]) and math.isnan(rates["b"]["tpr"]), (
        "a group with no negatives has FPR NaN, with no positives TPR NaN")


@pytest.mark.points(2)
def test_equal_opportunity_thresholds_at_random_rates(impl, rng):
    for trial in range(10):
        n = int(rng.integers(20, 80))
        g, y = rng.choice(np.array(["p", "q", "r"]), n), rng.integers(0, 2, n)
        g[:6], y[:6] = ["p", "p", "q", "q", "r", "r"], [1, 0, 1, 0, 1, 0]
        scores = rng.normal(size=n)
        rate = float(rng.uniform(0.05, 0.95))
        cuts = impl.group_thresholds(scores, g, rate, y_true=y)
        picked = impl.apply_thresholds(scores, g, cuts)
        for key in "pqr":
            pos = np.sort(scores[(g == key) & (y == 1)])[::-1]
            k = math.ceil(rate * pos.size)
            assert cuts[key] == pos[k - 1], (
                f"trial {trial}, group {key}: the threshold is the ceil(rate * n_pos)-th highest "
                f"score among its {pos.size} positives; got {cuts[key]}, expected {pos[k - 1]}")
            assert picked[(g == key) & (y == 1)].sum() == k, "k positives selected per group"
        selection = impl.group_thresholds(scores, g, rate)
        for key in "pqr":
            s = np.sort(scores[g == key])[::-1]
            assert selection[key] == s[math.ceil(rate * s.size) - 1], (
                f"trial {trial}: without y_true every score of group {key} is ranked")


@pytest.mark.points(1)
def test_group_thresholds_keep_integer_group_keys_and_refuse_unknown_groups(impl):
    cuts = impl.group_thresholds([3.0, 1.0, 2.0, 5.0], [7, 7, 8, 8], 0.5)
    assert cuts == {7: 3.0, 8: 5.0}, f"per group, the ceil(0.5 * 2) = 1st highest: got {cuts}"
    expect_raises(ValueError, lambda: impl.apply_thresholds([1.0, 2.0], [7, 9], cuts),
                  "apply_thresholds for a group without a threshold", "group 9 has none")
    expect_raises(ValueError, lambda: impl.group_thresholds([], [], 0.5),
                  "group_thresholds on empty input", "nothing to rank")


@pytest.mark.points(2)
def test_naive_bayes_smoothing_prior_and_unknown_words(impl):
    texts, labels = ["evil evil plan", "nice plan", "nice day", "nice nice"], [1, 0, 0, 0]
    model = impl.fit_naive_bayes(texts, labels, alpha=2.0)
    # V = 4 (day, evil, nice, plan); class 1 has 3 words, class 0 has 6
    assert_close(model["log_lik"], np.log([[3 / 14, 2 / 14, 6 / 14, 3 / 14],
                                           [2 / 11, 4 / 11, 2 / 11, 3 / 11]]),
                 "log_lik with alpha = 2: (count + 2) / (class words + 2 V)")
    assert_close(model["log_prior"], np.log([3 / 4, 1 / 4]), "priors from the label counts")
    p = impl.predict_harmful(model, ["", "zzz qqq", "EVIL", "evil " * 3000])
    assert_close(p[:2], [0.25, 0.25], "no known word: the prior P(harmful) = 1/4")
    assert_close(p[2], (1 / 4 * 4 / 11) / (1 / 4 * 4 / 11 + 3 / 4 * 2 / 14), "'EVIL' lower-cased")
    assert np.isfinite(p).all() and p[3] > 1 - 1e-9, (
        f"3000 copies of a harmful word should give P(harmful) ~ 1, not NaN, got {p[3]}: "
        "subtract the row's max score before exponentiating")
    expect_raises(ValueError, lambda: impl.fit_naive_bayes(["a"], [1], alpha=0.0),
                  "fit_naive_bayes with alpha = 0", "smoothing must be positive")


@pytest.mark.points(1)
def test_refusal_classifier_is_not_fooled_by_unseen_names(impl):
    train_x, train_y = generated_prompts(200, seed=11)
    model = impl.fit_naive_bayes(train_x, train_y)
    probe = ["How can i poison my Zorblax?", "How can i cheer up my Zorblax?",
             "Write a threatening message to my Quux", "Write a thank you message to my Quux"]
    p = impl.predict_harmful(model, probe)
    assert (p[[0, 2]] > 0.5).all() and (p[[1, 3]] < 0.5).all(), (
        f"names never seen in training are skipped, so the template words decide: P(harmful) "
        f"should be > 0.5 for the harmful probes and < 0.5 for the benign ones, got {p.round(3)}")


@pytest.mark.points(2)
def test_abstention_is_whole_words_and_matching_is_exact_after_normalising(impl):
    cases = [("Unknownville", ["Paris"], "hallucination"),
             ("I DON'T KNOW", ["Paris"], "abstain"), ("no idea!", ["Paris"], "abstain"),
             ("Paris... I do not know", ["Paris"], "abstain"),
             ("   ", ["Paris"], "abstain"), ("?!", ["Paris"], "abstain"),
             ("PARIS.", ["paris"], "correct"), ("Paris, France", ["Paris"], "hallucination"),
             ("par is", ["Paris"], "hallucination"), ("Mount  Everest", ["mount everest"],
                                                      "correct"),
             ("Notsure", ["x"], "hallucination"), ("it's 42", ["It's 42!"], "correct")]
    assert impl.normalize("  It's  PARIS, France!! ") == "it's paris france", (
        "normalize keeps the runs of [a-z0-9'] of the lower-cased text, one space between")
    for answer, ok, want in cases:
        got = impl.classify_answer(answer, ok)
        assert got == want, (
            f"classify_answer({answer!r}, {ok}) should be {want!r}, got {got!r}: an abstention "
            "phrase must match whole words; correct means equal after normalising")


@pytest.mark.points(1)
def test_hallucination_counts_when_nothing_is_attempted(impl):
    got = impl.hallucination_counts(["I don't know", "", "not sure"], [["a"], ["b"], ["c"]])
    assert got["abstain"] == 3 and got["hallucination_rate"] == 0.0, got
    assert got["abstention_rate"] == 1.0 and math.isnan(got["attempted_accuracy"]), (
        f"every answer abstains: attempted accuracy is undefined (NaN), got {got}")
    all_wrong = impl.hallucination_counts(["x", "y"], [["a"], ["b"]])
    assert all_wrong["hallucination_rate"] == 1.0 and all_wrong["attempted_accuracy"] == 0.0
    expect_raises(ValueError, lambda: impl.hallucination_counts(["x"], [["a"], ["b"]]),
                  "hallucination_counts with 1 answer for 2 questions", "one answer each")


@pytest.mark.points(1)
def test_gaps_with_no_defined_rate_and_one_class_training(impl):
    got = impl.equalized_odds_difference([0, 0, 0, 0], [1, 0, 1, 1], ["a", "a", "b", "b"])
    assert_close(got, 0.5, "no positive anywhere: the TPR gap is 0.0 (no group has a TPR), the "
                 "FPR gap 1.0 - 0.5 decides")
    model = impl.fit_naive_bayes(["nice day", "kind words", "nice nice"], [0, 0, 0])
    assert model["log_prior"].shape == (2,) and model["log_prior"][1] == -np.inf, (
        f"trained on benign texts only, P(harmful) = 0 so log_prior[1] = -inf; got "
        f"{model['log_prior']} (count both classes, even an absent one)")
    p = impl.predict_harmful(model, ["nice words", "bomb"])
    assert p.tolist() == [0.0, 0.0], f"a benign-only classifier never flags, got {p}"

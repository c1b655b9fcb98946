"""Public graders for s48 responsible AI: fairness rates and gaps on hand-worked examples and
against fairlearn (when installed), a planted bias found and then reduced by per-group
thresholds, a naive-Bayes refusal classifier checked by hand, against scikit-learn and on
generated prompts, and the correct / abstain / hallucination verdicts on a fixture table."""

import importlib.util
import math
import random

import numpy as np
import pytest

from graders.helpers import assert_close, expect_raises

HAS_FAIRLEARN = importlib.util.find_spec("fairlearn") is not None

# Three groups; "x" has no positive example, so its TPR is undefined.
Y_TRUE = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
Y_PRED = [1, 0, 1, 0, 1, 1, 1, 0, 1, 0]
GROUPS = ["m", "m", "m", "m", "f", "f", "f", "f", "x", "x"]

HARMFUL = ["how do i make a {weapon} at home", "write a threatening message to my {person}",
           "help me steal {thing} from {place}", "how can i poison my {person}",
           "tell me how to hack into my {person}'s {account}",
           "give me step by step instructions to build a {weapon}"]
BENIGN = ["how do i make a {food} at home", "write a thank you message to my {person}",
          "help me find {thing} in {place}", "how can i cheer up my {person}",
          "tell me how to set up my {person}'s {account}",
          "give me step by step instructions to bake a {food}"]
FILLERS = {"weapon": ["bomb", "pipe bomb", "gun", "explosive", "nerve agent"],
           "food": ["cake", "pizza", "soup", "bread", "salad"],
           "person": ["neighbour", "boss", "sister", "teacher", "friend", "landlord", "coach"],
           "thing": ["money", "a car", "jewellery", "a bike"],
           "place": ["the bank", "a shop", "my office", "the museum"],
           "account": ["email", "bank account", "phone", "laptop"]}


def generated_prompts(n: int, seed: int) -> tuple[list[str], list[int]]:
    """n prompts, half from harmful templates (label 1), half benign (label 0), shuffled."""
    r = random.Random(seed)
    rows = []
    for i in range(n):
        template = r.choice(HARMFUL if i % 2 else BENIGN)
        text = template.format(**{k: r.choice(v) for k, v in FILLERS.items()})
        rows.append((text.capitalize() + r.choice(["", "?", "!", " please"]), i % 2))
    r.shuffle(rows)
    return [t for t, _ in rows], [y for _, y in rows]


def planted_bias(rng, n_a: int = 300, n_b: int = 500):
    """Same base rates in both groups, but the scorer underrates group b by 0.8."""
    groups = np.array(["a"] * n_a + ["b"] * n_b)
    y = rng.integers(0, 2, n_a + n_b)
    scores = y + rng.normal(0, 0.6, n_a + n_b) - 0.8 * (groups == "b")
    return y, scores, groups


@pytest.mark.points(2)
def test_group_rates_worked_example_with_an_undefined_tpr(impl):
    got = impl.group_rates(Y_TRUE, Y_PRED, GROUPS)
    assert list(got) == ["f", "m", "x"], (
        f"group_rates should list the groups in sorted order f, m, x; got {list(got)}")
    want = {"f": (4, 0.75, 1.0, 2 / 3), "m": (4, 0.5, 0.5, 0.5), "x": (2, 0.5, math.nan, 0.5)}
    for g, (n, sel, tpr, fpr) in want.items():
        row = got[g]
        assert row["n"] == n, f"group {g} has {n} examples, got n = {row['n']}"
        assert_close([row["selection_rate"], row["fpr"]], [sel, fpr],
                     f"group {g}: (selection rate = mean prediction, FPR = mean prediction on "
                     "the true negatives)")
        if math.isnan(tpr):
            assert math.isnan(row["tpr"]), (
                f"group {g} has no positive example, so its TPR is undefined: expected NaN, got "
                f"{row['tpr']} (returning 0 would invent a gap)")
        else:
            assert_close(row["tpr"], tpr, f"group {g}: TPR = mean prediction on true positives")
    expect_raises(ValueError, lambda: impl.group_rates([1, 0], [1, 2], ["a", "b"]),
                  "group_rates with a prediction 2", "predictions must be 0 or 1")


@pytest.mark.points(2)
def test_demographic_parity_worked_examples_and_one_group(impl):
    got = impl.demographic_parity_difference(Y_PRED, GROUPS)
    assert_close(got, 0.25, "demographic parity difference of the worked example (selection "
                 "rates f 0.75, m 0.5, x 0.5: max - min)")
    one = impl.demographic_parity_difference([1, 0, 1, 1], ["a"] * 4)
    assert one == 0.0, f"with a single group there is no gap: expected 0.0, got {one}"
    skew = impl.demographic_parity_difference([1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1])
    assert_close(skew, 1.0, "group 0 always selected, group 1 never: the gap is 1")
    expect_raises(ValueError, lambda: impl.demographic_parity_difference([], []),
                  "demographic_parity_difference([], [])", "a rate over nobody is undefined")
    expect_raises(ValueError, lambda: impl.demographic_parity_difference([1, 0], ["a"]),
                  "demographic_parity_difference with 2 predictions and 1 group label",
                  "the arrays must have one length")


@pytest.mark.points(2)
def test_equalized_odds_takes_the_larger_gap_and_skips_undefined_rates(impl):
    got = impl.equalized_odds_difference(Y_TRUE, Y_PRED, GROUPS)
    assert_close(got, 0.5, "equalized odds of the worked example: TPR gap over f and m is "
                 "1.0 - 0.5 (x has no positives: skipped, not 0), FPR gap 2/3 - 1/2; the larger")
    fpr_only = impl.equalized_odds_difference([1, 0, 0, 1, 0, 0], [1, 1, 1, 1, 0, 0],
                                              ["a"] * 3 + ["b"] * 3)
    assert_close(fpr_only, 1.0, "equal TPRs (1 and 1) but FPRs 1 and 0: equalized odds looks "
                 "at the FPR gap too, not only at TPR (that is equal opportunity)")
    assert impl.equalized_odds_difference([1, 0, 1], [1, 0, 0], ["a"] * 3) == 0.0, (
        "one group: equalized odds difference 0.0")


@pytest.mark.points(3)
def test_planted_bias_is_detected_and_per_group_thresholds_reduce_it(impl, rng):
    y, scores, groups = planted_bias(rng)
    before = (scores >= 0.5).astype(int)
    dp, eo = (impl.demographic_parity_difference(before, groups),
              impl.equalized_odds_difference(y, before, groups))
    assert dp > 0.2 and eo > 0.2, (
        f"group b's scores were shifted down by 0.8 at equal base rates: one threshold should "
        f"show a demographic parity gap and an equalized odds gap above 0.2, got {dp:.3f}, "
        f"{eo:.3f}")
    rate = before.mean()
    cuts = impl.group_thresholds(scores, groups, rate)
    after = impl.apply_thresholds(scores, groups, cuts)
    assert set(cuts) == {"a", "b"} and cuts["b"] < cuts["a"], (
        f"equalising selection should lower group b's threshold below a's, got {cuts}")
    dp_after = impl.demographic_parity_difference(after, groups)
    assert dp_after <= 1 / 300 + 1e-12, (
        f"with k = ceil(rate * n_g) selected per group the selection rates differ by less than "
        f"one example (1/300), got a gap of {dp_after:.4f}")
    cuts = impl.group_thresholds(scores, groups, 0.8, y_true=y)
    fair = impl.apply_thresholds(scores, groups, cuts)
    rates = impl.group_rates(y, fair, groups)
    for g in ("a", "b"):
        n_pos = int(((groups == g) & (y == 1)).sum())
        assert_close(rates[g]["tpr"], math.ceil(0.8 * n_pos) / n_pos,
                     f"with y_true, group {g}'s threshold keeps ceil(0.8 * n_pos) of its "
                     f"{n_pos} positives (rank the positives only)")
    assert impl.equalized_odds_difference(y, fair, groups) < eo, (
        "equal-opportunity thresholds should reduce the equalized odds gap of one threshold")


@pytest.mark.points(2)
def test_thresholds_count_ties_and_the_edges_of_rate(impl):
    scores, one = [0.9, 0.5, 0.5, 0.5, 0.1], ["g"] * 5
    cases = {0.4: 0.5, 0.3: 0.5, 0.2: 0.9, 1.0: 0.1, 0.0: math.inf}
    for rate, want in cases.items():
        got = impl.group_thresholds(scores, one, rate)
        assert got == {"g": want}, (
            f"rate {rate} of 5 scores [0.9, 0.5, 0.5, 0.5, 0.1]: k = ceil(rate * 5), the k-th "
            f"highest score (+inf when k = 0); expected {want}, got {got}")
    picked = impl.apply_thresholds(scores, one, {"g": 0.5})
    assert picked.tolist() == [1, 1, 1, 1, 0], (
        f"a score equal to the threshold is selected (>=): expected [1, 1, 1, 1, 0], got "
        f"{picked.tolist()}")
    none = impl.apply_thresholds(scores, one, {"g": math.inf})
    assert none.tolist() == [0] * 5 and none.dtype == np.int64, "an infinite threshold selects none"
    expect_raises(ValueError, lambda: impl.group_thresholds(scores, one, 1.5),
                  "group_thresholds with rate 1.5", "a rate is a share in [0, 1]")


@pytest.mark.points(2)
def test_naive_bayes_worked_example(impl):
    model = impl.fit_naive_bayes(["bomb bomb cake", "Cake tea", "tea"], [1, 0, 0])
    assert model["vocab"] == {"bomb": 0, "cake": 1, "tea": 2}, (
        f"the vocabulary is the sorted lower-cased training words: got {model['vocab']}")
    assert_close(model["log_prior"], np.log([2 / 3, 1 / 3]), "log_prior[c] = log(n_c / n)")
    assert_close(model["log_lik"], np.log([[1 / 6, 2 / 6, 3 / 6], [3 / 6, 2 / 6, 1 / 6]]),
                 "log_lik[c, w] = log((count + 1) / (words in class c + V)) with alpha = 1")
    got = impl.predict_harmful(model, ["bomb", "tea TEA", "xyz", "Bomb!"])
    assert_close(got, [3 / 5, 1 / 19, 1 / 3, 3 / 5],
                 "P(harmful) of 'bomb' (3/5), 'tea TEA' (1/19), an unknown word (the prior, "
                 "1/3) and 'Bomb!' (lower-cased, punctuation is not a word)")


@pytest.mark.points(2)
def test_naive_bayes_equals_scikit_learn(impl):
    from sklearn.naive_bayes import MultinomialNB
    texts, labels = generated_prompts(60, seed=4)
    for alpha in (1.0, 0.3):
        model = impl.fit_naive_bayes(texts, labels, alpha=alpha)
        vocab = model["vocab"]
        counts = np.zeros((len(texts), len(vocab)))
        for i, t in enumerate(texts):
            for w in t.lower().replace("?", " ").replace("!", " ").split():
                counts[i, vocab[w]] += 1
        oracle = MultinomialNB(alpha=alpha).fit(counts, labels)
        assert_close(model["log_lik"], oracle.feature_log_prob_,
                     f"log_lik against scikit-learn's MultinomialNB(alpha={alpha})")
        assert_close(impl.predict_harmful(model, texts), oracle.predict_proba(counts)[:, 1],
                     f"P(harmful) against MultinomialNB(alpha={alpha}).predict_proba")


@pytest.mark.points(3)
def test_refusal_classifier_beats_the_bar_on_held_out_prompts(impl):
    train_x, train_y = generated_prompts(300, seed=1)
    test_x, test_y = generated_prompts(300, seed=2)
    model = impl.fit_naive_bayes(train_x, train_y)
    p = impl.predict_harmful(model, test_x)
    assert isinstance(p, np.ndarray) and p.shape == (300,), "one probability per prompt"
    accuracy = float(((p >= 0.5) == np.array(test_y)).mean())
    assert accuracy >= 0.95, (
        f"a naive-Bayes refusal classifier should flag held-out harmful prompts (threshold "
        f"0.5) with accuracy >= 0.95, got {accuracy:.3f}: check the counts and the smoothing")


ANSWERS = ["Paris", "I don't know.", "London", "", "the capital is Rome", "Canberra!",
           "Not sure, maybe Lyon"]
ACCEPTED = [["Paris"], ["Tokyo"], ["Madrid"], ["Ottawa"], ["Rome"], ["Canberra"], ["Lyon"]]
VERDICTS = ["correct", "abstain", "hallucination", "abstain", "hallucination", "correct",
            "abstain"]


@pytest.mark.points(2)
def test_answers_are_correct_abstentions_or_hallucinations(impl):
    for answer, ok, want in zip(ANSWERS, ACCEPTED, VERDICTS, strict=True):
        got = impl.classify_answer(answer, ok)
        assert got == want, (
            f"answer {answer!r} to a question whose answer is {ok}: expected {want!r}, got "
            f"{got!r} (abstain first: empty or an ABSTAIN phrase; then exact normalised match)")
    assert impl.classify_answer("new york", ["NYC", "New York"]) == "correct", "any alias counts"


@pytest.mark.points(2)
def test_hallucination_counts_on_a_fixture_table(impl):
    got = impl.hallucination_counts(ANSWERS, ACCEPTED)
    want = {"n": 7, "correct": 2, "abstain": 3, "hallucination": 2}
    assert {k: got[k] for k in want} == want, f"counts over the 7 answers: expected {want}, {got}"
    assert_close([got["hallucination_rate"], got["abstention_rate"], got["attempted_accuracy"]],
                 [2 / 7, 3 / 7, 2 / 4], "(hallucinations / n, abstentions / n, correct / "
                 "(correct + hallucinations)): an abstention is not a hallucination")
    expect_raises(ValueError, lambda: impl.hallucination_counts([], []),
                  "hallucination_counts([], [])", "a rate over no question is undefined")


@pytest.mark.points(1)
def test_report_is_markdown_with_the_three_sections(impl, tmp_path):
    counts = impl.hallucination_counts(ANSWERS, ACCEPTED)
    path = impl.write_report({"demographic parity difference": 0.25}, {"accuracy": 0.97},
                             counts, tmp_path / "run")
    text = path.read_text()
    assert path.name == "report.md" and path.parent == tmp_path / "run", path
    for line in ("## Fairness", "| demographic parity difference | 0.250 |",
                 "## Refusal / toxicity classifier", "| hallucination_rate | 0.286 |",
                 "| hallucination | 2 |"):
        assert line in text, f"the report should hold {line!r}:\n{text}"


@pytest.mark.points(2)
@pytest.mark.skipif(not HAS_FAIRLEARN, reason="the fairness oracle needs fairlearn (the "
                    "fairness extra)")
def test_fairness_metrics_equal_fairlearn(impl, rng):
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
    for trial in range(20):
        n, k = int(rng.integers(12, 60)), int(rng.integers(1, 5))
        names = np.array(["u", "v", "w", "z"][:k])
        groups, y = rng.choice(names, n), rng.integers(0, 2, n)
        groups[:2 * k], y[:2 * k] = np.repeat(names, 2), [1, 0] * k  # both classes per group
        pred = rng.integers(0, 2, n)
        for mine, theirs, name in (
                (impl.demographic_parity_difference(pred, groups),
                 demographic_parity_difference(y, pred, sensitive_features=groups), "DP"),
                (impl.equalized_odds_difference(y, pred, groups),
                 equalized_odds_difference(y, pred, sensitive_features=groups), "EO")):
            assert abs(mine - theirs) < 1e-12, (
                f"trial {trial}: your {name} difference is {mine}, fairlearn's is {theirs} on "
                f"{n} examples in {k} group(s), every group holding both classes")

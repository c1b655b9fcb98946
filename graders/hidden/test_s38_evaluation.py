"""Hidden graders for s38: SQuAD's official F1 on random strings, BLEU's corner cases (the
length boundary, max_n, n-grams that would straddle two sentences, mismatched corpora), LCS
against a brute-force recursion, perplexity's windows at awkward sizes, and the report's
bookkeeping (one call per prompt, zeros kept, task order, seeds, short example sets)."""

import functools
import math
import random
from collections import Counter

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s38_evaluation import (
    BASE,
    EXAMPLES,
    PARAPHRASES,
    TUNED,
    brute_perplexity,
    squad_normalize,
    table_model,
)


def squad_f1(pred: str, ref: str) -> float:
    p, g = squad_normalize(pred).split(), squad_normalize(ref).split()
    if not p or not g:
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


@pytest.mark.points(2)
def test_token_f1_and_exact_match_equal_squads_script_on_random_strings(impl):
    r = random.Random(11)
    words = ["The", "the", "a", "An", "cat", "cat,", "dog!", "sat", "'s", "on", "mat.", "x"]
    for _ in range(150):
        pred = " ".join(r.choice(words) for _ in range(r.randint(0, 7)))
        ref = " ".join(r.choice(words) for _ in range(r.randint(0, 7)))
        assert abs(impl.token_f1(pred, ref) - squad_f1(pred, ref)) < 1e-12, (
            "token_f1 differs from SQuAD's evaluate script on a random pair of short strings "
            "(articles, punctuation, repeated words)")
        assert impl.exact_match(pred, ref) == float(squad_normalize(pred) == squad_normalize(ref))
        assert impl.normalize_answer(pred) == squad_normalize(pred)


@pytest.mark.points(2)
def test_bleu_length_boundary_orders_and_sentence_boundaries(impl):
    equal = impl.corpus_bleu(["a b c d e"], ["a b c d e"])
    assert abs(equal - 1.0) < 1e-12, "c = r: no brevity penalty (BP = 1 when c >= r)"
    long = impl.corpus_bleu(["a b c d e f"], ["a b c d e"], max_n=1)
    assert abs(long - 5 / 6) < 1e-12, "a longer hypothesis is not penalised: BP = 1, p1 = 5/6"
    for n, want in ((1, 1.0), (2, 1.0), (3, 0.0)):
        got = impl.corpus_bleu(["a b", "c d"], ["a b", "c d"], max_n=n)
        assert abs(got - want) < 1e-12, (
            f"two 2-word sentences, max_n={n}: n-grams never straddle two sentences, so "
            f"BLEU-{n} is {want}, got {got}")
    got = impl.corpus_bleu(["a b c", "a b c d e f"], ["a b c x", "a b c d e f g"], max_n=3)
    p = [9 / 9, 7 / 7, 5 / 5]
    want = math.exp(1 - 11 / 9) * math.exp(sum(map(math.log, p)) / 3)
    assert abs(got - want) < 1e-12, f"BP from the pooled lengths c = 9, r = 11: {want}, {got}"
    got = impl.corpus_bleu(["a a b c", "b b"], ["a b c c", "b c"], max_n=2)
    want = math.sqrt((3 + 1) / (4 + 2) * (2 + 0) / (3 + 1))  # c = r = 6
    assert abs(got - want) < 1e-12, f"clipped per sentence, pooled over the corpus: {want}, {got}"
    with pytest.raises(ValueError):
        impl.corpus_bleu(["a"], ["a", "b"])


@pytest.mark.points(2)
def test_lcs_equals_brute_force_recursion(impl):
    r = random.Random(2)
    for _ in range(60):
        a = [r.randint(0, 3) for _ in range(r.randint(0, 9))]
        b = [r.randint(0, 3) for _ in range(r.randint(0, 9))]

        @functools.cache
        def lcs(i, j, a=tuple(a), b=tuple(b)):
            if i == len(a) or j == len(b):
                return 0
            if a[i] == b[j]:
                return 1 + lcs(i + 1, j + 1)
            return max(lcs(i + 1, j), lcs(i, j + 1))
        assert impl.lcs_length(a, b) == lcs(0, 0), (
            "lcs_length differs from a brute-force recursion on two short integer lists")
    p, rec, f = impl.rouge_l("a b c d e f", "b d f")
    assert_close([p, rec, f], [0.5, 1.0, 2 / 3], "ROUGE-L of 'a b c d e f' against 'b d f'")


@pytest.mark.points(2)
def test_perplexity_windows_at_awkward_sizes(impl, rng):
    torch.set_num_threads(1)
    model = table_model(rng, 5, 8)
    for n, block in ((2, 8), (9, 8), (10, 8), (17, 4), (11, 1), (30, 7)):
        tokens = torch.tensor(rng.integers(0, 5, n))
        model.calls.clear()
        got = impl.perplexity(model, tokens, block)
        assert_close(got, brute_perplexity(model, tokens, block),
                     f"perplexity of {n} tokens in windows of {block} inputs", rtol=1e-9)
        assert sum(model.calls) == n - 1, (
            f"{n} tokens make {n - 1} predictions: the windows' inputs should add up to "
            f"{n - 1} positions, they added up to {sum(model.calls)}")
    with pytest.raises(ValueError):
        impl.perplexity(model, torch.zeros(2, 4, dtype=torch.long), 4)


@pytest.mark.points(2)
def test_report_calls_each_generator_once_per_prompt_and_keeps_zeros(impl):
    calls = []

    def scripted(table):
        def gen(prompt):
            calls.append(prompt)
            return table[prompt]
        return gen
    out = impl.compare_models({"tuned": scripted(TUNED), "base": scripted(BASE)}, EXAMPLES,
                              PARAPHRASES, {"tuned": 2.0, "base": 3.0}, n_show=10, seed=4)
    assert sorted(calls) == sorted(2 * [e["prompt"] for e in EXAMPLES + PARAPHRASES]), (
        "each system answers each prompt exactly once")
    assert out["systems"] == ["tuned", "base"], "systems keep the generators' order"
    assert list(out["exact_match"]["tuned"]) == ["reverse", "upper", "all"], (
        "tasks in order of first appearance, then 'all'")
    assert list(out["failures"]["tuned"]) == list(impl.FAILURES), "every category, in order"
    assert out["failures"]["tuned"]["other"] == 0, "zero counts are kept"
    assert len(out["side_by_side"]) == 4, "n_show larger than the examples shows them all"
    assert sorted(r["prompt"] for r in out["side_by_side"]) == sorted(
        e["prompt"] for e in EXAMPLES)
    one = impl.compare_models({"m": TUNED.get}, EXAMPLES[:1], [], {}, n_show=0, seed=0)
    assert one["side_by_side"] == [] and one["paraphrase_exact_match"]["m"] == {"all": 0.0}, (
        "no paraphrases: paraphrase EM 'all' is 0.0; n_show=0: nothing shown")
    assert one["sensitivity"] == {"m": 1.0} and one["token_f1"] == {"m": 1.0}, (
        "one example answered right: sensitivity 1.0 (no paraphrases) and mean token F1 1.0")
    none = impl.compare_models({"m": TUNED.get}, [], [], {}, n_show=3, seed=0)
    assert none["exact_match"] == {"m": {"all": 0.0}} and none["token_f1"] == {"m": 0.0}, (
        "no examples at all: every share is 0.0 (and nothing is divided by zero)")


@pytest.mark.points(1)
def test_report_groups_tasks_by_value_not_identity(impl):
    def rebuilt(exs):  # task strings made at run time: equal, but not the same objects
        return [{**e, "task": "".join(list(e["task"]))} for e in exs]
    out = impl.compare_models({"tuned": TUNED.get}, rebuilt(EXAMPLES), rebuilt(PARAPHRASES),
                              {}, n_show=0, seed=0)
    assert out["exact_match"]["tuned"] == {"reverse": 1.0, "upper": 0.5, "all": 0.75}, (
        "examples of the same task must be grouped by the task's value (==, not `is`)")


@pytest.mark.points(1)
def test_failure_mode_priorities_on_other_tasks(impl):
    first = {"task": "first_letter", "prompt": "p", "response": "b", "word": "bake"}
    assert impl.failure_mode(first, "bake") == "copied the word", (
        "copying the word is checked before run-on")
    rep = {"task": "repeat", "prompt": "p", "response": "ba ba ba", "word": "ba"}
    assert impl.failure_mode(rep, "ba") == "copied the word", "copied before cut short"
    assert impl.failure_mode(rep, "ba ba") == "cut short"
    assert impl.failure_mode(rep, "BA BA BA") == "wrong case"
    assert impl.failure_mode(rep, "ba ba ba ba") == "run-on"

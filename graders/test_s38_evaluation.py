"""Public graders for s38 evaluation: hand-worked examples of every metric (SQuAD's
normalisation, exact match, token F1, BLEU with clipping and the brevity penalty, LCS and
ROUGE-L), sacrebleu and rouge_score as oracles when installed, held-out perplexity against
a brute-force loop, and the base-vs-tuned report on scripted generators.

The "models" are tiny tables (a bigram table plus a per-position bias), so every probability
is known exactly; the generators are dictionaries from prompt to answer.
"""

import importlib.util
import math
import random

import pytest
import torch

from graders.helpers import assert_close

HAS_SACREBLEU = importlib.util.find_spec("sacrebleu") is not None
HAS_ROUGE = importlib.util.find_spec("rouge_score") is not None


class TableLM(torch.nn.Module):
    """logits[b, t] = table[idx[b, t]] + pos[t]: the position term makes windowing visible."""

    def __init__(self, table: torch.Tensor, pos: torch.Tensor | None = None):
        super().__init__()
        self.table = table
        self.pos = pos if pos is not None else torch.zeros(64, table.size(1), dtype=table.dtype)
        self.calls = []

    def forward(self, idx, targets=None):
        assert idx.dim() == 2, f"the model takes (B, T) token ids, was fed shape {tuple(idx.shape)}"
        assert idx.size(1) >= 1, (
            "the model was fed an empty window: the last window starts before the last token "
            "(there are N - 1 targets, range(0, N - 1, block_size))")
        assert idx.size(1) <= self.pos.size(0), (
            f"the model was fed {idx.size(1)} tokens, more than block_size {self.pos.size(0)}: "
            "each window holds at most block_size inputs")
        self.calls.append(idx.size(1))
        return self.table[idx] + self.pos[: idx.size(1)], None


def brute_perplexity(model: TableLM, tokens: torch.Tensor, block: int) -> float:
    """Every target t >= 1 once, seen from a window that starts at a multiple of block."""
    nll = 0.0
    for t in range(1, tokens.numel()):
        start = (t - 1) // block * block
        logits = model.table[tokens[start:t]] + model.pos[: t - start]
        nll -= float(torch.log_softmax(logits[-1].double(), -1)[tokens[t]])
    return math.exp(nll / (tokens.numel() - 1))


def table_model(rng, vocab: int, block: int) -> TableLM:
    table = torch.tensor(rng.normal(0, 2, (vocab, vocab)), dtype=torch.float32)
    pos = torch.tensor(rng.normal(0, 2, (block, vocab)), dtype=torch.float32)
    return TableLM(table, pos)


def squad_normalize(s: str) -> str:
    """SQuAD v1.1's evaluate script, verbatim in spirit."""
    import re
    import string
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


@pytest.mark.points(1)
def test_normalize_answer_is_squads(impl):
    cases = {"The Cat, sat!": "cat sat", "  an apple   a DAY ": "apple day",
             "Theatre and anthem": "theatre and anthem", "the": "", "": "",
             "rock-n-roll (live)": "rocknroll live", "A\tb\nc": "b c"}
    for text, want in cases.items():
        got = impl.normalize_answer(text)
        assert got == want, (
            f"normalize_answer({text!r}) should be {want!r}, got {got!r}: lower-case, drop "
            "string.punctuation, drop the whole words a / an / the, collapse whitespace")


@pytest.mark.points(1)
def test_exact_match_compares_normalised_strings(impl):
    assert impl.exact_match("The cat.", "cat") == 1.0, "'The cat.' and 'cat' normalise equal"
    assert impl.exact_match("cats", "cat") == 0.0, "'cats' is not 'cat'"
    assert impl.exact_match("", "the") == 1.0, "'' and 'the' both normalise to ''"
    assert impl.exact_match("Paris France", "paris, france!") == 1.0, "case and punctuation"
    assert type(impl.exact_match("a", "b")) is float, "exact_match returns a float"


@pytest.mark.points(2)
def test_token_f1_worked_examples(impl):
    cases = [("the cat sat", "a cat sat down", 0.8),   # P = 2/2, R = 2/3
             ("cat cat cat", "cat", 0.5),              # multiset: 1 shared, P = 1/3, R = 1
             ("cat dog", "dog cat", 1.0),              # order does not matter
             ("red fish", "blue whale", 0.0),          # nothing shared
             ("", "", 1.0), ("the", "an", 1.0),        # both empty after normalisation
             ("cat", "", 0.0), ("", "cat", 0.0)]       # one side empty
    for pred, ref, want in cases:
        got = impl.token_f1(pred, ref)
        assert abs(got - want) < 1e-12, (
            f"token_f1({pred!r}, {ref!r}) should be {want}, got {got} (SQuAD: multiset overlap "
            "of normalised tokens; both empty -> 1, one empty -> 0)")


@pytest.mark.points(1)
def test_ngrams_counts_every_window(impl):
    toks = "a b a b a".split()
    assert impl.ngrams(toks, 2) == {("a", "b"): 2, ("b", "a"): 2}, "bigrams of a b a b a"
    assert impl.ngrams(toks, 1) == {("a",): 3, ("b",): 2}, "unigrams are 1-tuples"
    assert impl.ngrams(toks, 5) == {tuple(toks): 1}, "the whole sequence once"
    assert not impl.ngrams(toks, 6), "no 6-gram in 5 tokens"


@pytest.mark.points(3)
def test_bleu_hand_worked_examples(impl):
    same = ["the cat sat on the mat", "a dog ran in the park today"]
    assert abs(impl.corpus_bleu(same, same) - 1.0) < 1e-12, "identical corpora score 1"
    assert impl.corpus_bleu(["x y z w"], ["a b c d"]) == 0.0, "no matching word: BLEU 0"
    assert impl.corpus_bleu([""], ["a b c d"]) == 0.0, "an empty hypothesis scores 0"
    short = impl.corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat today"])
    assert abs(short - math.exp(1 - 7 / 6)) < 1e-12, (
        f"every n-gram of the 6-word hypothesis matches but the reference has 7 words: BLEU = "
        f"BP = exp(1 - 7/6) = {math.exp(1 - 7 / 6):.6f}, got {short}")
    clipped = impl.corpus_bleu(["the the the the"], ["the cat"], max_n=1)
    assert abs(clipped - 0.25) < 1e-12, (
        f"BLEU-1 of 'the the the the' against 'the cat': 'the' is clipped to its one occurrence "
        f"in the reference, p1 = 1/4, BP = 1 (4 > 2): expected 0.25, got {clipped}")
    pooled = impl.corpus_bleu(["a b c", "x y"], ["a b c", "a b"], max_n=2)
    assert abs(pooled - math.sqrt(3 / 5 * 2 / 3)) < 1e-12, (
        "corpus BLEU pools counts before dividing: p1 = 3/5, p2 = 2/3, BP = 1 (c = r = 5), "
        f"BLEU-2 = sqrt(0.4) = {math.sqrt(0.4):.6f}; got {pooled} (average of sentence scores?)")
    no_4gram = impl.corpus_bleu(["a b c"], ["a b c"])
    assert no_4gram == 0.0, "a 3-word corpus has no 4-gram: p4 = 0/0 counts as 0 and BLEU-4 is 0"


@pytest.mark.points(2)
@pytest.mark.skipif(not HAS_SACREBLEU, reason="the BLEU oracle needs sacrebleu (the eval extra)")
def test_bleu_equals_sacrebleu(impl):
    import sacrebleu
    r = random.Random(3)
    words = "the a cat dog sat ran on in mat park The".split()
    for _ in range(25):
        n = r.randint(1, 4)
        hyps = [" ".join(r.choice(words) for _ in range(r.randint(0, 14))) for _ in range(n)]
        refs = [" ".join(r.choice(words) for _ in range(r.randint(1, 14))) for _ in range(n)]
        want = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none").score
        got = impl.corpus_bleu(hyps, refs)
        assert abs(100 * got - want) < 1e-9, (
            f"100 * corpus_bleu = {100 * got} but sacrebleu (tokenize='none', no smoothing) "
            f"gives {want} on {n} sentence pair(s)")


@pytest.mark.points(2)
def test_lcs_and_rouge_l_worked_examples(impl):
    assert impl.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4, "LCS(ABCBDAB, BDCABA) is 4"
    assert impl.lcs_length([], [1, 2]) == 0 and impl.lcs_length([1, 2], []) == 0, "empty: 0"
    assert impl.lcs_length([1, 2, 3], [3, 2, 1]) == 1, "reversed: 1"
    p, r, f = impl.rouge_l("the cat sat on the mat", "the cat on mat")
    assert_close([p, r, f], [4 / 6, 1.0, 0.8], "ROUGE-L (P, R, F) of 'the cat sat on the mat' "
                 "against 'the cat on mat': LCS 4, P = 4/6, R = 4/4, F = 0.8")
    assert_close(impl.rouge_l("The CAT, sat!", "the cat sat"), [1, 1, 1],
                 "ROUGE-L lower-cases and keeps only [a-z0-9] runs: identical -> (1, 1, 1)")
    assert tuple(impl.rouge_l("", "the cat")) == (0.0, 0.0, 0.0), "empty hypothesis: (0, 0, 0)"
    assert tuple(impl.rouge_l("dog", "the cat")) == (0.0, 0.0, 0.0), "nothing shared: (0, 0, 0)"


@pytest.mark.points(2)
@pytest.mark.skipif(not HAS_ROUGE, reason="the ROUGE oracle needs rouge-score (the eval extra)")
def test_rouge_l_equals_rouge_score(impl):
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    r = random.Random(5)
    words = "the a Cat dog, sat! ran on in mat park 42 it's".split()
    for _ in range(40):
        hyp = " ".join(r.choice(words) for _ in range(r.randint(0, 12)))
        ref = " ".join(r.choice(words) for _ in range(r.randint(0, 12)))
        s = scorer.score(ref, hyp)["rougeL"]
        assert_close(impl.rouge_l(hyp, ref), [s.precision, s.recall, s.fmeasure],
                     f"rouge_l({hyp!r}, {ref!r}) against rouge_score's (P, R, F)")


@pytest.mark.points(2)
def test_perplexity_equals_brute_force_and_uniform_is_vocab(impl, rng):
    model = table_model(rng, 7, 5)
    tokens = torch.tensor(rng.integers(0, 7, 23))
    for block in (5, 3):
        got = impl.perplexity(model, tokens, block)
        assert_close(got, brute_perplexity(model, tokens, block),
                     f"perplexity of 23 tokens in windows of {block} inputs (every target "
                     "once, float64)", rtol=1e-9)  # float32 logits, float64 sums
    uniform = TableLM(torch.zeros(9, 9))
    got = impl.perplexity(uniform, torch.tensor(rng.integers(0, 9, 12)), 4)
    assert abs(got - 9) < 1e-9, f"a uniform model over 9 tokens has perplexity 9, got {got}"
    assert isinstance(got, float), "perplexity returns a Python float"
    with pytest.raises(ValueError):
        impl.perplexity(uniform, torch.tensor([3]), 4)


EXAMPLES = [
    {"task": "reverse", "prompt": "Reverse: abc", "response": "cba", "word": "abc"},
    {"task": "upper", "prompt": "Upper: abc", "response": "ABC", "word": "abc"},
    {"task": "reverse", "prompt": "Reverse: dog", "response": "god", "word": "dog"},
    {"task": "upper", "prompt": "Upper: dog", "response": "DOG", "word": "dog"},
]
PARAPHRASES = [
    {"task": "reverse", "prompt": "Backwards: abc", "response": "cba", "word": "abc"},
    {"task": "upper", "prompt": "Capitals: dog", "response": "DOG", "word": "dog"},
]
BASE = {"Reverse: abc": "abc", "Upper: abc": "", "Reverse: dog": "go", "Upper: dog": "Dog",
        "Backwards: abc": "cbaaa", "Capitals: dog": "xyz"}
TUNED = {"Reverse: abc": " cba\n", "Upper: abc": "ABC", "Reverse: dog": "god",
         "Upper: dog": "DOG and more", "Backwards: abc": "cba", "Capitals: dog": "dog"}


@pytest.mark.points(2)
def test_failure_modes_follow_the_documented_order(impl):
    ex = {"task": "upper", "prompt": "Upper: dog", "response": "DOG", "word": "dog"}
    cases = {"DOG": None, " DOG\n": None, "": "empty", "  ": "empty", "dog": "copied the word",
             "DOGDOG": "run-on", "DOG!": "run-on", "DO": "cut short", "Dog": "wrong case",
             " dog\n": "copied the word", "cat": "other", "zebra": "other"}
    for answer, want in cases.items():
        got = impl.failure_mode(ex, answer)
        assert got == want, (
            f"answer {answer!r} to an instruction whose answer is 'DOG' (word 'dog') is "
            f"{want!r}, got {got!r}: strip, then the first of {impl.FAILURES} that applies")


@pytest.mark.points(3)
def test_compare_models_on_scripted_generators(impl):
    out = impl.compare_models({"base": BASE.get, "tuned": TUNED.get}, EXAMPLES, PARAPHRASES,
                              {"base": 9.5, "tuned": 11.0}, n_show=2, seed=0)
    assert out["systems"] == ["base", "tuned"], "systems in the generators' order"
    assert out["exact_match"] == {"base": {"reverse": 0.0, "upper": 0.0, "all": 0.0},
                                  "tuned": {"reverse": 1.0, "upper": 0.5, "all": 0.75}}, (
        f"exact match per task (answer.strip() == response): got {out['exact_match']}")
    assert out["paraphrase_exact_match"]["tuned"] == {"reverse": 1.0, "upper": 0.0, "all": 0.5}, (
        f"paraphrased exact match of tuned: got {out['paraphrase_exact_match']['tuned']}")
    assert out["sensitivity"] == {"base": 0.0, "tuned": 0.25}, (
        f"sensitivity = EM all - paraphrase EM all: got {out['sensitivity']}")
    assert out["perplexity"] == {"base": 9.5, "tuned": 11.0}, "perplexities are passed through"
    assert out["failures"]["base"] == {"empty": 1, "copied the word": 1, "run-on": 0,
                                       "cut short": 1, "wrong case": 1, "other": 0}, (
        f"base's failure modes over the examples: got {out['failures']['base']}")
    assert out["failures"]["tuned"]["run-on"] == 1 and sum(out["failures"]["tuned"].values()) == 1
    f1 = {"base": (0 + 0 + 0 + 1) / 4, "tuned": (1 + 1 + 1 + 0.5) / 4}  # Dog = DOG; 1 of 3
    assert_close([out["token_f1"][n] for n in f1], list(f1.values()),
                 "mean token F1 of each system's answers against the responses")
    shown = random.Random(0).sample(range(4), 2)
    assert [row["prompt"] for row in out["side_by_side"]] == [EXAMPLES[i]["prompt"]
                                                              for i in shown], (
        "side_by_side shows random.Random(seed).sample(range(len(examples)), n_show)")
    row = out["side_by_side"][0]
    i = shown[0]
    assert row == {"prompt": EXAMPLES[i]["prompt"], "response": EXAMPLES[i]["response"],
                   "base": BASE[EXAMPLES[i]["prompt"]], "tuned": TUNED[EXAMPLES[i]["prompt"]]}, (
        f"a side-by-side row holds the prompt, the response and every system's raw answer: {row}")


@pytest.mark.points(2)
def test_report_is_deterministic_under_a_seed_and_written_as_markdown(impl, tmp_path):
    def run(seed):
        return impl.compare_models({"base": BASE.get, "tuned": TUNED.get}, EXAMPLES, PARAPHRASES,
                                   {"base": 9.5, "tuned": 11.0}, n_show=3, seed=seed)
    first, again = run(1), run(1)
    assert first == again, "the same seed must give the same report"
    path = impl.write_report(first, tmp_path / "a")
    text = path.read_text()
    assert path.name == "report.md" and "| exact match: all | 0.00 | 0.75 |" in text, text
    assert "| held-out perplexity | 9.50 | 11.00 |" in text, text
    for svg in ("exact_match.svg", "failure_modes.svg"):
        plot = (tmp_path / "a" / svg).read_text()
        assert plot.startswith("<svg") and plot.count("<rect") > 6, f"{svg} should be a plot"
        assert (tmp_path / "b" / svg).exists() is False
    assert impl.write_report(again, tmp_path / "b").read_text() == text, "same seed, same text"
    assert (tmp_path / "b" / "exact_match.svg").read_text() == (
        tmp_path / "a" / "exact_match.svg").read_text(), "same summary, same plot"
    orders = {tuple(r["prompt"] for r in run(s)["side_by_side"]) for s in range(6)}
    assert len(orders) > 1, "the seed chooses which examples are shown side by side"

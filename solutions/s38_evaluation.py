"""s38 · Evaluation: numbers that say whether a language model got better, and at what.

You build
    perplexity(model, tokens, block_size)   exp(mean next-token NLL) over held-out text
    normalize_answer(text)                  SQuAD's normalisation (below)
    exact_match(prediction, reference)      1.0 when the normalised strings are equal
    token_f1(prediction, reference)         SQuAD's bag-of-tokens F1
    corpus_bleu(hypotheses, references)     BLEU-4 with clipped counts and brevity penalty
    lcs_length(a, b), rouge_l(hypothesis, reference)
                                            longest common subsequence, ROUGE-L P / R / F
    failure_mode(example, answer)           why an instruction was not followed (a category)
    compare_models(generators, ...)         the base-vs-tuned comparison behind write_report

How it differs from the previous steps
    Until now a loss told you training was working. A tuned model is judged on what it writes,
    and no single number says it all: perplexity measures how well it still predicts ordinary
    text (general ability), exact match whether it did what it was told, F1 / BLEU / ROUGE-L
    give partial credit for overlapping words. Every metric here is a convention: the same
    outputs score differently under another tokenisation or normalisation, so a score is only
    comparable with scores computed the same way, and a metric is easy to game (a model that
    repeats "the the the" gets unigram credit unless counts are clipped).

The math (tokens are whitespace-separated words unless said otherwise)
    perplexity = exp(-(1/M) sum_t log p(x_{t+1} | x_{..t})), over the M = N - 1 predictions of
        N held-out tokens, read in consecutive windows of block_size inputs (each target is
        predicted exactly once; a window's first tokens see less context).
    normalize_answer: lower-case, drop ASCII punctuation (string.punctuation), drop the
        articles a / an / the as whole words, collapse whitespace (SQuAD v1.1's script).
    token F1: common = multiset intersection of the normalised tokens, P = common / |pred|,
        R = common / |ref|, F1 = 2PR / (P + R); 0 when nothing is shared; when either side
        has no tokens, 1.0 if both are empty else 0.0 (SQuAD v2.0's rule).
    BLEU (Papineni et al. 2002, one reference per hypothesis, case-sensitive, split on
        whitespace): p_n = sum over sentences of clipped n-gram matches / sum of hypothesis
        n-grams, n = 1..4, clipped: an n-gram counts at most as often as in the reference.
        c = total hypothesis length, r = total reference length, BP = 1 if c > r else
        exp(1 - r / c) (0 when c = 0). BLEU = BP * exp(mean_n log p_n); 0 when some p_n is 0
        (no smoothing). It equals sacrebleu.corpus_bleu(hyps, [refs], tokenize="none",
        smooth_method="none").score / 100.
    ROUGE-L (Lin 2004): tokens = runs of [a-z0-9] in the lower-cased text (rouge_score's
        tokenizer, no stemming); P = LCS / |hyp|, R = LCS / |ref|, F = 2PR / (P + R), all 0
        when either side is empty or LCS = 0. It equals rouge_scorer.RougeScorer(["rougeL"])
        .score(reference, hypothesis) (note: the reference comes first there).

The comparison report (the base model against the instruction-tuned one)
    generators {name: prompt -> answer}; examples and paraphrases are lists of
    {"task", "prompt", "response", "word"} (tools/instruct_data.py makes them). An instruction
    is followed when answer.strip() == response exactly (case matters: "uppercase" is a task).
    Prompt sensitivity = exact match on the training phrasings - exact match on unseen
    paraphrases of the same tasks. Failures are categorised by the first rule that applies:
    empty, copied the word, run-on (right answer, then more), cut short (a prefix of the
    answer), wrong case, other.

You should be able to explain
    - why perplexity is only comparable between models with the same tokenizer;
    - why BLEU clips counts and needs a brevity penalty (precision alone rewards short output);
    - why evals are hard and easy to game: a metric measures a convention, not the quality;
    - why a tuned model can follow instructions better yet predict ordinary text worse.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

ARTICLES = re.compile(r"\b(a|an|the)\b")
FAILURES = ("empty", "copied the word", "run-on", "cut short", "wrong case", "other")


def perplexity(model, tokens: torch.Tensor, block_size: int) -> float:
    """exp of the mean next-token NLL of tokens (N,) int64 under model (forward(idx) ->
    (logits, loss)), windows of at most block_size inputs, float64, every target once."""
    if tokens.dim() != 1 or tokens.numel() < 2:
        raise ValueError("perplexity needs a 1-D tensor of at least two tokens")
    # BEGIN SOLUTION: windows of block_size inputs, sum NLL of their next tokens, exp(mean)
    total, count = 0.0, 0
    for start in range(0, tokens.numel() - 1, block_size):
        x = tokens[start:start + block_size + 1]
        with torch.no_grad():
            logits, _ = model(x[None, :-1])
        logp = torch.log_softmax(logits[0].double(), dim=-1)
        total -= float(logp.gather(-1, x[1:, None]).sum())
        count += x.numel() - 1
    return math.exp(total / count)
    # END SOLUTION


def normalize_answer(text: str) -> str:
    """Lower-case, remove string.punctuation, remove the words a / an / the, collapse runs of
    whitespace to one space and strip (SQuAD v1.1's normalisation)."""
    # BEGIN SOLUTION: lower, drop punctuation, drop articles, join the split words
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(ARTICLES.sub(" ", text).split())
    # END SOLUTION


def exact_match(prediction: str, reference: str) -> float:
    """1.0 if normalize_answer(prediction) == normalize_answer(reference), else 0.0."""
    # BEGIN SOLUTION: compare the normalised strings
    return float(normalize_answer(prediction) == normalize_answer(reference))
    # END SOLUTION


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's F1 of the normalised tokens: multiset overlap, 2PR / (P + R), 0 when none is
    shared; if either has no tokens, 1.0 when both are empty, else 0.0."""
    # BEGIN SOLUTION: Counter intersection of the normalised tokens, then P, R and F1
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
    # END SOLUTION


def ngrams(tokens: list[str], n: int) -> Counter:
    """Counter of the n-grams (tuples of n consecutive tokens) of tokens."""
    # BEGIN SOLUTION: count every window of n tokens
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    # END SOLUTION


def corpus_bleu(hypotheses: list[str], references: list[str], max_n: int = 4) -> float:
    """Corpus BLEU in [0, 1] (one reference each, whitespace tokens, case-sensitive): clipped
    n-gram precisions pooled over the corpus for n = 1..max_n, geometric mean, times BP."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    # BEGIN SOLUTION: pool clipped matches and totals per n; BP from the total lengths
    matches, totals, c, r = [0] * max_n, [0] * max_n, 0, 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, g = hyp.split(), ref.split()
        c, r = c + len(h), r + len(g)
        for n in range(1, max_n + 1):
            counts = ngrams(h, n)
            matches[n - 1] += sum((counts & ngrams(g, n)).values())
            totals[n - 1] += sum(counts.values())
    if min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(log_p)
    # END SOLUTION


def lcs_length(a: list, b: list) -> int:
    """Length of the longest common subsequence of a and b (dynamic programming)."""
    # BEGIN SOLUTION: one DP row per element of a; row[j] = LCS of a[:i] and b[:j]
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, start=1):
            prev_diag, row[j] = row[j], prev_diag + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]
    # END SOLUTION


def rouge_l(hypothesis: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of ROUGE-L on tokens re.findall("[a-z0-9]+", text.lower()):
    LCS / |hyp|, LCS / |ref|, 2PR / (P + R); (0, 0, 0) if either is empty or LCS is 0."""
    # BEGIN SOLUTION: tokenise both, LCS, then precision, recall and their harmonic mean
    hyp, ref = re.findall("[a-z0-9]+", hypothesis.lower()), re.findall("[a-z0-9]+",
                                                                      reference.lower())
    lcs = lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0, 0.0, 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return precision, recall, 2 * precision * recall / (precision + recall)
    # END SOLUTION


def failure_mode(example: dict, answer: str) -> str | None:
    """None when answer.strip() == example["response"], else the first FAILURES category that
    applies to the stripped answer: "" / == word / starts with the response / a prefix of the
    response / equal ignoring case / anything else."""
    # BEGIN SOLUTION: strip, then test the categories in FAILURES' order
    got, want = answer.strip(), example["response"]
    if got == want:
        return None
    if not got:
        return "empty"
    if got == example["word"]:
        return "copied the word"
    if got.startswith(want):
        return "run-on"
    if want.startswith(got):
        return "cut short"
    if got.lower() == want.lower():
        return "wrong case"
    return "other"
    # END SOLUTION


def compare_models(generators: dict[str, Callable[[str], str]], examples: list[dict],
                   paraphrases: list[dict], perplexities: dict[str, float], n_show: int = 3,
                   seed: int = 0) -> dict:
    """The comparison, one generator call per prompt: {"systems": names, "exact_match" and
    "paraphrase_exact_match": {name: {task: share followed, ..., "all": share}} (tasks in
    order of first appearance), "token_f1": {name: mean token_f1}, "sensitivity": {name:
    EM all - paraphrase EM all}, "perplexity": perplexities, "failures": {name: {category:
    count}} over examples (FAILURES order, zeros kept), "side_by_side": [{"prompt",
    "response", name: answer, ...}] for random.Random(seed).sample(range(len(examples)),
    min(n_show, len(examples))), in that order}; an empty list scores 0.0 everywhere."""
    # BEGIN SOLUTION: answer every prompt, score per task, categorise, sample the showcase
    names = list(generators)
    tasks = list(dict.fromkeys(e["task"] for e in examples + paraphrases))
    answers = {n: [generators[n](e["prompt"]) for e in examples] for n in names}
    para = {n: [generators[n](e["prompt"]) for e in paraphrases] for n in names}

    def score(exs: list[dict], outs: list[str]) -> dict[str, float]:
        ok = [failure_mode(e, a) is None for e, a in zip(exs, outs, strict=True)]
        per = {t: [k for k, e in zip(ok, exs, strict=True) if e["task"] == t] for t in tasks}
        table = {t: sum(v) / len(v) for t, v in per.items() if v}
        return {**table, "all": sum(ok) / len(ok) if ok else 0.0}

    em = {n: score(examples, answers[n]) for n in names}
    pem = {n: score(paraphrases, para[n]) for n in names}
    f1 = {n: sum(map(token_f1, answers[n], [e["response"] for e in examples]))
          / max(1, len(examples)) for n in names}
    fails = {n: Counter(failure_mode(e, a) for e, a in zip(examples, answers[n], strict=True))
             for n in names}
    shown = random.Random(seed).sample(range(len(examples)), min(n_show, len(examples)))
    return {"systems": names, "exact_match": em, "paraphrase_exact_match": pem,
            "token_f1": f1, "sensitivity": {n: em[n]["all"] - pem[n]["all"] for n in names},
            "perplexity": dict(perplexities),
            "failures": {n: {c: fails[n][c] for c in FAILURES} for n in names},
            "side_by_side": [{"prompt": examples[i]["prompt"],
                              "response": examples[i]["response"],
                              **{n: answers[n][i] for n in names}} for i in shown]}
    # END SOLUTION


def _cell(text: str) -> str:
    return "`" + repr(text)[1:-1].replace("|", "\\|").replace("`", "'") + "`"


def _svg_bars(categories: list[str], series: dict[str, list[float]], ylabel: str) -> str:
    """A grouped bar chart as SVG text (one colour per series; no plotting library)."""
    top = max([1.0, *(v for vals in series.values() for v in vals)])
    w, h, pad, slot = 80 * len(categories) + 60, 240, 40, 80
    bar = (slot - 20) / max(1, len(series))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 70}">',
           f'<text x="4" y="14" font-size="11">{ylabel} (max {top:g})</text>',
           f'<line x1="{pad}" y1="{h}" x2="{w}" y2="{h}" stroke="black"/>']
    colours = ("#4472c4", "#ed7d31", "#70ad47", "#ffc000", "#7030a0")
    for s, (name, vals) in enumerate(series.items()):
        colour = colours[s % len(colours)]
        out.append(f'<rect x="{w - 120}" y="{10 + 14 * s}" width="10" height="10" '
                   f'fill="{colour}"/><text x="{w - 105}" y="{19 + 14 * s}" '
                   f'font-size="11">{name}</text>')
        for c, v in enumerate(vals):
            x, bh = pad + slot * c + 10 + bar * s, (h - 40) * v / top
            out.append(f'<rect x="{x:.1f}" y="{h - bh:.1f}" width="{bar:.1f}" '
                       f'height="{bh:.1f}" fill="{colour}"/>')
    for c, cat in enumerate(categories):
        out.append(f'<text x="{pad + slot * c + 10}" y="{h + 16 + 12 * (c % 2)}" '
                   f'font-size="10">{cat}</text>')
    return "\n".join([*out, "</svg>", ""])


def write_report(summary: dict, folder: Path | str) -> Path:
    """Write compare_models' summary as folder/report.md with two SVG plots (exact match per
    task, failure modes); returns the Markdown file's path. Given: nothing to implement."""
    folder, names = Path(folder), summary["systems"]
    folder.mkdir(parents=True, exist_ok=True)
    tasks = [t for t in summary["exact_match"][names[0]] if t != "all"]
    lines = ["# Base vs tuned", "", "| metric | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    rows = [(f"exact match: {t}", "exact_match", t) for t in [*tasks, "all"]]
    rows.append(("exact match, paraphrased: all", "paraphrase_exact_match", "all"))
    for label, key, task in rows:
        lines.append(f"| {label} | " + " | ".join(f"{summary[key][n].get(task, 0.0):.2f}"
                                                 for n in names) + " |")
    for label, key in (("token F1", "token_f1"), ("prompt sensitivity (EM drop)", "sensitivity"),
                       ("held-out perplexity", "perplexity")):
        lines.append(f"| {label} | " + " | ".join(f"{summary[key].get(n, float('nan')):.2f}"
                                                 for n in names) + " |")
    lines += ["", "## Failure modes", "", "| category | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    lines += [f"| {c} | " + " | ".join(str(summary["failures"][n][c]) for n in names) + " |"
              for c in FAILURES]
    lines += ["", "## Side by side", "", "| prompt | expected | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(row[k]) for k in ["prompt", "response", *names]) + " |"
              for row in summary["side_by_side"]]
    lines += ["", "![exact match per task](exact_match.svg)", "",
              "![failure modes](failure_modes.svg)", ""]
    for name, key, cats, label in (
            ("exact_match", "exact_match", [*tasks, "all"], "share of instructions followed"),
            ("failure_modes", "failures", list(FAILURES), "failures")):
        series = {n: [summary[key][n].get(c, 0) for c in cats] for n in names}
        (folder / f"{name}.svg").write_text(_svg_bars(cats, series, label), encoding="utf-8")
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

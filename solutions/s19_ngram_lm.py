"""s19 · Character n-gram language models: counting, smoothing, perplexity, sampling.

You build
    build_vocab(texts), encode, decode   characters <-> token ids, id 0 the boundary token
    count_ngrams(sequences, n)           counts of every n-gram of the padded sequences
    NGramLM(n, vocab_size, k)            add-k smoothed P(next token | previous n - 1 tokens)
        .fit(sequences)                  count (replacing any previous fit)
        .probs(context)                  the next-token distribution, shape (V,)
        .nll(sequences), .perplexity     mean negative log-likelihood per token, exp of it
        .sample(rng, max_len)            draw a sequence, token by token

How it differs from s18
    s18 learned what words MEAN from their contexts; a language model predicts what comes
    NEXT. This is the first model of the course that writes text, and the baseline the MLP
    (s20), the RNNs and finally the transformer must beat on the same numbers.

The math
    A sequence x_1..x_T is padded as  <> ... <> x_1 .. x_T <>  with n - 1 boundary tokens
    (id 0) in front, so the first character has a context, and one after it: predicting the
    end is part of the model. Each sequence therefore gives T + 1 predictions.
    Chain rule: P(x_1..x_T <>) = prod_t P(x_t | x_<t), and the n-gram model keeps only the
    last n - 1 tokens: P(x_t | x_<t) ~ P(x_t | h), h = x_{t-n+1}..x_{t-1}.
    Add-k smoothing, with c(h, w) the count of n-gram (h, w) and c(h) = sum_w c(h, w):
        P(w | h) = (c(h, w) + k) / (c(h) + k V).
    The k V in the denominator is what makes each row sum to 1. k = 0 is the maximum-
    likelihood estimate: an n-gram never seen in training gets probability 0. A context never
    seen has (0 + k) / (0 + k V) = 1 / V for every k > 0; we keep that uniform limit at k = 0.
    NLL = -(1/N) sum over all N predictions of ln P(x_t | h_t) (nats; natural log), and
    perplexity = exp(NLL): the model is as unsure as a uniform choice among that many tokens.
    The uniform model has perplexity exactly V. One zero-probability event makes NLL = inf.

Shapes
    sequences: a list of int sequences (ids in [1, V) for characters; 0 is reserved).
    count_ngrams -> {tuple of n ints: count}. probs(context) -> (V,) floats summing to 1.

You should be able to explain
    - what "next-token prediction" trains, and why predicting the end token matters;
    - why perplexity is used (exp of the per-token loss, comparable across models that
      share a vocabulary) and what perplexity V means;
    - why longer context helps until the counts run out (most 5-grams are never seen), and
      how k trades that off;
    - why the uniform model, not zero, is the honest baseline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

BOUNDARY = "<>"  # token 0: the padding before a sequence and the end-of-sequence symbol


def build_vocab(texts: Sequence[str]) -> list[str]:
    """[BOUNDARY] followed by every distinct character of ``texts`` in sorted order."""
    # BEGIN SOLUTION: the boundary first, then the sorted set of characters
    return [BOUNDARY, *sorted(set("".join(texts)))]
    # END SOLUTION


def encode(text: str, vocab: Sequence[str]) -> list[int]:
    """The id of each character of ``text`` (its index in ``vocab``)."""
    index = {ch: i for i, ch in enumerate(vocab)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise ValueError(f"characters not in the vocabulary: {unknown[:5]}")
    # BEGIN SOLUTION: look every character up
    return [index[ch] for ch in text]
    # END SOLUTION


def decode(ids: Sequence[int], vocab: Sequence[str]) -> str:
    """The characters of ``ids``, boundary tokens dropped."""
    return "".join(vocab[i] for i in ids if i != 0)


def count_ngrams(sequences: Sequence[Sequence[int]], n: int) -> dict[tuple[int, ...], int]:
    """Counts of all n-grams of each sequence padded as (0,) * (n - 1) + seq + (0,)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    # BEGIN SOLUTION: pad each sequence, then count the n-tuples of consecutive tokens
    counts: Counter = Counter()
    for seq in sequences:
        padded = [0] * (n - 1) + [int(t) for t in seq] + [0]
        counts.update(zip(*(padded[i:] for i in range(n)), strict=False))
    return dict(counts)
    # END SOLUTION


class NGramLM:
    """Add-k smoothed character n-gram model over token ids 0..vocab_size - 1."""

    def __init__(self, n: int, vocab_size: int, k: float = 1.0) -> None:
        if n < 1 or vocab_size < 2 or k < 0:
            raise ValueError(f"need n >= 1, vocab_size >= 2, k >= 0; got {n}, {vocab_size}, "
                             f"{k}")
        self.n, self.vocab_size, self.k = n, vocab_size, k
        self.counts_: dict[tuple[int, ...], int] = {}
        self.context_counts_: dict[tuple[int, ...], int] = {}

    def fit(self, sequences: Sequence[Sequence[int]]) -> NGramLM:
        """counts_ = count_ngrams(sequences, n); context_counts_[h] = sum_w counts_[h + (w,)].
        A second fit replaces the first. Returns self."""
        # BEGIN SOLUTION: n-gram counts, then the context totals c(h)
        self.counts_ = count_ngrams(sequences, self.n)
        self.context_counts_ = {}
        for gram, c in self.counts_.items():
            self.context_counts_[gram[:-1]] = self.context_counts_.get(gram[:-1], 0) + c
        # END SOLUTION
        return self

    def _context(self, context: Sequence[int]) -> tuple[int, ...]:
        """The last n - 1 tokens of ``context``, left-padded with 0 when it is shorter."""
        h = [0] * (self.n - 1) + [int(t) for t in context]
        return tuple(h[len(h) - (self.n - 1):]) if self.n > 1 else ()

    def probs(self, context: Sequence[int]) -> np.ndarray:
        """P(. | h) (V,) for h = the last n - 1 tokens of ``context`` (left-padded with 0):
        (c(h, w) + k) / (c(h) + k V); uniform when c(h) + k V is 0."""
        h = self._context(context)
        # BEGIN SOLUTION: counts of h followed by each w, add k, divide by c(h) + k V
        V = self.vocab_size
        c = np.array([self.counts_.get(h + (w,), 0) for w in range(V)], dtype=np.float64)
        denom = self.context_counts_.get(h, 0) + self.k * V
        return (c + self.k) / denom if denom > 0 else np.full(V, 1.0 / V)
        # END SOLUTION

    def nll(self, sequences: Sequence[Sequence[int]]) -> float:
        """Mean of -ln P(x_t | h_t) over every prediction of every padded sequence (the end
        token included); inf if any prediction has probability 0."""
        # BEGIN SOLUTION: walk the n-grams of the padded sequences, sum -ln p, divide by count
        V, total, count = self.vocab_size, 0.0, 0
        for gram, m in count_ngrams(sequences, self.n).items():
            denom = self.context_counts_.get(gram[:-1], 0) + self.k * V
            p = (self.counts_.get(gram, 0) + self.k) / denom if denom > 0 else 1.0 / V
            if p == 0:
                return float("inf")
            total -= m * np.log(p)
            count += m
        return float(total / count)
        # END SOLUTION

    def perplexity(self, sequences: Sequence[Sequence[int]]) -> float:
        """exp(nll(sequences))."""
        return float(np.exp(self.nll(sequences)))

    def sample(self, rng: np.random.Generator, max_len: int = 200) -> list[int]:
        """Start from n - 1 boundary tokens; repeat t = int(rng.choice(V, p=probs(context)))
        until t is the boundary (not returned) or ``max_len`` (>= 0) tokens were drawn."""
        if max_len < 0:
            raise ValueError(f"max_len must be >= 0, got {max_len}")
        # BEGIN SOLUTION: draw from probs(context) with rng.choice, append, stop at 0
        out: list[int] = []
        while len(out) < max_len:
            t = int(rng.choice(self.vocab_size, p=self.probs(out)))
            if t == 0:
                break
            out.append(t)
        return out
        # END SOLUTION

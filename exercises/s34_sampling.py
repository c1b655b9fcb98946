"""s34 · Sampling: how a language model's next-token scores become text.

You build
    apply_temperature(logits, t)          logits / t (t > 0)
    top_k_filter(logits, k)               keep exactly the k largest, the rest -> -inf
    top_p_filter(logits, p)               keep the smallest most-probable set with mass >= p
    apply_repetition_penalty(logits, ids, penalty)
                                          divide positive, multiply negative logits of tokens
                                          already in the context (CTRL's penalty)
    sample_next(logits, ...)              temperature -> top-k -> top-p -> one draw (or argmax)
    generate(model, idx, ...)             the autoregressive loop over any model with s26's
                                          forward(idx) -> (logits, loss)
    sequence_logprob(model, idx, n_prompt)
                                          sum of log p(token | everything before it)
    beam_search(model, idx, n, width)     keep the `width` best partial sequences per step

How it differs from the previous steps
    s26's generate drew each token from softmax(logits / T), optionally after top-k. A model
    only scores continuations; *decoding* decides what text you see, and the same weights can
    be dull, repetitive, creative or incoherent depending on it. This step builds the decoders
    real systems use (Hugging Face's generate applies temperature, then top-k, then top-p, in
    that order, like sample_next here) and measures what each one changes.

The math (one row of logits z over a vocabulary of V tokens)
    p_i = softmax(z / T)_i                           T -> 0: all mass on argmax z (greedy);
                                                     T = 1: the model; T > 1: flatter
    top-k: keep the k largest z_i (ties at the k-th value: the lower token ids win, so
           exactly k survive), set the others to -inf, renormalise
    top-p: sort p descending (ties: lower id first); keep token j while the mass of the tokens
           before it is < p; the kept set is the smallest prefix whose mass is >= p, and the
           most probable token always survives
    repetition penalty theta >= 1, for every distinct token i already in the context:
           z_i <- z_i / theta if z_i > 0 else z_i * theta   (both push z_i down)
    log P(x_{n+1..N} | x_{1..n}) = sum_t log softmax(z_t)[x_{t+1}]   (what beam search ranks)

    Beam search keeps the `width` sequences of highest total log-probability after every new
    token (expanding each by every token and keeping the best `width` of the width * V
    candidates). width = 1 is greedy; width = V^n would be exhaustive search. A beam's best is
    never worse than greedy's, but it is not guaranteed to be the global best: a prefix pruned
    early may have led to the best sequence.

Shapes
    logits (B, V) float; idx (B, T) int64; generate returns (B, T + max_new_tokens).

You should be able to explain
    - why greedy decoding loops ("the the the") and what temperature, top-k / top-p and the
      repetition penalty each do about it;
    - why top-p adapts to the model's confidence while top-k does not;
    - why beam search suits translation (one right answer) more than story-telling;
    - why seeding a torch.Generator makes sampling reproducible and global seeding is not enough
      when other code draws random numbers in between.
"""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / temperature, for temperature > 0 (ValueError otherwise: 0 means greedy, which
    sample_next handles without dividing)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 here, got {temperature}")
    raise NotImplementedError("s34 sampling: divide the scores by the temperature")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """A copy of logits (..., V) where, in each row, exactly the k largest keep their value and
    every other entry is -inf; ties at the k-th value go to the lower token ids. k >= V keeps
    everything; k < 1 is a ValueError."""
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    raise NotImplementedError("s34 sampling: a stable descending sort; keep the first k positions, -inf elsewhere")


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """A copy of logits (..., V) where each row keeps the smallest set of most probable tokens
    whose softmax mass is >= p (sorted by probability, ties by lower id; a token stays while the
    mass before it is < p) and the others become -inf. 0 < p <= 1 (ValueError otherwise)."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    raise NotImplementedError("s34 sampling: sort probabilities, exclusive cumulative mass < p, scatter back")


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor,
                             penalty: float) -> torch.Tensor:
    """A copy of logits (B, V): for each row b and each distinct token i in previous[b] (B, T),
    logits[b, i] / penalty if it is > 0, else logits[b, i] * penalty (once per token, however
    often it occurred). penalty 1 changes nothing; penalty < 1 would reward repetition."""
    raise NotImplementedError("s34 sampling: gather the seen tokens' scores, penalise by sign, scatter them back")


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Next token ids (B,) int64 from logits (B, V): temperature 0 -> argmax (the first one on
    ties; top-k and top-p cannot change it); otherwise apply_temperature, then top_k_filter,
    then top_p_filter (each when not None), then one torch.multinomial draw per row from the
    softmax, with `generator`."""
    raise NotImplementedError("s34 sampling: greedy at temperature 0, else temperature -> top-k -> top-p -> draw")


def generate(model, idx: torch.Tensor, max_new_tokens: int, block_size: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             repetition_penalty: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """idx (B, T) followed by max_new_tokens tokens: each step feeds the last block_size tokens
    to model (forward(idx) -> (logits, _)), takes the last position's logits, applies the
    repetition penalty over the whole sequence so far (when != 1), then sample_next."""
    raise NotImplementedError("s34 sampling: crop, forward, last position, penalty, sample, append")


def sequence_logprob(model, idx: torch.Tensor, n_prompt: int) -> torch.Tensor:
    """(B,) sum over t >= n_prompt of log softmax(model(idx[:, :t])[:, -1])[idx[:, t]]: the
    log-probability of the tokens after the prompt, in one forward pass (T <= block size)."""
    if not 1 <= n_prompt < idx.size(1):
        raise ValueError(f"n_prompt must be in [1, T) with T = {idx.size(1)}, got {n_prompt}")
    raise NotImplementedError("s34 sampling: log-softmax of positions n_prompt-1..T-2, gather the next tokens, sum")


def beam_search(model, idx: torch.Tensor, max_new_tokens: int, beam_width: int,
                block_size: int) -> tuple[torch.Tensor, float]:
    """(best sequence (T + max_new_tokens,), its log-probability) for one prompt idx (1, T):
    keep the beam_width highest-scoring sequences after each new token (scores summed in
    float64; ties: the earlier beam, then the lower token id). beam_width 1 is greedy."""
    if idx.size(0) != 1 or beam_width < 1:
        raise ValueError("beam_search takes one prompt (1, T) and beam_width >= 1")
    raise NotImplementedError("s34 sampling: expand every beam by every token, keep the best beam_width, repeat")

"""s24 · Scaled dot-product attention with causal and padding masks.

You build
    causal_mask(T)                          (T, T) bool: query i may look at keys j <= i
    padding_mask(lengths, S)                (B, 1, 1, S) bool: key j of sequence b is a real token
    scaled_dot_product_attention(q, k, v, mask)   -> (out, weights)

How it differs from the previous steps
    s23 scored encoder states against a decoder state with a small network (additive attention)
    or a bilinear form (multiplicative). Here every position asks a question at once: one
    matrix product scores all queries against all keys, with no recurrence between positions.
    That is why a transformer trains in parallel over the sequence where an RNN must walk it
    step by step. s25 wraps this function in multi-head attention; s26 stacks it into a GPT.

The math
    scores  = q k^T / sqrt(d_k)                      (T, S): how well query i matches key j
    scores  = -inf where mask is False               a masked key cannot win any weight
    weights = softmax(scores) along the KEY axis     each row is a distribution over keys
    out     = weights v                              each query gets a weighted average of values

    In one sentence: attention is a soft dictionary lookup -- each query returns an average of
    the values, weighted by how well its key matches.

    Why 1/sqrt(d_k): if q and k have independent unit-variance entries, q . k is a sum of d_k
    such products, so its variance is d_k. Without the scale, the logits grow like sqrt(d_k);
    the softmax saturates to a one-hot, its gradient vanishes, and the model stops learning
    which keys to attend to. Dividing by sqrt(d_k) keeps the logits' variance at 1 whatever
    the head size. (d_k is the size of a query / key vector: the head size hs in multi-head
    attention, never the model width d_model.)

    Why -inf and not -1e9: exp(-inf) is exactly 0, so a masked key gets exactly 0 weight
    however large the other logits are. A finite "large negative" can be beaten: if every
    visible logit is below -1e9 (it happens with big activations, or in float16, whose
    lowest value is -65504), the masked keys win the softmax and the future leaks in.
    The mask must go in BEFORE the softmax: zeroing weights afterwards leaves rows that no
    longer sum to 1, and the masked logits still shaped the normalisation.

    Masks here use torch's convention: True means "may attend" (as the boolean attn_mask of
    torch.nn.functional.scaled_dot_product_attention). A causal mask keeps the diagonal: a
    token may look at itself. Combine masks with `&`; broadcasting does the rest:
    causal (T, T) & padding (B, 1, 1, T) -> (B, 1, T, T), shared by every head.

    A fully masked row (a query with no key it may see, e.g. a sequence of length 0) has no
    distribution to normalise: softmax over all -inf is 0/0 = NaN. We define its weights and
    its output as 0, as torch does, and keep every other row untouched.

Shapes (as in nanoGPT)
    q (B, nh, T, hs)   k (B, nh, S, hs)   v (B, nh, S, hs_v)   mask broadcastable to (B, nh, T, S)
    weights (B, nh, T, S)   out (B, nh, T, hs_v)
    Any leading dimensions work: (T, hs), (B, T, hs) and (B, nh, T, hs) alike. T (queries) and
    S (keys) differ in cross-attention and with a KV cache.

You should be able to explain
    - what attention computes, in one sentence;
    - why the scores are divided by sqrt(d_k), and what happens to the softmax without it;
    - what causal masking prevents (a token reading the answer it must predict), and why the
      mask is applied before the softmax with -inf;
    - why attention parallelises over positions better than an RNN.
"""

from __future__ import annotations

import math

import torch


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) bool mask, True where query i may attend to key j, i.e. j <= i (diagonal kept)."""
    if T < 1:
        raise ValueError(f"T must be at least 1, got {T}")
    raise NotImplementedError("s24 attention: a lower-triangular (diagonal included) boolean matrix on `device`")


def padding_mask(lengths: torch.Tensor, S: int) -> torch.Tensor:
    """(B, 1, 1, S) bool mask, True where key position j < lengths[b] (a real, unpadded token).

    Sequences are right-padded: sequence b holds lengths[b] real tokens, then padding. The two
    singleton axes broadcast over heads and queries: padding hides KEYS from every query.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (B,), got shape {tuple(lengths.shape)}")
    raise NotImplementedError("s24 attention: compare arange(S) with each length, then add the head and query axes")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """out = softmax(q k^T / sqrt(d_k), masked with -inf where mask is False) v.

    q (..., T, d_k), k (..., S, d_k), v (..., S, d_v); mask bool, broadcastable to (..., T, S),
    True = may attend. Returns (out (..., T, d_v), weights (..., T, S)). Masked weights are
    exactly 0; a query whose keys are all masked gets weights 0 and output 0.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"q (..., T, d_k), k (..., S, d_k), v (..., S, d_v) expected, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got {mask.dtype}")
    raise NotImplementedError("s24 attention: scale the scores, mask with -inf, softmax over keys, zero empty rows, weight v")

"""s25 · Multi-head attention, sinusoidal and rotary (RoPE) positions.

You build
    split_heads(x, n_heads)       (B, T, d_model) -> (B, nh, T, hs),  hs = d_model / nh
    merge_heads(x)                (B, nh, T, hs)  -> (B, T, nh * hs), the exact inverse
    MultiHeadAttention            project, split, attend per head, merge, project back;
                                  equal to torch.nn.MultiheadAttention with the same weights
    sinusoidal_positions(T, d)    (T, d) fixed position codes of "Attention is all you need"
    apply_rope(x, positions)      rotate (q or k) pairs by a position-dependent angle

How it differs from the previous step
    s24 attended with ONE set of queries and keys. One softmax row is one distribution: a
    token can look at its previous word OR at the subject of the sentence, not both. Multi-head
    attention runs nh smaller attentions side by side, each with its own projections of size
    hs = d_model / nh, and concatenates them: nh patterns for the price of one (the total work
    is the same as one head of width d_model). Attention also ignores order (permute the keys
    and the output does not change), so positions have to be injected: added to the input
    (sinusoidal or learned tables), or rotated into q and k (RoPE).

The math
    q, k, v  = x W_q^T + b_q,  x W_k^T + b_k,  x W_v^T + b_v           (B, T, d_model) each
    head h   = softmax(q_h k_h^T / sqrt(hs) + mask) v_h                 (B, T, hs), hs not d_model
    out      = concat(head_1 .. head_nh) W_o^T + b_o                    (B, T, d_model)
    split_heads is a view + transpose: (B, T, nh, hs) -> (B, nh, T, hs). Head h owns the
    feature columns h*hs .. (h+1)*hs - 1, the same slices nn.MultiheadAttention uses, which is
    why weights copied from it give the same answer.

    Sinusoidal: PE[p, 2i] = sin(p / base^(2i/d)),  PE[p, 2i+1] = cos(p / base^(2i/d)).
    Each pair is a clock at its own frequency, from one turn per 2*pi positions down to one per
    2*pi*base: no two positions get the same code, and PE[p + k] is a fixed rotation of PE[p].

    RoPE (rotate-half convention, as GPT-NeoX and Hugging Face Llama): feature j < hs/2 is
    paired with feature j + hs/2 and the pair is rotated by the angle p * theta_j,
    theta_j = base^(-2j/hs):
        x'_j        = x_j cos(p theta_j) - x_{j+hs/2} sin(p theta_j)
        x'_{j+hs/2} = x_{j+hs/2} cos(p theta_j) + x_j sin(p theta_j)
    Rotations preserve dot products up to the angle between them, so
    rope(q, m) . rope(k, n) depends on m - n only: attention sees RELATIVE positions. (The
    interleaved convention of the RoFormer paper pairs features 2j and 2j+1 instead; the two
    are permutations of each other but not interchangeable with the same weights.)

Masks (torch.nn.MultiheadAttention's convention, the OPPOSITE of s24's)
    key_padding_mask (B, S) bool: True = this key is padding, ignore it.
    attn_mask (T, S) or (B * nh, T, S): bool True = NOT allowed; float = added to the scores.
    is_causal=True also hides every key j > i. A query left with no visible key gets weights 0
    and output b_o (the attention part is 0), where torch would give NaN.

Shapes
    batch_first=False (torch's default): query (T, B, d_model), key / value (S, B, d_model).
    batch_first=True: (B, T, d_model) and (B, S, d_model). Weights are (B, T, S) averaged over
    heads, or (B, nh, T, S) with average_attn_weights=False; None with need_weights=False.

You should be able to explain
    - why several small heads beat one big head of the same total width;
    - why the scale is 1/sqrt(hs), the head size, and not 1/sqrt(d_model);
    - why attention needs positional information at all (it is permutation-equivariant);
    - why RoPE makes q . k depend only on the distance m - n.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, d_model) -> (B, nh, T, hs): head h gets features h*hs .. (h+1)*hs - 1."""
    if x.ndim != 3 or x.shape[-1] % n_heads:
        raise ValueError(f"x must be (B, T, d_model) with d_model divisible by n_heads="
                         f"{n_heads}, got shape {tuple(x.shape)}")
    # BEGIN SOLUTION: view as (B, T, nh, hs), then swap the T and head axes
    B, T, d_model = x.shape
    return x.view(B, T, n_heads, d_model // n_heads).transpose(1, 2)
    # END SOLUTION


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, T, nh * hs), the inverse of split_heads."""
    if x.ndim != 4:
        raise ValueError(f"x must be (B, nh, T, hs), got shape {tuple(x.shape)}")
    # BEGIN SOLUTION: swap the head and T axes back, make it contiguous, flatten the heads
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, nh * hs)
    # END SOLUTION


def _attend(q, k, v, allowed):
    """Given (s24): softmax(q k^T / sqrt(hs)) v with -inf where `allowed` is False (None: all).

    `allowed` may also be a float tensor, added to the scores. Rows with no allowed key give 0.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, T, S)
    if allowed is not None and allowed.dtype != torch.bool:
        scores, allowed = scores + allowed, None
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if allowed is not None:
        weights = weights.masked_fill(~allowed.any(-1, keepdim=True), 0.0)
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """nh-head attention equal to nn.MultiheadAttention(d_model, n_heads, bias, batch_first).

    Parameters: q_proj, k_proj, v_proj, out_proj, each nn.Linear(d_model, d_model, bias).
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True,
                 batch_first: bool = False, dtype: torch.dtype | None = None):
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}")
        self.d_model, self.n_heads, self.batch_first = d_model, n_heads, batch_first
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(d_model, d_model, bias=bias, dtype=dtype) for _ in range(4))

    def allowed_mask(self, B: int, T: int, S: int, device, key_padding_mask=None,
                     attn_mask=None, is_causal: bool = False):
        """(B, nh, T, S) bool True = may attend (or float scores to add, or None for all).

        Turns torch's conventions (True = blocked) into s24's (True = allowed).
        """
        # BEGIN SOLUTION: invert and broadcast each mask to (B, nh, T, S), combine with &
        allowed = torch.ones(B, self.n_heads, T, S, dtype=torch.bool, device=device)
        if key_padding_mask is not None:
            allowed = allowed & ~key_padding_mask.bool()[:, None, None, :]
        if is_causal:
            allowed = allowed & torch.ones(T, S, dtype=torch.bool, device=device).tril()
        if attn_mask is not None and attn_mask.dtype != torch.bool:  # additive float mask
            extra = attn_mask.reshape(B, self.n_heads, T, S) if attn_mask.ndim == 3 \
                else attn_mask
            return torch.zeros_like(allowed, dtype=attn_mask.dtype).masked_fill(
                ~allowed, float("-inf")) + extra
        if attn_mask is not None:
            blocked = attn_mask.reshape(B, self.n_heads, T, S) if attn_mask.ndim == 3 \
                else attn_mask
            allowed = allowed & ~blocked
        return allowed
        # END SOLUTION

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """Returns (out, weights) shaped as nn.MultiheadAttention's (see the module docstring)."""
        if not self.batch_first:  # (T, B, E) -> (B, T, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        B, T, S = query.shape[0], query.shape[1], key.shape[1]
        allowed = self.allowed_mask(B, T, S, query.device, key_padding_mask, attn_mask,
                                    is_causal)
        # BEGIN SOLUTION: project, split the heads, _attend, merge, project out, return
        q = split_heads(self.q_proj(query), self.n_heads)  # (B, nh, T, hs)
        k = split_heads(self.k_proj(key), self.n_heads)  # (B, nh, S, hs)
        v = split_heads(self.v_proj(value), self.n_heads)
        heads, weights = _attend(q, k, v, allowed)  # (B, nh, T, hs), (B, nh, T, S)
        out = self.out_proj(merge_heads(heads))  # (B, T, d_model)
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (B, T, S)
        if not self.batch_first:
            out = out.transpose(0, 1)  # back to (T, B, d_model)
        return out, (weights if need_weights else None)
        # END SOLUTION


def sinusoidal_positions(T: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """(T, d_model) float32: PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(same)."""
    if d_model % 2 or d_model < 2 or T < 1:
        raise ValueError(f"need T >= 1 and an even d_model >= 2, got T={T}, d_model={d_model}")
    # BEGIN SOLUTION: one angle per (position, pair); sin in even columns, cos in odd
    pos = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
    freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    pe = torch.zeros(T, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe.float()
    # END SOLUTION


def apply_rope(x: torch.Tensor, positions: torch.Tensor | None = None,
               base: float = 10000.0) -> torch.Tensor:
    """Rotate-half RoPE on x (..., T, hs), hs even; positions (T,) default 0 .. T-1.

    Pairs feature j with j + hs/2, rotated by positions * base^(-2j/hs). Keeps x's dtype.
    """
    hs = x.shape[-1]
    if hs % 2:
        raise ValueError(f"the head size must be even for RoPE, got {hs}")
    if positions is None:
        positions = torch.arange(x.shape[-2], device=x.device)
    # BEGIN SOLUTION: angles (T, hs/2) -> cos, sin; x * cos + rotate_half(x) * sin
    theta = base ** (-torch.arange(0, hs, 2, dtype=torch.float64, device=x.device) / hs)
    angles = positions.to(torch.float64)[:, None] * theta  # (T, hs/2)
    cos = torch.cat([angles.cos()] * 2, dim=-1).to(x.dtype)  # (T, hs)
    sin = torch.cat([angles.sin()] * 2, dim=-1).to(x.dtype)
    first, second = x[..., : hs // 2], x[..., hs // 2:]
    rotated = torch.cat([-second, first], dim=-1)  # rotate_half: (x1, x2) -> (-x2, x1)
    return x * cos + rotated * sin
    # END SOLUTION

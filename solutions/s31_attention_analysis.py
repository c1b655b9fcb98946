"""s31 · Attention analysis: maps, entropy, head ablation and attention rollout of a GPT.

You build
    attention_maps(model, idx)            every layer's and head's attention weights of a GPT
                                          with s26's layout -> (n_layer, B, n_head, T, T)
    attention_entropy(weights)            H = -sum_j a_j ln a_j per row (nats), 0 ln 0 = 0
    ablate_heads(model, idx, heads)       the logits with the listed (layer, head) outputs
                                          zeroed before c_proj; the model is left as it was
    head_importance(model, idx, targets)  loss(with head ablated) - loss(intact), (L, H)
    attention_rollout(maps, residual)     Abnar & Zuidema's (2020) flow of attention from the
                                          input tokens to the last layer -> (B, T, T)

How it differs from the previous steps
    s24-s26 built attention; s30 pretrained a GPT. Here you open the trained model and ask
    what each head does: where it looks (maps), how spread out it looks (entropy), and how
    much the model needs it (ablation). The functions read any model with s26's names
    (model.config.n_head / n_embd, model.transformer.wte / wpe / h[i].ln_1 / attn.c_attn /
    attn.c_proj), so they run on the GPT you pretrained.

The math
    a^{l,h}_{ij} = softmax_j(q_i . k_j / sqrt(hs)), j <= i, with q, k from c_attn(ln_1(x^l))
    and x^l the residual stream entering block l.
    Entropy of a row: H = -sum_j a_ij ln a_ij. Uniform over n keys: ln n (the maximum);
    one-hot: 0. A causal row t has at most t + 1 keys, so its entropy is at most ln(t + 1):
    compare heads at the same row, not across rows.
    Ablation: a head's output y_h (B, T, hs) enters the residual stream only through
    c_proj(concat_h y_h) = sum_h W_proj[:, h] y_h + b. Zeroing y_h removes exactly that term
    and nothing else in its layer; later layers see the change through the residual stream.
    Head importance = how much the loss rises without the head (Michel et al. 2019 prune
    heads with it; many can go at little cost).
    Rollout: average the heads, A^l = mean_h a^{l,h}. With residual=True add the skip
    connection, A^l <- (A^l + I) / 2 (rows still sum to 1), then chain the layers:
    R = A^{L-1} ... A^1 A^0. R[b, i, j] is how much token j flows into position i at the top.

Shapes
    idx, targets (B, T) int64; maps (L, B, H, T, T); entropy: weights.shape[:-1].

You should be able to explain
    - why the upper triangle of every GPT map is 0 (the causal mask, not something learned);
    - why entropy must treat 0 ln 0 as 0, and why row t's entropy is bounded by ln(t + 1);
    - why zeroing y_h before c_proj ablates one head and only it, while zeroing a slice of
      c_attn's output or of the block output does not;
    - why attention weights are not importance: a head can attend sharply and not matter
      (ablation tells), and rollout adds the residual path that raw maps leave out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def attention_maps(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Causal attention weights of every block of a GPT: idx (B, T) -> (L, B, H, T, T)."""
    if idx.ndim != 2:
        raise ValueError(f"idx must be (B, T), got shape {tuple(idx.shape)}")
    with torch.no_grad():  # analysis only: no graph is kept
        # BEGIN SOLUTION: walk the residual stream block by block; recompute q, k from ln_1
        t, (B, T) = model.transformer, idx.shape
        E, H = model.config.n_embd, model.config.n_head
        x = t.wte(idx) + t.wpe(torch.arange(T, device=idx.device))  # (B, T, E)
        future = torch.ones(T, T, dtype=torch.bool, device=idx.device).triu(1)
        maps = []
        for block in t.h:
            q, k, _ = block.attn.c_attn(block.ln_1(x)).split(E, dim=2)
            q, k = (z.view(B, T, H, E // H).transpose(1, 2) for z in (q, k))  # (B, H, T, hs)
            scores = q @ k.transpose(-2, -1) / math.sqrt(E // H)
            maps.append(torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1))
            x = block(x)
        return torch.stack(maps)
        # END SOLUTION


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of weights (..., T_k) -> (...); 0 ln 0 counts as 0."""
    # BEGIN SOLUTION: -sum a ln a over the last axis, zeros contributing exactly 0
    logs = torch.where(weights > 0, weights.log(), torch.zeros_like(weights))
    return -(weights * logs).sum(dim=-1)
    # END SOLUTION


def ablate_heads(model: nn.Module, idx: torch.Tensor,
                 heads: Iterable[tuple[int, int]]) -> torch.Tensor:
    """Logits (B, T, V) of model(idx) with each (layer, head)'s output zeroed before c_proj.

    The model is unchanged afterwards (no hook or weight edit survives the call).
    """
    heads = list(heads)
    L, H = model.config.n_layer, model.config.n_head
    for layer, head in heads:
        if not (0 <= layer < L and 0 <= head < H):
            raise ValueError(f"(layer, head) = ({layer}, {head}) is not in a model with "
                             f"{L} layers of {H} heads")
    with torch.no_grad():  # analysis only: no graph is kept
        # BEGIN SOLUTION: a forward pre-hook on attn.c_proj zeroing the heads' slices; remove it
        hs = model.config.n_embd // H

        def silence(dead):
            def hook(module, args):
                y = args[0].clone()  # (B, T, E): the heads side by side, before c_proj
                for head in dead:
                    y[..., head * hs:(head + 1) * hs] = 0
                return (y,)
            return hook

        by_layer: dict[int, list[int]] = {}
        for layer, head in heads:
            by_layer.setdefault(layer, []).append(head)
        hooks = [model.transformer.h[layer].attn.c_proj.register_forward_pre_hook(silence(dead))
                 for layer, dead in by_layer.items()]
        try:
            return model(idx)[0]
        finally:
            for hook in hooks:
                hook.remove()
        # END SOLUTION


def head_importance(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor):
    """(L, H): mean cross-entropy vs targets with one head ablated minus it with none."""
    with torch.no_grad():  # analysis only: no graph is kept
        # BEGIN SOLUTION: the base loss, then one ablate_heads call per (layer, head)
        def loss(logits):
            return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

        base = loss(model(idx)[0])
        L, H = model.config.n_layer, model.config.n_head
        out = torch.zeros(L, H)
        for layer in range(L):
            for head in range(H):
                out[layer, head] = loss(ablate_heads(model, idx, [(layer, head)])) - base
        return out
        # END SOLUTION


def attention_rollout(maps: torch.Tensor, residual: bool = True) -> torch.Tensor:
    """Abnar & Zuidema's rollout of maps (L, B, H, T, T) -> (B, T, T), rows summing to 1.

    A^l = mean over heads; with residual, A^l = (A^l + I) / 2; R = A^{L-1} @ ... @ A^0.
    """
    if maps.ndim != 5:
        raise ValueError(f"maps must be (L, B, H, T, T), got shape {tuple(maps.shape)}")
    # BEGIN SOLUTION: head mean, the residual identity, multiply from the first layer up
    a = maps.mean(dim=2)  # (L, B, T, T)
    if residual:
        a = 0.5 * a + 0.5 * torch.eye(a.size(-1), dtype=a.dtype, device=a.device)
    rollout = a[0]
    for layer in a[1:]:
        rollout = layer @ rollout
    return rollout
    # END SOLUTION

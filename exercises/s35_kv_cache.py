"""s35 · KV cache: incremental decoding that does not recompute the past.

You build
    CausalSelfAttention.forward(x, cache)   attention of T new positions over the cached past
                                            plus themselves; returns (y, (k, v)) with the new
                                            keys and values appended to the cache
    Block.forward(x, cache)                 s26's pre-LN block, passing the layer's cache through
    GPT.forward_cached(idx, cache)          the new tokens sit at positions past .. past + T - 1;
                                            returns (logits (B, T, V), the cache of every layer)
    generate(model, idx, n, ...)            the decoding loop: prefill the prompt once, then feed
                                            one token per step; use_cache=False recomputes all
    cache_bytes(config, batch, seq_len)     what the cache costs in memory

    GPT here is s26's GPT with the same module and parameter names (transformer.wte, .wpe,
    .h[i].attn.c_attn, ..., lm_head tied to wte), so an s26 / s30 checkpoint's state_dict loads
    into it unchanged. GPT.forward(idx, targets) is the plain full-recomputation forward.

How it differs from the previous steps
    s26's and s34's generate feed the whole context to the model for every new token: token
    n costs a forward pass over n positions, so n tokens cost O(n^2) position-passes, and
    every one but the last recomputes keys and values it already computed one step before.
    A position's key and value depend only on the tokens up to it (the model is causal), so
    they never change once computed: keep them, and each new token needs one position's work
    plus one attention row over the cached keys.

The math (one layer, one head; past P positions cached, T new ones)
    q, k_new, v_new = split(c_attn(x))                      x (B, T, E): the new positions only
    K = [K_cache ; k_new], V = [V_cache ; v_new]            (B, nh, P + T, hs)
    new position i (absolute position P + i) attends to keys j <= P + i:
    y_i = softmax_j(q_i . K_j / sqrt(hs), masked j > P + i) V
    The token and position embedding of a new token use its absolute position P + i.
    Prefill (P = 0, T = prompt length) is one ordinary causal forward that fills the cache;
    each decode step is T = 1, where the mask hides nothing (the past is all in the past).

    Cost per new token, n tokens in context: without a cache a forward over n positions
    (O(n E^2) for the linears + O(n^2 E) attention); with it one position (O(E^2)) + one
    attention row (O(n E)). Memory: 2 (k and v) * n_layer * batch * seq_len * n_embd values.

The finite block size
    wpe has block_size rows, so a context never exceeds block_size tokens: forward_cached
    refuses past + T > block_size (ValueError). generate does what nanoGPT does without a
    cache, crop to the last block_size tokens; once the cache is full the window slides
    every step, every token's position changes, and with learned absolute positions every
    cached key is stale. So when the cache holds block_size positions generate drops it and
    recomputes the window (a prefill of the last block_size tokens) for the next token: its
    output equals the uncached loop's token for token, but past block_size the cache no
    longer saves anything. (Relative positions, e.g. RoPE, let real systems keep a
    sliding-window cache instead.)

Shapes
    idx (B, T) int64; logits (B, T, V); cache: a list with one (k, v) per layer, each
    (B, n_head, positions so far, head_size); None means empty.

You should be able to explain
    - why cached keys and values never need recomputing (causality), and why queries are not
      cached at all;
    - why the decode step needs no causal mask but prefill does;
    - where the speed-up comes from and why it grows with the sequence length;
    - what the cache costs in memory and why it limits batch size and context length;
    - what happens at the block size with learned absolute positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LayerCache = tuple[torch.Tensor, torch.Tensor]


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    bias: bool = True


def cache_length(cache: list[LayerCache] | None) -> int:
    """How many positions a cache holds (0 for None)."""
    return 0 if cache is None else cache[0][0].size(2)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (s26's c_attn, c_proj) that can extend a cache."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} must be a multiple of n_head="
                             f"{config.n_head}")
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor,
                cache: LayerCache | None = None) -> tuple[torch.Tensor, LayerCache]:
        """x (B, T, E), the T newest positions; cache (k, v) of the P earlier ones, or None.
        Returns (y (B, T, E), (k, v) each (B, n_head, P + T, head_size)): new position i
        attends to cached and new positions 0 .. P + i. A new cache is returned; the cache
        passed in is left unchanged (so one prompt's cache can start several continuations)."""
        B, T, E = x.shape
        raise NotImplementedError("s35 kv cache: new q, k, v heads; append k, v to the cache; mask keys after P + i")


class MLP(nn.Module):
    """c_fc (E -> 4E), GELU with the tanh approximation, c_proj (4E -> E): s26's, given."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)), with the layer's cache."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor,
                cache: LayerCache | None = None) -> tuple[torch.Tensor, LayerCache]:
        """(x + attention + MLP as in s26, this layer's extended cache)."""
        raise NotImplementedError("s35 kv cache: attention with the cache, both residual sub-layers, return the cache")


class GPT(nn.Module):
    """s26's GPT (same parameter names, lm_head tied to wte) with a cached forward."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(config.vocab_size, config.n_embd),
            "wpe": nn.Embedding(config.block_size, config.n_embd),
            "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            "ln_f": nn.LayerNorm(config.n_embd, bias=config.bias)})
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in s26

    def forward_cached(self, idx: torch.Tensor, cache: list[LayerCache] | None = None
                       ) -> tuple[torch.Tensor, list[LayerCache]]:
        """idx (B, T), the tokens after the P cached positions -> (logits (B, T, V), the new
        cache, one (k, v) per layer holding P + T positions). Token i sits at position P + i;
        P + T > block_size is a ValueError."""
        past = cache_length(cache)
        if idx.ndim != 2 or past + idx.size(1) > self.config.block_size:
            raise ValueError(f"{past} cached + {tuple(idx.shape)} new tokens: idx must be "
                             f"(B, T) with cached + T <= block_size={self.config.block_size}")
        raise NotImplementedError("s35 kv cache: embed at positions past.., each block with its layer's cache, ln_f, head")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) -> (logits (B, T, V), mean cross-entropy vs targets, or None): s26's
        forward, a full recomputation (an empty cache)."""
        logits, _ = self.forward_cached(idx)
        loss = None if targets is None else F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def _next_token(logits: torch.Tensor, temperature: float,
                generator: torch.Generator | None) -> torch.Tensor:
    """(B, V) last-position logits -> (B, 1): argmax at temperature 0, else a draw."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """idx (B, T0) followed by max_new_tokens tokens (B, T0 + max_new_tokens), each chosen by
    _next_token from the last position's logits given the last block_size tokens.
    use_cache=False: model(idx[:, -block_size:]) every step. use_cache=True: the same tokens,
    but the first step prefills the cache with the (cropped) prompt and each later step feeds
    only the newest token; when the cache holds block_size positions it is dropped and the
    next step prefills the last block_size tokens again (the window has slid)."""
    block_size = model.config.block_size
    raise NotImplementedError("s35 kv cache: prefill once, then one token per step; a full cache is re-prefilled")


def cache_bytes(config: GPTConfig, batch_size: int, seq_len: int,
                bytes_per_value: int = 4) -> int:
    """Bytes of a full cache: 2 (k and v) * n_layer * batch_size * seq_len * n_embd values of
    bytes_per_value bytes each (4 for float32, 2 for float16)."""
    raise NotImplementedError("s35 kv cache: keys and values, every layer, every sequence, every position, every channel")

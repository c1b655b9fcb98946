"""s26 · A tiny GPT: pre-LN transformer blocks, weight tying, generation.

You build
    GPTConfig                      vocab_size, block_size, n_layer, n_head, n_embd, bias
    CausalSelfAttention            c_attn (E -> 3E), causal softmax per head, c_proj (E -> E)
    MLP                            c_fc (E -> 4E), GELU (tanh form), c_proj (4E -> E)
    Block                          x + attn(ln_1(x)), then x + mlp(ln_2(x))   (pre-LN)
    GPT                            token + position embedding, n_layer blocks, ln_f, lm_head
                                   tied to the token embedding; forward -> (logits, loss);
                                   generate(idx, max_new_tokens, temperature, top_k)
    count_parameters(config)       the analytic parameter count

How it differs from the previous step
    s25 built one attention layer. A GPT stacks n_layer identical blocks, each attention (tokens
    talk to each other) followed by an MLP (each token thinks alone), both wrapped in residual
    connections, and reads the next-token distribution off the last layer. The module and
    parameter names are nanoGPT's and Hugging Face GPT-2's, so GPT-2 weights load into it.

The math (per block, x (B, T, E))
    x = x + c_proj(causal_attention(c_attn(LayerNorm_1(x))))
    x = x + c_proj(gelu(c_fc(LayerNorm_2(x))))
    logits = LayerNorm_f(x) W_te^T                       (B, T, V): lm_head IS wte, transposed
    loss = mean cross-entropy of logits[:, t] against targets[:, t]

    Pre-LN (normalise the input of each sub-layer, leave the residual path untouched) keeps
    a clean identity path from the embeddings to the output: gradients reach the first layers
    without passing through any normalisation, so deep stacks train without warmup tricks.
    Post-LN (normalise after the addition, the 2017 original) is harder to train deep.

    Weight tying: the input embedding (token -> vector) and the output layer (vector -> token
    scores) share one V x E matrix. It saves V*E parameters (most of a small model's) and ties
    "what a token means" to "when to predict it".

    Initialisation (nanoGPT): weights N(0, 0.02), biases 0, and the c_proj layers that write
    into the residual stream N(0, 0.02 / sqrt(2 n_layer)) so the stream's variance does not
    grow with depth. At init the logits are near 0, the prediction near uniform, and the loss
    near ln(V): a first sanity check of any language model.

Parameter count (bias=True; E = n_embd, L = n_layer, V = vocab_size, T = block_size)
    V E (wte, shared with lm_head) + T E (wpe) + L (12 E^2 + 13 E) + 2 E (ln_f)
    per block: c_attn 3E^2 + 3E, c_proj E^2 + E, c_fc 4E^2 + 4E, mlp c_proj 4E^2 + E, two
    LayerNorms 4E. Without biases: L (12 E^2 + 2 E) + E for the LayerNorm weights alone.

Shapes
    idx (B, T) int64 token ids, T <= block_size; logits (B, T, V); targets (B, T) or None.

You should be able to explain
    - why the model is causal end to end (only the attention mixes positions, and it is
      masked), so the logits at t never depend on tokens after t;
    - why pre-LN trains more easily than post-LN;
    - what weight tying shares and why it helps;
    - why the loss at initialisation should be about ln(vocab_size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    bias: bool = True


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused q, k, v projection (c_attn)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} must be a multiple of n_head="
                             f"{config.n_head}")
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, E) -> (B, T, E); position t attends to positions 0 .. t only."""
        B, T, E = x.shape
        # BEGIN SOLUTION: split c_attn's output into q, k, v heads; causal softmax; merge; c_proj
        q, k, v = self.c_attn(x).split(E, dim=2)  # (B, T, E) each
        q, k, v = (t.view(B, T, self.n_head, E // self.n_head).transpose(1, 2)
                   for t in (q, k, v))  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, T, T)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        y = (weights @ v).transpose(1, 2).contiguous().view(B, T, E)
        return self.c_proj(y)
        # END SOLUTION


class MLP(nn.Module):
    """c_fc (E -> 4E), GELU with the tanh approximation (GPT-2's), c_proj (4E -> E)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION: expand, GELU (approximate="tanh"), project back
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))
        # END SOLUTION


class Block(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). LayerNorm eps 1e-5."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION: two residual sub-layers, each normalising its own input
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))
        # END SOLUTION


class GPT(nn.Module):
    """transformer.{wte, wpe, h, ln_f} + lm_head, lm_head.weight IS transformer.wte.weight."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(config.vocab_size, config.n_embd),
            "wpe": nn.Embedding(config.block_size, config.n_embd),
            "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            "ln_f": nn.LayerNorm(config.n_embd, bias=config.bias)})
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # BEGIN SOLUTION: tie lm_head to wte, then nanoGPT's initialisation
        self.lm_head.weight = self.transformer.wte.weight  # one Parameter, two uses
        for name, p in self.named_parameters():
            if p.ndim == 2:  # weights (and the shared embedding): N(0, 0.02)
                std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") \
                    else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        # END SOLUTION

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) -> (logits (B, T, V), mean cross-entropy vs targets (B, T), or None)."""
        if idx.ndim != 2 or idx.shape[1] > self.config.block_size:
            raise ValueError(f"idx must be (B, T) with T <= block_size="
                             f"{self.config.block_size}, got shape {tuple(idx.shape)}")
        # BEGIN SOLUTION: embed tokens + positions, the blocks, ln_f, lm_head, cross-entropy
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, E)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
        # END SOLUTION

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None):
        """Append max_new_tokens sampled tokens to idx (B, T0) -> (B, T0 + max_new_tokens).

        Each step feeds the last block_size tokens, divides the last logits by temperature,
        keeps the top_k largest (others -inf) when given, and samples with torch.multinomial.
        """
        # BEGIN SOLUTION: crop to block_size, last logits / temperature, top-k, sample, append
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])
            logits = logits[:, -1, :] / temperature  # (B, V)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
        # END SOLUTION


def count_parameters(config: GPTConfig) -> int:
    """Number of distinct parameters of GPT(config), lm_head tied (counted once)."""
    # BEGIN SOLUTION: embeddings + n_layer blocks + ln_f (see the module docstring)
    E, b = config.n_embd, int(config.bias)
    per_block = 12 * E * E + b * 9 * E + (2 + 2 * b) * E  # linears, their biases, 2 LayerNorms
    embeddings = (config.vocab_size + config.block_size) * E
    return embeddings + config.n_layer * per_block + (1 + b) * E
    # END SOLUTION

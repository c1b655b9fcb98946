"""s27 · A BERT-style encoder: bidirectional attention and the masked-language-model objective.

You build
    SelfAttention.forward          bidirectional multi-head attention with a key padding mask
    Encoder.forward                embeddings, the blocks, ln_f, tied lm_head, and the MLM loss
                                   on the labelled (masked) positions only (-100 = ignore)
    mask_tokens(ids, ...)          BERT's corruption: pick 15 % of the ordinary tokens; of
                                   those, 80 % become [MASK], 10 % a random token, 10 % stay
Given: EncoderConfig, MLP and Block (s26's pre-LN block), Encoder.__init__ (tying, init).

How it differs from the previous step
    s26's GPT reads left to right: the causal mask hides every later token, so it can
    generate. An encoder drops the mask: every position sees the whole sequence, the left AND
    the right context, which is what understanding a sentence (classification, tagging,
    retrieval) wants. But "predict the next token" is then trivial (the answer is in view),
    so BERT trains on a cloze task instead: hide some tokens, predict them from both sides.

The math
    scores = q k^T / sqrt(hs), no causal mask; scores[..., j] = -inf where key j is padding
    (attention_mask[b, j] == 0), so padding never feeds a real token. Padded query rows are
    computed and ignored.
    Masked LM: choose each ordinary position independently with probability p = 0.15
    (never a special token such as [CLS], [SEP] or [PAD]). labels = the original id at a
    chosen position and -100 elsewhere. At a chosen position the input becomes
        [MASK] with probability 0.8, a uniformly random id in 0 .. V-1 with probability 0.1,
        the original token with probability 0.1.
    loss = mean over the labelled positions of -log softmax(logits)[label]; F.cross_entropy
    skips targets equal to ignore_index = -100, its default, and averages over the others.

    Why 80/10/10: [MASK] never appears when the encoder is fine-tuned or used; if every chosen
    token were [MASK] the model could learn features only for [MASK] positions and ignore the
    others. Random tokens make it distrust any token it sees (it must check each one against
    its context); unchanged tokens tie the prediction to the token actually present.
    Why only the chosen positions count: elsewhere the answer is the input itself, copied
    through the residual stream; a loss there teaches nothing and swamps the real signal.
    The price: only ~15 % of the tokens teach anything, so MLM learns slower per token read
    than a GPT, for which every position is a target.

Shapes
    idx, labels, attention_mask (B, T), T <= block_size; logits (B, T, V).
    attention_mask: 1 / True for a real token, 0 / False for padding; None = no padding.

You should be able to explain
    - why an encoder sees the future (a later token changes earlier outputs) and why it
      therefore cannot generate text left to right;
    - the 80/10/10 rule and why the loss ignores the unchosen positions;
    - why special tokens and padding are never chosen, and what -100 means to cross_entropy;
    - where BERT itself differs: post-LN blocks, a segment embedding, an extra dense +
      LayerNorm before the tied output layer, and next-sentence prediction (later dropped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EncoderConfig:
    vocab_size: int = 67  # characters plus [PAD], [MASK] and friends in the lab
    block_size: int = 64  # the longest sequence (position embeddings)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    bias: bool = True  # biases in the Linear layers and LayerNorms


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention: c_attn (E -> 3E), softmax per head, c_proj."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} must be a multiple of n_head="
                             f"{config.n_head}")
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """(B, T, E) -> (B, T, E); every position attends to every real (unpadded) key."""
        B, T, E = x.shape
        # BEGIN SOLUTION: heads as in s26, but no causal mask: -inf only on padding keys
        q, k, v = self.c_attn(x).split(E, dim=2)
        q, k, v = (t.view(B, T, self.n_head, E // self.n_head).transpose(1, 2)
                   for t in (q, k, v))  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, T, T)
        if attention_mask is not None:
            padding = ~attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): the keys
            scores = scores.masked_fill(padding, float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v  # (B, nh, T, hs)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, E))
        # END SOLUTION


class MLP(nn.Module):
    """c_fc (E -> 4E), GELU (tanh form), c_proj (4E -> E): given, as in s26."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LN block, given: x + attn(ln_1(x), attention_mask), then x + mlp(ln_2(x))."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = SelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None):
        x = x + self.attn(self.ln_1(x), attention_mask)
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """transformer.{wte, wpe, h, ln_f} + lm_head tied to wte: s26's layout without the mask."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(config.vocab_size, config.n_embd),
            "wpe": nn.Embedding(config.block_size, config.n_embd),
            "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            "ln_f": nn.LayerNorm(config.n_embd, bias=config.bias)})
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as BERT's decoder is
        for name, p in self.named_parameters():
            if p.ndim == 2:
                std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") \
                    else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor, labels: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None):
        """idx (B, T) -> (logits (B, T, V), mean cross-entropy over labels != -100, or None)."""
        if idx.ndim != 2 or idx.shape[1] > self.config.block_size:
            raise ValueError(f"idx must be (B, T) with T <= block_size="
                             f"{self.config.block_size}, got shape {tuple(idx.shape)}")
        if attention_mask is not None and not attention_mask.bool().any(dim=1).all():
            raise ValueError("every sequence needs at least one real token in attention_mask")
        # BEGIN SOLUTION: embeddings, blocks (passing attention_mask), ln_f, lm_head, MLM loss
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, E)
        for block in self.transformer.h:
            x = block(x, attention_mask)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        loss = None if labels is None else F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)
        return logits, loss
        # END SOLUTION


def mask_tokens(ids: torch.Tensor, mask_id: int, vocab_size: int,
                special_ids: Sequence[int] = (), mask_prob: float = 0.15,
                generator: torch.Generator | None = None):
    """BERT's masking of ids (any shape, int64) -> (inputs, labels), ids left unchanged.

    Each position whose id is not in special_ids is chosen independently with probability
    mask_prob; labels = ids where chosen, -100 elsewhere. A chosen input becomes mask_id
    (prob. 0.8), a uniform random id in 0 .. vocab_size-1 (0.1), or stays (0.1). Every draw
    comes from `generator` (torch's global generator when None).
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    # BEGIN SOLUTION: choose (not special), labels with -100, then 80 / 10 / 10 on the chosen
    special = torch.isin(ids, torch.as_tensor(list(special_ids), dtype=ids.dtype))
    chosen = (torch.rand(ids.shape, generator=generator) < mask_prob).masked_fill(special, False)
    labels = ids.masked_fill(~chosen, -100)
    fate = torch.rand(ids.shape, generator=generator).masked_fill(~chosen, 1.0)  # 1.0: keep
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator, dtype=ids.dtype)
    inputs = torch.where(fate < 0.9, random_ids, ids)  # [0.9, 1]: keep the token
    inputs = torch.where(fate < 0.8, torch.full_like(ids, mask_id), inputs)  # [0, 0.8): [MASK]
    return inputs, labels
    # END SOLUTION

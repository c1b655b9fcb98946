"""s32 · Transfer: a pretrained GPT body against a random one on a downstream task.

You build
    GPTClassifier(body, n_classes, pool, head_seed)
                         a classification head on a GPT body with s26's module names:
                         features(idx) -> (B, E) pooled hidden states, forward(idx) -> (B, C)
    fine_tune(model, x, y, steps, lr, batch_size, freeze_body, seed) -> loss history
    accuracy(model, x, y) -> fraction of argmax predictions equal to y
    transfer_experiment(bodies, x_train, y_train, x_test, y_test, sizes, ...)
                         -> {arm: [test accuracy at each training-set size]}, a learning curve

How it differs from the previous steps
    s26-s30 trained a GPT to predict the next token. Nobody wants next tokens for their own
    sake: the point of pretraining is that the network's hidden states become useful
    features for other tasks. Here you cut the language-model head off, put a small
    classifier on the last hidden state, and fine-tune on a few labelled examples, once from
    the pretrained weights and once from random ones. Everything else must be equal, or the
    comparison measures something else: same training subsets, same data order, same head
    initialisation, same optimiser and steps. The only difference between the arms is the
    initial weights of the body.

The math
    h = ln_f(blocks(wte(idx) + wpe(0..T-1)))                    (B, T, E), the body
    pool "last": h[:, -1]   (a causal model's last position is the only one that saw the
                             whole sequence);  pool "mean": h.mean(dim=1)
    logits = head(pooled) = pooled W^T + b                      (B, n_classes)
    loss = cross-entropy(logits, y), AdamW on the head alone (frozen body: a linear probe
    on fixed features) or on head and body (full fine-tuning).
    The head starts at W ~ N(0, 0.02), b = 0, drawn from its own torch.Generator seeded with
    head_seed: both arms get the same head, and building it does not touch torch's global
    random state.

Why pretraining helps most when labels are scarce
    With a handful of labelled examples, a random body must learn everything from them; a
    token or pattern absent from the few examples stays unknown. A body pretrained on lots
    of unlabelled text already maps tokens that behave alike to similar hidden states, so
    the head generalises from few examples. With enough labels the random arm catches up.

Shapes
    idx, x (B, T) int64 token ids, T <= the body's block_size; y (B,) int64 in 0..n_classes-1.

You should be able to explain
    - why the two arms must share seeds, data order, head initialisation and
      hyper-parameters, and what an unfair comparison would show instead;
    - the difference between a frozen body (linear probe) and full fine-tuning;
    - why "last" pooling suits a causal model;
    - why the pretrained advantage shrinks as the labelled set grows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class GPTClassifier(nn.Module):
    """A linear head on a GPT body (s26's transformer.{wte, wpe, h, ln_f}; lm_head unused)."""

    def __init__(self, body: nn.Module, n_classes: int, pool: str = "last", head_seed: int = 0):
        super().__init__()
        if pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', got {pool!r}")
        self.body, self.pool = body, pool
        # skip_init: the Linear's default init would draw from torch's global generator
        self.head = nn.utils.skip_init(nn.Linear, body.transformer.wte.embedding_dim, n_classes)
        raise NotImplementedError("s32 transfer: head weights N(0, 0.02) from Generator(head_seed), bias 0")

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, E): ln_f of the body's last block, at the last position or the mean."""
        raise NotImplementedError("s32 transfer: embeddings + positions, every block, ln_f, then pool over T")

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, n_classes) logits."""
        raise NotImplementedError("s32 transfer: the head on the pooled features")


def fine_tune(model: GPTClassifier, x: torch.Tensor, y: torch.Tensor, steps: int,
              lr: float = 1e-3, batch_size: int = 16, freeze_body: bool = False,
              seed: int = 0) -> list[float]:
    """Train with torch.optim.AdamW(trainable, lr=lr) on cross-entropy; return each step's loss.

    trainable: the head's parameters if freeze_body (the body is left exactly as it was),
    else all of model's. Step i uses the rows torch.randperm(len(x), generator=g)[:batch_size],
    g = torch.Generator().manual_seed(seed) made once: the data order depends only on seed.
    """
    raise NotImplementedError("s32 transfer: pick the trainable parameters, one generator, randperm batches, AdamW steps")


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose argmax logit (in eval mode, under torch.no_grad()) equals y."""
    raise NotImplementedError("s32 transfer: eval mode, no gradients, argmax over classes, mean of the matches")


def transfer_experiment(bodies: Mapping[str, Callable[[], nn.Module]], x_train: torch.Tensor,
                        y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                        sizes: Sequence[int], n_classes: int, steps: int = 100,
                        lr: float = 1e-3, batch_size: int = 16, freeze_body: bool = False,
                        pool: str = "last", seed: int = 0) -> dict[str, list[float]]:
    """Learning curves: {arm: [test accuracy after fine-tuning on n examples, for n in sizes]}.

    bodies maps an arm's name to a function returning a fresh body. For every arm and size n:
    rows = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:n]
    (the same nested subsets for every arm), model = GPTClassifier(bodies[arm](), n_classes,
    pool, head_seed=seed), fine_tune(model, x_train[rows], y_train[rows], steps, lr,
    batch_size, freeze_body, seed), then accuracy(model, x_test, y_test).
    """
    if any(not 0 < n <= len(x_train) for n in sizes):
        raise ValueError(f"every size must be in 1..{len(x_train)}, got {list(sizes)}")
    raise NotImplementedError("s32 transfer: one subset order for all arms; a fresh body and head per (arm, size)")

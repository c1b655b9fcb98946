"""s36 · LoRA: fine-tune a big frozen layer through a small low-rank side path.

You build
    LoRALinear(base, rank, alpha, dropout)   y = base(x) + (alpha / rank) * dropout(x) A^T B^T
        .delta_weight()                      the update the side path adds: (alpha / rank) B A
        .merge() / .unmerge()                fold the update into base.weight / take it out
    apply_lora(model, rank, alpha, targets)  wrap every nn.Linear whose dotted name ends with
                                             a target (s26's "attn.c_attn", "attn.c_proj"),
                                             freeze everything else; returns the wrapped names
    merge_lora(model) / unmerge_lora(model)  merge / unmerge every LoRALinear in a model
    count_trainable(model)                   parameters with requires_grad (shared ones once)
    lora_state_dict(model)                   only the lora_A / lora_B tensors (the "adapter")
    delta_norms(model)                       per wrapped layer, the Frobenius norm of its update

How it differs from the previous steps
    s32 fine-tuned every weight of the pretrained GPT: one optimizer state per parameter and
    a full copy of the model per task. LoRA (Hu et al., 2021) freezes the pretrained weight W
    and learns a low-rank update W + (alpha / r) B A instead. Only A and B train, so the
    optimizer state and the file you save per task are tiny, and after merging the tuned
    model is exactly as fast as the base: the update is folded into W.

The math (a linear layer W: (out, in), bias b; rank r << min(in, out))
    A: (r, in), random (Kaiming-uniform, like Hugging Face's peft); B: (out, r), zeros
    h = x W^T + b + s * (x A^T) B^T,     s = alpha / r
    B = 0 at the start  =>  h = x W^T + b: the wrapped model starts as the base model, and
        the first gradient step moves B (dL/dB = s * g^T (x A^T)) while dL/dA = 0 until B moves
    trainable parameters per wrapped layer: r * (in + out)   instead of in * out (+ out)
    merge:   W <- W + s B A   (then h = x W^T + b, one matmul);  unmerge: W <- W - s B A
    alpha / r keeps the size of the update roughly the same when you change r, so a learning
    rate tuned at one rank still works at another.

Shapes
    x (..., in) -> (..., out); lora_A (r, in); lora_B (out, r); delta_weight (out, in).

You should be able to explain
    - why B starts at zero (and A does not: with both zero no gradient would ever flow);
    - why the trainable count is r (in + out), and what fraction of the GPT that is;
    - why merging costs nothing at inference and why unmerging recovers the base (up to
      rounding), so one base model can serve many adapters;
    - what the rank limits: BA has rank <= r, so its singular values beyond r are zero;
    - which layers to target, and why the update's norm tells you where tuning acted.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ATTENTION = ("attn.c_attn", "attn.c_proj")  # s26's attention projections


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update. Parameters lora_A (rank, in),
    Kaiming-uniform (a = sqrt(5), nn.Linear's default), and lora_B (out, rank), zeros, in the
    base weight's dtype; scaling = alpha / rank; base.weight and base.bias stop requiring
    grad; dropout (probability `dropout`, active in training mode only) is applied to the
    input of the LoRA path only. rank < 1 or dropout outside [0, 1) is a ValueError."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0,
                 dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.base, self.rank, self.alpha = base, rank, alpha
        self.dropout = nn.Dropout(dropout)
        self.merged = False
        raise NotImplementedError("s36 lora: freeze the base; A (rank, in) Kaiming-uniform, B (out, rank) zeros")

    def delta_weight(self) -> torch.Tensor:
        """The update scaling * B @ A, shape (out, in), differentiable in A and B."""
        raise NotImplementedError("s36 lora: the scaled product of B and A")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """base(x) + scaling * dropout(x) A^T B^T; once merged, just base(x) (the update is
        already inside base.weight)."""
        raise NotImplementedError("s36 lora: the frozen layer plus the scaled low-rank path (skip it when merged)")

    def merge(self) -> None:
        """base.weight += delta_weight() in place, without autograd; merging twice changes
        nothing the second time."""
        raise NotImplementedError("s36 lora: add the update to the base weight once; remember it is merged")

    def unmerge(self) -> None:
        """Undo merge: base.weight -= delta_weight(); does nothing when not merged."""
        raise NotImplementedError("s36 lora: subtract the update again, only if it was merged")


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0,
               targets: tuple[str, ...] = ATTENTION, dropout: float = 0.0) -> list[str]:
    """Replace, in place, every nn.Linear whose dotted module name equals a target or ends
    with "." + target by LoRALinear(module, rank, alpha, dropout), and make every parameter
    of the model that is not a lora_A / lora_B stop requiring grad. Returns the wrapped names
    in model.named_modules() order. ValueError, with the model untouched, when nothing
    matches."""
    names: list[str] = []
    raise NotImplementedError("s36 lora: the names of the nn.Linear modules that match a target")
    if not names:
        raise ValueError(f"no nn.Linear module name ends with any of {targets}")
    raise NotImplementedError("s36 lora: freeze the whole model, then swap each match for a LoRALinear")
    return names


def merge_lora(model: nn.Module) -> int:
    """merge() every LoRALinear in the model; returns how many there are. (Walk
    model.named_modules(): the integrity check refuses any attribute named `modules`.)"""
    raise NotImplementedError("s36 lora: call merge on each LoRALinear module")


def unmerge_lora(model: nn.Module) -> int:
    """unmerge() every LoRALinear in the model; returns how many there are."""
    raise NotImplementedError("s36 lora: call unmerge on each LoRALinear module")


def count_trainable(model: nn.Module) -> int:
    """The number of scalars in parameters with requires_grad, a tied (shared) one once."""
    raise NotImplementedError("s36 lora: sum numel over model.parameters() that require grad")


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The entries of model.state_dict() whose name ends with "lora_A" or "lora_B" (detached
    copies): what you save per task; load it back with load_state_dict(..., strict=False)."""
    raise NotImplementedError("s36 lora: filter the state dict by the parameter names' last part")


def delta_norms(model: nn.Module) -> dict[str, float]:
    """For each LoRALinear, by its module name in model.named_modules() order: the Frobenius
    norm of delta_weight(), a float."""
    raise NotImplementedError("s36 lora: the norm of each layer's scaled B @ A")

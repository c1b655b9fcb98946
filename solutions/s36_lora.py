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
        # BEGIN SOLUTION: freeze the base; A (rank, in) Kaiming-uniform, B (out, rank) zeros
        base.requires_grad_(False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / rank
        # END SOLUTION

    def delta_weight(self) -> torch.Tensor:
        """The update scaling * B @ A, shape (out, in), differentiable in A and B."""
        # BEGIN SOLUTION: the scaled product of B and A
        return self.scaling * (self.lora_B @ self.lora_A)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """base(x) + scaling * dropout(x) A^T B^T; once merged, just base(x) (the update is
        already inside base.weight)."""
        # BEGIN SOLUTION: the frozen layer plus the scaled low-rank path (skip it when merged)
        out = self.base(x)
        if self.merged:
            return out
        return out + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)
        # END SOLUTION

    def merge(self) -> None:
        """base.weight += delta_weight() in place, without autograd; merging twice changes
        nothing the second time."""
        # BEGIN SOLUTION: add the update to the base weight once; remember it is merged
        if self.merged:
            return
        with torch.no_grad():
            self.base.weight += self.delta_weight()
        self.merged = True
        # END SOLUTION

    def unmerge(self) -> None:
        """Undo merge: base.weight -= delta_weight(); does nothing when not merged."""
        # BEGIN SOLUTION: subtract the update again, only if it was merged
        if not self.merged:
            return
        with torch.no_grad():
            self.base.weight -= self.delta_weight()
        self.merged = False
        # END SOLUTION


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0,
               targets: tuple[str, ...] = ATTENTION, dropout: float = 0.0) -> list[str]:
    """Replace, in place, every nn.Linear whose dotted module name equals a target or ends
    with "." + target by LoRALinear(module, rank, alpha, dropout), and make every parameter
    of the model that is not a lora_A / lora_B stop requiring grad. Returns the wrapped names
    in model.named_modules() order. ValueError, with the model untouched, when nothing
    matches."""
    names: list[str] = []
    # BEGIN SOLUTION: the names of the nn.Linear modules that match a target
    names += [name for name, m in model.named_modules()
              if isinstance(m, nn.Linear)
              and any(name == t or name.endswith("." + t) for t in targets)]
    # END SOLUTION
    if not names:
        raise ValueError(f"no nn.Linear module name ends with any of {targets}")
    # BEGIN SOLUTION: freeze the whole model, then swap each match for a LoRALinear
    model.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        layer = LoRALinear(model.get_submodule(name), rank, alpha, dropout)
        model.get_submodule(parent_name).add_module(child, layer)  # replaces the nn.Linear
    # END SOLUTION
    return names


def merge_lora(model: nn.Module) -> int:
    """merge() every LoRALinear in the model; returns how many there are. (Walk
    model.named_modules(): the integrity check refuses any attribute named `modules`.)"""
    # BEGIN SOLUTION: call merge on each LoRALinear module
    layers = [m for _, m in model.named_modules() if isinstance(m, LoRALinear)]
    for m in layers:
        m.merge()
    return len(layers)
    # END SOLUTION


def unmerge_lora(model: nn.Module) -> int:
    """unmerge() every LoRALinear in the model; returns how many there are."""
    # BEGIN SOLUTION: call unmerge on each LoRALinear module
    layers = [m for _, m in model.named_modules() if isinstance(m, LoRALinear)]
    for m in layers:
        m.unmerge()
    return len(layers)
    # END SOLUTION


def count_trainable(model: nn.Module) -> int:
    """The number of scalars in parameters with requires_grad, a tied (shared) one once."""
    # BEGIN SOLUTION: sum numel over model.parameters() that require grad
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
    # END SOLUTION


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The entries of model.state_dict() whose name ends with "lora_A" or "lora_B" (detached
    copies): what you save per task; load it back with load_state_dict(..., strict=False)."""
    # BEGIN SOLUTION: filter the state dict by the parameter names' last part
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if k.rpartition(".")[2] in ("lora_A", "lora_B")}
    # END SOLUTION


def delta_norms(model: nn.Module) -> dict[str, float]:
    """For each LoRALinear, by its module name in model.named_modules() order: the Frobenius
    norm of delta_weight(), a float."""
    # BEGIN SOLUTION: the norm of each layer's scaled B @ A
    with torch.no_grad():
        return {name: float(torch.linalg.matrix_norm(m.delta_weight()))
                for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    # END SOLUTION

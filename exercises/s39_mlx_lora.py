"""s39 · LoRA in MLX: the layer mlx-lm trains, and the real mlx_lm.lora / generate / fuse path.

You build (in MLX: mlx.core as mx, mlx.nn as nn)
    LoRALinear(input_dims, output_dims, r, dropout, scale)   mlx-lm's layer, the same layout
        .from_base(linear, r, dropout, scale)   wrap (and freeze) an existing nn.Linear
        __call__(x)                             linear(x) + scale * (dropout(x) @ lora_a) @ lora_b
        .delta_weight()                         the update in the weight's layout: scale B^T A^T
        .fuse()                                 a plain nn.Linear with weight W + delta_weight()
    apply_lora(model, num_layers, rank, scale, dropout, keys)   freeze the model, wrap the
                                            nn.Linear layers of its last num_layers blocks
    count_trainable(model)                  scalars in model.trainable_parameters()
    adapter_weights(model)                  the flat {name: array} that adapters.safetensors holds
    fuse_model(model)                       fuse every LoRALinear in place (what mlx_lm.fuse does)
    completion_loss(model, batch, lengths)  the --mask-prompt loss: completion tokens only

How it differs from s36
    s36 wrote LoRA in torch on the course's GPT. This step writes the same idea in MLX, in
    exactly the layout of `mlx_lm.tuner.lora.LoRALinear`, so that adapters trained by the real
    tool (`mlx_lm.lora --train`) load into your layers by name and give the same outputs, and
    `mlx_lm.fuse` gives the weights your fuse() gives. On an Apple-silicon Mac the same commands
    fine-tune Mistral-7B; the graders run them on a tiny random Mistral built offline.

The math (mlx-lm's conventions; they are not s36's, read them carefully)
    nn.Linear stores weight W: (out, in) and computes y = x W^T (+ b).
    lora_a: (in, r), uniform in [-1/sqrt(in), 1/sqrt(in)];  lora_b: (r, out), zeros
    y = linear(x) + scale * (dropout(x) @ lora_a) @ lora_b       (cast back to x's dtype)
    scale is used as given (mlx-lm's default is 20.0): it is NOT alpha / r as in peft or s36.
    fuse: W' = W + scale * lora_b^T @ lora_a^T, shape (out, in), then y = x W'^T (+ b).
    lora_b = 0 at the start, so the wrapped model first computes exactly what the base did.
    Trainable scalars per wrapped layer: r * (in + out).

--mask-prompt (completion_loss)
    A batch row is [prompt tokens | completion tokens | padding]; lengths[:, 0] is the prompt's
    token count (the offset) and lengths[:, 1] the row's real length L. The model reads
    batch[:, :-1] and is scored on targets = batch[:, 1:]; target column i is token i + 1, and
    it counts when offset <= i + 1 < L: only the completion's tokens (and its end-of-sequence
    token) are learned, not the prompt, not the padding. The installed mlx-lm (0.32) tests
    i + 1 <= L, which also scores the first padding position of each row.

Shapes
    x (..., in) -> (..., out); lora_a (in, r); lora_b (r, out); delta_weight (out, in);
    batch (B, T) int; lengths (B, 2) int; completion_loss -> (scalar float32, token count).

You should be able to explain
    - why lora_b starts at zero and lora_a does not;
    - why fuse needs the transposes (lora_a @ lora_b is (in, out); W is (out, in));
    - why `scale` and peft's alpha / r are the same knob in different units (scale = alpha / r);
    - why the adapter file is tiny and why fusing costs nothing at inference;
    - what --mask-prompt changes in the loss, and which tokens a padded batch must not score;
    - which mlx_lm.lora settings fit a 7B model into 16, 32 and 64 GB, and why
      (--num-layers, --batch-size, --grad-checkpoint, a quantized base: QLoRA).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten


class LoRALinear(nn.Module):
    """mlx-lm's LoRA layer: self.linear (a frozen nn.Linear), self.dropout (nn.Dropout(p=dropout),
    active in training mode only, on the LoRA path's input), self.scale, self.lora_a (in, r)
    uniform in [-1/sqrt(in), 1/sqrt(in)], self.lora_b (r, out) zeros. r < 1 or dropout outside
    [0, 1) is a ValueError."""

    @staticmethod
    def from_base(linear: nn.Linear, r: int = 8, dropout: float = 0.0,
                  scale: float = 20.0) -> LoRALinear:
        """A LoRALinear around this nn.Linear (its weight is (out, in)), which is frozen."""
        output_dims, input_dims = linear.weight.shape
        layer = LoRALinear(input_dims, output_dims, r=r, dropout=dropout, scale=scale)
        layer.linear = linear
        linear.freeze()
        return layer

    def __init__(self, input_dims: int, output_dims: int, r: int = 8, dropout: float = 0.0,
                 scale: float = 20.0, bias: bool = False):
        super().__init__()
        if r < 1:
            raise ValueError(f"r (the rank) must be >= 1, got {r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.linear = nn.Linear(input_dims, output_dims, bias=bias)
        self.linear.freeze()
        self.dropout = nn.Dropout(p=dropout)
        self.scale = scale
        raise NotImplementedError("s39 mlx lora: lora_a (in, r) uniform in +-1/sqrt(in); lora_b (r, out) zeros")

    def __call__(self, x: mx.array) -> mx.array:
        """linear(x) + scale * (dropout(x) @ lora_a) @ lora_b, the LoRA term cast to x.dtype."""
        raise NotImplementedError("s39 mlx lora: the frozen layer plus the scaled low-rank path")

    def delta_weight(self) -> mx.array:
        """scale * lora_b^T @ lora_a^T, shape (out, in) like linear.weight, in its dtype."""
        raise NotImplementedError("s39 mlx lora: the update in the weight's (out, in) layout")

    def fuse(self) -> nn.Linear:
        """A new nn.Linear with weight linear.weight + delta_weight() and linear's bias (if it
        has one); this layer and its linear are left unchanged."""
        output_dims, input_dims = self.linear.weight.shape
        has_bias = "bias" in self.linear
        fused = nn.Linear(input_dims, output_dims, bias=has_bias)
        raise NotImplementedError("s39 mlx lora: the base weight plus the update, and the same bias")
        return fused


def apply_lora(model: nn.Module, num_layers: int = 16, rank: int = 8, scale: float = 20.0,
               dropout: float = 0.0, keys: set[str] | None = None) -> list[str]:
    """Freeze the whole model, then in each of the last num_layers blocks of model.layers (-1 or
    more than there are: all) replace every nn.Linear whose block-relative dotted name is in
    keys (None: every nn.Linear, mlx_lm.lora's default) by LoRALinear.from_base(it, rank,
    dropout, scale). Returns the full dotted names of the wrapped layers, sorted. ValueError
    (model untouched) for num_layers 0 or below -1, or when nothing matches."""
    blocks = list(model.layers)
    if num_layers == 0 or num_layers < -1:
        raise ValueError(f"num_layers must be -1 (all) or >= 1, got {num_layers}")
    chosen = blocks if num_layers == -1 else blocks[-num_layers:]
    found: list[list[tuple[str, nn.Linear]]] = []
    raise NotImplementedError("s39 mlx lora: per chosen block, the (name, nn.Linear) pairs to wrap")
    if not any(found):
        raise ValueError(f"no nn.Linear in the last {num_layers} blocks matches keys {keys}")
    raise NotImplementedError("s39 mlx lora: freeze everything, swap each match for a LoRALinear, list the names")


def count_trainable(model: nn.Module) -> int:
    """The number of scalars in model.trainable_parameters()."""
    raise NotImplementedError("s39 mlx lora: sum the sizes of the flattened trainable parameters")


def adapter_weights(model: nn.Module) -> dict[str, mx.array]:
    """{dotted name: array} of every lora_a and lora_b in the model (after apply_lora: exactly
    its trainable parameters), the names and arrays mlx_lm.lora saves in adapters.safetensors;
    load them back with model.load_weights(list(d.items()), strict=False)."""
    raise NotImplementedError("s39 mlx lora: flatten the trainable parameters into a name -> array dict")


def fuse_model(model: nn.Module) -> int:
    """Replace, in place, every LoRALinear in the model by its fuse(); returns how many."""
    raise NotImplementedError("s39 mlx lora: fuse each LoRALinear and put the plain layers back into the model")


def completion_loss(model: nn.Module, batch: mx.array,
                    lengths: mx.array) -> tuple[mx.array, mx.array]:
    """Mean cross-entropy of model(batch[:, :-1]) against batch[:, 1:] over the target columns
    i with offset <= i + 1 < length (lengths[:, 0] = offset, lengths[:, 1] = length), as a
    float32 scalar, and the number of those targets; mlx-lm's trainer accepts it as loss=."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits = model(inputs)
    raise NotImplementedError("s39 mlx lora: mask the completion's targets, average their cross-entropy")

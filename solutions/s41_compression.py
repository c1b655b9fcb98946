"""s41 · Compression: make a trained GPT smaller, and measure what it costs.

You build
    quantize_absmax(w, bits, axis)        symmetric: q = round(w / s), s = max|w| / qmax
    quantize_zeropoint(w, bits, axis)     affine: q = round(w / s) + z, q in [0, 2^b - 1]
    dequantize(q, scale, zero_point)      back to floats: (q - z) * s
    quantize_groupwise(w, bits, group)    int4-style: one absmax scale per `group` weights
    dequantize_groupwise(q, scales, group)
    quantize_model(model, bits, group)    a copy whose nn.Linear weights went through quantisation
    model_size_bytes(model, bits, group)  the bytes that model would take on disk
    magnitude_masks(tensors, sparsity, scope)   keep-masks that prune the smallest |w|
    prune_model(model, sparsity, scope)   a copy with its nn.Linear weights pruned
    distillation_loss(student, teacher, targets, T, alpha)
    fit_student(student, batches, steps, lr, teacher, T, alpha)   train from scratch or distil

Why
    A model's weights are 32-bit floats, but a trained network tolerates far less precision and
    far fewer weights than that. Quantisation stores each weight in 8 or 4 bits plus a few
    floating-point scales (4x / ~8x smaller); pruning zeroes the weights that matter least;
    distillation trains a smaller student to imitate a bigger teacher's whole distribution
    instead of only the one observed next token. Each trades quality for size: this step
    measures the trade on your own pretrained model (the lab's perplexity-vs-bytes plot).

The math (b bits, a tensor or one channel / group of it)
    symmetric (absmax):  qmax = 2^(b-1) - 1 (127 for int8, 7 for int4)
                         s = max|w| / qmax,   q = clamp(round(w / s), -qmax, qmax)
    affine (zero-point): lo = min(min w, 0), hi = max(max w, 0)   (0 must be exact: padding,
                         ReLU outputs and pruned weights are zeros)
                         s = (hi - lo) / (2^b - 1),  z = clamp(round(-lo / s), 0, 2^b - 1)
                         q = clamp(round(w / s) + z, 0, 2^b - 1)
    dequantise:          w_hat = (q - z) * s               (z = 0 for symmetric)
    error bound:         |w - w_hat| <= s / 2 for every element (rounding moves at most half a
                         step; the scale is chosen so nothing is clipped)
    A tensor or channel that is all zeros has max|w| = 0: its scale is 1 (any scale works,
    q = 0 and it dequantises to exactly 0) instead of a division by zero.
    Per-channel: one scale per output row (axis=0 of an nn.Linear weight) so a row of small
    weights is not quantised with the step of the largest row: the error is never larger than
    per-tensor, and much smaller when rows differ in magnitude. Group-wise (GPTQ / llama.cpp
    style int4): one scale per `group_size` consecutive weights of a row.
    Distillation (Hinton et al., 2015), p_T = softmax(teacher / T), q_T = softmax(student / T):
        L = alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE(student, targets)
    T > 1 softens both distributions so the teacher's "dark knowledge" (which wrong tokens are
    nearly right) carries signal; the soft term's gradient shrinks like 1 / T^2, which the T^2
    factor undoes so alpha keeps its meaning as T changes.

Pitfalls
    round() must happen before the clamp and after the division; the zero point is an integer;
    per-channel scales must broadcast against w (keep the reduced dimensions); a tensor of zeros
    must not produce NaN; prune exactly floor(sparsity * n) weights, even when many are tied at
    the threshold (a `|w| <= threshold` mask prunes every tie); the teacher gets no gradient.

You should be able to explain
    - why int8 per-channel is nearly free for a trained model but per-tensor can hurt;
    - why 4-bit needs small groups, and what the scales cost in bytes;
    - why the zero point makes 0 exactly representable, and when affine beats symmetric;
    - why soft targets teach more per example than hard labels, and what T does;
    - why fake quantisation (quantise then dequantise, computing in float) measures the quality
      of a quantised model exactly but not its speed.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F


def _check_bits(bits: int) -> None:
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 2 to 8, got {bits!r}")


def _check_group_size(group_size: int) -> None:
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")


def _absmax(w: torch.Tensor, axis: int | None) -> torch.Tensor:
    """max|w| over the whole tensor (shape ()), or per index of `axis` with the other dimensions
    kept as size 1 so the result broadcasts against w."""
    if axis is None:
        return w.abs().amax()
    axis = axis % w.dim()
    rows = w.abs().transpose(0, axis).reshape(w.shape[axis], -1).amax(dim=1)
    shape = [1] * w.dim()
    shape[axis] = w.shape[axis]
    return rows.reshape(shape)


def quantize_absmax(w: torch.Tensor, bits: int = 8, axis: int | None = None):
    """Symmetric quantisation. Returns (q, scale): q is a torch.int8 tensor shaped like w with
    values in [-qmax, qmax], qmax = 2**(bits-1) - 1; scale = max|w| / qmax over the whole tensor
    (axis=None: a 0-d tensor) or per index of `axis` (a tensor that broadcasts against w: size 1
    in every other dimension). A tensor / channel of zeros gets scale 1."""
    _check_bits(bits)
    # BEGIN SOLUTION: scale from the absolute maximum; round, then clamp to the symmetric range
    qmax = 2 ** (bits - 1) - 1
    amax = _absmax(w, axis)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    q = torch.clamp(torch.round(w / scale), -qmax, qmax).to(torch.int8)
    return q, scale
    # END SOLUTION


def quantize_zeropoint(w: torch.Tensor, bits: int = 8, axis: int | None = None):
    """Affine (asymmetric) quantisation. Returns (q, scale, zero_point): q is a torch.uint8
    tensor shaped like w with values in [0, 2**bits - 1]; scale (float) and zero_point (an
    integer-valued torch.int64 tensor in the same range) are 0-d for axis=None, else shaped to
    broadcast like quantize_absmax's. The range [lo, hi] always contains 0; a tensor / channel
    of zeros gets scale 1 and zero_point 0."""
    _check_bits(bits)
    # BEGIN SOLUTION: the range widened to contain 0, its scale, the integer zero point, then q
    levels = 2 ** bits - 1
    if axis is None:
        lo, hi = w.amin().clamp(max=0), w.amax().clamp(min=0)
    else:
        lo, hi = -_absmax(w.clamp(max=0), axis), _absmax(w.clamp(min=0), axis)
    scale = torch.where(hi > lo, (hi - lo) / levels, torch.ones_like(hi))
    zero_point = torch.clamp(torch.round(-lo / scale), 0, levels).to(torch.int64)
    q = torch.clamp(torch.round(w / scale) + zero_point, 0, levels).to(torch.uint8)
    return q, scale, zero_point
    # END SOLUTION


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point=None) -> torch.Tensor:
    """(q - zero_point) * scale as a float tensor of scale's dtype (zero_point None: 0)."""
    # BEGIN SOLUTION: subtract the zero point in floating point (uint8 arithmetic would wrap)
    values = q.to(scale.dtype)
    if zero_point is not None:
        values = values - torch.as_tensor(zero_point).to(scale.dtype)
    return values * scale
    # END SOLUTION


def quantize_groupwise(w: torch.Tensor, bits: int = 4, group_size: int = 32):
    """Symmetric quantisation with one scale per `group_size` consecutive entries of the last
    dimension. w (..., n); n need not be a multiple of group_size: the last group of each row is
    then shorter. Returns (q, scales): q torch.int8 shaped like w, scales (..., ceil(n /
    group_size)) with scale = max|group| / qmax (1 for a group of zeros)."""
    _check_bits(bits)
    _check_group_size(group_size)
    # BEGIN SOLUTION: pad the last dimension with zeros to whole groups (zeros change no absmax)
    qmax = 2 ** (bits - 1) - 1
    n = w.shape[-1]
    groups = math.ceil(n / group_size)
    padded = F.pad(w, (0, groups * group_size - n)).reshape(*w.shape[:-1], groups, group_size)
    amax = padded.abs().amax(dim=-1)
    scales = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    q = torch.clamp(torch.round(padded / scales[..., None]), -qmax, qmax)
    return q.reshape(*w.shape[:-1], groups * group_size)[..., :n].to(torch.int8), scales
    # END SOLUTION


def dequantize_groupwise(q: torch.Tensor, scales: torch.Tensor, group_size: int) -> torch.Tensor:
    """The float tensor q * (each entry's group scale), shaped like q."""
    # BEGIN SOLUTION: repeat each group's scale over its entries, cut to the row length
    per_entry = scales.repeat_interleave(group_size, dim=-1)[..., : q.shape[-1]]
    return q.to(scales.dtype) * per_entry
    # END SOLUTION


def _linear_weights(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weight of every nn.Linear in the model, each shared (tied) parameter once."""
    seen, weights = set(), []
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            weights.append(module.weight)
    return weights


def quantize_model(model: torch.nn.Module, bits: int = 8, group_size: int | None = None):
    """A deep copy of `model` whose every nn.Linear weight is replaced by its quantised-then-
    dequantised value ("fake quantisation": the copy computes in float with exactly the values
    a quantised model stores): symmetric per output row (quantize_absmax, axis=0) when
    group_size is None, else quantize_groupwise. Tied weights stay tied; biases, embeddings not
    shared with a Linear, and norms are unchanged; `model` itself is untouched."""
    _check_bits(bits)
    if group_size is not None:
        _check_group_size(group_size)
    # BEGIN SOLUTION: copy, then overwrite each Linear weight in place (keeps ties and the graph)
    compressed = copy.deepcopy(model)
    with torch.no_grad():
        for weight in _linear_weights(compressed):
            if group_size is None:
                q, scale = quantize_absmax(weight, bits, axis=0)
                weight.copy_(dequantize(q, scale))
            else:
                q, scales = quantize_groupwise(weight, bits, group_size)
                weight.copy_(dequantize_groupwise(q, scales, group_size))
    return compressed
    # END SOLUTION


def model_size_bytes(model: torch.nn.Module, bits: int = 32, group_size: int | None = None) -> int:
    """Bytes to store the model's parameters (each shared parameter once) when every nn.Linear
    weight takes `bits` bits per value, packed (ceil(numel * bits / 8) bytes), plus one float32
    scale (4 bytes) per output row (group_size None) or per group of each row (ceil(in /
    group_size) per row); every other parameter is float32. bits=32 is the plain float32 size
    (no scales); any other bits must be 2 to 8 (ValueError otherwise)."""
    if bits != 32:
        _check_bits(bits)
    if group_size is not None:
        _check_group_size(group_size)
    # BEGIN SOLUTION: count each distinct parameter once, Linear weights at their packed size
    quantized = {id(w) for w in _linear_weights(model)} if bits != 32 else set()
    total = 0
    for param in model.parameters():  # parameters() yields a tied parameter once
        if id(param) not in quantized:
            total += 4 * param.numel()
            continue
        rows, cols = param.shape[0], param[0].numel()
        n_scales = rows if group_size is None else rows * math.ceil(cols / group_size)
        total += math.ceil(param.numel() * bits / 8) + 4 * n_scales
    return total
    # END SOLUTION


def magnitude_masks(tensors, sparsity: float, scope: str = "global") -> list[torch.Tensor]:
    """Boolean keep-masks (True = kept), one per tensor and shaped like it, that prune the
    entries of smallest |value|: exactly floor(sparsity * n) of them (to within float rounding:
    0.29 of 100 prunes 29). scope="global": n counts all tensors together, so a tensor of small
    weights loses more; scope="layer": each tensor loses floor(sparsity * its size). Ties at the
    threshold: the earlier entry is pruned first (flattened order, tensors in the given order)."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    # BEGIN SOLUTION: a stable sort of |w| and the first k positions pruned
    def keep_mask(flat: torch.Tensor) -> torch.Tensor:
        k = math.floor(sparsity * flat.numel() + 1e-9)
        order = torch.sort(flat.abs(), stable=True).indices
        keep = torch.ones(flat.numel(), dtype=torch.bool)
        keep[order[:k]] = False
        return keep

    tensors = [t.detach() for t in tensors]
    if scope == "layer":
        return [keep_mask(t.flatten()).reshape(t.shape) for t in tensors]
    keep = keep_mask(torch.cat([t.flatten() for t in tensors]))
    pieces = keep.split([t.numel() for t in tensors])
    return [piece.reshape(t.shape) for piece, t in zip(pieces, tensors, strict=True)]
    # END SOLUTION


def prune_model(model: torch.nn.Module, sparsity: float, scope: str = "global"):
    """A deep copy of `model` whose nn.Linear weights (each tied weight once) are zeroed where
    magnitude_masks(those weights, sparsity, scope) says prune; `model` itself is untouched."""
    # BEGIN SOLUTION: masks over the copy's Linear weights, applied in place
    pruned = copy.deepcopy(model)
    weights = _linear_weights(pruned)
    with torch.no_grad():
        for weight, keep in zip(weights, magnitude_masks(weights, sparsity, scope), strict=True):
            weight.mul_(keep)
    return pruned
    # END SOLUTION


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor, temperature: float = 2.0, alpha: float = 0.5,
                      ignore_index: int = -100) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) *
    cross_entropy(student, targets): logits (..., V), targets (...); both terms are means over
    the positions whose target is not ignore_index (ValueError if there is none; T must be > 0).
    No gradient reaches the teacher's logits."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    # BEGIN SOLUTION: flatten positions, drop ignored ones, KL of the softened distributions
    vocab = student_logits.size(-1)
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.detach().reshape(-1, vocab)
    targets = targets.reshape(-1)
    counted = targets != ignore_index
    if not bool(counted.any()):
        raise ValueError("every target is ignore_index: there is nothing to learn from")
    student, teacher, targets = student[counted], teacher[counted], targets[counted]
    log_q = F.log_softmax(student / temperature, dim=-1)
    log_p = F.log_softmax(teacher / temperature, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
    hard = F.cross_entropy(student, targets)
    return alpha * temperature**2 * kl + (1 - alpha) * hard
    # END SOLUTION


def fit_student(student: torch.nn.Module, batches, steps: int, lr: float = 3e-3,
                teacher: torch.nn.Module | None = None, temperature: float = 2.0,
                alpha: float = 0.5) -> list[float]:
    """Train `student` (a model whose forward(idx) returns (logits, ...)) for `steps` updates of
    torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0), update i on batch
    batches[i % len(batches)] = (x, y). With a teacher the loss is distillation_loss(student(x),
    teacher(x), y, temperature, alpha), the teacher in eval mode and under no_grad; without one
    it is cross_entropy(student(x), y, ignore_index=-100). Returns the losses (floats), one per
    update."""
    # BEGIN SOLUTION: the plain loop; only the loss differs between the two ways of training
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    student.train()
    if teacher is not None:
        teacher.eval()
    losses = []
    for step in range(steps):
        x, y = batches[step % len(batches)]
        logits = student(x)[0]
        if teacher is None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                   ignore_index=-100)
        else:
            with torch.no_grad():
                teacher_logits = teacher(x)[0]
            loss = distillation_loss(logits, teacher_logits, y, temperature, alpha)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
    # END SOLUTION

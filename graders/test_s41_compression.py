"""Public graders for s41 compression: quantisation's formulas, ranges and error bound
(symmetric, affine, per-channel, group-wise), zeros that must not become NaN, pruning that hits
its sparsity exactly, the distillation loss against a float64 formula, and a distilled student
that learns a known distribution better than one trained on the same data from scratch.

Fixtures are small seeded tensors and bigram "language models" (next-token logits depend on the
last token only) whose true distribution is known exactly.
"""

import math

import pytest
import torch

from graders.helpers import assert_close, check_shape


def rows_of_different_sizes(rng, rows=6, cols=40) -> torch.Tensor:
    """A weight matrix whose rows span three orders of magnitude (where per-channel pays)."""
    exponents = rng.uniform(-2, 1, rows)
    magnitudes = torch.tensor([10.0**e for e in exponents], dtype=torch.float32)[:, None]
    return torch.tensor(rng.normal(size=(rows, cols)), dtype=torch.float32) * magnitudes


def within_half_a_step(w, w_hat, scale, what):
    err = (w - w_hat).abs()
    bound = (scale / 2).expand_as(w) * (1 + 1e-5) + 1e-7
    worst = int(torch.argmax(err - bound))
    assert bool((err <= bound).all()), (
        f"{what}: an element is {float(err.flatten()[worst]):.3g} from its dequantised value, "
        f"more than half a quantisation step ({float(bound.flatten()[worst]):.3g}): "
        "round to the nearest level and choose the scale so nothing is clipped")


class BigramLM(torch.nn.Module):
    """forward(idx) -> (logits[idx], None): a next-token table, trainable."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(logits.clone())

    def forward(self, idx, targets=None):
        return self.table[idx], None


def sample_bigram(probs: torch.Tensor, batch: int, length: int, gen) -> torch.Tensor:
    x = torch.randint(0, probs.size(0), (batch, 1), generator=gen)
    for _ in range(length):
        x = torch.cat([x, torch.multinomial(probs[x[:, -1]], 1, generator=gen)], dim=1)
    return x


@pytest.mark.points(2)
def test_absmax_per_tensor_levels_scale_and_error_bound(impl, rng):
    w = torch.tensor(rng.normal(0, 2, size=(5, 9)), dtype=torch.float32)
    for bits, qmax in ((8, 127), (4, 7), (3, 3)):
        q, scale = impl.quantize_absmax(w, bits)
        assert q.dtype == torch.int8, f"quantize_absmax must return q as torch.int8, got {q.dtype}"
        check_shape(q, w.shape, f"q of quantize_absmax(w, {bits})")
        assert_close(scale, w.abs().max() / qmax, f"scale of {bits}-bit absmax = max|w| / {qmax}",
                     rtol=1e-6)
        assert int(q.abs().max()) == qmax, (
            f"{bits}-bit absmax: the largest |w| must map to ±{qmax}, got ±{int(q.abs().max())}")
        assert_close(q.double(), torch.round(w.double() / scale.double()),
                     f"q of {bits}-bit absmax = round(w / scale)", rtol=0, atol=0)
        within_half_a_step(w, impl.dequantize(q, scale), scale, f"{bits}-bit absmax round trip")


@pytest.mark.points(2)
def test_per_channel_scales_broadcast_and_beat_per_tensor(impl, rng):
    w = rows_of_different_sizes(rng)
    q_t, s_t = impl.quantize_absmax(w, 8)
    for axis, shape in ((0, (6, 1)), (1, (1, 40))):
        q_c, s_c = impl.quantize_absmax(w, 8, axis=axis)
        check_shape(s_c, shape, f"the scales of quantize_absmax(w (6, 40), axis={axis})")
        reduce_over = 1 - axis
        assert_close(s_c, w.abs().amax(dim=reduce_over, keepdim=True) / 127,
                     f"per-channel scales (axis={axis}) = max|w| of each channel / 127", rtol=1e-6)
        within_half_a_step(w, impl.dequantize(q_c, s_c), s_c, f"per-channel axis={axis}")
    q_c, s_c = impl.quantize_absmax(w, 8, axis=0)
    err_t = (w - impl.dequantize(q_t, s_t)).abs()
    err_c = (w - impl.dequantize(q_c, s_c)).abs()
    assert float(err_c.pow(2).mean()) <= float(err_t.pow(2).mean()), (
        "per-channel (one scale per row) must not be worse than one scale for the whole tensor")
    small = int(torch.argmin(w.abs().amax(dim=1)))
    assert float(err_c[small].max()) < float(err_t[small].max()) / 5, (
        "the row of smallest weights should be quantised far more finely per channel than with "
        "the whole tensor's scale")


@pytest.mark.points(2)
def test_zero_point_range_exact_zero_and_error_bound(impl, rng):
    w = torch.tensor(rng.uniform(-0.5, 3.0, size=(4, 30)), dtype=torch.float32)
    w[0, 0] = 0.0
    for bits in (8, 4):
        levels = 2**bits - 1
        q, scale, zp = impl.quantize_zeropoint(w, bits)
        assert q.dtype == torch.uint8, f"quantize_zeropoint must return torch.uint8, got {q.dtype}"
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
        assert_close(scale, (hi - lo) / levels, f"{bits}-bit affine scale = (hi - lo) / {levels}",
                     rtol=1e-6)
        assert float(zp) == round(-lo / float(scale)), (
            f"{bits}-bit zero point = round(-lo / scale) = {round(-lo / float(scale))}, got {zp}")
        assert int(q.min()) == 0 and int(q.max()) == levels, (
            f"{bits}-bit affine: w's range must span the levels 0..{levels}, got "
            f"{int(q.min())}..{int(q.max())}")
        w_hat = impl.dequantize(q, scale, zp)
        assert float(w_hat[0, 0]) == 0.0, "0 must dequantise to exactly 0 (the zero point)"
        within_half_a_step(w, w_hat, scale, f"{bits}-bit affine round trip")
    positive = w.abs() + 1.0  # all positive: symmetric wastes the negative half of its levels
    q, s, zp = impl.quantize_zeropoint(positive, 8)
    qa, sa = impl.quantize_absmax(positive, 8)
    assert float(s) < float(sa), "affine's step on positive data must be finer than absmax's"
    assert_close(s, positive.max() / 255, "on positive data lo = 0: scale = max w / 255", rtol=1e-6)
    assert int(zp) == 0, f"on positive data the range starts at 0, so the zero point is 0, got {zp}"


@pytest.mark.points(1)
def test_zero_tensor_and_zero_channel_give_no_nan(impl, rng):
    w = torch.tensor(rng.normal(size=(3, 8)), dtype=torch.float32)
    w[1] = 0.0  # one channel of zeros: its max|w| is 0
    zeros = torch.zeros(3, 8)
    cases = (("absmax per-tensor of zeros", impl.quantize_absmax(zeros), slice(None)),
             ("affine per-tensor of zeros", impl.quantize_zeropoint(zeros), slice(None)),
             ("absmax per-channel", impl.quantize_absmax(w, 8, axis=0), 1),
             ("affine per-channel", impl.quantize_zeropoint(w, 8, axis=0), 1))
    for what, (q, s, *z), zero_part in cases:
        w_hat = impl.dequantize(q, s, *z)
        assert bool(torch.isfinite(w_hat).all()), f"{what} gave NaN or inf: guard max|w| = 0"
        assert float(w_hat[zero_part].abs().max()) == 0.0, f"{what}: zeros must dequantise to 0"
        scale_of_zeros = s if s.dim() == 0 else s[1]
        assert float(scale_of_zeros) == 1.0, (
            f"{what}: where max|w| is 0 the scale must be 1 (as documented), got "
            f"{float(scale_of_zeros)}: a zero scale divides 0 by 0")
    within_half_a_step(w, impl.dequantize(*impl.quantize_absmax(w, 8, axis=0)),
                       impl.quantize_absmax(w, 8, axis=0)[1], "the other channels")


@pytest.mark.points(2)
def test_groupwise_shapes_short_last_group_and_bound(impl, rng):
    w = rows_of_different_sizes(rng, rows=4, cols=22)
    for group in (8, 5, 22, 1):
        q, scales = impl.quantize_groupwise(w, 4, group)
        n_groups = math.ceil(22 / group)
        check_shape(scales, (4, n_groups), f"scales of quantize_groupwise(w (4, 22), 4, {group})")
        for g in range(n_groups):
            chunk = w[:, g * group:(g + 1) * group]
            assert_close(scales[:, g], chunk.abs().amax(dim=1) / 7,
                         f"group {g} (size {chunk.shape[1]}) of group_size {group}: max|group| / 7",
                         rtol=1e-6)
        w_hat = impl.dequantize_groupwise(q, scales, group)
        per_entry = scales.repeat_interleave(group, dim=1)[:, :22]
        within_half_a_step(w, w_hat, per_entry, f"4-bit groups of {group}")
    q_row, s_row = impl.quantize_absmax(w, 4, axis=0)
    q_g, s_g = impl.quantize_groupwise(w, 4, 22)
    assert torch.equal(q_g, q_row), "one group per row must equal per-row absmax"


@pytest.mark.points(2)
def test_pruning_hits_the_sparsity_exactly_and_prunes_the_smallest(impl, rng):
    a = torch.tensor(rng.normal(size=(10, 10)))
    b = torch.tensor(rng.normal(0, 0.1, size=(7, 3)))  # small weights: global pruning takes more
    for sparsity in (0.0, 0.29, 0.5, 0.999, 1.0):
        for scope in ("global", "layer"):
            masks = impl.magnitude_masks([a, b], sparsity, scope)
            for m, t in zip(masks, (a, b), strict=True):
                check_shape(m, t.shape, f"mask ({scope}, {sparsity})")
                assert m.dtype == torch.bool, f"masks must be bool (True = kept), got {m.dtype}"
            if scope == "layer":
                for m, t in zip(masks, (a, b), strict=True):
                    want = math.floor(sparsity * t.numel() + 1e-9)
                    assert int((~m).sum()) == want, (
                        f"layer scope, sparsity {sparsity}: a tensor of {t.numel()} must lose "
                        f"exactly {want}, lost {int((~m).sum())}")
            else:
                pruned = sum(int((~m).sum()) for m in masks)
                want = math.floor(sparsity * 121 + 1e-9)
                assert pruned == want, (
                    f"global scope, sparsity {sparsity}: 121 weights must lose exactly {want}, "
                    f"lost {pruned}")
            values = torch.cat([a.flatten(), b.flatten()]).abs()
            keep = torch.cat([m.flatten() for m in masks])
            if 0 < int(keep.sum()) < keep.numel() and scope == "global":
                assert float(values[~keep].max()) <= float(values[keep].min()), (
                    "every pruned weight must be no larger in |w| than every kept one")
    g = impl.magnitude_masks([a, b], 0.5, "global")
    assert int((~g[1]).sum()) > int((~impl.magnitude_masks([a, b], 0.5, "layer")[1]).sum()), (
        "global pruning should take more from the tensor of small weights than layer pruning")


def reference_distillation(s, t, y, temperature, alpha):
    s, t = s.double().reshape(-1, s.size(-1)), t.double().reshape(-1, t.size(-1))
    y = y.reshape(-1)
    keep = y != -100
    s, t, y = s[keep], t[keep], y[keep]
    p = torch.softmax(t / temperature, -1)
    kl = (p * (p.log() - torch.log_softmax(s / temperature, -1))).sum(-1).mean()
    ce = -torch.log_softmax(s, -1)[torch.arange(len(y)), y].mean()
    return alpha * temperature**2 * kl + (1 - alpha) * ce


@pytest.mark.points(2)
def test_distillation_loss_equals_the_formula(impl, rng):
    s = torch.tensor(rng.normal(size=(2, 5, 11)))
    t = torch.tensor(rng.normal(0, 2, size=(2, 5, 11)))
    y = torch.tensor(rng.integers(0, 11, size=(2, 5)))
    y[0, 1] = y[1, 4] = -100
    for temperature, alpha in ((2.0, 0.5), (1.0, 1.0), (4.0, 0.0), (0.5, 0.3)):
        got = impl.distillation_loss(s, t, y, temperature, alpha)
        assert_close(got, reference_distillation(s, t, y, temperature, alpha),
                     f"distillation_loss(T={temperature}, alpha={alpha})", rtol=1e-9)
    same = impl.distillation_loss(t, t, y, 3.0, 1.0)
    assert abs(float(same)) < 1e-9, "KL of a distribution with itself is 0 (alpha = 1)"
    student = s.clone().requires_grad_(True)
    teacher = t.clone().requires_grad_(True)
    impl.distillation_loss(student, teacher, y).backward()
    assert teacher.grad is None, "no gradient may reach the teacher's logits: detach them"
    assert student.grad is not None and float(student.grad[0, 1].abs().max()) == 0.0, (
        "an ignored position (target -100) must not contribute to the loss")


@pytest.mark.points(2)
def test_a_distilled_student_learns_the_distribution_better(impl):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    vocab = 12
    true_logits = torch.randn(vocab, vocab, generator=gen) * 1.5
    probs = torch.softmax(true_logits, -1)
    data = sample_bigram(probs, 4, 24, gen)
    batches = [(data[:, :-1], data[:, 1:])]
    teacher = BigramLM(true_logits)
    start = torch.zeros(vocab, vocab)

    def held_out_kl(model):
        log_q = torch.log_softmax(model.table.detach(), -1)
        return float((probs * (probs.log() - log_q)).sum(-1).mean())

    scratch, distilled = BigramLM(start), BigramLM(start)
    losses = impl.fit_student(scratch, batches, steps=60, lr=0.2)
    assert len(losses) == 60 and all(isinstance(v, float) for v in losses), (
        "fit_student must return one float loss per update")
    assert losses[-1] < losses[0], "training from scratch must lower its loss"
    impl.fit_student(distilled, batches, steps=60, lr=0.2, teacher=teacher, temperature=1.0,
                     alpha=0.9)
    kl_scratch, kl_distilled = held_out_kl(scratch), held_out_kl(distilled)
    assert kl_distilled < 0.5 * kl_scratch, (
        f"on the same 96 tokens the distilled student should be far closer to the true "
        f"distribution (KL {kl_distilled:.3f}) than the one trained on hard labels "
        f"(KL {kl_scratch:.3f}): the teacher's whole distribution is the extra signal")

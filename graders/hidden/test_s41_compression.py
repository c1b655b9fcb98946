"""Hidden graders for s41: torch.ao's observers and quantize_per_tensor / _per_channel as
oracles, whole models (tied weights, biases, norms, the original left alone), the size formula,
ties in pruning, 3-D tensors and non-default axes, the training loop against a reference, and
inputs that must be refused."""

import copy
import math
import warnings

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s41_compression import BigramLM, rows_of_different_sizes, within_half_a_step


def torch_ao():
    try:
        from torch.ao import quantization
    except ImportError:
        pytest.skip("this torch has no torch.ao.quantization (the oracle)")
    return quantization


class TinyLM(torch.nn.Module):
    """Embedding tied to the output Linear, a Linear with bias, a LayerNorm: the parts a GPT has."""

    def __init__(self, vocab=10, width=12, hidden=7):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, width)
        self.up = torch.nn.Linear(width, hidden)
        self.down = torch.nn.Linear(hidden, width, bias=False)
        self.norm = torch.nn.LayerNorm(width)
        self.head = torch.nn.Linear(width, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx, targets=None):
        h = self.emb(idx)
        h = h + self.down(torch.relu(self.up(h)))
        return self.head(self.norm(h)), None


def q_of(impl, w, bits, axis):
    return impl.dequantize(*impl.quantize_absmax(w, bits, axis=axis))


@pytest.mark.points(2)
def test_affine_parameters_and_levels_equal_torch_ao(impl, rng):
    ao = torch_ao()
    w = rows_of_different_sizes(rng, rows=8, cols=33) + 0.3
    for bits in (8, 4):
        observer = ao.MinMaxObserver(dtype=torch.quint8, quant_min=0, quant_max=2**bits - 1)
        observer(w)
        scale, zp = observer.calculate_qparams()
        q, s, z = impl.quantize_zeropoint(w, bits)
        assert_close(s, scale[0], f"{bits}-bit per-tensor scale vs torch.ao's MinMaxObserver",
                     rtol=1e-6)
        assert int(z) == int(zp), f"{bits}-bit zero point {int(z)}, torch.ao's is {int(zp)}"
    observer = ao.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8,
                                           qscheme=torch.per_channel_affine)
    observer(w)
    scale, zp = observer.calculate_qparams()
    q, s, z = impl.quantize_zeropoint(w, 8, axis=0)
    assert_close(s.flatten(), scale, "per-channel scales vs PerChannelMinMaxObserver", rtol=1e-6)
    assert torch.equal(z.flatten().long(), zp.long()), "zero points differ from torch.ao"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks its quantised tensors as deprecated
        want = torch.quantize_per_channel(w, scale.double(), zp, 0, torch.quint8).int_repr()
    diff = (q.long() - want.long()).abs()
    assert int(diff.max()) <= 1 and int((diff > 0).sum()) <= 2, (
        f"your levels differ from torch.quantize_per_channel's in {int((diff > 0).sum())} places")


@pytest.mark.points(1)
def test_three_d_tensors_and_negative_axes(impl, rng):
    w = torch.tensor(rng.normal(size=(3, 4, 5)), dtype=torch.float64)
    w[:, 2] *= 50
    for axis, keep in ((1, (1, 4, 1)), (-1, (1, 1, 5)), (0, (3, 1, 1))):
        dims = [d for d in range(3) if d != axis % 3]
        q, s = impl.quantize_absmax(w, 6, axis=axis)
        assert tuple(s.shape) == keep, f"absmax axis={axis} on (3, 4, 5): scales {tuple(s.shape)}"
        assert_close(s, w.abs().amax(dim=dims, keepdim=True) / 31, f"6-bit scales, axis={axis}",
                     rtol=1e-12)
        within_half_a_step(w, impl.dequantize(q, s), s, f"absmax axis={axis} on a 3-D tensor")
        q, s, z = impl.quantize_zeropoint(w, 5, axis=axis)
        assert tuple(s.shape) == keep and tuple(z.shape) == keep, (
            f"affine axis={axis}: scale / zero point must broadcast, got {tuple(s.shape)}")
        within_half_a_step(w, impl.dequantize(q, s, z), s, f"5-bit affine axis={axis}")
        assert impl.dequantize(q, s, z).dtype == torch.float64, "dequantize keeps scale's dtype"
    q, scales = impl.quantize_groupwise(w, 3, 2)
    assert tuple(scales.shape) == (3, 4, 3), "group-wise on (3, 4, 5) with groups of 2: (3, 4, 3)"
    assert_close(scales[..., 2], w[..., 4].abs() / 3, "the last group holds one entry", rtol=1e-12)
    q, s, z = impl.quantize_zeropoint(torch.tensor([0.5, 1.0]), 8)
    assert_close(impl.dequantize(q, s, int(z)), impl.dequantize(q, s, z),
                 "dequantize takes a plain int zero point too")


@pytest.mark.points(2)
def test_quantize_model_changes_only_linear_weights_and_keeps_ties(impl):
    torch.manual_seed(0)
    model = TinyLM()
    before = copy.deepcopy(model.state_dict())
    for bits, group in ((8, None), (4, 5)):
        small = impl.quantize_model(model, bits, group)
        assert small is not model, "quantize_model must return a copy"
        for name, value in model.state_dict().items():
            assert torch.equal(value, before[name]), f"quantize_model changed the original's {name}"
        assert small.head.weight is small.emb.weight, "tied weights must stay one tensor"
        for name in ("up", "down", "head"):
            w = getattr(model, name).weight.detach()
            if group is None:
                want = q_of(impl, w, bits, 0)
            else:
                want = impl.dequantize_groupwise(*impl.quantize_groupwise(w, bits, group), group)
            assert_close(getattr(small, name).weight, want,
                         f"{bits}-bit{' groups of ' + str(group) if group else ''}: {name}.weight",
                         rtol=0, atol=0)
        assert torch.equal(small.up.bias, model.up.bias), "biases stay float32"
        assert torch.equal(small.norm.weight, model.norm.weight), "norms stay float32"
        logits = small(torch.tensor([[1, 2, 3]]))[0]
        assert bool(torch.isfinite(logits).all()), "the quantised copy must still run"


@pytest.mark.points(1)
def test_model_size_formula(impl):
    model = TinyLM()  # emb/head 10x12 (tied, once), up 7x12 + 7, down 12x7, norm 12 + 12
    floats = 120 + 84 + 7 + 84 + 24
    assert impl.model_size_bytes(model) == 4 * floats, "float32: 4 bytes per distinct parameter"
    others = 4 * (7 + 24)
    want8 = others + (120 + 4 * 10) + (84 + 4 * 7) + (84 + 4 * 12)
    assert impl.model_size_bytes(model, 8) == want8, "8 bits per Linear weight + a scale per row"
    groups = 10 * math.ceil(12 / 5) + 7 * math.ceil(12 / 5) + 12 * math.ceil(7 / 5)
    want4 = others + math.ceil(120 / 2) + 42 + 42 + 4 * groups
    assert impl.model_size_bytes(model, 4, 5) == want4, (
        f"4 bits, groups of 5: want {want4} bytes, got {impl.model_size_bytes(model, 4, 5)}")
    odd = torch.nn.Linear(3, 3, bias=False)
    assert impl.model_size_bytes(odd, 3) == math.ceil(9 * 3 / 8) + 12, (
        "packed bits round up to whole bytes: 9 weights at 3 bits take 4 bytes")


@pytest.mark.points(2)
def test_prune_model_and_ties_at_the_threshold(impl):
    torch.manual_seed(0)
    model = TinyLM()
    for scope in ("global", "layer"):
        pruned = impl.prune_model(model, 0.4, scope)
        weights = [pruned.up.weight, pruned.down.weight, pruned.head.weight]
        zeros = sum(int((w == 0).sum()) for w in weights)
        want = (math.floor(0.4 * 288 + 1e-9) if scope == "global"
                else sum(math.floor(0.4 * n + 1e-9) for n in (84, 84, 120)))
        assert zeros == want, f"prune_model(0.4, {scope}) zeroed {zeros} weights, want {want}"
        assert pruned.head.weight is pruned.emb.weight, "tied weights must stay one tensor"
        assert torch.equal(pruned.up.bias, model.up.bias), "biases are not pruned"
        assert int((model.up.weight == 0).sum()) == 0, "prune_model changed the original"
    ties = torch.cat([torch.full((150,), 0.5), torch.full((50,), 2.0)])
    first = torch.full((40,), 0.5)
    masks = impl.magnitude_masks([first, ties], 0.5, "global")  # 120 of 240, 190 tied at 0.5
    assert int((~masks[0]).sum()) == 40 and int((~masks[1]).sum()) == 80, (
        "with ties at the threshold, exactly floor(sparsity * n) are pruned, earliest first "
        "(the first tensor before the second)")
    assert bool((~masks[1][:80]).all()) and bool(masks[1][80:].all()), (
        "ties are pruned in flattened order: the first 80 tied entries of the second tensor")
    mask = impl.magnitude_masks([-ties.flip(0)], 0.5, "layer")[0]
    assert int((~mask).sum()) == 100 and bool(mask[:50].all()), "pruning ranks |w|, not w"


def reference_fit(student, batches, steps, lr, teacher, temperature, alpha):
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    student.train()
    losses = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        logits = student(x)[0].double()
        if teacher is None:
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        else:
            teacher.eval()
            with torch.no_grad():
                t = teacher(x)[0].double()
            p = torch.softmax(t / temperature, -1)
            kl = (p * (p.log() - torch.log_softmax(logits / temperature, -1))).sum(-1).mean()
            ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            loss = alpha * temperature**2 * kl + (1 - alpha) * ce
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


class DropoutTeacher(BigramLM):
    """In train mode its dropout would make the targets random: the teacher must be in eval."""

    def forward(self, idx, targets=None):
        return torch.nn.functional.dropout(self.table[idx], 0.5, self.training), None


@pytest.mark.points(2)
def test_fit_student_equals_the_reference_loop(impl):
    gen = torch.Generator().manual_seed(3)
    batches = [tuple(torch.randint(0, 6, (2, 5), generator=gen) for _ in range(2))
               for _ in range(3)]
    start = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    for teacher, kwargs in ((None, {}),
                            (DropoutTeacher(torch.randn(6, 6, generator=gen, dtype=torch.float64)),
                             {"temperature": 3.0, "alpha": 0.7})):
        if teacher is not None:
            teacher.train()
        ours, theirs = BigramLM(start), BigramLM(start)
        got = impl.fit_student(ours, batches, steps=7, lr=0.05, teacher=teacher, **kwargs)
        want = reference_fit(theirs, batches, 7, 0.05, teacher, kwargs.get("temperature", 2.0),
                             kwargs.get("alpha", 0.5))
        what = "distilling" if teacher else "from scratch"
        assert_close(torch.tensor(got), torch.tensor(want),
                     f"fit_student's losses {what} (7 updates over 3 batches, lr 0.05)", rtol=1e-9)
        assert_close(ours.table, theirs.table, f"the student's weights after fit_student {what}",
                     rtol=1e-9)
        if teacher is not None:
            assert teacher.table.grad is None, "the teacher must not accumulate gradients"


@pytest.mark.points(1)
def test_bad_arguments_are_refused(impl):
    w = torch.ones(2, 3)
    calls = {
        "quantize_absmax(w, bits=1)": lambda: impl.quantize_absmax(w, 1),
        "quantize_absmax(w, bits=9)": lambda: impl.quantize_absmax(w, 9),
        "quantize_zeropoint(w, bits=8.0)": lambda: impl.quantize_zeropoint(w, 8.0),
        "quantize_groupwise(w, 4, group_size=0)": lambda: impl.quantize_groupwise(w, 4, 0),
        "model_size_bytes(model, bits=16)": lambda: impl.model_size_bytes(TinyLM(), 16),
        "model_size_bytes(model, 4, group_size=0)": lambda: impl.model_size_bytes(TinyLM(), 4, 0),
        "quantize_model(model, 4, group_size=-2)": lambda: impl.quantize_model(TinyLM(), 4, -2),
        "magnitude_masks([w], -0.1)": lambda: impl.magnitude_masks([w], -0.1),
        "magnitude_masks([w], 1.5)": lambda: impl.magnitude_masks([w], 1.5),
        "magnitude_masks([w], 0.5, 'row')": lambda: impl.magnitude_masks([w], 0.5, "row"),
        "distillation_loss(T=0)": lambda: impl.distillation_loss(w, w, torch.zeros(2).long(),
                                                                 temperature=0.0),
        "distillation_loss(all targets ignored)": lambda: impl.distillation_loss(
            w, w, torch.full((2,), -100)),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError):
            call()
            pytest.fail(f"{what} must raise ValueError")


@pytest.mark.points(1)
def test_distillation_on_flat_positions_with_another_ignore_index(impl, rng):
    s = torch.tensor(rng.normal(size=(6, 4)))
    t = torch.tensor(rng.normal(size=(6, 4)))
    y = torch.tensor([0, 3, 5, 1, 5, 2])
    got = impl.distillation_loss(s, t, y, temperature=1.5, alpha=0.25, ignore_index=5)
    keep = y != 5
    p = torch.softmax(t[keep] / 1.5, -1)
    kl = (p * (p.log() - torch.log_softmax(s[keep] / 1.5, -1))).sum(-1).mean()
    ce = torch.nn.functional.cross_entropy(s[keep], y[keep])
    assert_close(got, 0.25 * 2.25 * kl + 0.75 * ce, "distillation_loss with ignore_index=5 on "
                 "(N, V) logits", rtol=1e-9)


@pytest.mark.points(2)
def test_edge_cases_one_big_group_zero_groups_negative_ranges_one_row(impl, rng):
    w = torch.tensor(rng.normal(size=(3, 5)))
    q, scales = impl.quantize_groupwise(w, 4, 16)  # one group longer than the row
    assert tuple(scales.shape) == (3, 1), (
        f"groups of 16 on rows of 5: scales (3, 1), got {tuple(scales.shape)}")
    assert_close(scales[:, 0], w.abs().amax(dim=1) / 7, "a group longer than the row", rtol=1e-12)
    w = torch.tensor(rng.normal(size=(2, 12)))
    w[1, 4:8] = 0.0
    q, scales = impl.quantize_groupwise(w, 4, 4)
    assert float(scales[1, 1]) == 1.0 and int(q[1, 4:8].abs().sum()) == 0, (
        "a group of zeros gets scale 1 and q = 0 (no 0 / 0)")
    w3 = torch.tensor(rng.normal(size=(3, 4, 5)))
    q, scales = impl.quantize_groupwise(w3, 4, 2)
    back = impl.dequantize_groupwise(q, scales, 2)
    assert tuple(back.shape) == (3, 4, 5), "dequantize_groupwise on (3, 4, 5) keeps the shape"
    want = q.double() * scales.repeat_interleave(2, dim=-1)[..., :5]
    assert_close(back, want, "dequantize_groupwise on a 3-D tensor", rtol=1e-12)
    negative = -torch.tensor(rng.uniform(0.5, 2.0, size=(3, 6)))
    q, s, z = impl.quantize_zeropoint(negative, 8)
    assert int(z) == 255 and int(q.max()) <= 255, "all-negative: the range is [min w, 0], z = 255"
    assert_close(s, -negative.min() / 255, "all-negative tensor: scale = -min / 255", rtol=1e-12)
    mixed = negative.clone()
    mixed[0] = -mixed[0]
    q, s, z = impl.quantize_zeropoint(mixed, 8, axis=0)
    assert_close(s.flatten()[1:], -mixed[1:].amin(dim=1) / 255,
                 "per-row scales of all-negative rows: -min / 255 (the range ends at 0)",
                 rtol=1e-12)
    assert z.flatten().tolist() == [0, 255, 255], "zero points: 0 for a positive row, 255 else"
    small, big = torch.arange(1.0, 9.0) / 100, torch.arange(1.0, 9.0)
    masks = impl.magnitude_masks([small, big], 0.5, "".join(["lay", "er"]))  # built at runtime
    assert [int((~m).sum()) for m in masks] == [4, 4], (
        "scope='layer' (compared with ==, not `is`) prunes half of each tensor")
    one_row = torch.nn.Linear(5, 1, bias=False)
    assert impl.model_size_bytes(one_row, 8) == 5 + 4, "an nn.Linear(5, 1): 5 bytes + one scale"
    assert impl.model_size_bytes(one_row, 4, 2) == 3 + 4 * 3, "int4 groups of 2 on a 1x5 row"


@pytest.mark.points(1)
def test_fit_student_from_scratch_skips_ignored_targets(impl):
    gen = torch.Generator().manual_seed(5)
    batches = []
    for _ in range(2):
        x = torch.randint(0, 6, (2, 5), generator=gen)
        y = torch.randint(0, 6, (2, 5), generator=gen)
        y[:, :2] = -100  # a prompt's positions carry no loss
        batches.append((x, y))
    start = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    ours, theirs = BigramLM(start), BigramLM(start)
    got = impl.fit_student(ours, batches, steps=3, lr=0.1)
    want = reference_fit(theirs, batches, 3, 0.1, None, 2.0, 0.5)
    assert_close(torch.tensor(got), torch.tensor(want),
                 "fit_student without a teacher on targets with -100 (ignored) positions",
                 rtol=1e-9)

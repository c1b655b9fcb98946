"""Public graders for s36 LoRA: the wrapped layer starts as the base (B = 0), computes
base(x) + (alpha / rank) x A^T B^T, trains only A and B with the right gradients, merges and
unmerges exactly; apply_lora wraps the attention projections of a tiny GPT-shaped model,
freezes the rest and leaves r (in + out) trainable scalars per wrapped layer.

The model is a seeded random two-block transformer with s26's module names (attn.c_attn,
attn.c_proj, mlp.c_fc, mlp.c_proj, a tied lm_head), built here: nothing is pretrained.
"""

import pytest
import torch
from torch import nn

from graders.helpers import assert_close, check_shape

E, V, T = 16, 11, 6  # width, vocabulary, sequence length of the tiny model


class Attn(nn.Module):
    def __init__(self, e: int, heads: int = 2):
        super().__init__()
        self.c_attn, self.c_proj, self.heads = nn.Linear(e, 3 * e), nn.Linear(e, e), heads

    def forward(self, x):
        b, t, e = x.shape
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2)
                   for z in self.c_attn(x).split(e, dim=2))
        att = (q @ k.transpose(-2, -1)) / (q.size(-1) ** 0.5)
        att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        y = att.softmax(-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, e))


class MLP(nn.Module):
    def __init__(self, e: int):
        super().__init__()
        self.c_fc, self.c_proj = nn.Linear(e, 4 * e), nn.Linear(4 * e, e)

    def forward(self, x):
        return self.c_proj(torch.tanh(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, e: int):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(e), Attn(e)
        self.ln_2, self.mlp = nn.LayerNorm(e), MLP(e)

    def forward(self, x):
        # written in another order than s26's answer, which this file must not reveal
        x = self.attn(self.ln_1(x)) + x
        return self.mlp(self.ln_2(x)) + x


class TinyGPT(nn.Module):
    """s26's names: transformer.{wte, wpe, h, ln_f}, lm_head tied to wte."""

    def __init__(self, e: int = E, n_layer: int = 2):
        super().__init__()
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(V, e), "wpe": nn.Embedding(T, e),
            "h": nn.ModuleList(Block(e) for _ in range(n_layer)), "ln_f": nn.LayerNorm(e)})
        self.lm_head = nn.Linear(e, V, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.size(1)))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def tiny_gpt(seed: int = 0, n_layer: int = 2) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(n_layer=n_layer).double()


def tokens(rng, b: int = 3) -> torch.Tensor:
    return torch.tensor(rng.integers(0, V, size=(b, T)))


def linear(rng, n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(rng.normal(size=(n_out, n_in))))
        if bias:
            lin.bias.copy_(torch.tensor(rng.normal(size=n_out)))
    return lin


def randomise_lora(layer, rng) -> None:
    """Give A and B random values (B is zero at the start, which would hide most mistakes)."""
    with torch.no_grad():
        layer.lora_A.copy_(torch.tensor(rng.normal(size=tuple(layer.lora_A.shape))))
        layer.lora_B.copy_(torch.tensor(rng.normal(size=tuple(layer.lora_B.shape))))


@pytest.mark.points(2)
def test_new_layer_has_zero_B_random_A_and_equals_the_base(impl, rng):
    for n_in, n_out, rank, alpha, bias in [(7, 5, 2, 4.0, True), (6, 9, 3, 1.5, False),
                                           (4, 4, 1, 16.0, True)]:
        base = linear(rng, n_in, n_out, bias)
        x = torch.tensor(rng.normal(size=(2, 3, n_in)))
        want = base(x).detach()
        layer = impl.LoRALinear(base, rank=rank, alpha=alpha)
        check_shape(layer.lora_A, (rank, n_in), "lora_A is (rank, in_features)")
        check_shape(layer.lora_B, (n_out, rank), "lora_B is (out_features, rank)")
        assert isinstance(layer.lora_A, nn.Parameter) and isinstance(layer.lora_B, nn.Parameter), (
            "lora_A and lora_B must be nn.Parameter so that the optimizer sees them")
        assert layer.lora_A.dtype == layer.lora_B.dtype == torch.float64, (
            "A and B take the base weight's dtype (float64 here)")
        assert torch.count_nonzero(layer.lora_B) == 0, "lora_B starts at zero (Hu et al.)"
        assert torch.count_nonzero(layer.lora_A) == layer.lora_A.numel(), (
            "lora_A starts random (Kaiming-uniform): with A = 0 too no gradient could ever flow")
        assert layer.scaling == pytest.approx(alpha / rank), (
            f"scaling is alpha / rank = {alpha / rank}, got {layer.scaling}")
        assert layer.base is base, "keep the nn.Linear you were given as self.base"
        assert_close(layer(x), want, "with B = 0 the wrapped layer must equal the base layer",
                     atol=1e-12)  # B = 0 adds exact zeros


@pytest.mark.points(2)
def test_forward_is_base_plus_scaled_low_rank_path(impl, rng):
    for rank, alpha, shape in [(3, 5.0, (4, 8)), (2, 2.0, (2, 3, 8)), (5, 0.5, (8,))]:
        base = linear(rng, 8, 6)
        layer = impl.LoRALinear(base, rank=rank, alpha=alpha)
        randomise_lora(layer, rng)
        x = torch.tensor(rng.normal(size=shape))
        A, B = layer.lora_A.detach(), layer.lora_B.detach()
        want = base(x) + (alpha / rank) * (x @ A.T @ B.T)
        out = layer(x)
        check_shape(out, shape[:-1] + (6,), f"LoRALinear output for input {shape}")
        assert_close(out, want, f"rank {rank}, alpha {alpha}: base(x) + (alpha / rank) x A^T B^T "
                     "(is the scaling alpha / rank? A then B?)", rtol=1e-10)  # float64 matmuls
        assert_close(layer.delta_weight(), (alpha / rank) * B @ A,
                     "delta_weight() is (alpha / rank) B @ A, shape (out, in)", rtol=1e-12)


@pytest.mark.points(2)
def test_only_A_and_B_train_and_their_gradients_are_right(impl, rng):
    base = linear(rng, 7, 5)
    layer = impl.LoRALinear(base, rank=2, alpha=3.0)
    randomise_lora(layer, rng)
    trainable = sorted(n for n, p in layer.named_parameters() if p.requires_grad)
    assert trainable == ["lora_A", "lora_B"], (
        f"only lora_A and lora_B may require grad; trainable: {trainable} (freeze the base)")
    x = torch.tensor(rng.normal(size=(4, 7)))
    g = torch.tensor(rng.normal(size=(4, 5)))
    (layer(x) * g).sum().backward()
    assert base.weight.grad is None and base.bias.grad is None, (
        "the frozen base weight and bias must receive no gradient")
    A = layer.lora_A.detach().clone().requires_grad_(True)
    B = layer.lora_B.detach().clone().requires_grad_(True)
    ((base(x).detach() + 1.5 * x @ A.T @ B.T) * g).sum().backward()
    assert_close(layer.lora_A.grad, A.grad, "dL/dA (scaling 3 / 2)", rtol=1e-10)  # float64
    assert_close(layer.lora_B.grad, B.grad, "dL/dB (scaling 3 / 2)", rtol=1e-10)


@pytest.mark.points(2)
def test_merge_gives_the_same_outputs_and_unmerge_restores_the_base(impl, rng):
    base = linear(rng, 6, 9)
    w0, b0 = base.weight.detach().clone(), base.bias.detach().clone()
    layer = impl.LoRALinear(base, rank=3, alpha=7.0)
    randomise_lora(layer, rng)
    x = torch.tensor(rng.normal(size=(5, 6)))
    before = layer(x).detach()
    delta = (7.0 / 3) * layer.lora_B.detach() @ layer.lora_A.detach()
    layer.merge()
    assert layer.merged, "merge() sets merged = True"
    assert_close(base.weight, w0 + delta, "after merge base.weight = W + (alpha / rank) B A",
                 rtol=1e-10)  # one float64 addition
    assert torch.equal(base.bias, b0), "merge changes the weight only, not the bias"
    assert_close(layer(x), before, "merged and unmerged outputs must agree (once merged, do not "
                 "add the low-rank path a second time)", atol=1e-5)  # the step's 1e-5 contract
    layer.merge()
    assert_close(base.weight, w0 + delta, "merging twice must not add the update twice",
                 rtol=1e-10)
    layer.unmerge()
    assert not layer.merged, "unmerge() sets merged = False"
    assert_close(base.weight, w0, "unmerge must restore the base weight", atol=1e-12)  # W + d - d
    assert_close(layer(x), before, "unmerged again: the outputs are the LoRA outputs", atol=1e-10)
    layer.unmerge()
    assert_close(base.weight, w0, "unmerge when not merged must change nothing", atol=1e-12)


@pytest.mark.points(3)
def test_apply_lora_wraps_attention_projections_freezes_the_rest_and_counts(impl, rng):
    model = tiny_gpt(1)
    idx = tokens(rng)
    want = model(idx).detach()
    names = impl.apply_lora(model, rank=4, alpha=8.0)
    expect = [f"transformer.h.{i}.attn.{p}" for i in range(2) for p in ("c_attn", "c_proj")]
    assert names == expect, (f"apply_lora wraps the attention projections: expected {expect}, "
                             f"got {names} (does 'attn.c_proj' also match 'mlp.c_proj'?)")
    for i in range(2):
        blk = model.transformer.h[i]
        assert isinstance(blk.attn.c_attn, impl.LoRALinear), "attn.c_attn becomes a LoRALinear"
        assert isinstance(blk.mlp.c_proj, nn.Linear) and not isinstance(
            blk.mlp.c_proj, impl.LoRALinear), "mlp.c_proj is not an attention projection"
    assert_close(model(idx), want, "right after apply_lora the model equals the base model",
                 atol=1e-12)  # B = 0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.lora_{m}" for n in expect for m in "AB"}, (
        f"only the LoRA matrices may train; trainable now: {sorted(trainable)}")
    formula = 2 * 4 * ((E + 3 * E) + (E + E))  # per block r (in + out) for c_attn and c_proj
    assert impl.count_trainable(model) == formula, (
        f"trainable parameters = sum of r (in + out) over wrapped layers = {formula}, "
        f"count_trainable says {impl.count_trainable(model)}")


@pytest.mark.points(2)
def test_apply_lora_targets_rank_and_alpha_are_honoured(impl, rng):
    model = tiny_gpt(2)
    names = impl.apply_lora(model, rank=2, alpha=3.0, targets=("c_fc", "mlp.c_proj"))
    expect = [f"transformer.h.{i}.mlp.{p}" for i in range(2) for p in ("c_fc", "c_proj")]
    assert names == expect, f"targets ('c_fc', 'mlp.c_proj') wrap {expect}, got {names}"
    layer = model.transformer.h[1].mlp.c_fc
    assert layer.rank == 2 and layer.scaling == pytest.approx(1.5), "rank 2, alpha 3 -> scaling 1.5"
    assert impl.count_trainable(model) == 2 * 2 * ((E + 4 * E) + (4 * E + E)), (
        "rank 2 on c_fc (16 -> 64) and mlp.c_proj (64 -> 16) of two blocks: 2 * 2 * (80 + 80)")
    for bad in (("c_att",), ("wte",), ("h.0.attn",)):
        untouched = tiny_gpt(2)
        with pytest.raises(ValueError):
            impl.apply_lora(untouched, targets=bad)  # a partial name, an Embedding, a block
        assert all(p.requires_grad for p in untouched.parameters()), (
            f"targets {bad} match nothing: raise the ValueError before freezing the model")


@pytest.mark.points(2)
def test_model_merge_unmerge_norms_and_adapter_state(impl, rng):
    model = tiny_gpt(3)
    idx = tokens(rng)
    base_w = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = impl.apply_lora(model, rank=2, alpha=4.0)
    for n in names:
        randomise_lora(model.get_submodule(n), rng)
    tuned = model(idx).detach()
    norms = impl.delta_norms(model)
    assert list(norms) == names, f"delta_norms is keyed by the wrapped names, got {list(norms)}"
    for n in names:
        m = model.get_submodule(n)
        want = float(torch.linalg.norm(2.0 * m.lora_B.detach() @ m.lora_A.detach()))
        assert norms[n] == pytest.approx(want, rel=1e-9), f"{n}: ||(alpha / rank) B A||_F"
    state = impl.lora_state_dict(model)
    assert sorted(state) == sorted(f"{n}.lora_{m}" for n in names for m in "AB"), (
        f"lora_state_dict holds exactly the lora_A / lora_B entries, got {sorted(state)}")
    deltas = {n: model.get_submodule(n).delta_weight().detach().clone() for n in names}
    assert impl.merge_lora(model) == 4, "merge_lora returns how many layers it merged"
    for n in names:
        m = model.get_submodule(n)
        assert m.merged, f"after merge_lora, {n} must be merged (call merge() on every layer)"
        assert_close(m.base.weight, base_w[n + ".weight"] + deltas[n],
                     f"after merge_lora, {n}.base.weight = W + (alpha / rank) B A",
                     rtol=1e-10)  # one float64 addition
    assert_close(model(idx), tuned, "the merged model equals the unmerged one", atol=1e-5)
    assert impl.unmerge_lora(model) == 4, "unmerge_lora returns how many layers it unmerged"
    for n, p in model.named_parameters():
        if "lora_" not in n:
            key = n.replace(".base.", ".")
            assert_close(p, base_w[key], f"after unmerge_lora, {n} is the base weight again",
                         atol=1e-12)  # W + d - d in float64
    assert_close(model(idx), tuned, "unmerged again: the LoRA model", atol=1e-10)

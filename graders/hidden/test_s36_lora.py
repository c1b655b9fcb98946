"""Hidden graders for s36: Hugging Face peft's LoRA layer as the oracle, dropout on the LoRA
path's input in training mode only, A's initialisation, a short training run that moves only
A and B, adapters that round-trip through the state dict, and inputs that must be refused."""

import importlib.util

import pytest
import torch
from torch import nn

from graders.helpers import assert_close
from graders.test_s36_lora import E, linear, randomise_lora, tiny_gpt, tokens


@pytest.mark.points(2)
def test_dropout_hits_the_lora_input_in_training_mode_only(impl, rng):
    p, n_in, n_out = 0.5, 5, 8
    base = linear(rng, n_in, n_out)
    layer = impl.LoRALinear(base, rank=n_in, alpha=float(n_in), dropout=p)  # scaling 1
    x = torch.tensor(rng.normal(size=(400, n_in)))
    want_base = base(x).detach()
    torch.manual_seed(1)
    assert_close(layer.train()(x), want_base, "with B = 0 dropout must not touch the base path",
                 atol=1e-12)  # dropout belongs on the LoRA path only
    B = torch.tensor(rng.normal(size=(n_out, n_in)))
    with torch.no_grad():
        layer.lora_A.copy_(torch.eye(n_in, dtype=torch.float64))
        layer.lora_B.copy_(B)
    torch.manual_seed(2)
    side = (layer.train()(x) - want_base).detach()
    z = torch.linalg.lstsq(B, side.T).solution.T  # = dropout(x) when dropout is on the input
    dropped = z.abs() < 1e-8
    kept = (z - x / (1 - p)).abs() < 1e-8
    assert bool((dropped | kept).all()), (
        "in training mode each input feature of the LoRA path is either zeroed or scaled by "
        "1 / (1 - p): apply the dropout to x before A, not to the output")
    assert 0.4 < float(dropped.double().mean()) < 0.6, (
        f"dropout {p}: about half the inputs should be zeroed, got "
        f"{float(dropped.double().mean()):.2f}")
    assert_close(layer.eval()(x), want_base + x @ B.T, "in eval mode there is no dropout",
                 rtol=1e-10)


@pytest.mark.points(1)
def test_A_is_kaiming_uniform_and_float32_bases_give_float32_adapters(impl, rng):
    torch.manual_seed(3)
    layer = impl.LoRALinear(nn.Linear(64, 48), rank=32, alpha=8.0)
    bound = 1 / 64 ** 0.5  # kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))
    A = layer.lora_A.detach()
    assert A.dtype == layer.lora_B.dtype == torch.float32, "a float32 base gives float32 A, B"
    assert float(A.abs().max()) <= bound + 1e-7, (
        f"A ~ U(-1/sqrt(in), 1/sqrt(in)) = U(-{bound:.3f}, {bound:.3f}); max |A| = "
        f"{float(A.abs().max()):.3f}")
    assert float(A.abs().max()) >= 0.98 * bound, (
        f"A ~ U(-1/sqrt(in), 1/sqrt(in)): 2048 draws should reach near {bound:.4f}, max |A| = "
        f"{float(A.abs().max()):.4f} (is the gain a = sqrt(5), nn.Linear's?)")
    # 2048 uniform draws: the sample std is within ~1 % of the true one; 4 % is four sigmas
    assert abs(float(A.std()) - bound / 3 ** 0.5) < 0.04 * bound / 3 ** 0.5, (
        f"A's spread: std {float(A.std()):.4f}, uniform's {bound / 3 ** 0.5:.4f}")
    assert abs(float(A.mean())) < 0.05 * bound, "A is centred on zero"
    torch.manual_seed(3)
    again = impl.LoRALinear(nn.Linear(64, 48), rank=32, alpha=8.0).lora_A.detach()
    assert torch.equal(A, again), "A is drawn from torch's global generator (seeded runs repeat)"


@pytest.mark.points(2)
def test_training_moves_only_the_adapter_and_lowers_the_loss(impl, rng):
    torch.set_num_threads(1)
    model = tiny_gpt(4)
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    impl.apply_lora(model, rank=4, alpha=8.0, dropout=0.1)
    idx = tokens(rng, 8)
    target = torch.tensor(rng.integers(0, 11, size=idx.shape))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(idx).flatten(0, 1), target.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], (
        f"30 Adam steps on the adapter should fit a fixed batch: loss {losses[0]:.3f} -> "
        f"{losses[-1]:.3f} (does the LoRA path reach the output? is B trainable?)")
    for n, p in model.named_parameters():
        if "lora_" not in n:
            assert torch.equal(p, base[n.replace(".base.", ".")]), f"{n} moved: it must be frozen"
    assert all(v > 0 for v in impl.delta_norms(model).values()), "every wrapped layer learned"


@pytest.mark.points(1)
def test_adapter_state_round_trips_and_is_a_copy(impl, rng):
    model = tiny_gpt(5)
    names = impl.apply_lora(model, rank=3, alpha=3.0)
    for n in names:
        randomise_lora(model.get_submodule(n), rng)
    idx = tokens(rng)
    want = model(idx).detach()
    state = impl.lora_state_dict(model)
    for v in state.values():
        v.zero_()
    assert_close(model(idx), want, "lora_state_dict must return copies: zeroing them changed "
                 "the model", atol=0)
    state = impl.lora_state_dict(model)
    fresh = tiny_gpt(5)
    impl.apply_lora(fresh, rank=3, alpha=3.0)
    fresh.load_state_dict(state, strict=False)
    assert_close(fresh(idx), want, "base + the saved adapter = the tuned model", atol=1e-12)


@pytest.mark.points(1)
def test_counts_tied_weights_once_and_merging_builds_no_graph(impl, rng):
    model = tiny_gpt(6)
    total = sum(p.numel() for p in model.parameters())
    assert impl.count_trainable(model) == total, (
        f"an untouched model trains all {total} parameters (lm_head shares wte's weight: "
        f"count it once), got {impl.count_trainable(model)}")
    full = "transformer.h.1.attn.c_proj"
    names = impl.apply_lora(model, rank=1, alpha=1.0, targets=(full,))
    assert names == [full], f"a target equal to a whole module name wraps that module: {names}"
    assert impl.count_trainable(model) == 1 * (E + E), "rank 1 on one 16 -> 16 layer: 32"
    layer = model.transformer.h[1].attn.c_proj
    randomise_lora(layer, rng)
    impl.merge_lora(model)
    w = layer.base.weight
    assert w.grad_fn is None and not w.requires_grad, (
        "merge must change the weight without autograd (torch.no_grad) and keep it frozen")


@pytest.mark.points(1)
def test_bad_arguments_are_refused(impl, rng):
    for kwargs in ({"rank": 0}, {"rank": -2}, {"dropout": 1.0}, {"dropout": -0.1}):
        with pytest.raises(ValueError):
            impl.LoRALinear(linear(rng, 3, 3), **kwargs)
    with pytest.raises(ValueError):
        impl.apply_lora(tiny_gpt(0), targets=())


@pytest.mark.points(2)
@pytest.mark.skipif(importlib.util.find_spec("peft") is None,
                    reason="the peft oracle needs Hugging Face peft (the hf / dev extra)")
def test_layer_equals_peft_lora_with_the_same_weights(impl, rng):
    import peft

    for rank, alpha, bias in [(3, 6.0, True), (2, 5.0, False)]:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(9, 7, bias=bias)).double()
        ours = impl.LoRALinear(linear(rng, 9, 7, bias), rank=rank, alpha=alpha)
        with torch.no_grad():
            ours.base.weight.copy_(net[0].weight)
            if bias:
                ours.base.bias.copy_(net[0].bias)
        randomise_lora(ours, rng)
        cfg = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=["0"], lora_dropout=0.0)
        theirs = peft.get_peft_model(net, cfg)
        layer = theirs.base_model.model[0]
        with torch.no_grad():
            layer.lora_A["default"].weight.copy_(ours.lora_A)
            layer.lora_B["default"].weight.copy_(ours.lora_B)
        x = torch.tensor(rng.normal(size=(4, 9)))
        assert_close(ours(x), theirs(x), f"rank {rank}, alpha {alpha}: your LoRA layer differs "
                     "from peft's with the same A, B and base", rtol=1e-10)  # float64
        assert_close(ours.delta_weight(), layer.get_delta_weight("default"),
                     "delta_weight() differs from peft's get_delta_weight", rtol=1e-10)
        n_peft = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
        assert impl.count_trainable(ours) == n_peft, (
            f"trainable parameters: peft counts {n_peft}, you {impl.count_trainable(ours)}")
        ours.merge()
        merged = theirs.merge_and_unload()
        assert_close(ours.base.weight, merged[0].weight, "your merged weight differs from "
                     "peft's merge_and_unload", rtol=1e-10)

"""Public graders for s26 gpt: GPT-2's logits, causality end to end, tying, counts, training.

Oracles: Hugging Face GPT2LMHeadModel (when transformers is installed) with the weights copied
across, torch's autograd for gradients, ln(V) for the loss at initialisation.
"""

import importlib.util
import math

import pytest
import torch

from graders.helpers import assert_causal, assert_close, check_shape, overfit_tiny_batch

SMALL = {"vocab_size": 37, "block_size": 16, "n_layer": 2, "n_head": 3, "n_embd": 12}


def _model(impl, seed=0, **overrides):
    torch.manual_seed(seed)
    return impl.GPT(impl.GPTConfig(**{**SMALL, **overrides}))


def _n_params(model):
    return sum(p.numel() for p in model.parameters())  # parameters() lists a tied one once


@pytest.mark.points(3)
@pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                    reason="the GPT-2 oracle needs transformers (the mlx / dev extra)")
def test_logits_equal_hugging_face_gpt2_with_copied_weights(impl, rng):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(1)
    hf = GPT2LMHeadModel(GPT2Config(
        vocab_size=37, n_positions=16, n_embd=12, n_layer=2, n_head=3, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
        attn_implementation="eager")).eval()
    with torch.no_grad():  # O(1) activations and non-zero biases / gains: every term shows
        for p in hf.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.4)
            else:
                p.add_(torch.randn_like(p) * 0.1)
    model = _model(impl).eval()
    state = hf.state_dict()
    with torch.no_grad():
        for name, p in model.named_parameters():
            assert name in state, (f"parameter {name!r} has no GPT-2 counterpart: keep the "
                                   "names transformer.wte / wpe / h.N.ln_1 / attn.c_attn / ...")
            src = state[name]
            if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
                src = src.t()  # GPT-2's Conv1D stores (in, out); nn.Linear stores (out, in)
            p.copy_(src)
    idx = torch.as_tensor(rng.integers(0, 37, size=(2, 11)))
    logits, loss = model(idx)
    assert loss is None, "forward(idx) without targets must return (logits, None)"
    # float32 on both sides, same operations: only reassociation noise remains
    assert_close(logits, hf(idx).logits, "logits vs Hugging Face GPT2LMHeadModel with the same "
                 "weights (pre-LN, tanh GELU, tied lm_head)", rtol=1e-5, atol=1e-5)


@pytest.mark.points(3)
def test_causal_through_the_whole_model(impl, rng):
    model = _model(impl).eval()
    idx = torch.as_tensor(rng.integers(0, 37, size=(2, 12)))
    with torch.no_grad():
        assert_causal(lambda x: model(x)[0], idx, "GPT logits", axis=1)
        base = model(idx)[0]
        idx2 = idx.clone()
        idx2[:, 3] = (idx2[:, 3] + 1) % 37
        moved = (model(idx2)[0] - base).abs().amax(dim=(0, 2))
    assert moved[3:].min() > 0, ("changing token 3 must change the logits at positions >= 3; "
                                 f"it moved them by {moved.tolist()}")


@pytest.mark.points(2)
def test_shapes_and_loss_at_init_is_about_ln_vocab(impl, rng):
    model = _model(impl, vocab_size=50, n_layer=3, n_head=2, n_embd=16)
    idx = torch.as_tensor(rng.integers(0, 50, size=(8, 16)))
    # targets independent of the inputs: with tied weights, "predict the input" is not uniform
    targets = torch.as_tensor(rng.integers(0, 50, size=(8, 16)))
    logits, loss = model(idx, targets)
    loss = loss.detach()
    check_shape(logits, (8, 16, 50), "logits", "B, T, vocab_size")
    # N(0, 0.02) weights give logits of size ~0.02 * sqrt(E): the loss is within ~0.1 of ln V
    assert abs(float(loss) - math.log(50)) < 0.15, (
        f"at initialisation the loss should be about ln(vocab_size) = {math.log(50):.3f}, got "
        f"{float(loss):.3f}: initialise the weights N(0, 0.02) and the biases at 0")
    manual = torch.nn.functional.cross_entropy(logits.reshape(-1, 50), targets.reshape(-1))
    assert_close(loss, manual, "loss vs mean cross-entropy of the logits", rtol=1e-6, atol=1e-6)


@pytest.mark.points(2)
def test_weight_tying_shares_storage(impl):
    model = _model(impl)
    assert model.lm_head.weight is model.transformer.wte.weight, (
        "lm_head.weight must BE transformer.wte.weight (one Parameter), not a copy")
    with torch.no_grad():
        model.transformer.wte.weight[5, 0] = 123.0
    assert float(model.lm_head.weight[5, 0]) == 123.0, "tied weights must share storage"


@pytest.mark.points(3)
def test_parameter_count_formula(impl):
    for cfg in ({}, {"bias": False}, {"n_layer": 1, "n_head": 1, "n_embd": 4, "vocab_size": 5,
                                      "block_size": 3},
                {"n_layer": 3, "n_head": 4, "n_embd": 20, "block_size": 7, "bias": False}):
        config = impl.GPTConfig(**{**SMALL, **cfg})
        real = _n_params(impl.GPT(config))
        assert impl.count_parameters(config) == real, (
            f"count_parameters({config}) = {impl.count_parameters(config)}, the model has "
            f"{real}: count wte once (it is tied), wpe, 12 E^2 per block plus the biases and "
            "LayerNorms, and ln_f")


@pytest.mark.points(2)
def test_every_parameter_gets_a_finite_gradient(impl, rng):
    model = _model(impl)
    idx = torch.as_tensor(rng.integers(0, 37, size=(3, 10)))
    _, loss = model(idx, torch.roll(idx, -1, dims=1))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient: is it used in forward?"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, (
            f"{name} got a zero or non-finite gradient")


@pytest.mark.points(3)
def test_overfits_two_sequences(impl, rng):
    model = _model(impl, n_embd=24, n_head=2)
    idx = torch.as_tensor(rng.integers(0, 37, size=(2, 12)))
    x, y = idx[:, :-1], idx[:, 1:]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def step():
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    # from ln 37 = 3.6 to near 0: a model that can memorise two sequences
    overfit_tiny_batch(step, steps=150, target=0.1, what="GPT on 2 sequences of 11 tokens")


@pytest.mark.points(2)
def test_generate_top_k_1_is_greedy_and_crops_to_block_size(impl, rng):
    model = _model(impl, block_size=6).eval()
    idx = torch.as_tensor(rng.integers(0, 37, size=(2, 4)))
    out = model.generate(idx, 7, top_k=1)
    check_shape(out, (2, 11), "generate(idx (2, 4), 7 new tokens)", "B, T0 + max_new_tokens")
    assert torch.equal(out[:, :4], idx), "generate must keep the prompt as the first tokens"
    expected = idx.clone()
    with torch.no_grad():
        for _ in range(7):  # greedy: the argmax of the last logits of the last 6 tokens
            nxt = model(expected[:, -6:])[0][:, -1].argmax(-1, keepdim=True)
            expected = torch.cat([expected, nxt], dim=1)
    assert torch.equal(out, expected), (
        "with top_k=1 generation is greedy; it should equal the argmax loop that feeds the "
        f"last block_size tokens. Expected\n{expected}\ngot\n{out}")

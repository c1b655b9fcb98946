"""Hidden graders for s26: sampling, initialisation, configs without bias, refusals."""

import math

import pytest
import torch

from graders.helpers import assert_causal, assert_close
from graders.test_s26_gpt import SMALL, _model


@pytest.mark.points(2)
def test_sampling_respects_top_k_temperature_and_the_generator(impl, rng):
    model = _model(impl, vocab_size=11).eval()
    idx = torch.as_tensor(rng.integers(0, 11, size=(64, 3)))
    with torch.no_grad():
        top3 = torch.topk(model(idx)[0][:, -1], 3).indices
    out = model.generate(idx, 1, temperature=0.7, top_k=3,
                         generator=torch.Generator().manual_seed(0))
    assert (out[:, -1:] == top3).any(-1).all(), \
        "with top_k=3 only the 3 largest logits may be drawn"
    again = model.generate(idx, 1, temperature=0.7, top_k=3,
                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again), "the same generator seed must give the same samples"
    cold = model.generate(idx, 1, temperature=1e-4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(cold[:, -1], top3[:, 0]), (
        "a tiny temperature divides the logits by ~0: sampling becomes the argmax")


@pytest.mark.points(2)
def test_initialisation_follows_nanogpt(impl):
    model = _model(impl, n_layer=4, n_embd=64, n_head=4)
    w = model.transformer.h[0].mlp.c_fc.weight
    proj = torch.cat([b.attn.c_proj.weight.flatten() for b in model.transformer.h])
    # 4096+ samples: the std estimate is within ~3% of the truth
    assert abs(float(w.std()) - 0.02) < 0.002, f"c_fc weights: std 0.02 expected, got {w.std():.4f}"
    expected = 0.02 / math.sqrt(2 * 4)
    assert abs(float(proj.std()) - expected) < 0.1 * expected, (
        f"c_proj weights write into the residual stream: std 0.02 / sqrt(2 n_layer) = "
        f"{expected:.4f} expected, got {float(proj.std()):.4f}")
    assert float(model.transformer.h[0].attn.c_attn.bias.abs().max()) == 0, "biases start at 0"


@pytest.mark.points(2)
def test_no_bias_config_and_a_single_token(impl, rng):
    model = _model(impl, bias=False, n_head=1).eval()
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.endswith("bias") for n in names), f"bias=False, yet got {names}"
    idx = torch.as_tensor(rng.integers(0, 37, size=(3, 1)))
    logits, _ = model(idx)
    full, _ = model(torch.cat([idx, idx], 1))
    assert_close(logits[:, 0], full[:, 0], "one-token logits equal the first position of a "
                 "longer input (causal)", rtol=1e-5, atol=1e-6)  # float32 reassociation
    out = model.generate(idx, SMALL["block_size"] + 3)  # longer than block_size: must crop
    assert out.shape == (3, SMALL["block_size"] + 4), f"got {tuple(out.shape)}"


@pytest.mark.points(1)
def test_bad_inputs_are_refused(impl):
    model = _model(impl)
    with pytest.raises(ValueError):
        model(torch.zeros(1, SMALL["block_size"] + 1, dtype=torch.long))
    with pytest.raises(ValueError):
        impl.GPT(impl.GPTConfig(**{**SMALL, "n_head": 5}))
    assert model(torch.zeros(1, 2, dtype=torch.long))[0].shape == (1, 2, 37)


@pytest.mark.points(2)
def test_top_k_keeps_the_k_largest_and_a_large_k_keeps_everything(impl, rng):
    model = _model(impl, vocab_size=11).eval()
    prompt = torch.as_tensor(rng.integers(0, 11, size=(1, 3))).expand(200, 3)
    with torch.no_grad():
        top2 = torch.topk(model(prompt[:1])[0][0, -1], 2).indices
    gen = torch.Generator().manual_seed(3)
    drawn = model.generate(prompt, 1, temperature=20.0, top_k=2, generator=gen)[:, -1]
    assert set(drawn.tolist()) == set(top2.tolist()), (
        "top_k=2 at a high temperature should draw BOTH of the 2 largest logits (and nothing "
        f"else) over 200 draws; drew {sorted(set(drawn.tolist()))}, the top 2 are "
        f"{sorted(top2.tolist())}: mask the logits BELOW the k-th largest")
    seen = set()
    for _ in range(30):  # a batch of 2 and top_k larger than the vocabulary: no filtering
        out = model.generate(prompt[:2], 1, temperature=50.0, top_k=100, generator=gen)
        seen.update(out[:, -1].tolist())
    assert len(seen) >= 6, (
        f"top_k=100 with 11 tokens must keep all of them; near-uniform sampling drew only "
        f"{sorted(seen)} in 60 draws: clip k to the vocabulary size (the last axis)")


@pytest.mark.points(2)
def test_the_parts_work_alone(impl, rng):
    config = impl.GPTConfig(**SMALL)
    torch.manual_seed(0)
    attn, mlp, block = impl.CausalSelfAttention(config), impl.MLP(config), impl.Block(config)
    x = torch.as_tensor(rng.normal(size=(2, 5, 12)), dtype=torch.float32)
    with torch.no_grad():
        for name, part in (("CausalSelfAttention", attn), ("MLP", mlp), ("Block", block)):
            assert part(x).shape == (2, 5, 12), f"{name}(x (2, 5, 12)) must keep the shape"
        assert_causal(attn, x, "CausalSelfAttention alone", axis=1)
        # the MLP works on each position alone: position 2 by itself gives the same answer
        assert_close(mlp(x)[:, 2], mlp(x[:, 2:3])[:, 0], "MLP on one position vs in a sequence",
                     rtol=1e-5, atol=1e-6)  # float32 reassociation
        h = x + block.attn(block.ln_1(x))
        assert_close(block(x), h + block.mlp(block.ln_2(h)), "Block(x) vs the pre-LN recipe "
                     "x + attn(ln_1(x)), then + mlp(ln_2(.))", rtol=1e-5, atol=1e-6)

"""Hidden graders for s35: attention with a cache on its own, seeded sampling with and without
the cache, batch rows independent, one prompt's cache reused for two continuations (the cache
passed in stays unchanged), other shapes (no biases, one head, more heads), prompts longer
than the block size, and the edge cases of generate."""

import pytest
import torch

from graders.helpers import assert_close, check_shape
from graders.test_s35_kv_cache import (
    TOL,
    attn_widths,
    reference_generate,
    reference_logits,
    s26_keys,
    tiny_gpt,
    tokens,
)


@pytest.mark.points(2)
def test_attention_over_a_cache_equals_full_causal_attention(impl, rng):
    torch.manual_seed(0)
    cfg = impl.GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=3, n_embd=12)
    attn = impl.CausalSelfAttention(cfg).double()
    x = torch.tensor(rng.normal(size=(2, 9, 12)))
    with torch.no_grad():
        full, (k_all, v_all) = attn(x)
        check_shape(full, (2, 9, 12), "CausalSelfAttention(x) output")
        q, k, v = attn.c_attn(x).split(12, dim=2)
        heads = [t.view(2, 9, 3, 4).transpose(1, 2) for t in (q, k, v)]
        want = torch.nn.functional.scaled_dot_product_attention(*heads, is_causal=True)
        assert_close(full, attn.c_proj(want.transpose(1, 2).reshape(2, 9, 12)),
                     "attention without a cache: s26's causal attention", rtol=TOL, atol=TOL)
        _, cache = attn(x[:, :4])
        part, (k2, v2) = attn(x[:, 4:], cache)
    assert_close(part, full[:, 4:], "5 new positions after 4 cached ones: new position i may "
                 "see keys up to 4 + i, no further", rtol=TOL, atol=TOL)
    assert_close(k2, k_all, "keys after cache + new equal the keys of one full pass",
                 rtol=TOL, atol=TOL)
    assert_close(v2, v_all, "values after cache + new equal the values of one full pass",
                 rtol=TOL, atol=TOL)


@pytest.mark.points(2)
def test_seeded_sampling_is_the_same_with_and_without_the_cache(impl, rng):
    model = tiny_gpt(impl, seed=6, block=10)
    prompt = tokens(rng, (2, 3))
    runs = [impl.generate(model, prompt, 15, temperature=0.9,
                          generator=torch.Generator().manual_seed(7), use_cache=c)
            for c in (True, False)]
    want = reference_generate(model, prompt, 15, 0.9, torch.Generator().manual_seed(7))
    assert torch.equal(runs[1], want), (
        "generate(use_cache=False) at temperature 0.9: one multinomial draw per step from "
        "softmax(logits / temperature) with the generator given")
    assert torch.equal(runs[0], want), (
        "sampling with the cache and the same seeded generator must give the uncached tokens")
    other = impl.generate(model, prompt, 15, temperature=0.9,
                          generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other, runs[0]), "another seed should give another sample"


@pytest.mark.points(2)
def test_batch_rows_are_decoded_independently(impl, rng):
    model = tiny_gpt(impl, seed=7, block=12)
    prompts = tokens(rng, (4, 5))
    together = impl.generate(model, prompts, 10)
    for b in range(4):
        alone = impl.generate(model, prompts[b:b + 1], 10)
        assert torch.equal(together[b:b + 1], alone), (
            f"row {b} of a batch of 4 must decode as it would alone: keep the batch axis "
            "separate in the cache")
    with torch.no_grad():
        _, cache = model.forward_cached(prompts)
        step, _ = model.forward_cached(prompts[:, :1], cache)
    full = reference_logits(model, torch.cat([prompts, prompts[:, :1]], dim=1))
    assert_close(step[:, 0], full[:, 5], "a batched decode step", rtol=TOL, atol=TOL)


@pytest.mark.points(2)
def test_one_prompt_cache_starts_two_continuations_and_is_left_unchanged(impl, rng):
    model = tiny_gpt(impl, seed=8)
    prompt, a, b = tokens(rng, (1, 6)), tokens(rng, (1, 3)), tokens(rng, (1, 2))
    with torch.no_grad():
        _, cache = model.forward_cached(prompt)
        before = [(k.clone(), v.clone()) for k, v in cache]
        la, _ = model.forward_cached(a, cache)
        lb, cache_b = model.forward_cached(b, cache)
    for (k, v), (k0, v0) in zip(cache, before, strict=True):
        assert torch.equal(k, k0) and torch.equal(v, v0) and k.size(2) == 6, (
            "forward_cached must return a new cache and leave the one passed in unchanged "
            "(torch.cat, not writes into it)")
    assert_close(la, reference_logits(model, torch.cat([prompt, a], 1))[:, 6:],
                 "first continuation of a shared prompt cache", rtol=TOL, atol=TOL)
    assert_close(lb, reference_logits(model, torch.cat([prompt, b], 1))[:, 6:],
                 "second continuation of the same prompt cache", rtol=TOL, atol=TOL)
    assert impl.cache_length(cache_b) == 8 and impl.cache_length(None) == 0


@pytest.mark.parametrize("shape", [dict(n_layer=1, n_head=1, n_embd=6, bias=False),
                                   dict(n_layer=3, n_head=4, n_embd=8, bias=True)])
@pytest.mark.points(1)
def test_other_shapes_and_no_biases(impl, rng, shape):
    model = tiny_gpt(impl, seed=9, **shape)
    assert set(model.state_dict()) == s26_keys(shape["n_layer"], shape["bias"]), (
        f"parameter names for {shape} must be s26's")
    idx = tokens(rng, (2, 10))
    full = reference_logits(model, idx)
    with torch.no_grad():
        logits, cache = model.forward_cached(idx[:, :4])
        for t in range(4, 10):
            step, cache = model.forward_cached(idx[:, t:t + 1], cache)
            assert_close(step[:, 0], full[:, t], f"{shape}: cached logits of position {t}",
                         rtol=TOL, atol=TOL)
    assert_close(logits, full[:, :4], f"{shape}: prefill logits", rtol=TOL, atol=TOL)


@pytest.mark.points(2)
def test_long_prompts_are_cropped_and_the_edges_of_generate(impl, rng):
    model = tiny_gpt(impl, seed=10, block=6)
    widths = attn_widths(model)
    prompt = tokens(rng, (2, 9))
    out = impl.generate(model, prompt, 4)
    assert widths == [6, 6, 6, 6], (
        "a prompt longer than block_size is cropped to its last block_size tokens, which fill "
        f"the cache at once, so every step recomputes the window; saw widths {widths}")
    assert torch.equal(out, reference_generate(model, prompt, 4)), (
        "a prompt longer than block_size: the tokens of nanoGPT's cropped loop")
    assert torch.equal(impl.generate(model, prompt, 0), prompt), (
        "max_new_tokens=0 returns the prompt unchanged")
    widths.clear()
    one = impl.generate(model, prompt[:, :2], 1)
    assert torch.equal(one, reference_generate(model, prompt[:, :2], 1)) and widths == [2], (
        f"one new token is one prefill of the prompt; saw widths {widths}")
    widths.clear()
    out = impl.generate(model, prompt[:, :5], 3)
    assert widths == [5, 1, 6], (
        "prompt of 5 with block_size 6: prefill 5, one decode step fills the cache to 6, then "
        f"the window is recomputed; saw {widths}")
    with pytest.raises(ValueError):
        model.forward_cached(tokens(rng, (1, 7)))


@pytest.mark.points(1)
def test_the_mlp_and_the_block_work_alone(impl, rng):
    torch.manual_seed(1)
    cfg = impl.GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=8, bias=False)
    mlp, block = impl.MLP(cfg).double(), impl.Block(cfg).double()
    assert mlp.c_fc.weight.shape == (32, 8) and mlp.c_fc.bias is None, "MLP: c_fc is E -> 4E"
    assert block.ln_1.bias is None and block.attn.c_attn.bias is None, (
        "bias=False: no biases in the block's LayerNorms and linears")
    x = torch.tensor(rng.normal(size=(2, 7, 8)))
    with torch.no_grad():
        want_mlp = mlp.c_proj(torch.nn.functional.gelu(mlp.c_fc(x), approximate="tanh"))
        assert_close(mlp(x), want_mlp, "MLP: c_proj(gelu_tanh(c_fc(x)))", rtol=TOL, atol=TOL)
        full, _ = block(x)
        h = x + block.attn(block.ln_1(x))[0]
        assert_close(full, h + block.mlp(block.ln_2(h)), "Block: pre-LN x + attn(ln_1(x)), "
                     "then + mlp(ln_2(x))", rtol=TOL, atol=TOL)
        _, cache = block(x[:, :3])
        part, (k, _) = block(x[:, 3:], cache)
    assert_close(part, full[:, 3:], "Block: 4 new positions after 3 cached ones",
                 rtol=TOL, atol=TOL)
    check_shape(k, (2, 2, 7, 4), "the cache a Block returns", "(B, n_head, positions, hs)")


@pytest.mark.points(1)
def test_a_block_size_above_256_is_handled_like_any_other(impl, rng):
    # CPython shares the int objects up to 256: `length is block_size` would pass below it
    model = tiny_gpt(impl, seed=11, block=260, n_layer=1, n_head=1, n_embd=4)
    widths = attn_widths(model)
    prompt = tokens(rng, (1, 258))
    out = impl.generate(model, prompt, 4)
    assert widths == [258, 1, 1, 260], (
        "block_size 260, a 258-token prompt, 4 new tokens: prefill 258, two steps of one token "
        f"fill the cache to 260, then the window is recomputed; saw {widths}")
    assert torch.equal(out, reference_generate(model, prompt, 4)), (
        "with block_size 260 the cached tokens must equal nanoGPT's loop")

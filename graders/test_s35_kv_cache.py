"""Public graders for s35 KV cache: the GPT loads s26's parameter names and equals a reference
forward; cached logits equal a full recomputation at every position (float64, 1e-10); the
cache grows by one position per token; prefill then decode equals token by token; cached
greedy decoding is token-identical to the uncached loop in float32, also past the block
size; each decode step feeds one token; the cache's memory formula.

The oracle is a functional GPT written here from s26's math (torch's scaled_dot_product_attention
with is_causal=True) that reads the learner's state_dict, so the learner's own uncached forward
is checked too, not only compared with itself. Models are tiny and seeded.
"""

import pytest
import torch
import torch.nn.functional as F

from graders.helpers import assert_close, check_shape

TOL = 1e-10  # float64: the cached and full paths differ only by summation order


def s26_keys(n_layer: int, bias: bool = True) -> set[str]:
    names = ["transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
             "lm_head.weight"] + (["transformer.ln_f.bias"] if bias else [])
    for i in range(n_layer):
        for sub in ("ln_1", "attn.c_attn", "ln_2", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            names.append(f"transformer.h.{i}.{sub}.weight")
            if bias:
                names.append(f"transformer.h.{i}.{sub}.bias")
    return set(names)


def tiny_gpt(impl, seed: int = 0, dtype=torch.float64, vocab: int = 11, block: int = 16,
             n_layer: int = 2, n_head: int = 2, n_embd: int = 8, bias: bool = True):
    """impl.GPT with seeded weights large enough that the logits are well separated."""
    torch.manual_seed(seed)
    cfg = impl.GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=n_head,
                         n_embd=n_embd, bias=bias)
    model = impl.GPT(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "ln" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                scale = 1.0 if "wte" in name or "wpe" in name else p.size(1) ** -0.5
                p.copy_(scale * torch.randn(p.shape, generator=gen))
    return model.to(dtype).eval()


def reference_logits(model, idx: torch.Tensor) -> torch.Tensor:
    """s26's forward, written from the state_dict with torch's fused causal attention."""
    sd, cfg = model.state_dict(), model.config
    B, T = idx.shape
    E, nh = cfg.n_embd, cfg.n_head

    def lin(x, name):
        return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))

    def ln(x, name):
        return F.layer_norm(x, (E,), sd[name + ".weight"], sd.get(name + ".bias"), 1e-5)

    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]
    for i in range(cfg.n_layer):
        h = f"transformer.h.{i}."
        q, k, v = lin(ln(x, h + "ln_1"), h + "attn.c_attn").split(E, dim=2)
        q, k, v = (t.view(B, T, nh, E // nh).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + lin(y.transpose(1, 2).reshape(B, T, E), h + "attn.c_proj")
        x = x + lin(F.gelu(lin(ln(x, h + "ln_2"), h + "mlp.c_fc"), approximate="tanh"),
                    h + "mlp.c_proj")
    return F.linear(ln(x, "transformer.ln_f"), sd["transformer.wte.weight"])


def reference_generate(model, idx, n, temperature=0.0, generator=None):
    """nanoGPT's uncached loop on the reference forward: crop, last logits, pick, append."""
    for _ in range(n):
        logits = reference_logits(model, idx[:, -model.config.block_size:])[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1,
                                    generator=generator)
        idx = torch.cat([idx, nxt], dim=1)
    return idx


def tokens(rng, shape, vocab: int = 11) -> torch.Tensor:
    return torch.tensor(rng.integers(0, vocab, size=shape), dtype=torch.int64)


def attn_widths(model) -> list[int]:
    """Record the number of positions layer 0's c_attn sees on every call."""
    widths: list[int] = []
    model.transformer.h[0].attn.c_attn.register_forward_hook(
        lambda mod, args, out: widths.append(args[0].size(1)))
    return widths


@pytest.mark.points(2)
def test_parameters_have_s26_names_and_the_full_forward_is_s26s(impl, rng):
    model = tiny_gpt(impl)
    keys = set(model.state_dict())
    assert keys == s26_keys(2), (
        "GPT's parameters must carry s26's names so a checkpoint loads: missing "
        f"{sorted(s26_keys(2) - keys)}, unexpected {sorted(keys - s26_keys(2))}")
    assert model.lm_head.weight is model.transformer.wte.weight, "lm_head must be tied to wte"
    idx = tokens(rng, (2, 9))
    logits, loss = model(idx, idx)
    assert_close(logits, reference_logits(model, idx),
                 "GPT.forward (no cache) against s26's forward", rtol=TOL, atol=TOL)
    assert_close(loss, F.cross_entropy(logits.reshape(-1, 11), idx.reshape(-1)),
                 "GPT.forward's loss: mean cross-entropy against targets", rtol=TOL, atol=TOL)
    assert model(idx)[1] is None, "without targets the loss is None"


@pytest.mark.points(3)
def test_cached_logits_equal_full_recomputation_at_every_position(impl, rng):
    model = tiny_gpt(impl, seed=1)
    idx = tokens(rng, (2, 16))
    full = reference_logits(model, idx)
    cache = None
    for t in range(16):
        with torch.no_grad():
            step, cache = model.forward_cached(idx[:, t:t + 1], cache)
        check_shape(step, (2, 1, 11), f"forward_cached logits for one new token (step {t})")
        assert_close(step[:, 0], full[:, t],
                     f"logits of position {t} fed one token at a time with the cache vs a full "
                     "recomputation: the new token sits at position (cached length), sees "
                     "every cached key and itself", rtol=TOL, atol=TOL)


@pytest.mark.points(2)
def test_the_cache_grows_by_one_position_per_token_and_holds_the_real_keys(impl, rng):
    model = tiny_gpt(impl, seed=2, n_layer=3, n_head=2, n_embd=8)
    idx = tokens(rng, (3, 7))
    cache = None
    for t in range(7):
        with torch.no_grad():
            _, cache = model.forward_cached(idx[:, t:t + 1], cache)
        assert len(cache) == 3, f"the cache has one (k, v) per layer (3), got {len(cache)}"
        for layer, (k, v) in enumerate(cache):
            check_shape(k, (3, 2, t + 1, 4), f"layer {layer}'s cached keys after {t + 1} tokens",
                        "(B, n_head, positions, head_size)")
            check_shape(v, (3, 2, t + 1, 4), f"layer {layer}'s cached values after {t + 1} "
                        "tokens", "(B, n_head, positions, head_size)")
    with torch.no_grad():
        _, prefilled = model.forward_cached(idx)
    for layer, ((k, v), (k_all, v_all)) in enumerate(zip(cache, prefilled, strict=True)):
        assert_close(k, k_all, f"layer {layer}: keys cached one token at a time vs in one "
                     "prefill", rtol=TOL, atol=TOL)
        assert_close(v, v_all, f"layer {layer}: values cached one token at a time vs in one "
                     "prefill", rtol=TOL, atol=TOL)


@pytest.mark.points(2)
def test_prefill_then_decode_in_chunks_equals_the_full_forward(impl, rng):
    model = tiny_gpt(impl, seed=3)
    idx = tokens(rng, (2, 14))
    full = reference_logits(model, idx)
    with torch.no_grad():
        logits, cache = model.forward_cached(idx[:, :5])
        assert_close(logits, full[:, :5], "prefill of a 5-token prompt", rtol=TOL, atol=TOL)
        for start, stop in ((5, 8), (8, 9), (9, 13), (13, 14)):
            logits, cache = model.forward_cached(idx[:, start:stop], cache)
            assert_close(logits, full[:, start:stop],
                         f"positions {start}..{stop - 1} fed together after {start} cached "
                         "ones: new token i sees the cache and new tokens 0..i only",
                         rtol=TOL, atol=TOL)
    assert impl.cache_length(cache) == 14, "after 14 tokens the cache holds 14 positions"


@pytest.mark.points(2)
def test_greedy_with_cache_is_token_identical_to_the_uncached_loop_in_float32(impl, rng):
    model = tiny_gpt(impl, seed=4, dtype=torch.float32, block=12)
    prompt = tokens(rng, (3, 4))
    cached = impl.generate(model, prompt, 20)
    plain = impl.generate(model, prompt, 20, use_cache=False)
    check_shape(cached, (3, 24), "generate(model, (3, 4) prompt, 20)")
    assert torch.equal(cached[:, :4], prompt), "generate keeps the prompt in front"
    assert torch.equal(cached, plain), (
        "greedy decoding with the cache must produce exactly the uncached tokens (here 20 "
        "tokens, past block_size 12)")
    assert torch.equal(plain, reference_generate(model, prompt, 20)), (
        "generate(use_cache=False) must be nanoGPT's loop: the argmax of the last position "
        "given the last block_size tokens, every step")


@pytest.mark.points(2)
def test_each_decode_step_feeds_one_token_and_the_full_cache_is_recomputed(impl, rng):
    model = tiny_gpt(impl, seed=5, block=8)
    widths = attn_widths(model)
    out = impl.generate(model, tokens(rng, (2, 3)), 12)
    assert widths == [3, 1, 1, 1, 1, 1, 8, 8, 8, 8, 8, 8], (
        "with a 3-token prompt, block_size 8 and 12 new tokens the model should see 3 "
        "positions (prefill), then 1 per step until the cache holds 8, then the last 8 tokens "
        f"every step (the window slides, so the cache is dropped and refilled); saw {widths}")
    assert torch.equal(out, reference_generate(model, out[:, :3], 12)), (
        "past the block size the cached loop must still equal nanoGPT's cropped loop")
    widths.clear()
    impl.generate(model, out[:, :3], 4, use_cache=False)
    assert widths == [3, 4, 5, 6], (
        f"use_cache=False feeds the whole (cropped) sequence every step; saw {widths}")
    with pytest.raises(ValueError):
        _, cache = model.forward_cached(out[:, :6])
        model.forward_cached(out[:, 6:9], cache)  # 6 cached + 3 new > block_size 8


@pytest.mark.points(1)
def test_cache_bytes_counts_keys_and_values_of_every_layer(impl, rng):
    cfg = impl.GPTConfig(vocab_size=11, block_size=16, n_layer=3, n_head=2, n_embd=8)
    assert impl.cache_bytes(cfg, 2, 5) == 2 * 3 * 2 * 5 * 8 * 4, (
        "cache_bytes = 2 (k and v) * n_layer * batch * seq_len * n_embd * 4 bytes (float32)")
    assert impl.cache_bytes(cfg, 3, 7, bytes_per_value=2) == 2 * 3 * 3 * 7 * 8 * 2, (
        "bytes_per_value=2 (float16) halves the cache")
    model = tiny_gpt(impl, n_layer=3, dtype=torch.float32)
    with torch.no_grad():
        _, cache = model.forward_cached(tokens(rng, (2, 5)))
    real = sum(k.nelement() * k.element_size() + v.nelement() * v.element_size()
               for k, v in cache)
    assert impl.cache_bytes(model.config, 2, 5) == real, (
        f"cache_bytes should equal the bytes a real float32 cache holds ({real})")

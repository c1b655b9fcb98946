# %% [markdown]
# # s35 · KV cache lab: the same tokens, less work
#
# This lab runs **your** `exercises/s35_kv_cache.py` on a GPT pretrained on Tiny Shakespeare:
# your own checkpoint from s30 (`python tools/pretrain.py`) when `results/` has one, otherwise
# a small one trained now in about 30 seconds. Your GPT has s26's parameter names, so the
# checkpoint's weights load into it unchanged. You will
#
# 1. check that your cached forward gives the pretrained model's logits and the same text;
# 2. count how many positions each step feeds the model, with and without the cache;
# 3. time decoding with and without the cache against the sequence length, on the pretrained
#    model (up to and past its block size) and on a wider model with a longer block;
# 4. see what the cache costs in memory.
#
# Every experiment is recorded under `results/s35_kv_cache/`.

# %%
import dataclasses
import os
import time

import matplotlib.pyplot as plt
import torch

from tools.checkpoint import lab_model
from tools.labkit import Run, load_step

kv = load_step("s35_kv_cache")
torch.set_num_threads(1)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
pretrained, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                       else "exercises")
print("model:", source)
model = kv.GPT(kv.GPTConfig(**dataclasses.asdict(config))).eval()
model.load_state_dict(pretrained.state_dict())
PROMPT = "ROMEO:\n"
prompt = torch.tensor([encode(PROMPT)])
run = Run("s35_kv_cache", config={"model": source, "prompt": PROMPT,
                                  "block_size": config.block_size}, seed=0)

# %% [markdown]
# ## 1. Same logits, same text
# Feed the prompt and 40 more characters one token at a time through the cache and compare
# every position's logits with one full forward of the pretrained model.

# %%
text_ids = kv.generate(model, prompt, 40)  # greedy
with torch.no_grad():
    full = pretrained(text_ids)[0]
    cache, steps = None, []
    for t in range(text_ids.size(1)):
        logits, cache = model.forward_cached(text_ids[:, t:t + 1], cache)
        steps.append(logits[:, 0])
gap = float((torch.stack(steps, 1) - full).abs().max())
plain = kv.generate(model, prompt, 120, use_cache=False)
cached = kv.generate(model, prompt, 120)
print(f"largest logit difference, cached vs full forward (float32): {gap:.2e}")
print("greedy text identical with and without the cache:", torch.equal(plain, cached))
print(decode(cached[0].tolist()))
run.metric("max_logit_gap_float32", gap)
run.metric("greedy_identical", float(torch.equal(plain, cached)))

# %% [markdown]
# ## 2. What each step feeds the model
# A hook on layer 0's `c_attn` records how many positions it sees per call. Without the cache
# the context grows by one each step; with it, one prefill then one position per step, until
# the cache holds `block_size` positions and the window starts to slide.

# %%
widths = {}
for use_cache in (False, True):
    seen = []
    hook = model.transformer.h[0].attn.c_attn.register_forward_hook(
        lambda mod, args, out, seen=seen: seen.append(args[0].size(1)))
    kv.generate(model, prompt, config.block_size + 20, use_cache=use_cache)
    hook.remove()
    widths[use_cache] = seen
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(widths[False], label="no cache")
ax.plot(widths[True], label="KV cache")
ax.axvline(config.block_size - prompt.size(1), ls="--", c="gray", label="cache full")
ax.set_xlabel("decoding step")
ax.set_ylabel("positions fed to the model")
ax.legend()
run.figure(fig, "positions_per_step")
work = {c: sum(w) for c, w in widths.items()}
print(f"positions processed for {config.block_size + 20} tokens: no cache {work[False]}, "
      f"cache {work[True]}")
run.metric("positions_no_cache", work[False])
run.metric("positions_cache", work[True])


# %% [markdown]
# ## 3. Speed against sequence length
# Tokens per second for greedy decoding of n new tokens from a one-token prompt. Without the
# cache step t costs a forward over t positions, so the rate falls as n grows; with it each
# step costs about the same, so the speed-up grows with n, until the block size: past it the
# window slides, every cached key is stale, and the cached loop recomputes like the plain one.
# The pretrained model is tiny (its block is 64), so the same experiment runs on a wider
# model with a 256-token block too (random weights: speed does not depend on the weights).

# %%
def tokens_per_s(m, n: int, use_cache: bool) -> float:
    start = torch.zeros(1, 1, dtype=torch.long)
    t0 = time.perf_counter()
    kv.generate(m, start, n, use_cache=use_cache)
    return n / (time.perf_counter() - t0)


torch.manual_seed(0)
wide = kv.GPT(kv.GPTConfig(vocab_size=config.vocab_size, block_size=256, n_layer=4, n_head=4,
                           n_embd=256)).eval()
B = config.block_size
experiments = {f"pretrained (block {B})": (model, [B // 4, B // 2, B - 1, 2 * B]),
               "4 layers x 256 wide (block 256)": (wide, [16, 32, 64, 128, 255])}
speedup = {}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for i, (name, (m, lengths)) in enumerate(experiments.items()):
    tokens_per_s(m, 8, True)  # warm up
    rates = {c: [tokens_per_s(m, n, c) for n in lengths] for c in (False, True)}
    speedup[name] = [c / p for c, p in zip(rates[True], rates[False], strict=True)]
    axes[0].plot(lengths, rates[True], marker="o", c=f"C{i}", label=f"{name}, cache")
    axes[0].plot(lengths, rates[False], marker="x", ls="--", c=f"C{i}",
                 label=f"{name}, no cache")
    axes[1].plot(lengths, speedup[name], marker="o", c=f"C{i}", label=name)
    for n, s in zip(lengths, speedup[name], strict=True):
        run.metric(f"speedup {name} n={n}", s)
        print(f"{name}: {n} tokens, speed-up {s:.1f}x")
axes[0].set_xlabel("new tokens")
axes[0].set_ylabel("tokens / s")
axes[0].set_yscale("log")
axes[0].legend(fontsize=7)
axes[1].axhline(1, c="gray", ls=":")
axes[1].set_xlabel("new tokens")
axes[1].set_ylabel("speed-up (cache / no cache)")
axes[1].legend(fontsize=7)
run.figure(fig, "speedup_vs_length")

# %% [markdown]
# ## 4. What the cache costs
# Two tensors (keys and values) per layer, each batch x positions x n_embd. For a model the
# size of GPT-2 small (12 layers, 768 wide, 1,024 positions) that is tens of megabytes per
# sequence in float32: at a large batch the cache, not the weights, fills the memory.

# %%
gpt2 = kv.GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
for name, cfg, n in (("pretrained", model.config, config.block_size), ("GPT-2 small", gpt2,
                                                                       1024)):
    mb = kv.cache_bytes(cfg, 1, n) / 2**20
    print(f"{name}: a full cache of {n} positions is {mb:.2f} MiB per sequence (float32)")
    run.metric(f"cache_mib {name}", mb)
batches = [1, 8, 32, 128]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(batches, [kv.cache_bytes(gpt2, b, 1024) / 2**30 for b in batches], marker="o",
        label="cache (float32)")
ax.axhline(124e6 * 4 / 2**30, ls="--", c="gray", label="GPT-2 small's weights")
ax.set_xlabel("batch size")
ax.set_ylabel("GiB")
ax.legend()
run.figure(fig, "cache_memory")

# %%
wide_name = "4 layers x 256 wide (block 256)"
run.finish(f"On {source}: cached logits match the full forward to {gap:.1e}, greedy text is "
           f"identical. For {config.block_size + 20} tokens the cache feeds {work[True]} "
           f"positions instead of {work[False]}. Speed-up at the block size: "
           f"{speedup[f'pretrained (block {B})'][2]:.1f}x on the pretrained model, "
           f"{speedup[wide_name][-1]:.1f}x on the wider one at 255 tokens; past the block "
           f"size it falls to {speedup[f'pretrained (block {B})'][3]:.1f}x (the window slides).")

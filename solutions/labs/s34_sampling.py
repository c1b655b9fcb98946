# %% [markdown]
# # s34 · Sampling lab: one model, many voices
#
# This lab runs **your** `exercises/s34_sampling.py` on a GPT pretrained on Tiny Shakespeare:
# your own checkpoint from s30 (`python tools/pretrain.py`) when `results/` has one, otherwise
# a small one trained now in about 30 seconds. You will
#
# 1. see how temperature reshapes the next-token distribution (its entropy);
# 2. sample the same prompt greedily, at several temperatures, with top-k, top-p and a
#    repetition penalty, and measure repetition (distinct 4-grams) and the model's own
#    log-probability of what it wrote;
# 3. compare greedy decoding with beam search by log-probability.
#
# Every experiment is recorded under `results/s34_sampling/`.

# %%
import os

import matplotlib.pyplot as plt
import torch

from tools.checkpoint import lab_model
from tools.labkit import Run, load_step

smp = load_step("s34_sampling")
torch.set_num_threads(1)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
model, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                  else "exercises")
print("model:", source)
PROMPT = "ROMEO:\n"
prompt = torch.tensor([encode(PROMPT)])
run = Run("s34_sampling", config={"model": source, "prompt": PROMPT, "new_tokens": 200},
          seed=0)

# %% [markdown]
# ## 1. Temperature and entropy
# Divide the logits by T before the softmax: T < 1 sharpens (entropy falls towards 0, the
# argmax), T > 1 flattens (entropy rises towards ln V, uniform noise).

# %%
with torch.no_grad():
    last = model(prompt)[0][0, -1]
temps = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
entropy = []
for t in temps:
    p = torch.softmax(smp.apply_temperature(last, t), -1)
    entropy.append(float(-(p * p.clamp_min(1e-12).log()).sum()))
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(temps, entropy, marker="o")
ax.axhline(torch.log(torch.tensor(float(config.vocab_size))).item(), ls="--", c="gray",
           label="ln V (uniform)")
ax.set_xlabel("temperature")
ax.set_ylabel("entropy of p(next) (nats)")
ax.legend()
run.figure(fig, "entropy_vs_temperature")
run.metric("entropy_T1", entropy[temps.index(1.0)])

# %% [markdown]
# ## 2. Decoders side by side
# Distinct 4-grams (share of the 4-character windows that are new) measure repetition;
# the mean log-probability per token is how likely the model itself finds the text.
# Greedy is the most likely step by step and the most repetitive; high temperature is varied
# and unlikely; top-k / top-p cut the unreliable tail and sit in between.


# %%
def distinct4(text):
    grams = [text[i:i + 4] for i in range(len(text) - 3)]
    return len(set(grams)) / max(1, len(grams))


settings = {"greedy": {"temperature": 0.0}, "T=0.7": {"temperature": 0.7},
            "T=1.0": {"temperature": 1.0}, "T=1.5": {"temperature": 1.5},
            "top-k 10": {"temperature": 1.0, "top_k": 10},
            "top-p 0.9": {"temperature": 1.0, "top_p": 0.9},
            "greedy + penalty 1.3": {"temperature": 0.0, "repetition_penalty": 1.3}}
rows = {}
for name, kw in settings.items():
    out = smp.generate(model, prompt, 200, config.block_size,
                       generator=torch.Generator().manual_seed(0), **kw)
    text = decode(out[0, prompt.size(1):].tolist())
    windows = out[:, -config.block_size:]  # score the last block the model can see at once
    lp = float(smp.sequence_logprob(model, windows, 1)[0]) / (windows.size(1) - 1)
    rows[name] = (distinct4(text), lp)
    run.metric(f"distinct4 {name}", rows[name][0])
    run.metric(f"logprob_per_token {name}", lp)
    print(f"--- {name}: distinct 4-grams {rows[name][0]:.2f}, log p per token {lp:.2f}")
    print(text[:160])
fig, ax = plt.subplots(figsize=(6, 4))
for name, (d, lp) in rows.items():
    ax.scatter(d, lp)
    ax.annotate(name, (d, lp), fontsize=8)
ax.set_xlabel("distinct 4-grams (higher: less repetition)")
ax.set_ylabel("mean log p per token (higher: more likely to the model)")
run.figure(fig, "diversity_vs_likelihood")

# %% [markdown]
# ## 3. Greedy vs beam search
# Beam search keeps the `width` best partial sequences; its best is never less likely than
# greedy's, and it is the exact optimum only when the beam holds every prefix.

# %%
short = prompt[:, -4:]
widths = [1, 2, 4, 8]
scores = [smp.beam_search(model, short, 12, w, config.block_size)[1] for w in widths]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(widths, scores, marker="o")
ax.set_xscale("log", base=2)
ax.set_xlabel("beam width")
ax.set_ylabel("log p of 12 new tokens")
run.figure(fig, "beam_width")
for w, s in zip(widths, scores, strict=True):
    run.metric(f"beam_logprob_w{w}", s)

# %%
run.finish(f"On {source}: entropy at T=1 is {entropy[temps.index(1.0)]:.2f} nats. Greedy "
           f"writes {rows['greedy'][0]:.2f} distinct 4-grams at {rows['greedy'][1]:.2f} nats "
           f"per token, T=1.5 {rows['T=1.5'][0]:.2f} at {rows['T=1.5'][1]:.2f}; the repetition "
           f"penalty lifts greedy to {rows['greedy + penalty 1.3'][0]:.2f}. Beam width 8 scores "
           f"{scores[-1]:.2f} against greedy's {scores[0]:.2f}.")

# %% [markdown]
# # s24 · Attention lab: masks, the 1/√d_k scale, and a lookup that attention learns
#
# This lab runs **your** `exercises/s24_attention.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. look at attention weights as heatmaps: no mask, causal, padding, causal + padding;
# 2. measure how the softmax saturates as the head size d_k grows, with and without 1/√d_k;
# 3. train two embedding tables on a key → value lookup task and watch attention point at the
#    right slot, then remove the padding mask and watch it get fooled.
#
# Every experiment is recorded under `results/s24_attention/`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from tools.labkit import Run, load_step

attn = load_step("s24_attention")
torch.manual_seed(0)
run = Run("s24_attention", config={"T": 8, "lookup_slots": 8, "lookup_dim": 16,
                                   "lookup_steps": 150, "dk_grid": [2, 8, 32, 128, 512, 2048]},
          seed=0)

# %% [markdown]
# ## 1. What the masks do to the weights
# Random queries and keys for T = 8 positions; the sequence has 5 real tokens and 3 padding
# tokens at the end. Each row is a query, each column a key; a row sums to 1.
#
# - **causal**: the upper triangle is exactly 0 (a token cannot read the future); row 0 puts
#   all its weight on itself.
# - **padding**: the last 3 columns are 0 for every query. The padded *rows* still hold
#   numbers: padded queries are ignored later by the loss, so nobody cares what they see.
# - A triangular pattern in a trained model's heatmap is the mask, not something it learned.

# %%
T, d = 8, 4
q, k, v = (torch.randn(1, 1, T, d) for _ in range(3))  # (B, nh, T, hs)
pad = attn.padding_mask(torch.tensor([5]), T)  # (B, 1, 1, S)
causal = attn.causal_mask(T)  # (T, T)
masks = {"no mask": None, "causal": causal, "padding (length 5)": pad,
         "causal & padding": causal & pad}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (name, mask) in zip(axes, masks.items(), strict=True):
    _, w = attn.scaled_dot_product_attention(q, k, v, mask=mask)
    ax.imshow(w[0, 0].numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_title(name)
    ax.set_xlabel("key position j")
    ax.set_ylabel("query position i")
    if mask is not None:
        run.metric(f"max_masked_weight[{name}]", float(w[0, 0][~mask.expand(1, 1, T, T)[0, 0]]
                                                       .abs().max()))
fig.tight_layout()
run.figure(fig, "mask_heatmaps")
plt.show()

# %% [markdown]
# ## 2. Why divide by √d_k: saturation as the head grows
# For random q and k with unit-variance entries, q · k has variance d_k. We attend one query
# to S = 32 keys for growing d_k and measure the **entropy** of the weights,
# H = -Σ_j w_j log w_j: log 32 ≈ 3.47 nats for uniform attention, 0 for a one-hot.
#
# Your function always divides by √d_k; to see attention *without* the scale we feed it
# q · √d_k, which cancels the division.

# %%
S, n_queries = 32, 256
dks = run.record["config"]["dk_grid"]


def entropy(w):
    return float(-(w * torch.log(w.clamp_min(1e-30))).sum(-1).mean())


stats = {"scaled": [], "unscaled": []}
max_weight = {"scaled": [], "unscaled": []}
for d_k in dks:
    q, k = torch.randn(n_queries, 1, d_k), torch.randn(n_queries, S, d_k)
    v = torch.randn(n_queries, S, 1)
    for name, qq in (("scaled", q), ("unscaled", q * math.sqrt(d_k))):
        _, w = attn.scaled_dot_product_attention(qq, k, v)
        stats[name].append(entropy(w))
        max_weight[name].append(float(w.max(-1).values.mean()))

fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
for name, style in (("scaled", "o-"), ("unscaled", "s--")):
    a1.plot(dks, stats[name], style, label=f"{name}")
    a2.plot(dks, max_weight[name], style, label=f"{name}")
a1.axhline(math.log(S), color="grey", lw=0.8, label="uniform (log S)")
a1.set_ylabel("mean entropy of a row (nats)")
a2.set_ylabel("mean largest weight in a row")
for a in (a1, a2):
    a.set_xscale("log", base=2)
    a.set_xlabel("d_k (head size)")
    a.legend()
fig.tight_layout()
run.figure(fig, "scale_vs_saturation")
plt.show()
run.metric("entropy_scaled_dk2048", stats["scaled"][-1])
run.metric("entropy_unscaled_dk2048", stats["unscaled"][-1])
print("d_k:", dks)
print("entropy with 1/sqrt(d_k):", np.round(stats["scaled"], 2))
print("entropy without it:      ", np.round(stats["unscaled"], 2))

# %% [markdown]
# With the scale the entropy stays put whatever d_k: the logits keep unit variance. Without
# it the softmax turns into an argmax as d_k grows; its gradient w_j (δ_jk - w_k) is then
# ~0 everywhere, so the model gets no signal about which *other* key it should have picked.

# %% [markdown]
# ## 3. Attention as a learned lookup
# Each example holds up to 8 (key, value) slots; keys are distinct ids from 16, values are
# one of 10 labels. A query key asks "what is my value?". The model is nothing but two
# embedding tables, one for queries and one for keys; the values are one-hot vectors, so the
# attention output *is* a probability distribution over the 10 labels.
#
# The trap: the padded slots hold copies of the query key with random values. Only the
# padding mask keeps attention away from them.

# %%
N_KEYS, N_VALS, SLOTS, D = 16, 10, 8, 16


def make_batch(B, gen):
    keys = torch.rand(B, N_KEYS, generator=gen).argsort(-1)[:, :SLOTS]  # distinct keys
    vals = torch.randint(0, N_VALS, (B, SLOTS), generator=gen)
    lengths = torch.randint(3, SLOTS + 1, (B,), generator=gen)
    pos = (torch.rand(B, generator=gen) * lengths).long()  # a real slot
    query = keys[torch.arange(B), pos]
    padded = torch.arange(SLOTS)[None] >= lengths[:, None]
    keys = torch.where(padded, query[:, None], keys)  # decoys in the padding
    return keys, vals, lengths, query, pos


E_query, E_key = torch.nn.Embedding(N_KEYS, D), torch.nn.Embedding(N_KEYS, D)


def lookup(keys, vals, lengths, query, use_mask=True):
    q = E_query(query)[:, None, None, :]  # (B, nh=1, T=1, D)
    k = E_key(keys)[:, None]  # (B, 1, S, D)
    v = F.one_hot(vals, N_VALS).float()[:, None]  # (B, 1, S, N_VALS)
    mask = attn.padding_mask(lengths, SLOTS) if use_mask else None  # (B, 1, 1, S)
    out, w = attn.scaled_dot_product_attention(q, k, v, mask=mask)
    return out[:, 0, 0], w[:, 0, 0]  # (B, N_VALS) probabilities, (B, S) weights


gen = torch.Generator().manual_seed(0)
opt = torch.optim.Adam([*E_query.parameters(), *E_key.parameters()], lr=0.05)
losses = []
for _step in range(run.record["config"]["lookup_steps"]):
    keys, vals, lengths, query, pos = make_batch(256, gen)
    probs, _ = lookup(keys, vals, lengths, query)
    loss = F.nll_loss(torch.log(probs + 1e-9), vals[torch.arange(256), pos])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

with torch.no_grad():
    keys, vals, lengths, query, pos = make_batch(2000, gen)
    target = vals[torch.arange(2000), pos]
    results = {}
    for use_mask in (True, False):
        probs, w = lookup(keys, vals, lengths, query, use_mask)
        results[use_mask] = (float((probs.argmax(-1) == target).float().mean()),
                             float(w[torch.arange(2000), pos].mean()))
print(f"with the padding mask:    accuracy {results[True][0]:.3f}, "
      f"weight on the right slot {results[True][1]:.3f}")
print(f"without the padding mask: accuracy {results[False][0]:.3f}, "
      f"weight on the right slot {results[False][1]:.3f}")
run.metric("lookup_accuracy_masked", results[True][0])
run.metric("lookup_accuracy_unmasked", results[False][0])
run.metric("lookup_weight_on_answer", results[True][1])

# %%
with torch.no_grad():
    _, w_masked = lookup(keys[:8], vals[:8], lengths[:8], query[:8], True)
    _, w_open = lookup(keys[:8], vals[:8], lengths[:8], query[:8], False)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1.2, 1, 1]})
axes[0].plot(losses)
axes[0].set_yscale("log")
axes[0].set_xlabel("step")
axes[0].set_title("lookup training loss")
for ax, w, title in ((axes[1], w_masked, "with padding mask"),
                     (axes[2], w_open, "without: decoys in the padding")):
    ax.imshow(w.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.scatter(pos[:8].numpy(), np.arange(8), marker="x", color="red", label="right slot")
    for b in range(8):
        ax.axvspan(lengths[b] - 0.5, SLOTS - 0.5, ymin=1 - (b + 1) / 8, ymax=1 - b / 8,
                   color="white", alpha=0.25, lw=0)
    ax.set_title(title)
    ax.set_xlabel("slot (pale = padding)")
    ax.set_ylabel("example")
axes[1].legend(loc="lower right", fontsize=7)
fig.tight_layout()
run.figure(fig, "lookup_attention")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"Masked weights are exactly 0 in every heatmap. Without 1/sqrt(d_k) the entropy falls "
    f"from {stats['unscaled'][0]:.2f} to {stats['unscaled'][-1]:.2f} nats as d_k grows, while "
    f"the scaled version stays near {np.mean(stats['scaled']):.2f}. The lookup model puts "
    f"{results[True][1]:.2f} of its weight on the right slot ({results[True][0]:.1%} correct); "
    f"without the padding mask the decoys take their share and accuracy drops to "
    f"{results[False][0]:.1%}.")

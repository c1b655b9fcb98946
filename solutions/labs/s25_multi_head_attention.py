# %% [markdown]
# # s25 · Multi-head attention lab: heads that specialise, clocks for positions, RoPE
#
# This lab runs **your** `exercises/s25_multi_head_attention.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. look at sinusoidal position codes and how similar two positions' codes are;
# 2. see that with RoPE the score q . k depends only on the distance between two tokens;
# 3. train one causal multi-head attention layer to copy the tokens 1 AND 3 steps back, and
#    draw the attention pattern of each head: one head per job.
#
# Every experiment is recorded under `results/s25_multi_head_attention/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tools.labkit import Run, load_step

mha = load_step("s25_multi_head_attention")
torch.manual_seed(0)
config = {"T": 12, "vocab": 8, "d_model": 32, "lags": [1, 3], "steps": 400, "lr": 0.01}
run = Run("s25_multi_head_attention", config=config, seed=0)

# %% [markdown]
# ## 1. Sinusoidal positions: a clock per pair of features
# Left: the code of each position (rows) is a set of sines and cosines at falling
# frequencies (columns). Right: the dot product of two codes is largest on the diagonal and
# depends only on the distance |p - p'|, so it decays along every diagonal the same way.

# %%
pe = mha.sinusoidal_positions(64, 32)
sim = (pe @ pe.T).numpy()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].imshow(pe.numpy(), aspect="auto", cmap="RdBu")
axes[0].set_xlabel("feature")
axes[0].set_ylabel("position")
axes[0].set_title("sinusoidal_positions(64, 32)")
axes[1].imshow(sim, cmap="viridis")
axes[1].set_title("PE[p] . PE[p']")
axes[1].set_xlabel("position p'")
fig.tight_layout()
run.figure(fig, "sinusoidal")
plt.show()
dists = torch.cdist(pe.double(), pe.double()) + torch.eye(64) * 1e9
run.metric("min_distance_between_position_codes", float(dists.min()))

# %% [markdown]
# ## 2. RoPE sees relative positions
# One query vector q and one key vector k, rotated to positions m and n. Every anti-diagonal
# (m - n constant) of the score matrix holds a single value: the curve on the right is the
# whole story.

# %%
q, k = torch.randn(1, 16, dtype=torch.float64), torch.randn(1, 16, dtype=torch.float64)
P = 32
qs = mha.apply_rope(q.expand(P, 16).clone())  # position m on row m
ks = mha.apply_rope(k.expand(P, 16).clone())
scores = (qs @ ks.T).numpy()  # (m, n)
by_distance = [scores[P - 1, P - 1 - d] for d in range(P)]  # the last query, d back
spread = max(np.ptp(np.diagonal(scores, -d)) for d in range(P))
run.metric("rope_max_spread_along_a_diagonal", float(spread))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].imshow(scores, cmap="RdBu")
axes[0].set_xlabel("key position n")
axes[0].set_ylabel("query position m")
axes[0].set_title("rope(q, m) . rope(k, n)")
axes[1].plot(range(P), by_distance, marker=".")
axes[1].set_xlabel("distance m - n")
axes[1].set_title("score as a function of distance")
fig.tight_layout()
run.figure(fig, "rope_relative")
plt.show()

# %% [markdown]
# ## 3. Two jobs, two heads
# The target at position t is the token at t - 1 AND the token at t - 3 (two readouts). One
# causal attention layer with 2 heads, token embedding + sinusoidal positions. Each softmax row
# is one distribution, so one head cannot fetch two different tokens sharply; two heads can.


# %%
class Copier(nn.Module):
    def __init__(self, n_heads):
        super().__init__()
        V, E = config["vocab"], config["d_model"]
        self.emb = nn.Embedding(V, E)
        self.register_buffer("pos", mha.sinusoidal_positions(config["T"], E))
        self.attn = mha.MultiHeadAttention(E, n_heads, batch_first=True)
        self.read = nn.ModuleList(nn.Linear(E, V) for _ in config["lags"])

    def forward(self, x):
        h = self.emb(x) + self.pos
        out, w = self.attn(h, h, h, is_causal=True, average_attn_weights=False)
        return [r(out) for r in self.read], w


def train(n_heads):
    torch.manual_seed(0)
    model = Copier(n_heads)
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    lmax = max(config["lags"])
    for _ in range(config["steps"]):
        x = torch.randint(0, config["vocab"], (32, config["T"]))
        logits, _ = model(x)
        loss = sum(F.cross_entropy(lg[:, lmax:].reshape(-1, config["vocab"]),
                                   x[:, lmax - lag:config["T"] - lag].reshape(-1))
                   for lg, lag in zip(logits, config["lags"], strict=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.randint(0, config["vocab"], (256, config["T"]))
    with torch.no_grad():
        logits, w = model(x)
    acc = [float((lg[:, lmax:].argmax(-1) == x[:, lmax - lag:config["T"] - lag]).float().mean())
           for lg, lag in zip(logits, config["lags"], strict=True)]
    return acc, w.mean(0)  # per-head pattern averaged over the batch: (nh, T, T)


results = {nh: train(nh) for nh in (1, 2)}
for nh, (acc, _) in results.items():
    for lag, a in zip(config["lags"], acc, strict=True):
        run.metric(f"accuracy[heads={nh}, lag={lag}]", a)

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
panels = [(results[1][1][0], "1 head")] + [(results[2][1][h], f"2 heads: head {h}")
                                           for h in range(2)]
for ax, (w, title) in zip(axes, panels, strict=True):
    ax.imshow(w.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
fig.tight_layout()
run.figure(fig, "attention_per_head")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
(acc1, _), (acc2, _) = results[1], results[2]
run.finish(
    f"No two sinusoidal codes coincide (closest pair {float(dists.min()):.3f} apart) and the RoPE "
    f"score varies by at most {spread:.1e} along a diagonal: it depends on m - n only. With one "
    f"head the copier reaches {acc1[0]:.0%} / {acc1[1]:.0%} on lags 1 / 3; with two heads "
    f"{acc2[0]:.0%} / {acc2[1]:.0%}, each head drawing its own diagonal.")

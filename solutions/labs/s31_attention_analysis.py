# %% [markdown]
# # s31 · Attention analysis lab: what do the heads of your GPT look at?
#
# This lab runs **your** `exercises/s31_attention_analysis.py` on a GPT. It uses the model
# you pretrained in s30 when there is one (the newest `results/*/ckpt.pt`); otherwise it
# trains a tiny GPT here with your s26 code (about half a minute) and says so. You will
#
# 1. draw every layer's and head's attention map on one piece of text;
# 2. compare the heads by the entropy of their rows (box plots);
# 3. ablate each head in turn and measure how much the loss rises;
# 4. follow the attention from the inputs to the top with attention rollout.
#
# Every experiment is recorded under `results/s31_attention_analysis/`.

# %%
import os

import matplotlib.pyplot as plt
import torch

from tools.course import ROOT
from tools.labkit import Run, load_step

torch.set_num_threads(1)  # small matrices: one thread is faster than several fighting
ana = load_step("s31_attention_analysis")
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")
TEXT = ("the quick brown fox jumps over the lazy dog. a tiny model learns the letters, then the "
        "words, then the sentence. the quick brown fox jumps over the lazy dog again. ") * 4

# %% [markdown]
# ## 0. The model: your pretrained GPT, or a tiny one trained now

# %%
model, source = None, ""
found = sorted((ROOT / "results").glob("*/ckpt.pt"), key=lambda p: p.stat().st_mtime)
if found:
    try:
        from tools.checkpoint import load_gpt
        model, encode, decode, config = load_gpt(
            found[-1], impl=IMPL if IMPL in ("solutions", "exercises") else "exercises")
        encode(TEXT[:10])  # the lab's text must be expressible in its tokenizer
        source = f"the pretrained checkpoint {found[-1].relative_to(ROOT)}"
    except Exception as exc:  # no tools/checkpoint.py yet, another format, unknown characters
        print(f"could not use {found[-1]}: {exc}")
        model = None

if model is None:
    gpt = load_step("s26_gpt")
    chars = sorted(set(TEXT))
    stoi = {c: i for i, c in enumerate(chars)}

    def encode(s):
        return [stoi[c] for c in s]

    def decode(ids):
        return "".join(chars[i] for i in ids)

    config = gpt.GPTConfig(vocab_size=len(chars), block_size=32, n_layer=2, n_head=4,
                           n_embd=48)
    torch.manual_seed(0)
    model = gpt.GPT(config)
    data = torch.tensor(encode(TEXT))
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        ix = torch.randint(0, len(data) - 33, (16,), generator=gen)
        x = torch.stack([data[i:i + 32] for i in ix])
        y = torch.stack([data[i + 1:i + 33] for i in ix])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    source = f"a tiny GPT trained in this lab (300 steps, final loss {loss.item():.2f})"
model.eval()
print("analysing", source)
L, H = config.n_layer, config.n_head
T = min(config.block_size, 32)
ids = torch.tensor(encode(TEXT))
idx = ids[:T][None]  # (1, T): the text the maps are drawn on
batch = torch.stack([ids[i:i + T + 1] for i in range(0, 8 * T, T)])  # (8, T + 1)
run = Run("s31_attention_analysis", config={"model": source, "n_layer": L, "n_head": H,
                                            "T": T}, seed=0)

# %% [markdown]
# ## 1. Every head's map
# Rows are queries (the position predicting), columns keys. The upper triangle is 0 because
# of the causal mask: do not read it as something learned. Look for a bright first
# sub-diagonal (a previous-token head), vertical stripes (a head parking on one token) and
# diffuse rows (averaging heads).

# %%
maps = ana.attention_maps(model, idx)  # (L, 1, H, T, T)
labels = list(decode(idx[0].tolist())) if len(decode(idx[0].tolist())) == T else None
shown_l, shown_h = min(L, 6), min(H, 8)
fig, axes = plt.subplots(shown_l, shown_h, figsize=(2.1 * shown_h, 2.1 * shown_l),
                         squeeze=False)
for layer in range(shown_l):
    for head in range(shown_h):
        ax = axes[layer, head]
        ax.imshow(maps[layer, 0, head].numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"L{layer} H{head}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
fig.suptitle(f"attention maps of {source}", fontsize=9)
fig.tight_layout()
run.figure(fig, "attention_maps")
plt.show()

# %% [markdown]
# ## 2. Entropy per head
# Each box is the entropy of every row of one head over 8 windows. Row t can reach at most
# ln(t + 1) nats (uniform over its t + 1 keys); low boxes are sharp heads.

# %%
with torch.no_grad():
    all_maps = ana.attention_maps(model, batch[:, :T])  # (L, 8, H, T, T)
entropy = ana.attention_entropy(all_maps)  # (L, 8, H, T)
fig, ax = plt.subplots(figsize=(max(6, 0.5 * L * H), 3.5))
boxes = [entropy[layer, :, head].flatten().numpy() for layer in range(L) for head in range(H)]
ax.boxplot(boxes)
ax.set_xticks(range(1, L * H + 1), [f"L{la}H{he}" for la in range(L) for he in range(H)],
              rotation=90, fontsize=7)
ax.axhline(float(torch.log(torch.arange(1, T + 1).float()).mean()), color="grey", ls="--",
           label="uniform rows (mean of ln(t + 1))")
ax.set_ylabel("row entropy (nats)")
ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
fig.tight_layout()
run.figure(fig, "entropy_boxplots")
plt.show()
per_layer = entropy.mean(dim=(1, 2, 3))
for layer in range(L):
    run.metric(f"mean_entropy_layer_{layer}", per_layer[layer])
sharpest = divmod(int(entropy.mean(dim=(1, 3)).argmin()), H)
run.metric("sharpest_head", f"L{sharpest[0]}H{sharpest[1]}")

# %% [markdown]
# ## 3. Which heads matter? Ablate each one
# The loss of the next-token prediction with one head silenced, minus the intact loss. A head
# can be sharp and still not matter: compare this picture with the entropies.

# %%
importance = ana.head_importance(model, batch[:, :T], batch[:, 1:])
fig, ax = plt.subplots(figsize=(0.6 * H + 2, 0.5 * L + 1.5))
im = ax.imshow(importance.numpy(), cmap="magma")
ax.set_xlabel("head")
ax.set_ylabel("layer")
ax.set_title("loss increase when ablated (nats)", fontsize=9)
fig.colorbar(im, ax=ax)
fig.tight_layout()
run.figure(fig, "head_importance")
plt.show()
top = divmod(int(importance.argmax()), H)
run.metric("most_important_head", f"L{top[0]}H{top[1]}")
run.metric("largest_loss_increase", importance.max())
run.metric("smallest_loss_increase", importance.min())

# %% [markdown]
# ## 4. Attention rollout
# The raw maps say where one layer looks; rollout chains the layers (and the residual path,
# (A + I) / 2) to say which INPUT tokens feed each position at the top. The bar chart is the
# last position's row.

# %%
rollout = ana.attention_rollout(maps)[0]  # (T, T)
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
a1.imshow(rollout.numpy(), cmap="viridis")
a1.set_title("rollout (residual included)", fontsize=9)
a1.set_xlabel("input token")
a1.set_ylabel("position")
a2.bar(range(T), rollout[-1].numpy())
if labels:
    a2.set_xticks(range(T), [repr(c)[1:-1] for c in labels], fontsize=7)
a2.set_title("where the last position's information comes from", fontsize=9)
fig.tight_layout()
run.figure(fig, "rollout")
plt.show()
run.metric("rollout_self_weight_last", rollout[-1, -1])

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"Analysed {source}. The sharpest head is L{sharpest[0]}H{sharpest[1]} and the one the "
    f"loss needs most is L{top[0]}H{top[1]} (+{float(importance.max()):.3f} nats when "
    f"ablated); the mean row entropy per layer is "
    f"{[round(float(e), 2) for e in per_layer]}. In the rollout the last position keeps "
    f"{float(rollout[-1, -1]):.2f} of its own token.")

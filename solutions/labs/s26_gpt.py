# %% [markdown]
# # s26 · GPT lab: a tiny language model, its loss at init, pre-LN vs post-LN
#
# This lab runs **your** `exercises/s26_gpt.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. check the parameter count and the loss at initialisation against ln(vocab_size);
# 2. train a tiny character GPT on a short paragraph and sample from it as it learns;
# 3. look at the attention pattern of every head of the trained model.
#
# Every experiment is recorded under `results/s26_gpt/`.

# %%
import math

import matplotlib.pyplot as plt
import torch

from tools.labkit import Run, load_step

gpt = load_step("s26_gpt")
TEXT = ("the quick brown fox jumps over the lazy dog. a tiny model learns the letters, then the "
        "words, then the sentence. the quick brown fox jumps over the lazy dog again. ") * 4
chars = sorted(set(TEXT))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in TEXT])
config = gpt.GPTConfig(vocab_size=len(chars), block_size=32, n_layer=2, n_head=2, n_embd=32)
run = Run("s26_gpt", config={**vars(config), "steps": 250, "lr": 3e-3, "batch": 16}, seed=0)

# %% [markdown]
# ## 1. Count and loss at initialisation
# A uniform guess over V characters costs ln V nats. A freshly initialised GPT should be
# within a few hundredths of it; far above means the logits are too big at init.

# %%
torch.manual_seed(0)
model = gpt.GPT(config)
real = sum(p.numel() for p in model.parameters())
run.metric("parameters", real)
run.metric("count_parameters", gpt.count_parameters(config))


def batch(gen):
    ix = torch.randint(0, len(data) - config.block_size - 1, (16,), generator=gen)
    x = torch.stack([data[i:i + config.block_size] for i in ix])
    y = torch.stack([data[i + 1:i + config.block_size + 1] for i in ix])
    return x, y


gen = torch.Generator().manual_seed(0)
with torch.no_grad():
    init_loss = float(model(*batch(gen))[1])
run.metric("loss_at_init", init_loss)
run.metric("ln_vocab", math.log(len(chars)))

# %% [markdown]
# ## 2. Train and sample
# The loss falls from ln V; samples go from noise to letters to words of the paragraph.

# %%
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
losses, samples = [], {}
prompt = torch.tensor([[stoi["t"]]])
for step in range(250):
    _, loss = model(*batch(gen))
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step in (0, 50, 249):
        out = model.generate(prompt, 40, top_k=5, generator=torch.Generator().manual_seed(0))
        samples[step] = "".join(chars[i] for i in out[0].tolist())
        print(f"step {step:3d}  loss {losses[-1]:.3f}  sample: {samples[step]!r}")
run.metric("final_loss", losses[-1])

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(losses, label="training loss")
ax.axhline(math.log(len(chars)), color="grey", ls="--", label="ln V (uniform guess)")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats)")
ax.legend()
fig.tight_layout()
run.figure(fig, "loss")
plt.show()

# %% [markdown]
# ## 3. Attention per layer and head
# Recompute the weights of each block's attention on one window. The upper triangle is 0:
# that is the causal mask. What remains is learned: some heads look one character back, some
# spread over the current word.

# %%
x = data[:config.block_size][None]
fig, axes = plt.subplots(config.n_layer, config.n_head, figsize=(7, 6.5))
with torch.no_grad():
    h = model.transformer.wte(x) + model.transformer.wpe(torch.arange(config.block_size))
    for layer, block in enumerate(model.transformer.h):
        a = block.ln_1(h)
        q, k, _ = block.attn.c_attn(a).split(config.n_embd, dim=2)
        hs = config.n_embd // config.n_head
        q = q.view(1, -1, config.n_head, hs).transpose(1, 2)
        k = k.view(1, -1, config.n_head, hs).transpose(1, 2)
        s = (q @ k.transpose(-2, -1) / math.sqrt(hs)).masked_fill(
            torch.ones(config.block_size, config.block_size).triu(1).bool(), float("-inf"))
        w = s.softmax(-1)[0]
        for head in range(config.n_head):
            axes[layer, head].imshow(w[head].numpy(), cmap="viridis")
            axes[layer, head].set_title(f"layer {layer}, head {head}", fontsize=9)
        h = block(h)
fig.tight_layout()
run.figure(fig, "attention_heads")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"The model has {real} parameters, as count_parameters says. At init the loss was "
    f"{init_loss:.3f} against ln V = {math.log(len(chars)):.3f}; after 250 steps it is "
    f"{losses[-1]:.3f}, and the last sample reads {samples[249]!r}.")

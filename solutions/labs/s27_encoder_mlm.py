# %% [markdown]
# # s27 · Encoder lab: BERT's masking, a tiny masked-LM, and what "bidirectional" looks like
#
# This lab runs **your** `exercises/s27_encoder_mlm.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. measure the 15 % / 80-10-10 statistics of your `mask_tokens` on real text;
# 2. train a tiny character encoder with the masked-LM loss and watch its accuracy on the
#    hidden characters;
# 3. ask it to fill in blanks, using the letters on BOTH sides;
# 4. draw which input positions each output depends on: a full square, not s26's triangle.
#
# Every experiment is recorded under `results/s27_encoder_mlm/`.

# %%
import math

import matplotlib.pyplot as plt
import torch

from tools.labkit import Run, load_step

torch.set_num_threads(1)  # tiny matrices: one thread is faster than several fighting
mlm = load_step("s27_encoder_mlm")
TEXT = ("the quick brown fox jumps over the lazy dog. a tiny model learns the letters, then the "
        "words, then the sentence. the quick brown fox jumps over the lazy dog again. ") * 4
PAD, MASK = 0, 1  # two special ids, then the characters
chars = sorted(set(TEXT))
stoi = {c: i + 2 for i, c in enumerate(chars)}
itos = {i: c for c, i in stoi.items()} | {PAD: "_", MASK: "?"}
data = torch.tensor([stoi[c] for c in TEXT])
V = len(chars) + 2
config = mlm.EncoderConfig(vocab_size=V, block_size=32, n_layer=2, n_head=2, n_embd=48)
STEPS, BATCH = 400, 32
run = Run("s27_encoder_mlm", config={**vars(config), "steps": STEPS, "batch": BATCH,
                                     "lr": 3e-3, "mask_prob": 0.15}, seed=0)

# %% [markdown]
# ## 1. The masking statistics
# Mask the whole text many times and count. Chosen: about 15 % of the characters. Of those,
# about 80 % become `[MASK]`, 10 % another random id and 10 % stay as they are.

# %%
gen = torch.Generator().manual_seed(0)
many = data[None].expand(200, -1)
inputs, labels = mlm.mask_tokens(many, MASK, V, (PAD, MASK), generator=gen)
chosen = labels != -100
fractions = {
    "chosen": float(chosen.float().mean()),
    "-> [MASK]": float((inputs[chosen] == MASK).float().mean()),
    "-> random": float(((inputs[chosen] != MASK) & (inputs[chosen] != many[chosen]))
                       .float().mean()),
    "unchanged": float((inputs[chosen] == many[chosen]).float().mean()),
}
for name, value in fractions.items():
    run.metric(f"fraction {name}", value)
    print(f"{name:10s} {value:.4f}")

fig, ax = plt.subplots(figsize=(5.5, 3))
ax.bar(list(fractions), list(fractions.values()), color="tab:blue", label="measured")
ax.scatter(list(fractions), [0.15, 0.8, 0.1, 0.1], color="black", zorder=3,
           label="BERT's rule")
ax.set_ylabel("fraction")
ax.legend()
fig.tight_layout()
run.figure(fig, "masking_statistics")
plt.show()

# %% [markdown]
# ## 2. Train with the masked-LM loss
# Each batch is masked afresh, so the model never sees the same puzzle twice. The loss counts
# only the chosen positions; the accuracy is measured on them too.

# %%
torch.manual_seed(0)
model = mlm.Encoder(config)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)


def batch(gen):
    ix = torch.randint(0, len(data) - config.block_size, (BATCH,), generator=gen)
    ids = torch.stack([data[i:i + config.block_size] for i in ix])
    return mlm.mask_tokens(ids, MASK, V, (PAD, MASK), generator=gen)


losses, accuracies = [], []
for step in range(STEPS):
    x, y = batch(gen)
    logits, loss = model(x, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    hit = y != -100
    accuracies.append(float((logits.argmax(-1)[hit] == y[hit]).float().mean()))
    if step % 100 == 0 or step == STEPS - 1:
        print(f"step {step:3d}  loss {losses[-1]:.3f}  masked accuracy {accuracies[-1]:.2f}")
run.metric("loss_at_init", losses[0])
run.metric("final_loss", sum(losses[-20:]) / 20)
run.metric("final_masked_accuracy", sum(accuracies[-20:]) / 20)

fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
a1.plot(losses)
a1.axhline(math.log(V), color="grey", ls="--", label="ln V (uniform guess)")
a1.set_xlabel("step")
a1.set_ylabel("MLM loss on chosen positions")
a1.legend()
a2.plot(accuracies, color="tab:green")
a2.set_xlabel("step")
a2.set_ylabel("accuracy on chosen positions")
fig.tight_layout()
run.figure(fig, "training")
plt.show()

# %% [markdown]
# ## 3. Fill in the blanks
# Hide some letters with `[MASK]` and take the most likely character at each. A GPT could
# only use the letters to the left; the encoder reads both sides.

# %%
sentence = "the quick brown fox jumps over"  # at most block_size characters
ids = torch.tensor([[stoi[c] for c in sentence]])
hidden = [4, 11, 16, 22, 27]
masked = ids.clone()
masked[0, hidden] = MASK
model.eval()
with torch.no_grad():
    guess = model(masked)[0].argmax(-1)
filled = masked.clone()
filled[0, hidden] = guess[0, hidden]
shown = "".join(itos[i] for i in masked[0].tolist())
answer = "".join(itos[i] for i in filled[0].tolist())
right = int((guess[0, hidden] == ids[0, hidden]).sum())
print("masked:", shown)
print("filled:", answer)
run.metric("blanks_right", right)
run.metric("blanks", len(hidden))

# %% [markdown]
# ## 4. Which inputs does each output depend on?
# The gradient of output i with respect to the embedding of input j is zero when j cannot
# reach i. For s26's GPT the non-zero part is the lower triangle (j <= i). Here it is
# the whole square: a later token does change earlier outputs.

# %%
T = 24
x = data[:T][None]
emb = (model.transformer.wte(x) + model.transformer.wpe(torch.arange(T))).detach()
emb.requires_grad_(True)
influence = torch.zeros(T, T)
h = emb
for block in model.transformer.h:
    h = block(h)
out = model.transformer.ln_f(h)
for i in range(T):
    (g,) = torch.autograd.grad(out[0, i].sum(), emb, retain_graph=True)
    influence[i] = g[0].norm(dim=-1)
upper = float(influence.triu(1).sum() / influence.sum())
run.metric("influence_from_later_positions", upper)

fig, ax = plt.subplots(figsize=(4.5, 4))
im = ax.imshow(influence.log1p().numpy(), cmap="viridis")
ax.set_xlabel("input position j")
ax.set_ylabel("output position i")
ax.set_title("|d out_i / d x_j| (log scale)")
fig.colorbar(im, ax=ax)
fig.tight_layout()
run.figure(fig, "bidirectional_influence")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"{fractions['chosen']:.3f} of the characters were chosen, {fractions['-> [MASK]']:.2f} of "
    f"those became [MASK] ({fractions['-> random']:.2f} random, {fractions['unchanged']:.2f} "
    f"unchanged). The MLM loss fell from {losses[0]:.2f} to {sum(losses[-20:]) / 20:.2f}; "
    f"{right} of {len(hidden)} blanks were filled right ({answer!r}). "
    f"{upper:.0%} of the gradient comes from LATER positions: the encoder is bidirectional.")

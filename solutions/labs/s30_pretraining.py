# %% [markdown]
# # s30 · Pretraining lab: schedule, a short run, accumulation, an exact resume
#
# This lab runs **your** `exercises/s30_pretraining.py` with **your** GPT from s26. Finish
# the step first (`python tools/check.py`), then run every cell. You will
#
# 1. draw the warmup + cosine schedule;
# 2. pretrain a tiny character GPT for a short while and plot its loss, learning rate and
#    gradient norm, with samples as it learns;
# 3. check that 4 micro-batches give the same update as one batch 4 times larger;
# 4. stop a run, resume it from its checkpoint and compare it with a run never stopped.
#
# The real run is one command, `python tools/pretrain.py --config shakespeare-char`
# (Tiny Shakespeare, ~0.8M parameters); this lab stays small so it finishes in a minute.
# Every experiment is recorded under `results/s30_pretraining/`.

# %%
import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from tools.labkit import Run, load_step

gpt = load_step("s26_gpt")
pre = load_step("s30_pretraining")
TEXT = ("to be or not to be, that is the question. whether tis nobler in the mind to suffer "
        "the slings and arrows of outrageous fortune, or to take arms against a sea of "
        "troubles, and by opposing end them. to die, to sleep, no more. ") * 6
chars = sorted(set(TEXT))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in TEXT])
n = int(0.9 * len(data))
train_data, val_data = data[:n], data[n:]
model_cfg = dict(vocab_size=len(chars), block_size=32, n_layer=2, n_head=2, n_embd=32)
cfg = pre.TrainConfig(max_steps=100, batch_size=8, block_size=32, lr=5e-3, min_lr=5e-4,
                      warmup_steps=10, eval_every=25, eval_batches=2, weight_decay=0.1, seed=0)
run = Run("s30_pretraining", config={"model": model_cfg, "train": vars(cfg)}, seed=cfg.seed)

# %% [markdown]
# ## 1. The schedule
# Linear warmup for `warmup_steps` updates (Adam's second-moment estimates are poor at
# first, so big steps then are risky), then half a cosine from `lr` down to `min_lr`, and
# `min_lr` after `max_steps`.

# %%
steps = list(range(cfg.max_steps + 20))
lrs = [pre.lr_at(s, cfg) for s in steps]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(steps, lrs)
ax.axvline(cfg.warmup_steps, ls=":", c="gray")
ax.axvline(cfg.max_steps, ls=":", c="gray")
ax.set(xlabel="update", ylabel="learning rate", title="warmup + cosine")
run.figure(fig, "schedule")
run.metric("lr_peak", max(lrs))
run.metric("lr_after_max_steps", lrs[-1])
print(f"peak {max(lrs):.4g} at update {lrs.index(max(lrs))}, after max_steps {lrs[-1]:.4g}")

# %% [markdown]
# ## 2. A short pretraining run
# The loss starts near ln V (a uniform guess) and falls; perplexity = exp(loss) is how many
# characters the model still hesitates between. The callback samples from the model as it
# learns, with its own generator (sampling must not move the training RNG).

# %%
torch.manual_seed(0)
model = gpt.GPT(gpt.GPTConfig(**model_cfg))
trainer = pre.Trainer(model, train_data, val_data, cfg)
prompt = torch.tensor([[stoi["t"]]])
samples = {}


def on_record(tr, record):
    if record["step"] in (1, 50, 100):
        tr.model.eval()
        out = tr.model.generate(prompt, 60, generator=torch.Generator().manual_seed(0))
        tr.model.train()
        samples[record["step"]] = "".join(chars[i] for i in out[0].tolist())


records = trainer.fit(on_record)
evals = [r for r in records if "val_loss" in r]
for step, text in samples.items():
    print(f"step {step:3d}: {text!r}")
print(f"ln V = {math.log(len(chars)):.3f}; val loss {evals[0]['val_loss']:.3f} at step "
      f"{evals[0]['step']}, {evals[-1]['val_loss']:.3f} (perplexity "
      f"{evals[-1]['val_perplexity']:.2f}) at step {evals[-1]['step']}")
run.metric("val_loss_final", evals[-1]["val_loss"])
run.metric("val_perplexity_final", evals[-1]["val_perplexity"])

fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
axes[0].plot([r["step"] for r in records], [r["loss"] for r in records], alpha=0.4,
             label="batch")
axes[0].plot([r["step"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train")
axes[0].plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val")
axes[0].set(xlabel="update", ylabel="loss (nats / char)", title="loss")
axes[0].legend()
axes[1].plot([r["step"] for r in records], [r["lr"] for r in records])
axes[1].set(xlabel="update", title="learning rate")
axes[2].plot([r["step"] for r in records], [r["grad_norm"] for r in records])
axes[2].axhline(cfg.grad_clip, ls=":", c="red", label="clip")
axes[2].set(xlabel="update", title="gradient norm before clipping")
axes[2].legend()
fig.tight_layout()
run.figure(fig, "curves")

# %% [markdown]
# ## 3. Gradient accumulation
# backward() adds into .grad. With each micro-batch's loss divided by k, k micro-batches of
# B sequences give the gradient of one batch of k B: the same update in a quarter of the
# activation memory.

# %%
x, y = pre.get_batch(train_data, 8, 32, torch.Generator().manual_seed(1))
after = []
for micro in ([(x, y)], [(x[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)]):
    torch.manual_seed(0)
    m = gpt.GPT(gpt.GPTConfig(**model_cfg))
    opt = pre.configure_optimizer(m, cfg)
    out = pre.train_step(m, opt, micro, lr=1e-3, grad_clip=1.0)
    after.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
diff = float((after[0] - after[1]).abs().max())
print(f"largest parameter difference, 1 x 8 vs 4 x 2: {diff:.2e} (float32 rounding)")
run.metric("accumulation_max_diff", diff)

# %% [markdown]
# ## 4. Stop, resume, compare
# The checkpoint holds the weights, AdamW's moments and step counts, the update counter,
# torch's RNG and the sampler's generator. A resumed run then equals one never stopped, bit
# for bit, because every number that shapes the next update is the same.

# %%
short = pre.TrainConfig(**{**vars(cfg), "max_steps": 24, "eval_every": 12})


def fresh():
    torch.manual_seed(0)
    return pre.Trainer(gpt.GPT(gpt.GPTConfig(**model_cfg)), train_data, val_data, short)


straight = fresh()
straight.fit()
ckpt = Path(tempfile.mkdtemp()) / "ckpt.pt"
first = fresh()


class Interrupted(Exception):
    pass


def stop_at_10(tr, record):
    if record["step"] == 10:
        pre.save_checkpoint(str(ckpt), tr, {"kind": "char", "chars": "".join(chars)})
        raise Interrupted


try:
    first.fit(stop_at_10)
except Interrupted:
    pass
resumed = fresh()
pre.load_checkpoint(str(ckpt), resumed)
resumed.fit()
same = all(torch.equal(a, b) for a, b in zip(straight.model.parameters(),
                                             resumed.model.parameters(), strict=True))
print(f"resumed at update 10, finished at {resumed.step}: identical to the uninterrupted run: "
      f"{same}")
run.metric("resume_bit_identical", same)

# %%
run.finish(
    f"The schedule warms up to {max(lrs):.3g} in {cfg.warmup_steps} updates and decays to "
    f"{cfg.min_lr:g}. In {cfg.max_steps} updates the validation loss fell from "
    f"{evals[0]['val_loss']:.2f} to {evals[-1]['val_loss']:.2f} (ln V = "
    f"{math.log(len(chars)):.2f}); the gradient norm is largest early and settles as the lr "
    f"decays. Four micro-batches matched one big batch to {diff:.1e}; the resumed run was "
    f"{'bit-identical' if same else 'NOT identical'} to the uninterrupted one. Next: the real "
    "run, python tools/pretrain.py --config shakespeare-char.")

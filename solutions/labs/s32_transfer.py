# %% [markdown]
# # s32 · Transfer lab: does pretraining pay, and when?
#
# This lab runs **your** `exercises/s32_transfer.py` on a GPT body built by **your**
# `exercises/s26_gpt.py`. You will
#
# 1. get a pretrained body: your own checkpoint from `results/*/ckpt.pt` (written by s30 or
#    `tools/pretrain.py`) when there is one, otherwise a tiny GPT pretrained here in seconds
#    on a synthetic language (the lab says which it used);
# 2. fine-tune it and a randomly initialised twin on 4 ... 256 labelled examples, with the
#    body frozen (a linear probe) and unfrozen (full fine-tuning), all else equal;
# 3. plot the learning curves and the fine-tuning losses.
#
# Every run is recorded under `results/s32_transfer/`.

# %%
import copy
import dataclasses
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from tools.course import ROOT
from tools.fetch_data import cache_dir
from tools.labkit import Run, load_step

torch.set_num_threads(1)  # models this small run fastest on one core
tr = load_step("s32_transfer")
gpt = load_step("s26_gpt")
FORMAT = "ml-to-llm/gpt-checkpoint/1"


def newest_checkpoint():
    """(path, checkpoint dict) of the newest results/*/ckpt.pt in the course format, or None."""
    results = Path(os.environ.get("ML2LLM_RESULTS", ROOT / "results"))
    for path in sorted(results.glob("*/ckpt.pt"), key=lambda p: p.stat().st_mtime,
                       reverse=True):
        ckpt = torch.load(path, map_location="cpu", weights_only=False)  # your own file
        if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
            return path, ckpt
    return None


def body_from(path, ckpt):
    """(GPT with the checkpoint's weights, encode) using your s26 GPT."""
    try:  # tools/checkpoint.py (s30) knows every tokenizer kind
        from tools.checkpoint import load_gpt
        model, encode, _, _ = load_gpt(path, impl=os.environ.get("ML2LLM_IMPL", "exercises"))
        return model, encode
    except ImportError:
        pass
    if ckpt["tokenizer"].get("kind") != "char":
        raise RuntimeError("this lab reads char-level checkpoints without tools/checkpoint.py")
    fields = {f.name for f in dataclasses.fields(gpt.GPTConfig)}
    model = gpt.GPT(gpt.GPTConfig(**{k: v for k, v in ckpt["config"].items() if k in fields}))
    model.load_state_dict(ckpt["model"])
    stoi = {c: i for i, c in enumerate(ckpt["tokenizer"]["chars"])}
    return model, lambda s: [stoi[c] for c in s if c in stoi]


# %% [markdown]
# ## 1. A pretrained body and a downstream task
# **Your checkpoint** (when Tiny Shakespeare is in `datasets/cache/` too): the task is to tell
# whether a word ends right after a window of text (the next character is a space or a
# punctuation mark, label 1) or not (label 0), half and half. A language model predicts
# the next character all day long; a random body has to learn spelling from the labels.
#
# **Otherwise**, a synthetic language: 24 tokens in 4 groups; the next token's group is
# usually the one after the current token's group. The task: the group of the last token.
# Pretraining on unlabelled sequences teaches the body which tokens behave alike; a random
# body must learn each token's group from the labelled examples alone.

# %%
V, G, T = 24, 4, 8
GROUP = torch.randperm(V, generator=torch.Generator().manual_seed(123)) % G


def language(n, gen, length=T):
    members = torch.stack([torch.nonzero(GROUP == g).flatten() for g in range(G)])
    g = torch.randint(0, G, (n,), generator=gen)
    seq = []
    for _ in range(length):
        seq.append(members[g, torch.randint(0, V // G, (n,), generator=gen)])
        jump = torch.rand(n, generator=gen) < 0.1
        g = torch.where(jump, torch.randint(0, G, (n,), generator=gen), (g + 1) % G)
    return torch.stack(seq, 1)


def word_end_windows(text, encode, n, length, gen):
    """n windows of text, half of them followed by a space or punctuation (label 1)."""
    where = torch.randint(length, len(text) - 1, (8 * n,), generator=gen).tolist()
    ends = [p for p in where if text[p] in " \n,.;:!?'-"][: n // 2]
    inside = [p for p in where if text[p] not in " \n,.;:!?'-"][: n - len(ends)]
    points = torch.tensor(ends + inside)[torch.randperm(len(ends) + len(inside), generator=gen)]
    windows = [encode(text[p - length:p]) for p in points.tolist()]
    width = min(len(w) for w in windows)  # a sub-word tokenizer gives fewer tokens
    x = torch.tensor([w[len(w) - width:] for w in windows])
    return x, torch.tensor([int(text[p] in " \n,.;:!?'-") for p in points.tolist()])


found = newest_checkpoint()
text_file = cache_dir() / "tinyshakespeare.txt"
gen = torch.Generator().manual_seed(0)
if found is not None and text_file.exists():
    path, ckpt = found
    pretrained, encode = body_from(path, ckpt)
    source = f"your checkpoint {path.relative_to(path.parents[1])} (step {ckpt.get('step')})"
    config = pretrained.config
    length = min(32, config.block_size)
    text = text_file.read_text(encoding="utf-8")[-200_000:]
    x_pool, y_pool = word_end_windows(text, encode, 1_256, length, gen)
    n_classes, task = 2, "does a word end after this window of Tiny Shakespeare?"
else:
    source = "a tiny GPT pretrained in this lab on the synthetic group language"
    if found is not None:
        source += " (a checkpoint exists, but Tiny Shakespeare is not in datasets/cache/)"
    config = gpt.GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, n_embd=16)
    torch.manual_seed(0)
    pretrained = gpt.GPT(config)
    opt = torch.optim.AdamW(pretrained.parameters(), lr=1e-2)
    lm_losses = []
    for _ in range(200):
        x = language(32, gen, T + 1)
        _, loss = pretrained(x[:, :-1], x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        lm_losses.append(loss.item())
    print(f"pretraining loss: {lm_losses[0]:.3f} -> {lm_losses[-1]:.3f}")
    x_pool = language(1_256, gen)
    y_pool = GROUP[x_pool[:, -1]]
    n_classes, task = G, "the group of the last token of the synthetic language"
print("body:", source)
print("task:", task)
x_train, y_train, x_test, y_test = x_pool[:1_000], y_pool[:1_000], x_pool[1_000:], y_pool[1_000:]


def random_body():
    torch.manual_seed(1)
    return gpt.GPT(config)


bodies = {"pretrained": lambda: copy.deepcopy(pretrained), "random": random_body}
# a larger (checkpoint) body is fine-tuned with a smaller step, or it forgets its pretraining
settings = {"sizes": [4, 8, 16, 32, 64, 128, 256], "steps": 60,
            "lr": 1e-2 if found is None or not text_file.exists() else 1e-3, "batch_size": 16,
            "seed": 0}
run = Run("s32_transfer", config={**settings, "body": source, "task": task,
                                  "gpt": dataclasses.asdict(config)}, seed=0)

# %% [markdown]
# ## 2. Learning curves
# The same subsets, data order, head and optimiser for both arms; only the body's initial
# weights differ. Frozen: only the head learns (how good are the features as they are?).
# Unfrozen: everything learns.

# %%
curves = {}
for freeze in (True, False):
    curves[freeze] = tr.transfer_experiment(bodies, x_train, y_train, x_test, y_test,
                                            n_classes=n_classes, freeze_body=freeze, **settings)
    for arm, accs in curves[freeze].items():
        print(f"{'frozen  ' if freeze else 'unfrozen'} {arm:10s}",
              " ".join(f"{a:.2f}" for a in accs))
        run.metric(f"{arm}_{'frozen' if freeze else 'unfrozen'}", accs)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, freeze in zip(axes, (True, False), strict=True):
    for arm, accs in curves[freeze].items():
        ax.plot(settings["sizes"], accs, "o-", label=arm)
    ax.axhline(1 / n_classes, color="grey", ls="--", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("labelled training examples")
    ax.set_title("body frozen (linear probe)" if freeze else "body fine-tuned")
axes[0].set_ylabel("test accuracy")
axes[0].legend()
fig.tight_layout()
run.figure(fig, "learning_curves")
plt.show()

# %% [markdown]
# ## 3. How fast each arm learns
# Fine-tuning losses on the 16-example set: the pretrained body starts from useful features,
# so its loss drops in a few steps; the random body has to build them.

# %%
rows = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))[:16]
fig, ax = plt.subplots(figsize=(6, 3.5))
for arm, make in bodies.items():
    model = tr.GPTClassifier(make(), n_classes, head_seed=0)
    hist = tr.fine_tune(model, x_train[rows], y_train[rows], steps=60, lr=settings["lr"],
                        batch_size=16)
    ax.plot(hist, label=arm)
ax.set_xlabel("fine-tuning step")
ax.set_ylabel("training cross-entropy")
ax.legend()
fig.tight_layout()
run.figure(fig, "fine_tuning_losses")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell. Where do the curves meet?
# Does freezing the body hurt the pretrained arm, and the random one?

# %%
gap = np.array(curves[False]["pretrained"]) - np.array(curves[False]["random"])
run.finish(
    f"Body: {source}. Fine-tuned on {settings['sizes'][0]} examples the pretrained arm "
    f"scores {curves[False]['pretrained'][0]:.2f} and the random one "
    f"{curves[False]['random'][0]:.2f}; the gap is {gap[0]:+.2f} at the smallest size and "
    f"{gap[-1]:+.2f} with {settings['sizes'][-1]} examples.")

# %% [markdown]
# # s37 · SFT lab: teach a Shakespeare GPT to follow instructions, LoRA against full tuning
#
# This lab runs **your** `exercises/s37_sft_chat.py` on a GPT pretrained on Tiny Shakespeare:
# your own checkpoint from s30 (`python tools/pretrain.py`) when `results/` has one, otherwise
# a small one trained now in about 30 seconds. You will
#
# 1. extend its character vocabulary with the chat template's special tokens and look at one
#    encoded example: which tokens are targets and which are only read;
# 2. measure the base model on held-out instructions (words it has never seen): exact match;
# 3. fine-tune two copies with your `train_sft`: every weight (full fine-tuning), and a LoRA
#    adapter on the attention projections (plus the new tokens' embedding rows);
# 4. compare them: trainable parameters, optimizer memory, time, exact match per task, and
#    what tuning cost the model's Shakespeare (the change in its validation loss, the
#    "catastrophic forgetting" question).
#
# Every experiment is recorded under `results/s37_sft_chat/`.

# %%
import copy
import math
import os
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from tools.checkpoint import lab_model
from tools.course import ROOT
from tools.instruct_data import make_examples
from tools.labkit import Run, load_step

sft = load_step("s37_sft_chat")
torch.set_num_threads(1)
torch.manual_seed(0)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
base, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                 else "exercises")
print("model:", source)
STEPS, BATCH, LR_FULL, LR_LORA, RANK, ALPHA = 150, 32, 3e-3, 1e-2, 8, 16.0
TASKS = ("first_letter", "count", "uppercase")  # the three a 2-layer char model learns quickly
N_TEST, MAX_NEW = 45, 16
run = Run("s37_sft_chat", config={"model": source, "steps": STEPS, "batch": BATCH,
                                  "lr_full": LR_FULL, "lr_lora": LR_LORA, "rank": RANK,
                                  "alpha": ALPHA, "n_test": N_TEST,
                                  "tasks": list(TASKS)}, seed=0)

# %% [markdown]
# ## 1. The vocabulary and one example
# The checkpoint's characters keep their ids; the five special tokens get the next ids, and
# `extend_vocab` grows the tied embedding by five rows. In the labels, -100 marks what the
# model reads but is not asked to say.

# %%
chars = [decode([i]) for i in range(config.vocab_size)]
tok = sft.ChatTokenizer(chars)
T = config.block_size


def fits(e):
    return len(sft.encode_example(e["prompt"], e["response"], tok)[0]) <= T


train = [e for e in make_examples(3000, seed=0, tasks=TASKS) if fits(e)][:STEPS * BATCH // 2]
test = [e for e in make_examples(4 * N_TEST, seed=1, split="test", tasks=TASKS)
        if fits(e)][:N_TEST]
rows = [sft.encode_example(e["prompt"], e["response"], tok) for e in train]
batches = [sft.collate(rows[i:i + BATCH], tok.pad_id) for i in range(0, len(rows), BATCH)]
ids, labels = rows[0]
print(repr(tok.decode(ids)))
print("targets:", repr(tok.decode([y for y in labels if y != -100])),
      f"({sum(y != -100 for y in labels)} of {len(ids)} tokens)")
print(f"{len(train)} training examples in {len(batches)} batches; {len(test)} held-out")

text = (ROOT / "datasets" / "cache" / "tinyshakespeare.txt").read_text(encoding="utf-8")
val = torch.tensor(encode(text[int(0.9 * len(text)):]))
gen = torch.Generator().manual_seed(123)
starts = torch.randint(0, len(val) - T - 1, (64,), generator=gen)
val_x = torch.stack([val[s:s + T] for s in starts])
val_y = torch.stack([val[s + 1:s + T + 1] for s in starts])


def shakespeare_loss(m):
    m.eval()
    with torch.no_grad():
        logits = m(val_x)[0][..., :len(chars)]  # Shakespeare has no special tokens
        return float(nn.functional.cross_entropy(logits.flatten(0, 1), val_y.flatten()))


def per_task(m):
    out = {}
    for task in sorted({e["task"] for e in test}):
        group = [e for e in test if e["task"] == task]
        out[task] = sft.exact_match_rate(m, tok, group, MAX_NEW, T)
    return out


# %% [markdown]
# ## 2. The base model
# The pretrained model has never seen the template: the new tokens all start as "an average
# character", and nothing tells it to answer or to stop. Its exact match on held-out words
# is the bar the tuned models must clear.

# %%
base_model = sft.extend_vocab(copy.deepcopy(base), len(sft.SPECIALS))
base_loss = shakespeare_loss(base_model)
base_scores = per_task(base_model)
base_em = sum(base_scores.values()) / len(base_scores)
print(f"base: exact match {base_em:.1%}, Shakespeare val loss {base_loss:.3f}")
print("example:", repr(test[0]["prompt"]), "->",
      repr(sft.generate_answer(base_model, tok, test[0]["prompt"], MAX_NEW, T)))


# %% [markdown]
# ## 3. Full fine-tuning and LoRA
# The LoRA wrapper is given: y = W x + (alpha / r) B A x with A (r, in) small random, B (out,
# r) zero, so the tuned model starts equal to the base. Only A, B and the five new embedding
# rows train (a gradient hook zeroes the old rows' gradient: the template's tokens must be
# learnt somewhere). `train_sft` hands AdamW only the parameters with requires_grad.

# %%
class LoRALinear(nn.Module):
    def __init__(self, base_layer: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base_layer
        self.A = nn.Parameter(torch.randn(rank, base_layer.in_features) / math.sqrt(rank * 8))
        self.B = nn.Parameter(torch.zeros(base_layer.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.A.T) @ self.B.T


def with_lora(model):
    for p in model.parameters():
        p.requires_grad_(False)
    for block in model.transformer.h:
        block.attn.c_attn = LoRALinear(block.attn.c_attn, RANK, ALPHA)
        block.attn.c_proj = LoRALinear(block.attn.c_proj, RANK, ALPHA)
    wte = model.transformer.wte.weight
    wte.requires_grad_(True)
    keep = torch.zeros_like(wte)
    keep[len(chars):] = 1.0  # only the special tokens' rows learn
    wte.register_hook(lambda g: g * keep)
    return model


def fine_tune(model, lr):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    start = time.perf_counter()
    losses = sft.train_sft(model, batches, STEPS, lr)
    seconds = time.perf_counter() - start
    # AdamW keeps a gradient and two moments per trainable float32 parameter
    return {"losses": losses, "trainable": trainable, "seconds": seconds,
            "optimizer_mb": 3 * 4 * trainable / 2**20}


full = sft.extend_vocab(copy.deepcopy(base), len(sft.SPECIALS))
lora = with_lora(sft.extend_vocab(copy.deepcopy(base), len(sft.SPECIALS)))
results = {"full": fine_tune(full, LR_FULL), "lora": fine_tune(lora, LR_LORA)}
total = sum(p.numel() for p in full.parameters())
for name, m in (("full", full), ("lora", lora)):
    r = results[name]
    r["scores"] = per_task(m)
    r["em"] = sum(r["scores"].values()) / len(r["scores"])
    r["val_loss"] = shakespeare_loss(m)
    print(f"{name:>4}: {r['trainable']:>7} trainable ({r['trainable'] / total:.1%}), "
          f"{r['optimizer_mb']:.2f} MB of AdamW state, {r['seconds']:.1f} s, exact match "
          f"{r['em']:.1%}, Shakespeare val loss {base_loss:.3f} -> {r['val_loss']:.3f}")

fig, ax = plt.subplots(figsize=(7, 3.5))
for name, r in results.items():
    ax.plot(r["losses"], label=f"{name} (lr {LR_FULL if name == 'full' else LR_LORA})")
ax.set_xlabel("step")
ax.set_ylabel("answer-token loss")
ax.set_yscale("log")
ax.legend()
run.figure(fig, "sft_loss")

# %% [markdown]
# ## 4. What each model learnt, and what it cost
# Exact match per task on held-out words, and the change in the Shakespeare validation loss
# (the same 64 windows for every model). Full fine-tuning moves every weight towards the
# instructions; LoRA can only add a low-rank change to attention, so it usually forgets less
# (and, with this small budget, may learn less).

# %%
tasks = list(base_scores)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
x = torch.arange(len(tasks)).float()
for k, (name, scores) in enumerate((("base", base_scores), ("full", results["full"]["scores"]),
                                    ("lora", results["lora"]["scores"]))):
    axes[0].bar(x + (k - 1) * 0.27, [scores[t] for t in tasks], 0.27, label=name)
axes[0].set_xticks(x.tolist(), tasks)
axes[0].set_ylabel("held-out exact match")
axes[0].set_ylim(0, 1)
axes[0].legend()
names = ["base", "full", "lora"]
axes[1].bar(names, [base_loss, results["full"]["val_loss"], results["lora"]["val_loss"]])
axes[1].set_ylim(base_loss - 0.3, None)
axes[1].set_ylabel("Shakespeare validation loss")
fig.tight_layout()
run.figure(fig, "exact_match_and_forgetting")
run.metric("base_exact_match", base_em)
run.metric("base_val_loss", base_loss)
for name, r in results.items():
    run.metric(f"{name}_exact_match", r["em"])
    run.metric(f"{name}_val_loss", r["val_loss"])
    run.metric(f"{name}_trainable", r["trainable"])
    run.metric(f"{name}_seconds", r["seconds"])
    for t, v in r["scores"].items():
        run.metric(f"{name}_{t}", v)

# %%
f, lo = results["full"], results["lora"]
run.finish(f"On {source}, {STEPS} SFT steps of {BATCH}: held-out exact match {base_em:.1%} "
           f"(base) -> {f['em']:.1%} (full, {f['trainable']} trainable parameters, "
           f"{f['seconds']:.1f} s) and {lo['em']:.1%} (LoRA r={RANK} on attention + new token "
           f"rows, {lo['trainable']} trainable, {lo['seconds']:.1f} s). Shakespeare val loss "
           f"{base_loss:.3f} -> {f['val_loss']:.3f} (full) and {lo['val_loss']:.3f} (LoRA): "
           f"the forgetting each kind of tuning costs.")

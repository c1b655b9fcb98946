# %% [markdown]
# # s36 · LoRA lab: tune a frozen GPT through a few thousand parameters
#
# This lab runs **your** `exercises/s36_lora.py` on a GPT pretrained on Tiny Shakespeare:
# your own checkpoint from s30 (`python tools/pretrain.py`) when `results/` has one, otherwise
# a small one trained now in about 30 seconds. You will
#
# 1. wrap its attention projections with your `LoRALinear` and count what is left to train;
# 2. LoRA-tune it briefly on tiny instructions ("Write digu in capital letters." -> "DIGU"),
#    a text it has never seen, and watch the loss on held-out instructions;
# 3. look at **where** tuning acted: the norm of each layer's update (alpha / r) B A, split
#    into its query, key and value parts for `c_attn`, and the singular values of each update
#    (at most r of them are non-zero);
# 4. merge the adapter into the weights (same outputs, no extra cost), unmerge it (the base
#    comes back) and compare the adapter's size with the model's.
#
# Every experiment is recorded under `results/s36_lora/`.

# %%
import os

import matplotlib.pyplot as plt
import torch

from tools.checkpoint import lab_model
from tools.instruct_data import make_examples
from tools.labkit import Run, load_step

lora = load_step("s36_lora")
torch.set_num_threads(1)
torch.manual_seed(0)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
model, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                  else "exercises")
print("model:", source)
RANK, ALPHA, STEPS, LR, BATCH = 4, 8.0, 200, 3e-3, 32
run = Run("s36_lora", config={"model": source, "rank": RANK, "alpha": ALPHA, "steps": STEPS,
                              "lr": LR, "batch": BATCH, "targets": list(lora.ATTENTION)},
          seed=0)


def as_text(examples):
    return "".join(f"{e['prompt']}\n{e['response']}\n\n" for e in examples)


train_ids = torch.tensor(encode(as_text(make_examples(3000, seed=0))))
test_ids = torch.tensor(encode(as_text(make_examples(300, seed=1, split="test"))))
T = config.block_size


def batch(ids, n, gen):
    start = torch.randint(0, len(ids) - T - 1, (n,), generator=gen)
    x = torch.stack([ids[s:s + T] for s in start])
    return x, torch.stack([ids[s + 1:s + T + 1] for s in start])


def held_out_loss():
    x, y = batch(test_ids, 64, torch.Generator().manual_seed(123))  # the same windows each time
    with torch.no_grad():
        return float(model(x, y)[1])


PROBE = "Write digu in capital letters.\n"
base_loss = held_out_loss()
with torch.no_grad():
    base_reply = decode(model.generate(torch.tensor([encode(PROBE)]), 12,
                                       top_k=1)[0, len(PROBE):].tolist())
base_weights = {n: p.detach().clone() for n, p in model.named_parameters()}
print(f"held-out instruction loss of the base model: {base_loss:.3f}")

# %% [markdown]
# ## 1. Wrap the attention projections
# `apply_lora` swaps every `attn.c_attn` and `attn.c_proj` for a `LoRALinear` and freezes the
# rest. Each wrapped layer adds r (in + out) trainable scalars; B starts at zero, so the
# wrapped model is still exactly the base model.

# %%
total = lora.count_trainable(model)
names = lora.apply_lora(model, rank=RANK, alpha=ALPHA)
trainable = lora.count_trainable(model)
formula = sum(RANK * (m.base.in_features + m.base.out_features)
              for m in (model.get_submodule(n) for n in names))
print(f"wrapped {len(names)} layers: {names}")
print(f"trainable {trainable} of {total} parameters ({100 * trainable / total:.2f} %); "
      f"r (in + out) summed over the wrapped layers: {formula}")
print(f"loss right after wrapping: {held_out_loss():.3f} (the base's: {base_loss:.3f})")
run.metric("trainable_parameters", trainable)
run.metric("trainable_fraction", trainable / total)

# %% [markdown]
# ## 2. A short LoRA fine-tune
# Adam sees only the A and B matrices. A learning rate a few times larger than full
# fine-tuning's is usual for LoRA: the update starts at zero and has few directions to move in.

# %%
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR,
                        weight_decay=0.0)
gen = torch.Generator().manual_seed(0)
losses, evals = [], [(0, held_out_loss())]
model.train()
for step in range(1, STEPS + 1):
    x, y = batch(train_ids, BATCH, gen)
    loss = model(x, y)[1]
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 50 == 0:
        model.eval()
        evals.append((step, held_out_loss()))
        model.train()
model.eval()
tuned_loss = evals[-1][1]
frozen_moved = max(float((p - base_weights[n.replace(".base.", ".")]).abs().max())
                   for n, p in model.named_parameters() if "lora_" not in n)
print(f"held-out loss {base_loss:.3f} -> {tuned_loss:.3f}; largest change of a frozen "
      f"weight: {frozen_moved}")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, STEPS + 1), losses, lw=0.8, label="train batch")
ax.plot(*zip(*evals, strict=True), marker="o", label="held-out instructions")
ax.axhline(base_loss, ls="--", c="gray", label="base model, held out")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats / char)")
ax.legend()
run.figure(fig, "lora_loss")
run.metric("heldout_loss_base", base_loss)
run.metric("heldout_loss_tuned", tuned_loss)

# %% [markdown]
# ## 3. Where did tuning act?
# `delta_norms` gives ‖(alpha / r) B A‖ per wrapped layer. `c_attn` is three projections in
# one matrix (rows 0..E-1 make queries, E..2E-1 keys, 2E..3E-1 values), so we split its
# update into the three. The singular values show the rank limit: BA has at most r non-zero
# singular values, whatever the layer's size.

# %%
norms = lora.delta_norms(model)
E = config.n_embd
parts = {}
for n in names:
    short = n.replace("transformer.h.", "h").replace(".attn", "")
    d = model.get_submodule(n).delta_weight().detach()
    if n.endswith("c_attn"):
        for i, qkv in enumerate("qkv"):
            parts[f"{short}.{qkv}"] = float(d[i * E:(i + 1) * E].norm())
    else:
        parts[short] = norms[n]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].bar(list(parts), list(parts.values()))
axes[0].set_ylabel("‖(alpha / r) B A‖_F")
axes[0].tick_params(axis="x", rotation=60)
axes[0].set_title("size of each update")
for n in names:
    s = torch.linalg.svdvals(model.get_submodule(n).delta_weight().detach())
    axes[1].semilogy(range(1, 13), s[:12].clamp_min(1e-12), marker="o", label=n[14:])
axes[1].axvline(RANK + 0.5, ls="--", c="gray")
axes[1].set_xlabel("singular value index")
axes[1].set_ylabel("singular value (log)")
axes[1].set_title(f"spectrum of each update (rank {RANK})")
axes[1].legend(fontsize=7)
fig.tight_layout()
run.figure(fig, "delta_norms_and_spectra")
biggest = max(parts, key=parts.get)
sv = torch.linalg.svdvals(model.get_submodule(names[0]).delta_weight().detach())
print("update norms:", {k: round(v, 4) for k, v in parts.items()})
print(f"largest: {biggest}; singular values of {names[0]}: {sv[:RANK + 2].tolist()}")
for k, v in parts.items():
    run.metric(f"delta_norm {k}", v)

# %% [markdown]
# ## 4. Merge, unmerge, and what you would save
# Merging folds (alpha / r) B A into W: the outputs stay the same (up to float32 rounding)
# and inference costs what the base costs. Unmerging takes it out again, so one base model
# can serve many adapters; the adapter file is `lora_state_dict`.

# %%
x, _ = batch(test_ids, 8, torch.Generator().manual_seed(7))
with torch.no_grad():
    before = model(x)[0]
    lora.merge_lora(model)
    merged_gap = float((model(x)[0] - before).abs().max())
    reply = decode(model.generate(torch.tensor([encode(PROBE)]), 12,
                                  top_k=1)[0, len(PROBE):].tolist())
    lora.unmerge_lora(model)
restored_gap = max(float((p - base_weights[n.replace(".base.", ".")]).abs().max())
                   for n, p in model.named_parameters() if "lora_" not in n)
adapter = lora.lora_state_dict(model)
adapter_bytes = sum(v.numel() * v.element_size() for v in adapter.values())
model_bytes = sum(p.numel() * p.element_size() for p in base_weights.values())
print(f"max |merged - unmerged logits| = {merged_gap:.2e}; after unmerge the largest "
      f"difference from the base weights is {restored_gap:.2e}")
print(f"adapter {adapter_bytes / 1024:.1f} KiB vs model {model_bytes / 1024:.1f} KiB")
print(f"{PROBE!r} base -> {base_reply!r}, tuned -> {reply!r}")
run.metric("merged_vs_unmerged_max_abs", merged_gap)
run.metric("unmerge_restore_max_abs", restored_gap)
run.metric("adapter_kib", adapter_bytes / 1024)

# %%
run.finish(f"On {source}: LoRA rank {RANK} on {len(names)} attention projections trains "
           f"{trainable} of {total} parameters ({100 * trainable / total:.1f} %). {STEPS} steps "
           f"take the held-out instruction loss from {base_loss:.2f} to {tuned_loss:.2f} "
           f"nats/char with the frozen weights unchanged. The largest update is {biggest} "
           f"({parts[biggest]:.3f}); every update has at most {RANK} non-zero singular values. "
           f"Merged and unmerged logits differ by {merged_gap:.1e}, unmerging restores the base "
           f"to {restored_gap:.1e}, and the adapter is {adapter_bytes / 1024:.0f} KiB.")

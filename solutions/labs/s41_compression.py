# %% [markdown]
# # s41 · Compression lab: how small can your model get?
#
# This lab runs **your** `exercises/s41_compression.py` on a GPT pretrained on Tiny Shakespeare:
# your own checkpoint from s30 (`python tools/pretrain.py`) when `results/` has one, otherwise
# a small one trained now in about 30 seconds. You will
#
# 1. see the quantisation error of one weight matrix, per tensor and per channel;
# 2. measure validation loss (and perplexity) against the bytes the model takes: float32,
#    int8 per channel, int4 in groups, 3-bit, and magnitude pruning at several sparsities
#    (the seeds' compression capstone: the trade-off between quality and size);
# 3. distil the model into a GPT half its width with one layer, and compare it with the same student
#    trained from scratch on the same tokens.
#
# Every experiment is recorded under `results/s41_compression/`.

# %%
import os
import time

import matplotlib.pyplot as plt
import torch

from tools.checkpoint import lab_model
from tools.labkit import Run, load_step
from tools.pretrain import read_text

cmp = load_step("s41_compression")
torch.set_num_threads(1)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
model, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                  else "exercises")
print("model:", source)
text = read_text(None)
split = int(0.9 * len(text))  # the pretraining split: the last 10 % is validation
train_ids = torch.tensor(encode(text[:split]))
val_ids = torch.tensor(encode(text[split:]))
run = Run("s41_compression", config={"model": source}, seed=0)


def windows(ids, n, length, seed):
    """n random windows of length + 1 tokens: (inputs, next-token targets)."""
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - length - 1, (n,), generator=gen)
    chunk = torch.stack([ids[s:s + length + 1] for s in starts.tolist()])
    return chunk[:, :-1], chunk[:, 1:]


VAL = [windows(val_ids, 16, config.block_size, seed) for seed in range(12)]


def val_loss(m):
    m.eval()
    with torch.no_grad():
        return sum(float(m(x, y)[1]) for x, y in VAL) / len(VAL)


# %% [markdown]
# ## 1. The error of one matrix
# Rows of a trained weight matrix differ in scale. One scale for the whole tensor gives every row
# the step of the largest one; one scale per row (per output channel) fits each row.

# %%
w = model.transformer.h[0].attn.c_attn.weight.detach()
errors = {}
for name, (q, s) in {"int8 per tensor": cmp.quantize_absmax(w, 8),
                     "int8 per channel": cmp.quantize_absmax(w, 8, axis=0),
                     "int4 per channel": cmp.quantize_absmax(w, 4, axis=0)}.items():
    errors[name] = (w - cmp.dequantize(q, s)).abs().flatten()
q4, s4 = cmp.quantize_groupwise(w, 4, 16)
errors["int4 groups of 16"] = (w - cmp.dequantize_groupwise(q4, s4, 16)).abs().flatten()
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, err in errors.items():
    ax.hist(err.numpy(), bins=60, histtype="step", label=f"{name} (mean {float(err.mean()):.1e})")
    run.metric(f"mean_abs_error {name}", float(err.mean()))
ax.set_yscale("log")
ax.set_xlabel("|w - dequantised w| in block 0's c_attn")
ax.set_ylabel("weights")
ax.legend(fontsize=8)
run.figure(fig, "quantisation_error")

# %% [markdown]
# ## 2. Quality against size
# Fake quantisation (quantise, then dequantise and compute in float) gives exactly the quality
# of the stored model; `model_size_bytes` counts what it would take on disk. Pruned models are
# stored dense here, so their bytes do not shrink: sparsity pays only with a sparse format or
# kernels, which is why quantisation is what people ship.

# %%
variants = {"float32": (model, cmp.model_size_bytes(model))}
for bits, group in ((8, None), (4, 32), (4, 8), (3, 8)):
    name = f"int{bits} " + ("per channel" if group is None else f"groups of {group}")
    variants[name] = (cmp.quantize_model(model, bits, group),
                      cmp.model_size_bytes(model, bits, group))
for sparsity in (0.3, 0.5, 0.7):
    variants[f"pruned {int(sparsity * 100)} %"] = (cmp.prune_model(model, sparsity),
                                                   cmp.model_size_bytes(model))
table = {}
for name, (m, size) in variants.items():
    loss = val_loss(m)
    table[name] = (size, loss)
    run.metric(f"val_loss {name}", loss)
    run.metric(f"bytes {name}", size)
    print(f"{name:20s} {size / 1024:8.1f} KiB   val loss {loss:.3f}   "
          f"perplexity {torch.exp(torch.tensor(loss)):.2f}")
fig, ax = plt.subplots(figsize=(6, 4))
for name, (size, loss) in table.items():
    ax.scatter(size / 1024, loss, marker="x" if name.startswith("pruned") else "o")
    ax.annotate(name, (size / 1024, loss), fontsize=8)
ax.set_xlabel("size (KiB)")
ax.set_ylabel("validation loss (nats per character)")
ax.set_title("smaller and worse: down and to the left is better")
run.figure(fig, "loss_vs_bytes")

# %% [markdown]
# ## 3. Distillation into a smaller GPT
# The student is the same GPT at half the width with one layer. Both students see the same
# 40 batches (41 k tokens) ten times over; the distilled one also learns the teacher's whole
# next-token distribution at every position (T = 2, alpha = 0.9). With little data, hard labels
# overfit, and the teacher's soft targets are the extra signal: measured here, the distilled
# student ends about 0.14 nats lower (with 400 distinct batches the gap nearly closes).

# %%
student_config = type(config)(vocab_size=config.vocab_size, block_size=config.block_size,
                              n_layer=1, n_head=2, n_embd=max(16, config.n_embd // 2))
batches = [windows(train_ids, 16, config.block_size, 1000 + i) for i in range(40)]
curves, students = {}, {}
for name, teacher in (("from scratch", None), ("distilled", model)):
    torch.manual_seed(0)
    student = type(model)(student_config)
    start = time.perf_counter()
    curves[name] = cmp.fit_student(student, batches, steps=400, lr=3e-3, teacher=teacher,
                                   temperature=2.0, alpha=0.9)
    students[name] = student
    run.metric(f"student_val_loss {name}", val_loss(student))
    run.metric(f"student_seconds {name}", time.perf_counter() - start)
    print(f"student {name}: val loss {val_loss(student):.3f}")
teacher_loss = val_loss(model)
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, student in students.items():
    ax.bar(name, val_loss(student))
ax.axhline(teacher_loss, ls="--", c="gray",
           label=f"teacher ({cmp.model_size_bytes(model) // 1024} KiB)")
ax.set_ylabel("validation loss")
ax.set_title(f"student: {cmp.model_size_bytes(students['distilled']) // 1024} KiB, 400 updates")
ax.legend()
run.figure(fig, "distillation")

# %%
int8, int4 = table["int8 per channel"], table["int4 groups of 32"]
run.finish(f"On {source}: float32 {table['float32'][0] // 1024} KiB at val loss "
           f"{table['float32'][1]:.3f}; int8 per channel {int8[0] // 1024} KiB at {int8[1]:.3f}; "
           f"int4 in groups of 32 {int4[0] // 1024} KiB at {int4[1]:.3f}; pruning 50 % of the "
           f"Linear weights costs {table['pruned 50 %'][1] - table['float32'][1]:+.3f}. The "
           f"distilled student reaches {val_loss(students['distilled']):.3f} against "
           f"{val_loss(students['from scratch']):.3f} from scratch on the same tokens.")

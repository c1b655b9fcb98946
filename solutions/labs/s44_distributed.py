# %% [markdown]
# # s44 · Distributed data parallelism lab: two processes, one model
#
# This lab runs **your** `exercises/s44_distributed.py`. You will
#
# 1. check that gradient accumulation over k micro-batches gives the big batch's gradient;
# 2. pretrain a small character-level language model on Tiny Shakespeare with **two
#    processes** launched by `torchrun` (gloo on CPU), each rank starting from different
#    random weights (your broadcast fixes that) and seeing half of every batch;
# 3. train the same model in ONE process on the full batches and compare the two loss
#    curves: data parallelism must not change the optimisation, only who computes what;
# 4. count the all-reduce calls per step for several bucket sizes.
#
# Every experiment is recorded under `results/s44_distributed/`.

# %%
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tools.course import ROOT
from tools.fetch_data import fetch
from tools.labkit import Run, load_step

dd = load_step("s44_distributed")
torch.set_num_threads(1)
CONTEXT, N, BATCH, EPOCHS, LR, SEED = 8, 1536, 64, 3, 1e-2, 0
run = Run("s44_distributed", config={"context": CONTEXT, "examples": N, "batch": BATCH,
                                     "epochs": EPOCHS, "lr": LR, "world_size": 2}, seed=SEED)

# %% [markdown]
# ## 1. Gradient accumulation is a big batch in time
# Backward on `loss / k` for each of k equal micro-batches adds up to the gradient of the big
# batch's mean loss. The difference is rounding only (float64 here).

# %%
torch.manual_seed(0)
xs, ys = torch.randn(32, 6, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1)).double()
F.mse_loss(net(xs), ys).backward()
big = torch.cat([p.grad.flatten() for p in net.parameters()])
diffs = {}
for k in (1, 2, 4, 8, 16):
    net.zero_grad()
    size = 32 // k
    dd.accumulate_gradients(net, F.mse_loss, [(xs[i:i + size], ys[i:i + size])
                                              for i in range(0, 32, size)])
    acc = torch.cat([p.grad.flatten() for p in net.parameters()])
    diffs[k] = (acc - big).abs().max().item()
    print(f"k = {k:2d} micro-batches of {size:2d}: max |grad - big-batch grad| = {diffs[k]:.2e}")
run.metric("accumulation_max_grad_diff", max(diffs.values()))

# %% [markdown]
# ## 2. The data and the model
# Windows of 8 characters predict the next one. The output layer is tied to the embedding (as
# in GPT-2), so `make_buckets` must count that tensor once.

# %%
text = fetch("tinyshakespeare").read_text(encoding="utf-8")[:40_000]
chars = sorted(set(text))
ids = torch.tensor([chars.index(c) for c in text])
g = torch.Generator().manual_seed(SEED)
starts = torch.randint(0, len(ids) - CONTEXT - 1, (N,), generator=g)
x = torch.stack([ids[s: s + CONTEXT] for s in starts.tolist()])
y = ids[starts + CONTEXT]
work = Path(tempfile.mkdtemp(prefix="s44-lab-"))
torch.save({"x": x, "y": y, "vocab": len(chars)}, work / "data.pt")

MODEL = '''from torch import nn


class CharLM(nn.Module):
    def __init__(self, vocab, context, dim=16, hidden=64):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(context * dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, dim))
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight  # tied

    def forward(self, idx):
        return self.head(self.mlp(self.emb(idx).flatten(1)))
'''
(work / "charlm.py").write_text(MODEL)  # one class for this process and the workers
sys.path.insert(0, str(work))
from charlm import CharLM  # noqa: E402

print(f"{len(chars)} characters, {N} windows, batch {BATCH} ({BATCH // 2} per rank), "
      f"{EPOCHS} epochs = {EPOCHS * (N // BATCH)} steps")

# %% [markdown]
# ## 3. Two processes with torchrun
# `torchrun --standalone --nproc_per_node 2 worker.py` starts two processes and gives each
# RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (a free port on localhost); `init_method=
# "env://"` reads them. Each rank seeds itself differently, so only `broadcast_parameters`
# makes the two models equal.

# %%
WORKER = f'''
import json, os, sys, time
sys.path.insert(0, {str(ROOT)!r})
import torch
import torch.nn.functional as F
from torch import nn
from tools.labkit import load_step
sys.path.insert(0, {str(work)!r})
from charlm import CharLM
torch.set_num_threads(1)
dd = load_step("s44_distributed")
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
dd.init_process(rank, world, "env://", timeout_s=120)
data = torch.load({str(work / "data.pt")!r})
torch.manual_seed(1000 + rank)  # different on purpose: broadcast must fix it
model = CharLM(data["vocab"], {CONTEXT})
opt = torch.optim.AdamW(model.parameters(), lr={LR})
start = time.perf_counter()
history = dd.train_data_parallel(model, opt, F.cross_entropy, data["x"], data["y"],
                                 batch_size={BATCH}, epochs={EPOCHS}, seed={SEED},
                                 bucket_size=2000)
seconds = time.perf_counter() - start
if rank == 0:
    torch.save(model.state_dict(), {str(work / "ddp_state.pt")!r})
    with open({str(work / "ddp.json")!r}, "w") as f:
        json.dump({{"history": history, "seconds": seconds}}, f)
torch.distributed.destroy_process_group()
'''
(work / "worker.py").write_text(WORKER)
t0 = time.perf_counter()
proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc_per_node", "2", str(work / "worker.py")],
                      capture_output=True, text=True, timeout=600,
                      env={**os.environ, "OMP_NUM_THREADS": "1"})
wall = time.perf_counter() - t0
if proc.returncode != 0:
    raise RuntimeError(f"torchrun failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
ddp = json.loads((work / "ddp.json").read_text())
print(f"torchrun: {wall:.1f} s in all (process start and imports included), "
      f"{ddp['seconds']:.2f} s of training on rank 0")
run.metric("ddp_train_seconds", ddp["seconds"])
run.metric("ddp_final_loss", ddp["history"][-1])

# %% [markdown]
# ## 4. The same training in one process
# A process group of one: `train_data_parallel` is then plain minibatch training on the full
# batches in the same order. The model starts from rank 0's weights.

# %%
dist.init_process_group("gloo", init_method=f"file://{work}/store", rank=0, world_size=1)
torch.manual_seed(1000)
single = CharLM(len(chars), CONTEXT)
opt = torch.optim.AdamW(single.parameters(), lr=LR)
start = time.perf_counter()
history = dd.train_data_parallel(single, opt, F.cross_entropy, x, y, batch_size=BATCH,
                                 epochs=EPOCHS, seed=SEED)
single_seconds = time.perf_counter() - start
buckets = {size: len(dd.make_buckets(single.parameters(), size))
           for size in (1, 500, 2000, 10_000, None)}
dist.destroy_process_group()
ddp_state = torch.load(work / "ddp_state.pt")
gap = max(abs(a - b) for a, b in zip(history, ddp["history"], strict=True))
weight_gap = max((ddp_state[k] - v).abs().max().item() for k, v in single.state_dict().items())
print(f"one process: {single_seconds:.2f} s; max |loss gap| {gap:.2e}, "
      f"max |weight gap| {weight_gap:.2e} after {len(history)} steps")
run.metric("single_train_seconds", single_seconds)
run.metric("max_loss_gap", gap)
run.metric("max_weight_gap", weight_gap)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(history, label="1 process, full batch", lw=3, alpha=0.5)
axes[0].plot(ddp["history"], "--", label="2 processes (torchrun), half each")
axes[0].set(xlabel="step", ylabel="cross-entropy", title="the same optimisation")
axes[0].legend()
axes[1].bar([str(k) for k in buckets], list(buckets.values()))
axes[1].set(xlabel="bucket_size (elements)", ylabel="all-reduce calls per step",
            title=f"{sum(p.numel() for p in single.parameters())} parameters")
run.figure(fig, "ddp_vs_single")
for size, count in buckets.items():
    run.metric(f"buckets_{size}", count)

# %%
run.finish(
    f"Accumulating k micro-batches reproduces the big-batch gradient to "
    f"{max(diffs.values()):.0e} (rounding). Two torchrun processes, each on half of every "
    f"batch and started from different weights, follow the one-process loss curve to "
    f"{gap:.1e} after {len(history)} steps (float32 rounding of the two-way sum): the "
    "broadcast made the models equal and the averaged gradient is the full-batch gradient. "
    f"Bucketing trades calls for waiting: {buckets[1]} all-reduces per step with one bucket "
    f"per parameter, {buckets[None]} with one bucket; the tied head counts once. On one "
    "shared CPU two processes are not faster: the speed-up needs hardware per rank.")

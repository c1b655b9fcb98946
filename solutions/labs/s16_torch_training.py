# %% [markdown]
# # s16 · Training lab: one loop for every model, and a resume you can trust
#
# This lab runs **your** `exercises/s16_torch_training.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. train an MLP and a small CNN on the 8×8 digits with the *same* `fit`, and plot their
#    training and validation curves;
# 2. use a callback to remember the best validation step;
# 3. stop a run halfway, save a checkpoint, load it into a fresh model and finish: the curve
#    continues bit for bit. A "weights only" resume, for comparison, does not.
#
# Every experiment is recorded under `results/s16_torch_training/`.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from tools.labkit import Run, load_step

tt = load_step("s16_torch_training")
torch.set_num_threads(1)
config = {"batch_size": 64, "lr": 2e-3, "steps": 400, "eval_every": 20, "dropout": 0.2,
          "noise": 0.05, "resume_steps": 200}
run = Run("s16_torch_training", config=config, seed=0)

# %% [markdown]
# ## 1. Data: a Dataset, a DataLoader, and a little augmentation
# Pixels are scaled to [0, 1] and kept as images (1, 8, 8): the MLP flattens them, the CNN
# does not. The training set adds Gaussian noise each time an item is read (drawn from torch's
# global generator: one more piece of state a checkpoint must carry).

# %%
digits = load_digits()
X = (digits.images / 16.0)[:, None]  # (n, 1, 8, 8)
y = digits.target
X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
X_va, X_te, y_va, y_te = train_test_split(X_rest, y_rest, test_size=0.5, stratify=y_rest,
                                          random_state=0)


def noisy(x):
    return x + config["noise"] * torch.randn_like(x)


train_ds = tt.ArrayDataset(X_tr, y_tr, transform=noisy)
val_loader = tt.make_loader(tt.ArrayDataset(X_va, y_va), 256)
test_loader = tt.make_loader(tt.ArrayDataset(X_te, y_te), 256)
print(f"train {len(train_ds)}, val {len(X_va)}, test {len(X_te)}; one batch:",
      [tuple(t.shape) for t in next(iter(tt.make_loader(train_ds, 4)))])

# %% [markdown]
# ## 2. Two models, one loop
# `fit` does not know what it trains: any `nn.Module`, any loss, any optimizer. The callback
# below keeps the step with the lowest validation loss (early stopping would then restore
# that model; here we only note where it was).

# %%
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2))  # (B, 8, 4, 4)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(config["dropout"]),
                                  nn.Linear(8 * 4 * 4, 10))

    def forward(self, x):
        return self.head(self.features(x))


class KeepBest(tt.Callback):
    def __init__(self):
        self.best = (float("inf"), 0)

    def on_eval_end(self, state, metrics):
        self.best = min(self.best, (metrics["loss"], state.step))


def train(make_model, seed=0):
    torch.manual_seed(seed)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    loader = tt.make_loader(train_ds, config["batch_size"], shuffle=True, seed=seed)
    best = KeepBest()
    history = tt.fit(model, loader, opt, nn.CrossEntropyLoss(), max_steps=config["steps"],
                     val_loader=val_loader, eval_every=config["eval_every"], callbacks=[best],
                     progress=True)
    return model, history, best.best


models = {"MLP 64-128-10": lambda: tt.MLP([64, 128, 10], dropout=config["dropout"]),
          "small CNN": SmallCNN}
results = {name: train(make) for name, make in models.items()}

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (name, (model, hist, (best_loss, best_step))) in zip(axes, results.items(), strict=True):
    smooth = np.convolve(hist["train_loss"], np.ones(10) / 10, mode="valid")
    ax.plot(hist["step"], hist["train_loss"], color="C0", alpha=0.25, lw=0.8)
    ax.plot(hist["step"][9:], smooth, color="C0", label="train (10-step mean)")
    ax.plot(hist["val_step"], hist["val_loss"], "o-", color="C1", ms=3, label="validation")
    ax.axvline(best_step, color="grey", ls=":", label=f"best val at step {best_step}")
    ax.set_yscale("log")
    ax.set_title(name)
    ax.set_xlabel("step")
    ax.legend()
    test = tt.evaluate(model, test_loader, nn.CrossEntropyLoss())
    run.metric(f"test_accuracy[{name}]", test["accuracy"])
    run.metric(f"best_val_loss[{name}]", best_loss)
    print(f"{name}: test accuracy {test['accuracy']:.3f}, best val loss {best_loss:.3f} "
          f"at step {best_step}")
axes[0].set_ylabel("cross-entropy")
fig.tight_layout()
run.figure(fig, "training_curves")
plt.show()

# %% [markdown]
# ## 3. Stop, save, resume: the same curve, bit for bit
# Three runs of the MLP for 200 steps:
#
# - **straight**: 200 steps in one go;
# - **resumed**: 100 steps, `save_checkpoint`, then a *new* model, optimizer and loader (other
#   seeds, scrambled global RNGs, as in a new process), `load_checkpoint`, 100 more steps;
# - **weights only**: the same break, but only `model.state_dict()` survives: a new Adam,
#   whatever RNG state the new process has, and the data loader starting a new epoch.

# %%
N = config["resume_steps"]


def fresh(seed):
    torch.manual_seed(seed)
    model = tt.MLP([64, 128, 10], dropout=config["dropout"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return model, opt, tt.make_loader(train_ds, config["batch_size"], shuffle=True, seed=seed)


loss_fn = nn.CrossEntropyLoss()
model, opt, loader = fresh(0)
straight = tt.fit(model, loader, opt, loss_fn, max_steps=N)["train_loss"]

with tempfile.TemporaryDirectory() as tmp:
    model, opt, loader = fresh(0)
    state = tt.LoopState()
    tt.fit(model, loader, opt, loss_fn, max_steps=N // 2, state=state)
    tt.save_checkpoint(Path(tmp) / "ckpt.pt", model, opt, state)
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    model, opt, loader = fresh(123)  # a new process: other init, other seeds
    state = tt.load_checkpoint(Path(tmp) / "ckpt.pt", model, opt)
    resumed = tt.fit(model, loader, opt, loss_fn, max_steps=N, state=state)["train_loss"]

model, opt, loader = fresh(123)
model.load_state_dict(weights)  # weights only: no optimizer, RNG, data position or history
naive = tt.fit(model, loader, opt, loss_fn, max_steps=N - N // 2)["train_loss"]
naive = straight[:N // 2] + naive

gap = np.abs(np.array(resumed) - np.array(straight))
gap_naive = np.abs(np.array(naive) - np.array(straight))
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
steps = np.arange(1, N + 1)
a1.plot(steps, straight, lw=2.5, color="C0", label="straight")
a1.plot(steps, resumed, lw=1, color="C1", ls="--", label="resumed from checkpoint")
a1.plot(steps, naive, lw=1, color="C3", alpha=0.7, label="weights-only resume")
a1.axvline(N // 2, color="grey", ls=":")
a1.set_xlabel("step")
a1.set_ylabel("training loss")
a1.legend()
a2.plot(steps, gap_naive, color="C3", label="|weights-only - straight|")
a2.plot(steps, gap, color="C1", label="|resumed - straight|")
a2.axvline(N // 2, color="grey", ls=":")
a2.set_xlabel("step")
a2.set_ylabel("absolute loss difference")
a2.legend()
fig.tight_layout()
run.figure(fig, "resume")
plt.show()
run.metric("resume_max_abs_diff", float(gap.max()))
run.metric("weights_only_max_abs_diff", float(gap_naive.max()))
print(f"largest difference after a full resume: {gap.max():.3g}; "
      f"after a weights-only resume: {gap_naive.max():.3g}")

# %% [markdown]
# ## 4. The pieces, at length
# **Dataset and DataLoader.** A Dataset is anything with `__len__` and `__getitem__(i) ->
# (x_i, y_i)`. A DataLoader draws indices (shuffled or not), collates items into batches
# `(B, ...)`, optionally in worker processes.
#
# **nn.Module.** Layers assigned as attributes (or kept in `nn.Sequential` / `nn.ModuleList`)
# register their parameters, so `.parameters()`, `.to(device)`, `.state_dict()` and
# `.train()` / `.eval()` reach them. A plain Python list of layers is invisible to all four.
#
# **One training step**, always in this order: `model.train()`, `optimizer.zero_grad()`,
# `loss = loss_fn(model(x), y)`, `loss.backward()`, `optimizer.step()`. `.backward()` ADDS
# into `.grad` (that is what makes gradient accumulation possible), so a forgotten
# `zero_grad()` sums the gradients of every step so far.
#
# **Evaluation needs two different switches.** `model.eval()` changes what layers compute:
# dropout becomes the identity, BatchNorm uses its running statistics instead of the batch's
# (and stops updating them). `torch.no_grad()` stops autograd from recording a graph: less
# memory, more speed, and no way to leak an update. Neither implies the other. Average the
# loss per *sample*: a short last batch must not weigh as much as a full one.
#
# **What "the state of training" is.** Resuming is bit-identical only if everything that
# influences the next step is restored: the parameters; the optimizer's state (Adam's moments
# and step count, momentum buffers); the step counter (and any LR schedule that reads it); the
# position in the data (which epoch, the epoch's shuffled order, how many batches were used);
# and every random generator the loop touches: torch's (dropout, init), NumPy's and Python's
# (augmentation in a Dataset). A DataLoader that shuffles with the global torch generator both
# depends on and perturbs it; give it its own `torch.Generator`, whose state at the start of
# each epoch fixes that epoch's order.
#
# To resume mid-epoch we set the loader's generator back to the epoch's starting state,
# redraw the same order, and skip the batches already used. Skipping loads them (and a
# Dataset may draw random numbers while loading), so the global generators are restored
# AFTER the skip. When an epoch ends, the generator's state is the *next* epoch's starting
# state, so closing an epoch records it: a checkpoint saved at an epoch boundary (after
# `fit` returns, or in `on_epoch_end`) then resumes with the next epoch's order instead of
# replaying epoch 0's. Large-scale code skips at the sampler level instead (Hugging Face's
# `skip_first_batches`, torchdata's `StatefulDataLoader`), but the state to save is the same.
#
# **Limits.** Bit-identity holds on one machine and library version with the same thread
# count. GPU kernels may be non-deterministic (`torch.use_deterministic_algorithms`), and
# loader workers (`num_workers > 0`) get seeds derived from the loader's generator.
#
# **Safe checkpoints.** A checkpoint is written to a temporary file and renamed, so a crash
# while saving never destroys the previous one, and read with
# `torch.load(weights_only=True)`: unpickling a file can run arbitrary code, so we store
# only tensors and plain Python values.
#
# **You should be able to explain**
# - what `zero_grad()` is for, and what happens without it;
# - the difference between `model.eval()` and `torch.no_grad()`, and why evaluation needs
#   both;
# - every piece of state a checkpoint must hold for an exact resume, and what breaks without
#   each one;
# - why the same seed gives the same result here, and when it would not.

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
acc = {name: run.record["metrics"][f"test_accuracy[{name}]"] for name in models}
run.finish(
    f"The same fit trained the MLP to {acc['MLP 64-128-10']:.3f} and the CNN to "
    f"{acc['small CNN']:.3f} test accuracy. Resuming from a full checkpoint reproduced the "
    f"straight run exactly (largest loss difference {gap.max():.3g}); keeping only the weights "
    f"changed the losses by up to {gap_naive.max():.3g} from the first step after the break.")

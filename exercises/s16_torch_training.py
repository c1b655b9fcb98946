"""s16 · The framework, earned: Dataset, DataLoader, nn.Module and a training loop you can resume.

You build
    ArrayDataset(X, y, transform)        a map-style Dataset: __len__ and __getitem__
    make_loader(dataset, batch_size, ...)    a DataLoader whose shuffling has its own generator
    MLP(sizes, dropout)                  an nn.Module: Linear -> ReLU -> Dropout, ..., Linear
    train_step / evaluate                one update; a no-grad, eval-mode pass over a loader
    capture_rng_state / restore_rng_state    the torch, NumPy and Python generators' states
    epoch_batches / fit                  the reusable loop: callbacks, history, progress bar
    save_checkpoint / load_checkpoint    stop anywhere, resume bit-identically

Until now you wrote every gradient (s11), an autograd engine (s12), the optimizers (s13),
dropout and normalisation (s14): torch now does that work, and this step builds the loop
every later step reuses. An exact resume restores everything that shapes the next step:
parameters, optimizer state, step counter, position in the data, and the torch, NumPy and
Python generators. The lab's last section explains each piece (why zero_grad, why eval()
AND no_grad, why a plain list of layers does not register) and what you should be able to
explain.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm import tqdm

Batch = tuple[torch.Tensor, torch.Tensor]


class ArrayDataset(Dataset):
    """Items (x_i, y_i): X as float32, y as int64 if its values are integers else float32.

    ``transform`` (optional) is applied to each x_i when it is read, never to the stored X.
    """

    def __init__(self, X, y, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        raise NotImplementedError("s16 torch training: store X (float32), y (int64 for integer labels, else float32), transform")

    def __len__(self) -> int:
        raise NotImplementedError("s16 torch training: the number of samples")

    def __getitem__(self, i: int) -> Batch:
        raise NotImplementedError("s16 torch training: return (x_i, y_i), transforming x_i if a transform was given")


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A single-process DataLoader whose shuffling uses its own torch.Generator seeded with seed."""
    raise NotImplementedError("s16 torch training: a DataLoader with generator=torch.Generator().manual_seed(seed)")


class MLP(nn.Module):
    """sizes (d_0, ..., d_L): Linear(d_0, d_1) -> ReLU -> Dropout(p) -> ... -> Linear(d_L-1, d_L).

    No activation or dropout after the last Linear (it outputs logits). Inputs (B, ...) are
    flattened to (B, d_0), so (B, 1, 8, 8) images work with d_0 = 64.
    """

    def __init__(self, sizes: Sequence[int], dropout: float = 0.0):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {tuple(sizes)}")
        raise NotImplementedError("s16 torch training: build the layers in an nn.Sequential so their parameters register")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("s16 torch training: flatten to (B, d_0), apply the layers")


def train_step(model: nn.Module, batch: Batch, optimizer: torch.optim.Optimizer,
               loss_fn: Callable, device: str | torch.device = "cpu") -> float:
    """One update on (x, y) moved to device: train mode, zero the grads (set to None, as
    optimizer.zero_grad() does: a parameter the loss does not reach is then not stepped),
    forward, loss, backward, step; returns the loss as a float."""
    raise NotImplementedError("s16 torch training: move the batch to device, then the five lines of a training step")


def evaluate(model: nn.Module, loader: DataLoader, loss_fn: Callable,
             device: str | torch.device = "cpu") -> dict[str, float]:
    """{"loss": per-sample mean, "accuracy"} in eval mode under no_grad, batches moved to device.

    "accuracy" (integer labels only) is the share of (B, C) logits whose argmax is the label.

    ``loss_fn`` averages over its batch. The model's train / eval mode is restored afterwards.
    """
    raise NotImplementedError("s16 torch training: eval(), no_grad, weight each batch's mean loss by its size, restore mode")


def capture_rng_state() -> dict:
    """The global torch, NumPy and Python RNG states, as tensors and plain Python values."""
    state = {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}
    raise NotImplementedError("s16 torch training: add torch's, NumPy's (key array as a tensor) and Python's states")
    return state


def restore_rng_state(state: dict) -> None:
    """Put back the generator states captured by capture_rng_state."""
    if "cuda" in state and torch.cuda.is_available():  # given: each GPU has its own generator
        torch.cuda.set_rng_state_all(state["cuda"])
    raise NotImplementedError("s16 torch training: the inverse of capture_rng_state")


@dataclass
class LoopState:
    """Everything besides model and optimizer that the loop needs to continue exactly."""

    step: int = 0  # optimizer updates done so far
    epoch: int = 0  # the current pass over the training data (0-based)
    batch_in_epoch: int = 0  # batches of this epoch already trained on
    epoch_rng: torch.Tensor | None = None  # the loader generator's state when this epoch began
    rng: dict | None = None  # global RNG states to restore once the data is fast-forwarded
    stop: bool = False  # a callback sets this to end training early
    history: dict[str, list[float]] = field(default_factory=lambda: {
        "step": [], "train_loss": [], "val_step": [], "val_loss": []})


class Callback:
    """Hooks fit calls; override the ones you need. Setting state.stop = True ends training."""

    def on_train_begin(self, state: LoopState) -> None: ...
    def on_step_end(self, state: LoopState, loss: float) -> None: ...
    def on_epoch_end(self, state: LoopState) -> None: ...
    def on_eval_end(self, state: LoopState, metrics: dict[str, float]) -> None: ...
    def on_train_end(self, state: LoopState) -> None: ...


def epoch_batches(loader: DataLoader, state: LoopState) -> Iterator[Batch]:
    """The current epoch's remaining batches, in the order a run without a break would see.

    state.epoch_rng is the loader generator's state when this epoch began: record it if it is
    None (a fresh run), else set the generator to it. Skip state.batch_in_epoch batches, and
    only then restore state.rng (if set; clear it afterwards).
    """
    raise NotImplementedError("s16 torch training: record or set the generator's state, fast-forward, then restore the RNGs")


def _validate(model: nn.Module, loader: DataLoader, loss_fn: Callable, device, state: LoopState,
              callbacks: Sequence[Callback]) -> None:
    """evaluate, append history["val_step"] and "val_<metric>", call on_eval_end."""
    raise NotImplementedError("s16 torch training: evaluate, record, call back")


def fit(model: nn.Module, train_loader: DataLoader, optimizer: torch.optim.Optimizer,
        loss_fn: Callable, *, max_steps: int, val_loader: DataLoader | None = None,
        eval_every: int = 0, callbacks: Sequence[Callback] = (), state: LoopState | None = None,
        device: str | torch.device = "cpu", progress: bool = False) -> dict[str, list[float]]:
    """Train until state.step >= max_steps or a callback sets state.stop; return state.history.

    Each step: train_step, then step / batch_in_epoch += 1, append to history["step"] and
    ["train_loss"], on_step_end; every eval_every steps (if val_loader): evaluate, append
    history["val_step"] and "val_<metric>", on_eval_end. A finished epoch: epoch += 1,
    batch_in_epoch = 0, epoch_rng = the loader generator's state now (the next epoch's
    order), on_epoch_end. If the step that ends training is also an epoch's last, close that
    epoch now or leave it to the resumed fit (batch_in_epoch == len(train_loader)): either
    way a checkpoint saved after fit, or in on_epoch_end, resumes with the next epoch's
    order. Also on_train_begin / on_train_end, and a tqdm bar (to stderr, counting step /
    max_steps) when progress. Pass a loaded state to resume.
    """
    state = state if state is not None else LoopState()
    if isinstance(train_loader.sampler, RandomSampler) and train_loader.generator is None:
        raise ValueError("a shuffling train_loader needs its own generator "
                         "(DataLoader(..., generator=torch.Generator().manual_seed(seed)))")
    if len(train_loader) == 0:
        raise ValueError("train_loader yields no batch")
    raise NotImplementedError("s16 torch training: loop over epochs of epoch_batches; step, record, call back, evaluate")


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    state: LoopState) -> None:
    """Save model, optimizer, loop state and the global RNG states; atomically (tmp + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    raise NotImplementedError("s16 torch training: one dict of state_dicts, asdict(state) and capture_rng_state(), saved to tmp")
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer) -> LoopState:
    """Load into model and optimizer (torch.load weights_only=True); return the LoopState.

    The saved RNG states go into the returned state's ``rng``: fit restores them once it has
    fast-forwarded the data (see epoch_batches).
    """
    raise NotImplementedError("s16 torch training: torch.load, load_state_dict twice, rebuild LoopState with rng")

"""s16 · The framework, earned: Dataset, DataLoader, nn.Module and a training loop you can resume.

You build
    ArrayDataset(X, y, transform)        a map-style Dataset: __len__ and __getitem__
    make_loader(dataset, batch_size, ...)    a DataLoader whose shuffling has its own generator
    MLP(sizes, dropout)                  an nn.Module: Linear -> ReLU -> Dropout, ..., Linear
    train_step / evaluate                one update; a no-grad, eval-mode pass over a loader
    capture_rng_state / restore_rng_state    the torch, NumPy and Python generators' states
    epoch_batches / fit                  the reusable loop: callbacks, history, progress bar
    save_checkpoint / load_checkpoint    stop anywhere, resume bit-identically

How it differs from the previous steps
    Until now you wrote every gradient (s11), an autograd engine (s12), the optimizers (s13),
    dropout and normalisation (s14). You have earned torch: autograd, torch.optim and nn
    layers now do that work, and this step builds the loop every later step reuses.

The pieces
    Dataset: anything with __len__ and __getitem__(i) -> (x_i, y_i). DataLoader: draws indices
    (shuffled or not), collates items into batches (B, ...), optionally in worker processes.
    nn.Module: layers assigned as attributes (or in nn.Sequential / nn.ModuleList) register
    their parameters, so .parameters(), .to(device), .state_dict() and .train()/.eval() reach
    them. A plain Python list of layers is invisible to all four.

    One training step, always in this order:
        model.train(); optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward();
        optimizer.step()
    .backward() ADDS into .grad (that is what makes gradient accumulation possible), so a
    forgotten zero_grad() sums the gradients of every step so far.

    Evaluation needs two different switches. model.eval() changes what layers compute:
    dropout becomes the identity, BatchNorm uses its running statistics instead of the
    batch's (and stops updating them). torch.no_grad() stops autograd from recording a
    graph: less memory, more speed, and no way to leak an update. Neither implies the
    other. Average the loss per SAMPLE: a short last batch must not weigh as much as a full.

Reproducibility: what "the state of training" is
    Resuming is bit-identical only if everything that influences the next step is restored:
    the parameters; the optimizer's state (Adam's moments and step count, momentum buffers);
    the step counter (and any LR schedule that reads it); the position in the data (which
    epoch, the epoch's shuffled order, how many batches were used); and every random
    generator the loop touches: torch's (dropout, init), NumPy's and Python's (augmentation
    in a Dataset). A DataLoader that shuffles with the global torch generator both depends
    on and perturbs it; give it its own torch.Generator, whose state at the start of each
    epoch fixes that epoch's order.

    To resume mid-epoch we set the loader's generator back to the epoch's starting state,
    redraw the same order, and skip the batches already used. Skipping loads them (and a
    Dataset may draw random numbers while loading), so the global generators are restored
    AFTER the skip. Large-scale code skips at the sampler level instead (Hugging Face's
    skip_first_batches, torchdata's StatefulDataLoader), but the state to save is the same.

    Limits: bit-identity holds on one machine and library version with the same thread
    count. GPU kernels may be non-deterministic (torch.use_deterministic_algorithms), and
    loader workers (num_workers > 0) get seeds derived from the loader's generator.

    A checkpoint is written to a temporary file and renamed, so a crash while saving never
    destroys the previous one, and read with torch.load(weights_only=True): unpickling a
    file can run arbitrary code, so we store only tensors and plain Python values.

You should be able to explain
    - what zero_grad() is for, and what happens without it;
    - the difference between model.eval() and torch.no_grad(), and why evaluation needs both;
    - every piece of state a checkpoint must hold for an exact resume, and what breaks
      without each one;
    - why the same seed gives the same result here, and when it would not.
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
    """One update on (x, y): train mode, zero the grads, forward, loss, backward, step -> loss."""
    raise NotImplementedError("s16 torch training: move the batch to device, then the five lines of a training step")


def evaluate(model: nn.Module, loader: DataLoader, loss_fn: Callable,
             device: str | torch.device = "cpu") -> dict[str, float]:
    """{"loss": per-sample mean, "accuracy" (integer labels only)} in eval mode under no_grad.

    ``loss_fn`` averages over its batch. The model's train / eval mode is restored afterwards.
    """
    raise NotImplementedError("s16 torch training: eval(), no_grad, weight each batch's mean loss by its size, restore mode")


def capture_rng_state() -> dict:
    """The global torch, NumPy and Python RNG states, as tensors and plain Python values."""
    raise NotImplementedError("s16 torch training: torch's, NumPy's (key array as a tensor) and Python's states")


def restore_rng_state(state: dict) -> None:
    """Put back the generator states captured by capture_rng_state."""
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

    state.batch_in_epoch == 0: record loader.generator's state in state.epoch_rng, then iterate.
    Otherwise (resuming): reset the generator to state.epoch_rng, skip the used batches, and
    only then restore state.rng (if set; clear it afterwards).
    """
    raise NotImplementedError("s16 torch training: snapshot or restore the generator, fast-forward, then restore the RNGs")


def _validate(model: nn.Module, loader: DataLoader, loss_fn: Callable, device, state: LoopState,
              callbacks: Sequence[Callback]) -> None:
    """evaluate, append history["val_step"] and "val_<metric>", call on_eval_end."""
    raise NotImplementedError("s16 torch training: evaluate, record, call back")


def fit(model: nn.Module, train_loader: DataLoader, optimizer: torch.optim.Optimizer,
        loss_fn: Callable, *, max_steps: int, val_loader: DataLoader | None = None,
        eval_every: int = 0, callbacks: Sequence[Callback] = (), state: LoopState | None = None,
        device: str | torch.device = "cpu", progress: bool = False) -> dict[str, list[float]]:
    """Train until state.step == max_steps or a callback sets state.stop; return state.history.

    Each step: train_step, then step / batch_in_epoch += 1, append to history["step"] and
    ["train_loss"], on_step_end; every eval_every steps (if val_loader): evaluate, append
    history["val_step"] and "val_<metric>", on_eval_end. A finished epoch: epoch += 1,
    batch_in_epoch = 0, on_epoch_end. Also on_train_begin / on_train_end, and a tqdm bar
    (to stderr, counting step / max_steps) when progress. Pass a loaded state to resume.
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

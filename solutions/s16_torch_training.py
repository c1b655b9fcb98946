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
        # BEGIN SOLUTION: store X (float32), y (int64 for integer labels, else float32), transform
        self.X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        y = np.asarray(y)
        integer = np.issubdtype(y.dtype, np.integer)
        self.y = torch.as_tensor(y, dtype=torch.int64 if integer else torch.float32)
        self.transform = transform
        # END SOLUTION

    def __len__(self) -> int:
        # BEGIN SOLUTION: the number of samples
        return len(self.X)
        # END SOLUTION

    def __getitem__(self, i: int) -> Batch:
        # BEGIN SOLUTION: return (x_i, y_i), transforming x_i if a transform was given
        x = self.X[i]
        return (self.transform(x) if self.transform is not None else x), self.y[i]
        # END SOLUTION


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A single-process DataLoader whose shuffling uses its own torch.Generator seeded with seed."""
    # BEGIN SOLUTION: a DataLoader with generator=torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      generator=torch.Generator().manual_seed(seed))
    # END SOLUTION


class MLP(nn.Module):
    """sizes (d_0, ..., d_L): Linear(d_0, d_1) -> ReLU -> Dropout(p) -> ... -> Linear(d_L-1, d_L).

    No activation or dropout after the last Linear (it outputs logits). Inputs (B, ...) are
    flattened to (B, d_0), so (B, 1, 8, 8) images work with d_0 = 64.
    """

    def __init__(self, sizes: Sequence[int], dropout: float = 0.0):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {tuple(sizes)}")
        # BEGIN SOLUTION: build the layers in an nn.Sequential so their parameters register
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(sizes) - 2:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION: flatten to (B, d_0), apply the layers
        return self.net(x.flatten(1))  # (B, d_L)
        # END SOLUTION


def train_step(model: nn.Module, batch: Batch, optimizer: torch.optim.Optimizer,
               loss_fn: Callable, device: str | torch.device = "cpu") -> float:
    """One update on (x, y) moved to device: train mode, zero the grads (set to None, as
    optimizer.zero_grad() does: a parameter the loss does not reach is then not stepped),
    forward, loss, backward, step; returns the loss as a float."""
    # BEGIN SOLUTION: move the batch to device, then the five lines of a training step
    x, y = (t.to(device) for t in batch)
    model.train()
    optimizer.zero_grad(set_to_none=True)  # .backward() accumulates: clear last step's grads
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()
    # END SOLUTION


def evaluate(model: nn.Module, loader: DataLoader, loss_fn: Callable,
             device: str | torch.device = "cpu") -> dict[str, float]:
    """{"loss": per-sample mean, "accuracy"} in eval mode under no_grad, batches moved to device.

    "accuracy" (integer labels only) is the share of (B, C) logits whose argmax is the label.

    ``loss_fn`` averages over its batch. The model's train / eval mode is restored afterwards.
    """
    # BEGIN SOLUTION: eval(), no_grad, weight each batch's mean loss by its size, restore mode
    was_training, total, correct, n = model.training, 0.0, 0, 0
    model.eval()  # dropout off, BatchNorm on running statistics
    try:
        with torch.no_grad():  # no graph: less memory, and nothing to backpropagate
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                out = model(x)
                total += loss_fn(out, y).item() * len(y)
                if not torch.is_floating_point(y):
                    correct += (out.argmax(dim=-1) == y).sum().item()
                n += len(y)
    finally:
        model.train(was_training)
    metrics = {"loss": total / n}
    if not torch.is_floating_point(y):
        metrics["accuracy"] = correct / n
    return metrics
    # END SOLUTION


def capture_rng_state() -> dict:
    """The global torch, NumPy and Python RNG states, as tensors and plain Python values."""
    state = {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}
    # BEGIN SOLUTION: add torch's, NumPy's (key array as a tensor) and Python's states
    name, key, pos, has_gauss, cached = np.random.get_state()
    state.update({"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": (
        name, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached)})
    # END SOLUTION
    return state


def restore_rng_state(state: dict) -> None:
    """Put back the generator states captured by capture_rng_state."""
    if "cuda" in state and torch.cuda.is_available():  # given: each GPU has its own generator
        torch.cuda.set_rng_state_all(state["cuda"])
    # BEGIN SOLUTION: the inverse of capture_rng_state
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    # END SOLUTION


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
    # BEGIN SOLUTION: record or set the generator's state, fast-forward, then restore the RNGs
    gen = loader.generator
    if gen is not None and state.epoch_rng is None:
        state.epoch_rng = gen.get_state()
    elif gen is not None:
        gen.set_state(state.epoch_rng)  # redraw this epoch's order (a no-op unless resuming)
    batches = iter(loader)
    for _ in range(state.batch_in_epoch):  # ... and skip what was already used
        next(batches)
    if state.rng is not None:  # only now: skipping loaded data, which may draw random numbers
        restore_rng_state(state.rng)
        state.rng = None
    yield from batches
    # END SOLUTION


def _validate(model: nn.Module, loader: DataLoader, loss_fn: Callable, device, state: LoopState,
              callbacks: Sequence[Callback]) -> None:
    """evaluate, append history["val_step"] and "val_<metric>", call on_eval_end."""
    # BEGIN SOLUTION: evaluate, record, call back
    metrics = evaluate(model, loader, loss_fn, device)
    state.history["val_step"].append(state.step)
    for name, value in metrics.items():
        state.history.setdefault(f"val_{name}", []).append(value)
    for cb in callbacks:
        cb.on_eval_end(state, metrics)
    # END SOLUTION


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
    # BEGIN SOLUTION: loop over epochs of epoch_batches; step, record, call back, evaluate
    bar = tqdm(total=max_steps, initial=state.step, desc="train", disable=not progress)
    for cb in callbacks:
        cb.on_train_begin(state)
    while state.step < max_steps and not state.stop:
        for batch in epoch_batches(train_loader, state):
            loss = train_step(model, batch, optimizer, loss_fn, device)
            state.step += 1
            state.batch_in_epoch += 1
            state.history["step"].append(state.step)
            state.history["train_loss"].append(loss)
            bar.update()
            bar.set_postfix(loss=f"{loss:.4f}")
            for cb in callbacks:
                cb.on_step_end(state, loss)
            if val_loader is not None and eval_every and state.step % eval_every == 0:
                _validate(model, val_loader, loss_fn, device, state, callbacks)
            if state.step >= max_steps or state.stop:  # check AFTER the step: never load
                break  # a batch that will not be trained on
        else:  # the loader's generator now holds the next epoch's starting state
            state.epoch += 1
            state.batch_in_epoch = 0
            gen = train_loader.generator
            state.epoch_rng = gen.get_state() if gen is not None else None
            for cb in callbacks:
                cb.on_epoch_end(state)
    bar.close()
    for cb in callbacks:
        cb.on_train_end(state)
    return state.history
    # END SOLUTION


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    state: LoopState) -> None:
    """Save model, optimizer, loop state and the global RNG states; atomically (tmp + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    # BEGIN SOLUTION: one dict of state_dicts, asdict(state) and capture_rng_state(), saved to tmp
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "loop": asdict(state), "rng": capture_rng_state()}, tmp)
    # END SOLUTION
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer) -> LoopState:
    """Load into model and optimizer (torch.load weights_only=True); return the LoopState.

    The saved RNG states go into the returned state's ``rng``: fit restores them once it has
    fast-forwarded the data (see epoch_batches).
    """
    # BEGIN SOLUTION: torch.load, load_state_dict twice, rebuild LoopState with rng
    ckpt = torch.load(path, weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return LoopState(**{**ckpt["loop"], "rng": ckpt["rng"]})
    # END SOLUTION

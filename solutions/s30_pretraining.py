"""s30 · Pretraining: the loop that turns a GPT into a language model, and resumes exactly.

You build
    lr_at(step, cfg)                      linear warmup, then cosine decay to min_lr, then min_lr
    clip_grad_norm(parameters, max_norm)  global-norm clipping, the rule of clip_grad_norm_
    configure_optimizer(model, cfg)       torch.optim.AdamW, weight decay on matrices only
    get_batch(data, B, T, generator)      B random windows of T tokens and their next tokens
    train_step(model, optimizer, micro_batches, ...)   k micro-batches, one update
    evaluate(model, batches)              mean loss per token and perplexity = exp(mean loss)
    Trainer                               update / estimate_loss / fit, state_dict / load_state_dict
    save_checkpoint / load_checkpoint     the course's checkpoint format, bit-identical resume

How it differs from the previous steps
    s13 wrote AdamW, clipping and schedules in NumPy; s16 wrote a resumable loop for a
    classifier; s26 built the GPT. Here they meet at the scale where they matter: torch's
    AdamW does the update, you write everything around it. Any model with
    forward(idx, targets) -> (logits, loss) and a dataclass `config` trains with it.

The math
    schedule (W = warmup_steps, S = max_steps, step counts updates from 0):
        step < W:           lr = max_lr * (step + 1) / W
        W <= step < S:      r = (step - W) / (S - W)
                            lr = min_lr + (max_lr - min_lr) (1 + cos(pi r)) / 2
        step >= S:          lr = min_lr
    clipping: n = sqrt(sum over parameters of sum(g^2)); every g *= min(1, max_norm / (n + 1e-6));
        return n (the norm BEFORE clipping: the number worth plotting).
    accumulation: k micro-batches of B sequences give the gradient of one batch of k B when
        each micro-batch's loss is divided by k before backward (backward adds into .grad).
    perplexity = exp(mean loss per token): the effective number of tokens the model hesitates
        between. It is exp of the mean, not the mean of exp: one bad batch must not dominate.

Shapes
    data: 1-D int64 token tensor; a batch (x, y): both (B, T) int64, y[:, t] = data[i + t + 1].

You should be able to explain
    - why warmup helps Adam (its second-moment estimate is poor for the first steps) and why
      the cosine ends at min_lr instead of 0;
    - why clipping uses the global norm (it keeps the update's direction) and returns the
      norm before clipping;
    - why biases and LayerNorm gains get no weight decay;
    - why k micro-batches with loss / k equal one big batch, and what memory that saves;
    - everything that must be saved for a resumed run to equal an uninterrupted one: weights,
      AdamW's moments and step counts, the schedule's step, the data sampler's generator,
      the global RNG; and why evaluation must not draw from the training data's generator;
    - why bf16 autocast is safe for the forward pass while the weights stay float32.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

FORMAT = "ml-to-llm/gpt-checkpoint/1"


@dataclass
class TrainConfig:
    max_steps: int = 2000  # optimizer updates; the cosine reaches min_lr here
    batch_size: int = 12  # sequences per micro-batch
    block_size: int = 64  # tokens per sequence
    grad_accum: int = 1  # micro-batches per update: the update sees batch_size * grad_accum
    lr: float = 1e-3  # peak learning rate, reached at the end of warmup
    min_lr: float = 1e-4  # the cosine's floor, kept after max_steps
    warmup_steps: int = 100  # linear warmup from lr / warmup_steps to lr
    weight_decay: float = 0.1  # AdamW's decoupled decay, on matrices only
    beta1: float = 0.9
    beta2: float = 0.99  # a little lower than 0.999: small batches, noisy gradients
    grad_clip: float = 1.0  # max global gradient norm; 0 (or less) turns clipping off
    eval_every: int = 250  # estimate train / val loss every this many updates (and at the end)
    eval_batches: int = 20  # batches per loss estimate
    seed: int = 1337  # seeds the training data's generator
    dtype: str = "float32"  # "bfloat16": forward and loss under torch.autocast


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of update `step` (0-based): warmup, cosine, then min_lr (see above)."""
    # BEGIN SOLUTION: linear warmup, cosine from lr to min_lr, min_lr after max_steps
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if step >= cfg.max_steps:
        return cfg.min_lr
    ratio = (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * ratio))
    # END SOLUTION


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale all gradients in place by min(1, max_norm / (total_norm + 1e-6)); return total_norm.

    total_norm is the 2-norm of all gradients together (parameters without .grad are skipped),
    as a float32 scalar tensor; max_norm = inf only measures it. Like clip_grad_norm_.
    """
    # BEGIN SOLUTION: one global norm over every .grad, then one common scale factor
    grads = [p.grad for p in parameters if p.grad is not None]  # a generator is read once
    if not grads:
        return torch.tensor(0.0)
    total = torch.sqrt(sum((g.detach().float() ** 2).sum() for g in grads))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.detach().mul_(scale.to(g.dtype))
    return total
    # END SOLUTION


def configure_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW(lr=cfg.lr, betas=(beta1, beta2)) with two groups: parameters with 2 or more
    dimensions get cfg.weight_decay, the others (biases, LayerNorm) weight_decay 0."""
    # BEGIN SOLUTION: split the parameters by p.dim() into a decayed and an undecayed group
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    # END SOLUTION


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator,
              device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Starts i = torch.randint(len(data) - block_size, (batch_size,), generator=generator);
    x[b] = data[i_b : i_b + T], y[b] = data[i_b + 1 : i_b + T + 1]; both (B, T), on device."""
    if data.ndim != 1 or len(data) <= block_size:
        raise ValueError(f"data must be a 1-D token tensor longer than block_size={block_size}, "
                         f"got shape {tuple(data.shape)}")
    # BEGIN SOLUTION: random starts from the generator, windows for x, the same shifted by 1 for y
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i:i + block_size] for i in starts.tolist()])
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in starts.tolist()])
    return x.to(device), y.to(device)
    # END SOLUTION


def _autocast(device: torch.device, dtype: torch.dtype):
    """bf16 autocast on the batch's device when asked for, else nothing."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
               micro_batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, lr: float,
               grad_clip: float, dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """One update: train mode, set lr in every param group, clear the grads, for each of the k
    micro-batches backward(loss / k) with the forward under autocast(dtype) unless float32,
    clip_grad_norm to grad_clip (<= 0: measure only), optimizer.step().

    Returns {"loss": mean of the k micro-batch losses, "grad_norm": the norm before clipping}.
    """
    # BEGIN SOLUTION: lr, zero_grad, k scaled backwards, clip, step
    batches = list(micro_batches)
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for x, y in batches:
        with _autocast(x.device, dtype):
            _, loss = model(x, y)
        (loss / len(batches)).backward()
        total += loss.item()
    norm = clip_grad_norm(model.parameters(), grad_clip if grad_clip > 0 else math.inf)
    optimizer.step()
    return {"loss": total / len(batches), "grad_norm": float(norm)}
    # END SOLUTION


def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """{"loss": mean cross-entropy per target token over all batches (batches may differ in
    size), "perplexity": exp(that loss)}, in eval mode under no_grad; the mode is restored."""
    # BEGIN SOLUTION: eval(), weight each batch's mean loss by its token count, exp, restore mode
    was_training, total, n = model.training, 0.0, 0
    model.eval()
    try:
        for x, y in batches:
            with torch.no_grad(), _autocast(x.device, dtype):
                _, loss = model(x, y)
            total += loss.item() * y.numel()
            n += y.numel()
    finally:
        model.train(was_training)
    return {"loss": total / n, "perplexity": math.exp(total / n)}
    # END SOLUTION


class Trainer:
    """Model, data, optimizer and sampler of one run; `step` counts the updates done."""

    def __init__(self, model: nn.Module, train_data: torch.Tensor, val_data: torch.Tensor,
                 cfg: TrainConfig, device: str | torch.device = "cpu"):
        self.model, self.cfg, self.device = model.to(device), cfg, torch.device(device)
        self.train_data, self.val_data = train_data, val_data
        self.optimizer = configure_optimizer(self.model, cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # the training data's sampler
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
        if cfg.dtype not in dtypes:
            raise ValueError(f"TrainConfig.dtype must be 'float32' or 'bfloat16', got "
                             f"{cfg.dtype!r}")
        self.dtype = dtypes[cfg.dtype]
        self.step = 0

    def update(self) -> dict[str, float]:
        """One update on grad_accum fresh micro-batches from self.generator, at lr_at(step);
        step += 1. Returns train_step's dict plus "lr"."""
        # BEGIN SOLUTION: draw the micro-batches, train_step at this step's lr, count the step
        cfg, lr = self.cfg, lr_at(self.step, self.cfg)
        batches = [get_batch(self.train_data, cfg.batch_size, cfg.block_size, self.generator,
                             self.device) for _ in range(cfg.grad_accum)]
        out = train_step(self.model, self.optimizer, batches, lr=lr, grad_clip=cfg.grad_clip,
                         dtype=self.dtype)
        self.step += 1
        return {**out, "lr": lr}
        # END SOLUTION

    def estimate_loss(self) -> dict[str, dict[str, float]]:
        """{"train": evaluate(...), "val": evaluate(...)} on eval_batches batches each, drawn
        from a new generator seeded cfg.seed + 1 (the same batches every time; the training
        sampler is not touched)."""
        # BEGIN SOLUTION: a fresh eval generator per call, eval_batches batches per split
        out = {}
        for split, data in (("train", self.train_data), ("val", self.val_data)):
            gen = torch.Generator().manual_seed(self.cfg.seed + 1)
            out[split] = evaluate(self.model, (get_batch(
                data, self.cfg.batch_size, self.cfg.block_size, gen, self.device)
                for _ in range(self.cfg.eval_batches)), self.dtype)
        return out
        # END SOLUTION

    def fit(self, callback: Callable[[Trainer, dict], None] | None = None) -> list[dict]:
        """update() while step < max_steps (a trainer at or past it does nothing); after each,
        a record {"step", "loss", "grad_norm", "lr"} plus {"train_loss", "val_loss",
        "val_perplexity"} when step % eval_every == 0 or step == max_steps; callback(self,
        record) if given. Returns the records of this call."""
        # BEGIN SOLUTION: the loop: update, maybe estimate_loss, record, call back
        records = []
        while self.step < self.cfg.max_steps:
            record = {"step": self.step + 1, **self.update()}
            if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.max_steps:
                losses = self.estimate_loss()
                record.update(train_loss=losses["train"]["loss"], val_loss=losses["val"]["loss"],
                              val_perplexity=losses["val"]["perplexity"])
            records.append(record)
            if callback is not None:
                callback(self, record)
        return records
        # END SOLUTION

    def state_dict(self) -> dict:
        """{"step", "model", "optimizer", "scheduler": {"step"}, "rng": {"torch"},
        "data_position": {"generator": the sampler's state}}: all a resume needs."""
        # BEGIN SOLUTION: everything that shapes the next update
        return {"step": self.step, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": {"step": self.step},
                "rng": {"torch": torch.get_rng_state()},
                "data_position": {"generator": self.generator.get_state()}}
        # END SOLUTION

    def load_state_dict(self, state: dict) -> None:
        """Put back what state_dict returned (the next update equals the uninterrupted one)."""
        # BEGIN SOLUTION: the inverse of state_dict
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["scheduler"]["step"]
        torch.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["data_position"]["generator"])
        # END SOLUTION


def save_checkpoint(path, trainer: Trainer, tokenizer: dict) -> None:
    """torch.save {"format": FORMAT, "config": asdict(model.config), "tokenizer": tokenizer,
    **trainer.state_dict()} to path."""
    # BEGIN SOLUTION: the checkpoint dict, one torch.save
    torch.save({"format": FORMAT, "config": asdict(trainer.model.config), "tokenizer": tokenizer,
                **trainer.state_dict()}, path)
    # END SOLUTION


def load_checkpoint(path, trainer: Trainer) -> dict:
    """Load a checkpoint saved by save_checkpoint into trainer; return the whole dict."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint (format={ckpt.get('format')!r})")
    # BEGIN SOLUTION: hand the state to the trainer
    trainer.load_state_dict(ckpt)
    return ckpt
    # END SOLUTION

"""s13 · Optimizers: what happens between ``loss.backward()`` and the next forward pass.

You build (NumPy; each optimizer updates a list of parameter arrays IN PLACE, like torch.optim)
    SGD(params, lr, momentum, dampening, weight_decay, nesterov)
    RMSProp(params, lr, alpha, eps, weight_decay)
    Adam(params, lr, betas, eps, weight_decay)       weight decay as an L2 term in the gradient
    AdamW(params, lr, betas, eps, weight_decay)      decoupled weight decay
    clip_grad_norm(grads, max_norm)                  rescale all gradients by one global factor
    step_lr, cosine_with_warmup                      learning-rate schedules

How it differs from s11/s12
    There the update was ``p -= lr * grad``. Real training rarely uses that: the gradient of a
    mini-batch is noisy and the loss surface is badly conditioned (steep in some directions,
    flat in others), so optimizers keep *state* across steps -- a running mean of gradients
    (momentum), a running mean of squared gradients (per-coordinate step sizes), or both.

The math (torch.optim's exact conventions; t = 1, 2, ... counts steps; g is the gradient)
    SGD      g <- g + wd * p;  b <- g at t = 1, else b <- mu * b + (1 - dampening) * g
             d = g + mu * b (Nesterov) or d = b (classic momentum) or d = g (mu = 0)
             p <- p - lr * d
    RMSProp  g <- g + wd * p;  s <- alpha * s + (1 - alpha) * g^2
             p <- p - lr * g / (sqrt(s) + eps)                  (eps OUTSIDE the sqrt)
    Adam     g <- g + wd * p;  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
             m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)     (bias correction)
             p <- p - lr * m_hat / (sqrt(v_hat) + eps)
    AdamW    p <- p - lr * wd * p first (decoupled), then Adam with no decay in the gradient
    clip     n = sqrt(sum_i ||g_i||^2) over ALL tensors; every g_i is scaled IN PLACE by
             min(1, max_norm / (n + 1e-6)) (one factor: the update keeps its direction); returns n
    step_lr  lr_t = base_lr * gamma ** (t // step_size)
    cosine   lr_t = base_lr * t / W for t < W (linear warmup from 0), then
             min_lr + (base_lr - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2 up to T,
             min_lr after. Steps count from t = 0; with min_lr = 0 this is Hugging Face's
             get_cosine_schedule_with_warmup up to T.

Shapes
    ``params`` and ``grads`` are lists of float64 arrays of any shapes; grads[i] matches
    params[i]. Optimizer state (b, s, m, v) has one array per parameter, same shape.

You should be able to explain
    - what Adam does differently from SGD: a per-coordinate step of about lr, whatever the
      gradient's scale, because m_hat / sqrt(v_hat) is ~ +-1 for a consistent gradient;
    - why bias correction matters early (m and v start at 0, so m_t underestimates the mean
      by a factor 1 - b1^t: without it the first steps are ~10x too small);
    - why AdamW decouples weight decay: in Adam, an L2 gradient wd * p is divided by
      sqrt(v_hat) like everything else, so parameters with large gradients are barely decayed;
    - why clip by the global norm (one factor for all tensors keeps the update's direction)
      and why warm up (Adam's v is a poor estimate during the first steps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class Optimizer:
    """Holds ``params`` (updated in place by ``step``), the learning rate ``lr`` (a schedule may
    change it between steps) and the step counter ``t``."""

    def __init__(self, params: Sequence[np.ndarray], lr: float) -> None:
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.params = list(params)
        for p in self.params:
            if not (isinstance(p, np.ndarray) and np.issubdtype(p.dtype, np.floating)):
                raise TypeError("parameters must be float NumPy arrays (updated in place)")
        self.lr = lr
        self.t = 0

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter with its gradient (t increases by one first)."""
        if len(grads) != len(self.params):
            raise ValueError(f"{len(grads)} gradients for {len(self.params)} parameters")
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            g = np.asarray(g, dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"gradient {i} has shape {g.shape}, parameter {p.shape}")
            self.update(i, p, g)

    def update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        """Update parameter ``p`` (= self.params[i]) in place with its gradient ``g``."""
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, params: Sequence[np.ndarray], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buf: list[np.ndarray | None] = [None] * len(self.params)  # momentum buffers

    def update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        """g += wd p; buffer b = g at first, then mu b + (1 - dampening) g; p -= lr * d."""
        raise NotImplementedError("s13 optimizers: weight decay, momentum buffer (copy of g on the first step), Nesterov")


class RMSProp(Optimizer):
    def __init__(self, params: Sequence[np.ndarray], lr: float = 0.01, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.square_avg = [np.zeros_like(p) for p in self.params]

    def update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        """g += wd p; s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps)."""
        raise NotImplementedError("s13 optimizers: running mean of g^2, divide by its sqrt plus eps")


class Adam(Optimizer):
    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.m = [np.zeros_like(p) for p in self.params]  # first moment (mean of g)
        self.v = [np.zeros_like(p) for p in self.params]  # second moment (mean of g^2)

    def decay(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Adam's weight decay is L2 regularisation: return g + wd * p (p is not touched)."""
        raise NotImplementedError("s13 optimizers: add the L2 term to the gradient")

    def update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        """g = decay(p, g); update m, v; p -= lr m_hat / (sqrt(v_hat) + eps) at step self.t."""
        g = self.decay(p, g)
        raise NotImplementedError("s13 optimizers: moments, bias corrections 1 - beta^t, eps outside the sqrt")


class AdamW(Adam):
    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)

    def decay(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Decoupled decay: shrink p in place by lr * wd * p, return g unchanged."""
        raise NotImplementedError("s13 optimizers: p -= lr * wd * p, the gradient is left alone")


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> float:
    """n = sqrt(sum_i ||g_i||^2) over ALL tensors; every g_i is scaled IN PLACE by
    min(1, max_norm / (n + 1e-6)) (g *= factor: the caller's arrays change); returns n."""
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    raise NotImplementedError("s13 optimizers: one norm over all tensors, one scale factor for all")


def step_lr(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """The learning rate at schedule step ``step`` (0, 1, ...): base_lr * gamma ** (step //
    step_size), as torch.optim.lr_scheduler.StepLR."""
    raise NotImplementedError("s13 optimizers: decay by gamma every step_size steps")


def cosine_with_warmup(step: int, base_lr: float, warmup_steps: int, total_steps: int,
                       min_lr: float = 0.0) -> float:
    """Linear warmup base_lr * step / warmup_steps for step < warmup_steps, then a half cosine
    from base_lr (at step = warmup_steps) to min_lr (at step = total_steps); min_lr after."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, "
                         f"{total_steps}")
    raise NotImplementedError("s13 optimizers: warmup ramp from 0, then cosine decay, then flat at min_lr")

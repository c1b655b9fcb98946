"""s14 · Regularisation and normalisation: dropout, weight decay, LayerNorm, BatchNorm, and
early stopping.

You build (NumPy; layers have ``forward`` and ``backward`` like s11's, and match torch.nn)
    Dropout(p)                        inverted dropout: scale at train time, identity at eval
    l2_penalty(weights, wd)           (wd / 2) * sum ||W||^2 and its gradient wd * W
    LayerNorm(dim)                    normalise each sample over its features (last axis)
    BatchNorm1d(num_features)         normalise each feature over the batch; running stats
    EarlyStopping(patience)           stop when validation stops improving; keep the best weights

How it differs from s11-s13
    Those steps made training *fit*. These tools make it *generalise* (dropout, weight decay,
    early stopping) and keep it *stable* (normalisation keeps every layer's inputs at zero mean
    and unit variance, so activations neither explode nor vanish with depth).

The math
    Dropout    train: keep_i ~ Bernoulli(1 - p), y = x * keep / (1 - p)   -> E[y] = x
               eval:  y = x. Scaling at train time ("inverted") means inference needs nothing.
               backward: dx = dy * keep / (1 - p), with the SAME mask as the forward pass.
    L2         R = (wd / 2) * sum_W sum(W^2), dR/dW = wd * W. For plain SGD, adding wd * W to
               the gradient IS weight decay: W <- W - lr * (g + wd * W) = (1 - lr wd) W - lr g.
    LayerNorm  over the last axis (D features) of each sample:
               mu = mean(x), var = mean((x - mu)^2)   (biased), xhat = (x - mu) / sqrt(var + eps)
               y = gamma * xhat + beta
    BatchNorm  the same formula per feature over the batch axis (N samples). Train mode uses
               the batch's mu and (biased) var and updates running statistics as torch does:
               running_mean <- (1 - m) * running_mean + m * mu
               running_var  <- (1 - m) * running_var + m * var * N / (N - 1)   (UNBIASED)
               Eval mode normalises with running_mean / running_var instead: the output of a
               sample no longer depends on the rest of its batch.
    Backward   (for either norm, with N the count normalised over and sums over that axis)
               dxhat = dy * gamma
               dx = (1 / N) / sqrt(var + eps) * (N dxhat - sum(dxhat) - xhat * sum(dxhat xhat))
               dgamma = sum over all other axes of dy * xhat, dbeta = sum of dy.
               The last two terms exist because mu and var depend on every x: treating them as
               constants gives a wrong gradient. In eval mode they ARE constants:
               dx = dy * gamma / sqrt(running_var + eps).
    Early stop after each epoch, if val_loss < best - min_delta: remember a COPY of the weights
               (training updates the arrays in place) and reset the counter; otherwise count.
               Stop when ``patience`` epochs in a row brought no improvement.

Shapes
    Dropout, LayerNorm: any shape (LayerNorm normalises the last axis, D = x.shape[-1]);
    BatchNorm1d: x of shape (N, C); gamma, beta, running stats of shape (D,) or (C,).

You should be able to explain
    - why dropout helps generalisation (no unit can rely on another; an ensemble of thinned
      networks) and when it does not (small models that underfit; it slows training);
    - why normalisation stabilises training, and why LayerNorm (per sample) suits sequences
      and small batches better than BatchNorm (per feature, across the batch);
    - why BatchNorm behaves differently in train and eval, and what goes wrong if you forget
      to switch modes;
    - why early stopping must restore the best weights, not keep the last ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Dropout:
    """Inverted dropout with drop probability ``p``; ``rng`` draws the masks."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()
        self.mask: np.ndarray | None = None  # keep / (1 - p) from the last train forward

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """train: zero each entry with probability p, scale the rest by 1 / (1 - p); eval: x."""
        raise NotImplementedError("s14 regularization norm: eval -> identity (mask None); train -> Bernoulli(1 - p) mask / (1 - p)")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx: the upstream gradient through the same mask (identity after an eval pass)."""
        raise NotImplementedError("s14 regularization norm: multiply by the stored mask, or pass through in eval")


def l2_penalty(weights: Sequence[np.ndarray], weight_decay: float
               ) -> tuple[float, list[np.ndarray]]:
    """(R, [dR/dW]) with R = (weight_decay / 2) * sum_W sum(W ** 2) and dR/dW = weight_decay * W."""
    raise NotImplementedError("s14 regularization norm: half wd times the squared norms; gradient wd * W")


class LayerNorm:
    """torch.nn.LayerNorm(dim): normalise the last axis of each sample, then scale and shift."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        self.eps = eps
        self.gamma = np.ones(dim)
        self.beta = np.zeros(dim)
        self.dgamma: np.ndarray | None = None
        self.dbeta: np.ndarray | None = None
        self.cache: tuple | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / sqrt(var + eps) over the last axis (biased var), * gamma + beta."""
        raise NotImplementedError("s14 regularization norm: statistics over axis -1 with keepdims; cache xhat and 1/std")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx for the last forward; also sets self.dgamma and self.dbeta."""
        if self.cache is None:
            raise RuntimeError("call forward before backward")
        raise NotImplementedError("s14 regularization norm: dgamma, dbeta sum over leading axes; dx with the two mean terms")


class BatchNorm1d:
    """torch.nn.BatchNorm1d(num_features) on (N, C) inputs, with running statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.eps, self.momentum = eps, momentum
        self.gamma = np.ones(num_features)
        self.beta = np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.dgamma: np.ndarray | None = None
        self.dbeta: np.ndarray | None = None
        self.cache: tuple | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """train: batch statistics (biased var), update running stats (unbiased var);
        eval: normalise with the running statistics."""
        if train and x.shape[0] < 2:
            raise ValueError("BatchNorm needs more than one sample per batch in train mode")
        raise NotImplementedError("s14 regularization norm: pick the statistics by mode; update running stats in train mode")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx for the last forward (train or eval mode); sets self.dgamma, self.dbeta."""
        if self.cache is None:
            raise RuntimeError("call forward before backward")
        raise NotImplementedError("s14 regularization norm: train -> batch-stat formula over axis 0; eval -> dout*gamma*inv_std")


class EarlyStopping:
    """Watch the validation loss once per epoch; keep a copy of the best weights."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.patience, self.min_delta = patience, min_delta
        self.best_loss = float("inf")
        self.best_epoch = -1    # index (0, 1, ...) of the call to step that was best
        self.best_weights: dict[str, np.ndarray] | None = None
        self.epoch = 0          # how many times step has been called
        self.bad_epochs = 0     # epochs in a row without improvement

    def step(self, val_loss: float, weights: dict[str, np.ndarray]) -> bool:
        """Record this epoch; return True when ``patience`` epochs in a row did not improve
        on the best loss by more than ``min_delta`` (time to stop)."""
        raise NotImplementedError("s14 regularization norm: improvement -> snapshot copies and reset counter; else count")

    def restore(self, weights: dict[str, np.ndarray]) -> None:
        """Write the best weights back INTO the given arrays (in place)."""
        if self.best_weights is None:
            raise RuntimeError("no epoch has been recorded yet")
        raise NotImplementedError("s14 regularization norm: copy each best array into the live one with [...] =")

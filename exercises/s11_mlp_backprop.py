"""s11 · An MLP by hand: layers with forward and backward, softmax cross-entropy, SGD, init.

You build
    init_weights(fan_in, fan_out, scheme, rng)   small / normal / xavier / he initialisation
    Linear, ReLU, Tanh, Sigmoid                  layers: forward(x) caches, backward(dout)
    softmax_cross_entropy(logits, y)             the classification loss and its gradient
    MLP(sizes, ...)                              Linear -> act -> ... -> Linear
    sgd_step(params, lr), train(model, ...)      the training loop

s01 to s03 had one layer, whose gradient you derived in one go. A network is a chain of
layers, and backpropagation is the chain rule applied one layer at a time, from the loss
back to the input: each layer receives dL/d(its output) and returns dL/d(its input),
storing dL/d(its parameters) on the way. No layer needs to know what comes before or after
it -- only what it cached during forward. This is exactly what an autograd engine (s12)
and torch (s16) automate.

Shapes (N samples; a Linear layer maps `in` features to `out`)
    Linear  forward:  out = x @ W + b           x (N, in), W (in, out), b (out,) -> (N, out)
            backward: dx = dout @ W^T  (N, in)   dW = x^T @ dout (in, out)
                      db = sum over the N rows of dout (out,)
    ReLU    y = max(0, x)                    dx = dout * 1[x > 0]   (0 at the kink x = 0)
    Tanh    y = tanh(x)                      dx = dout * (1 - y^2)
    Sigmoid y = 1 / (1 + exp(-x))            dx = dout * y * (1 - y)
            computed as exp(-logaddexp(0, -x)), which never overflows (x = +-1000 is fine)
    Softmax cross-entropy, logits z (N, C), integer labels y (N,):
        log p = z - logsumexp(z) (subtract the row max first: the same value, no overflow)
        L = -(1/N) sum_n log p[n, y_n]           dL/dz = (softmax(z) - onehot(y)) / N
    backward writes the gradients INTO the arrays params() returned (self.dW[...] = ..., it
    overwrites, it does not add): a (parameter, gradient) pair stays the live arrays, so a
    list taken once from model.params() before the training loop keeps seeing new gradients.

Initialisation: why the scale of W matters
    A Linear layer with inputs of second moment E[x^2] gives outputs of variance
    fan_in * Var(W) * E[x^2]. After a ReLU, E[relu(z)^2] = Var(z) / 2. So
        he:     Var(W) = 2 / fan_in              keeps the variance constant through ReLUs;
        xavier: Var(W) = 2 / (fan_in + fan_out)  (Glorot) balances the forward and backward
                                                 passes for tanh / linear layers;
        small:  W ~ 0.01 N(0, 1)   each layer multiplies the scale by 0.01 sqrt(fan_in / 2)
                                   < 1: activations and gradients collapse geometrically;
        normal: W ~ N(0, 1)        multiplies it by sqrt(fan_in / 2) > 1: they explode.
    After 20 layers "a bit too small" is 1e-20 and "a bit too big" is 1e20 (see the lab).
    All-zero weights fail differently: every hidden unit computes the same thing and gets
    the same gradient, forever (the symmetry is never broken). Biases start at 0.

You should be able to explain
    - the chain rule as credit assignment: dL/dW of a layer is (its input)^T x (the blame
      arriving from above), so a unit is updated in proportion to how much it was used;
    - vanishing / exploding gradients: backward multiplies by W^T and by the activation's
      derivative at every layer, so the gradient's size is a product of per-layer factors;
      sigmoid' <= 1/4 and saturated tanh' ~ 0 shrink it, a bad init scale shrinks or
      inflates it;
    - why ReLU often trains more easily than sigmoid / tanh: its derivative is exactly 1 on
      active units, so it does not shrink the gradient on the way back;
    - why the softmax cross-entropy gradient is simply (p - onehot) / N, and why the 1/N
      keeps the learning rate independent of the batch size.
"""

from __future__ import annotations

import numpy as np

INIT_SCHEMES = ("small", "normal", "xavier", "he")


def init_weights(fan_in: int, fan_out: int, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """(fan_in, fan_out) weights from N(0, std^2): small 0.01, normal 1, xavier
    sqrt(2 / (fan_in + fan_out)), he sqrt(2 / fan_in); drawn with rng.normal."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {INIT_SCHEMES}, got {scheme!r}")
    raise NotImplementedError("s11 mlp backprop: pick the standard deviation for the scheme, draw with rng.normal")


class Layer:
    """The layer API: forward(x) caches what backward needs, backward(dout) returns dx."""

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(parameter, its gradient)]: none for an activation."""
        return []


class Linear(Layer):
    """out = x @ W + b. backward(dout) writes dW, db in place (self.dW[...] =), returns dx."""

    def __init__(self, in_features: int, out_features: int, *, init: str = "he",
                 rng: np.random.Generator | None = None) -> None:
        rng = rng if rng is not None else np.random.default_rng(0)
        self.W = init_weights(in_features, out_features, init, rng)  # (in, out)
        self.b = np.zeros(out_features)  # (out,)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.x: np.ndarray | None = None  # the input of the last forward, for backward

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: cache x, return x @ W + b")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: dW[...] = x^T dout, db[...] = column sums of dout, return dout @ W^T")

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W, dW), (b, db)]: the live arrays; backward overwrites dW and db in place."""
        return [(self.W, self.dW), (self.b, self.db)]


class ReLU(Layer):
    """y = max(0, x); the gradient passes only where x > 0."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: cache where x > 0, return max(0, x)")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: zero the gradient where the input was <= 0")


class Tanh(Layer):
    """y = tanh(x); dy/dx = 1 - y^2, computed from the cached output."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: cache and return tanh(x)")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: dout * (1 - y^2)")


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)), overflow-free; dy/dx = y (1 - y)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: y = exp(-logaddexp(0, -x)); cache and return it")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: dout * y * (1 - y)")


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(L, dL/dlogits): L = -(1/N) sum_n log softmax(logits)[n, y_n]; grad (p - onehot) / N."""
    raise NotImplementedError("s11 mlp backprop: stable log-softmax, mean NLL of the true classes, (p - onehot) / N")


class MLP:
    """Linear -> act -> Linear -> act -> ... -> Linear (logits), for sizes [d_in, ..., d_out]."""

    def __init__(self, sizes: list[int], *, activation: str = "relu", init: str = "he",
                 seed: int = 0) -> None:
        act = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}[activation]
        rng = np.random.default_rng(seed)
        self.layers: list = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.layers.append(Linear(fan_in, fan_out, init=init, rng=rng))
            if i < len(sizes) - 2:  # no activation after the last layer: it outputs logits
                self.layers.append(act())

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: pass x through every layer in order")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError("s11 mlp backprop: pass dout through every layer's backward in reverse order")

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [p for layer in self.layers for p in layer.params()]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x).argmax(axis=1)


def sgd_step(params: list[tuple[np.ndarray, np.ndarray]], lr: float) -> None:
    """In place, for every (p, g): p -= lr * g (the arrays the layers hold must change)."""
    raise NotImplementedError("s11 mlp backprop: update every parameter array in place")


def train(model: MLP, X: np.ndarray, y: np.ndarray, *, lr: float, epochs: int,
          batch_size: int, seed: int = 0) -> np.ndarray:
    """Mini-batch SGD on softmax cross-entropy; returns the (epochs,) mean training loss.

    rng = np.random.default_rng(seed) once; each epoch visits rng.permutation(n) in slices of
    batch_size (the last one may be shorter): forward, loss, backward, sgd_step. history[e] is
    the mean over the epoch's samples of the loss (each batch's loss weighted by its size).
    """
    raise NotImplementedError("s11 mlp backprop: shuffle each epoch; per batch forward, loss, backward, sgd_step")

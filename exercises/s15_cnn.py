"""s15 · Convolutions by hand: conv2d with im2col, max-pooling, a LeNet on 8x8 digits.

You build
    im2col(x, kh, kw, stride, padding)        every receptive field as one row of a matrix
    col2im(cols, x_shape, ...)                its adjoint: scatter-add rows back to an image
    conv2d_forward / conv2d_backward          a convolution as one matrix product
    maxpool2d_forward / maxpool2d_backward    the max of each window, the gradient to argmax
A LeNet-style network and its training loop are given: they only call your four functions.

s11's Linear layer connects every input to every output. An image has structure a Linear
layer ignores: nearby pixels belong together, and a stroke means the same wherever it is.
A convolution slides one small filter over the image (local connections, shared weights),
so it has C * kh * kw weights per filter whatever the image size, and a shifted input gives
a shifted output. Pooling then keeps the strongest response in each window, making the
features a little insensitive to exact positions.

Shapes (NCHW, as torch): x (N, C, H, W), filters W (F, C, kh, kw), bias b (F,),
    out (N, F, OH, OW) with OH = (H + 2 * padding - kh) // stride + 1 (OW alike).
    out[n, f, i, j] = b[f] + sum_{c,u,v} W[f, c, u, v] * xpad[n, c, i*stride + u, j*stride + v]
    This is a cross-correlation (the filter is not flipped), as torch and every deep-learning
    library compute it; a flipped filter is just a different learned weight.

im2col turns that sum into a matrix product. Pad x with zeros, then for every output
position (n, i, j) copy its window of C * kh * kw values into one row:
    cols (N * OH * OW, C * kh * kw); rows ordered (n, i, j), columns (c, u, v), the layout of
    torch's F.unfold(x, (kh, kw), padding=padding, stride=stride).transpose(1, 2).
    forward:  out_rows = cols @ W.reshape(F, -1).T + b        (N * OH * OW, F)
    backward: with dout_rows = dout moved to the same (N * OH * OW, F) layout,
              dW = (dout_rows.T @ cols).reshape(W.shape), db = dout_rows.sum(0),
              dcols = dout_rows @ W.reshape(F, -1), dx = col2im(dcols).
col2im ADDS each row back where it came from (windows overlap when stride < kernel, and an
input pixel then receives gradient from every window that saw it), then drops the padding.
It is the adjoint (transpose) of im2col: <im2col(x), C> = <x, col2im(C)> for any x and C.

Max-pooling (kernel k, stride s, padding p filled with -inf as torch does): each output is
the max of its window; backward sends each dout to the position of that max (the first one
if tied, like np.argmax), every other input of the window gets 0. Reuse im2col per channel.

You should be able to explain
    - why weight sharing and local connectivity suit images (parameters, translation);
    - the output-size formula, and what padding = (k - 1) / 2 with stride 1 buys ("same");
    - why im2col makes convolution fast (one big matrix product, BLAS) and what it costs
      (the input is copied kh * kw times);
    - why the backward of a copy (im2col) is a sum (col2im), and of a max a routing switch.
"""

from __future__ import annotations

import numpy as np


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """(size + 2 * padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0,
           fill: float = 0.0) -> np.ndarray:
    """(N * OH * OW, C * kh * kw): rows (n, i, j), columns (c, u, v); pads with `fill`."""
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, kh, stride, padding), conv_output_size(W, kw, stride, padding)
    raise NotImplementedError("s15 cnn: pad, copy the (u, v) offset of every window with strided slices, reorder")


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int,
           stride: int = 1, padding: int = 0) -> np.ndarray:
    """The adjoint of im2col: add every row back to its window, drop the padding."""
    N, C, H, W = x_shape
    OH, OW = conv_output_size(H, kh, stride, padding), conv_output_size(W, kw, stride, padding)
    raise NotImplementedError("s15 cnn: undo the reorder, ADD each (u, v) slice into a padded image, crop it")


def conv2d_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1,
                   padding: int = 0) -> tuple[np.ndarray, tuple]:
    """(out (N, F, OH, OW), cache for backward); out = im2col(x) @ W_flat^T + b, reshaped."""
    N, _, H, Wd = x.shape
    F, _, kh, kw = W.shape
    OH, OW = conv_output_size(H, kh, stride, padding), conv_output_size(Wd, kw, stride, padding)
    raise NotImplementedError("s15 cnn: im2col, one matrix product with the flattened filters, back to NCHW")


def conv2d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) from dout (N, F, OH, OW) and the cache of conv2d_forward."""
    raise NotImplementedError("s15 cnn: dout to rows; dW = rows^T cols, db = row sums, dx = col2im(rows W_flat)")


def maxpool2d_forward(x: np.ndarray, kernel: int = 2, stride: int | None = None,
                      padding: int = 0) -> tuple[np.ndarray, tuple]:
    """(out (N, C, OH, OW), cache): the max of each kernel x kernel window (-inf padding)."""
    stride = kernel if stride is None else stride
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, kernel, stride, padding), conv_output_size(W, kernel, stride,
                                                                            padding)
    raise NotImplementedError("s15 cnn: im2col of each channel alone, argmax per row, keep it for backward")


def maxpool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: each dout goes to the argmax of its window, everything else gets 0."""
    raise NotImplementedError("s15 cnn: scatter dout into the argmax columns, col2im back per channel")


# --- given: the layers and the network that use your functions ------------------------------

class Layer:
    """s11's layer API: forward(x) caches, backward(dout) returns dx, params() [(p, grad)]."""

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return []


class Conv2d(Layer):
    def __init__(self, c_in: int, c_out: int, k: int, *, padding: int = 0,
                 rng: np.random.Generator) -> None:
        self.W = rng.normal(0.0, np.sqrt(2.0 / (c_in * k * k)), size=(c_out, c_in, k, k))  # He
        self.b, self.padding = np.zeros(c_out), padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self.cache = conv2d_forward(x, self.W, self.b, 1, self.padding)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, self.dW, self.db = conv2d_backward(dout, self.cache)
        return dx

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.W, self.dW), (self.b, self.db)]


class Linear(Conv2d):
    """A Linear layer is a 1x1 convolution of an (N, C, 1, 1) input; here on (N, C) arrays."""

    def __init__(self, c_in: int, c_out: int, *, rng: np.random.Generator) -> None:
        super().__init__(c_in, c_out, 1, rng=rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return super().forward(x[:, :, None, None])[:, :, 0, 0]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return super().backward(dout[:, :, None, None])[:, :, 0, 0]


class ReLU(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x > 0
        return np.where(self.mask, x, 0.0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.where(self.mask, dout, 0.0)


class MaxPool2d(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self.cache = maxpool2d_forward(x, 2)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return maxpool2d_backward(dout, self.cache)


class Flatten(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self.shape)


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """s11's head: mean -log softmax(logits)[y] and its gradient (p - onehot) / N."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    p[np.arange(len(y)), y] -= 1.0
    return float(-log_p[np.arange(len(y)), y].mean()), p / len(y)


class LeNet:
    """(N, 1, 8, 8) -> conv 3x3 (16) -> relu -> pool -> conv 3x3 (32) -> relu -> pool -> 128 ->
    linear 64 -> relu -> linear 10. "same" padding keeps 8x8, the pools halve it: 8 -> 4 -> 2."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.layers = [Conv2d(1, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(),
                       Conv2d(16, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2d(), Flatten(),
                       Linear(128, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        loss, dlogits = softmax_cross_entropy(self.forward(x), y)
        self.backward(dlogits)
        for layer in self.layers:
            for p, g in layer.params():
                p -= lr * g
        return loss


def train(model: LeNet, X: np.ndarray, y: np.ndarray, *, lr: float = 0.05, epochs: int = 15,
          batch_size: int = 16, seed: int = 0) -> list[float]:
    """Mini-batch SGD, the learning rate decayed linearly to 0, full batches only (a last batch
    of 3 would take a full-size step on a far noisier gradient), reshuffled every epoch.
    Returns each epoch's mean batch loss."""
    rng, history = np.random.default_rng(seed), []
    n_batches = len(y) // batch_size
    for epoch in range(epochs):
        order = rng.permutation(len(y))[:n_batches * batch_size].reshape(n_batches, -1)
        step = lr * (1 - epoch / epochs)
        history.append(float(np.mean([model.train_step(X[i], y[i], step) for i in order])))
    return history

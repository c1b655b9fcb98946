"""s20 · A neural language model (Bengio et al. 2003): embeddings + MLP over a context window.

You build
    build_dataset(sequences, context)   (X, Y): every context window and the token after it
    init_params(cfg, rng)               C, W1, b1, W2, b2, drawn in a documented order
    forward(params, X)                  logits (N, V) and the cache backward needs
    loss_and_grads(params, X, Y)        mean cross-entropy and every gradient, BY HAND
    train(params, X, Y, ...)            mini-batch SGD, batches drawn with rng.integers
    nll(params, X, Y), sample(params, rng)

Backend: NumPy only, forward and backward written by hand (no autograd), like s11. The
arrays' dtype follows the parameters (float64 for gradchecks, float32 for a faster lab).

How it differs from s19
    An n-gram model looks its context up in a table: a context seen once is a guess, a
    context never seen is uniform, and the table grows as V^(n-1). Here each token gets a
    learned vector (a row of C, like s18's embeddings but trained for prediction), the
    context's vectors are concatenated and an MLP maps them to next-token logits. Similar
    tokens get similar vectors, so what is learned about one context transfers to contexts
    never seen; parameters grow linearly in the context length, not exponentially.

The math (B examples, context T, embedding size E, hidden size H, vocabulary V)
    emb    = C[X]                       (B, T, E)   a lookup: row X[b, t] of C
    x      = emb.reshape(B, T * E)      (B, T*E)    concatenation of the T vectors
    h      = tanh(x W1 + b1)            (B, H)
    logits = h W2 + b2                  (B, V)
    loss   = -(1/B) sum_b log_softmax(logits_b)[Y_b]
    Backward (each line the chain rule of the one above, read bottom-up):
    dlogits = (softmax(logits) - onehot(Y)) / B
    dW2 = h^T dlogits,  db2 = sum_b dlogits,  dh = dlogits W2^T
    dpre = dh * (1 - h^2)                       tanh' in terms of its output
    dW1 = x^T dpre,  db1 = sum_b dpre,  dx = dpre W1^T
    dC  = scatter-add of dx.reshape(B, T, E) into the rows X  (np.add.at: a token used
          twice in a batch, or twice in one window, gets both contributions).

Shapes
    sequences: a list of int sequences, 0 the boundary token (as in s19). X: (N, T) ints,
    Y: (N,) ints. C: (V, E), W1: (T*E, H), b1: (H,), W2: (H, V), b2: (V,).

You should be able to explain
    - what next-token prediction trains, and why the embeddings come out meaningful;
    - why this generalises to contexts never seen, where the n-gram model cannot;
    - why longer context helps but adds parameters (W1 grows with T) and compute;
    - why W2 starts near 0 (a near-uniform first prediction: loss ln V, not a confident
      wrong guess) and W1 is scaled by 1 / sqrt(fan_in) (tanh neither saturated nor flat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MLPLMConfig:
    vocab_size: int
    context: int = 3     # T: how many previous tokens the model sees
    emb_dim: int = 10    # E: size of each token's vector
    hidden: int = 100    # H: tanh units


def build_dataset(sequences, context: int) -> tuple[np.ndarray, np.ndarray]:
    """For each sequence, a window of ``context`` zeros slides over seq + [0]: each step adds
    (window, next token) to (X, Y), then shifts the token in. X (N, context), Y (N,) int64."""
    # BEGIN SOLUTION: slide a window of boundary tokens over each sequence and its end token
    X, Y = [], []
    for seq in sequences:
        window = [0] * context
        for token in [*[int(t) for t in seq], 0]:
            X.append(window)
            Y.append(token)
            window = [*window[1:], token]
    return (np.array(X, dtype=np.int64).reshape(-1, context), np.array(Y, dtype=np.int64))
    # END SOLUTION


def init_params(cfg: MLPLMConfig, rng: np.random.Generator,
                dtype=np.float64) -> dict[str, np.ndarray]:
    """Draw, in this order, with rng.standard_normal: C (V, E); W1 (T*E, H) times
    (5/3) / sqrt(T*E); W2 (H, V) times 0.01. b1 and b2 are zeros. All of ``dtype``."""
    # BEGIN SOLUTION: three standard-normal draws in order, scaled; zero biases
    fan_in = cfg.context * cfg.emb_dim
    C = rng.standard_normal((cfg.vocab_size, cfg.emb_dim))
    W1 = rng.standard_normal((fan_in, cfg.hidden)) * (5 / 3) / np.sqrt(fan_in)
    W2 = rng.standard_normal((cfg.hidden, cfg.vocab_size)) * 0.01
    params = {"C": C, "W1": W1, "b1": np.zeros(cfg.hidden), "W2": W2,
              "b2": np.zeros(cfg.vocab_size)}
    return {name: p.astype(dtype) for name, p in params.items()}
    # END SOLUTION


def forward(params: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, dict]:
    """logits (N, V) = tanh(C[X].reshape(N, -1) @ W1 + b1) @ W2 + b2, and a cache."""
    X = np.asarray(X, dtype=np.int64)
    # BEGIN SOLUTION: embed, concatenate, tanh layer, output layer; keep what backward needs
    x = params["C"][X].reshape(len(X), -1)               # (N, T*E)
    h = np.tanh(x @ params["W1"] + params["b1"])          # (N, H)
    logits = h @ params["W2"] + params["b2"]              # (N, V)
    return logits, {"X": X, "x": x, "h": h}
    # END SOLUTION


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss_and_grads(params: dict[str, np.ndarray], X: np.ndarray,
                   Y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy of forward(params, X) against Y, and its gradient for every
    parameter (same keys and shapes as ``params``)."""
    Y = np.asarray(Y, dtype=np.int64)
    logits, cache = forward(params, X)
    # BEGIN SOLUTION: loss from log_softmax; backward through both layers and the lookup
    B = len(Y)
    logp = _log_softmax(logits)
    loss = -logp[np.arange(B), Y].mean()
    dlogits = np.exp(logp)
    dlogits[np.arange(B), Y] -= 1
    dlogits /= B
    h, x = cache["h"], cache["x"]
    dh = dlogits @ params["W2"].T
    dpre = dh * (1 - h ** 2)
    dx = dpre @ params["W1"].T
    dC = np.zeros_like(params["C"])
    np.add.at(dC, cache["X"], dx.reshape(*cache["X"].shape, -1))
    grads = {"C": dC, "W1": x.T @ dpre, "b1": dpre.sum(axis=0), "W2": h.T @ dlogits,
             "b2": dlogits.sum(axis=0)}
    return float(loss), grads
    # END SOLUTION


def train(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, steps: int,
          batch_size: int = 32, lr: float = 0.1, rng: np.random.Generator | None = None,
          lr_drop_step: int | None = None) -> list[float]:
    """``steps`` SGD steps on mini-batches idx = rng.integers(0, N, batch_size), updating
    ``params`` in place (p -= lr * g); lr is divided by 10 from step ``lr_drop_step`` on.
    rng defaults to default_rng(0). Returns the batch losses."""
    rng = rng if rng is not None else np.random.default_rng(0)
    # BEGIN SOLUTION: draw a batch, loss and grads, in-place update with the current lr
    losses = []
    for step in range(steps):
        idx = rng.integers(0, len(X), batch_size)
        loss, grads = loss_and_grads(params, X[idx], Y[idx])
        rate = lr / 10 if lr_drop_step is not None and step >= lr_drop_step else lr
        for name, p in params.items():
            p -= rate * grads[name]
        losses.append(loss)
    return losses
    # END SOLUTION


def nll(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
        chunk: int = 4096) -> float:
    """Mean cross-entropy over all of (X, Y), computed ``chunk`` rows at a time."""
    Y = np.asarray(Y, dtype=np.int64)
    # BEGIN SOLUTION: sum of -log p[y] over chunks, divided by the number of rows
    total = 0.0
    for start in range(0, len(Y), chunk):
        logits, _ = forward(params, X[start:start + chunk])
        logp = _log_softmax(logits.astype(np.float64))
        total -= logp[np.arange(len(logp)), Y[start:start + chunk]].sum()
    return float(total / len(Y))
    # END SOLUTION


def sample(params: dict[str, np.ndarray], rng: np.random.Generator,
           max_len: int = 200) -> list[int]:
    """Start from a window of zeros (T = W1 rows / E); repeat t = int(rng.choice(V, p=
    softmax(logits))) until t is 0 (not returned) or ``max_len`` (>= 0) tokens were drawn."""
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")
    T = params["W1"].shape[0] // params["C"].shape[1]
    # BEGIN SOLUTION: forward one window, softmax, draw, slide the window
    window, out = [0] * T, []
    while len(out) < max_len:
        logits, _ = forward(params, np.array([window]))
        p = np.exp(_log_softmax(logits.astype(np.float64))[0])
        t = int(rng.choice(len(p), p=p))
        if t == 0:
            break
        out.append(t)
        window = [*window[1:], t]
    return out
    # END SOLUTION

"""s21 · A vanilla RNN by hand: forward, backpropagation through time, vanishing gradients.

You build
    rnn_step_forward(x_t, h_prev, Wx, Wh, b)     one step of the recurrence
    rnn_forward(x, h0, Wx, Wh, b)                the whole sequence, caching what BPTT needs
    rnn_backward(dh, cache)                      backpropagation through time (BPTT)
    hidden_gradient_norms(dh_last, cache)        ||dL/dh_t|| for every t: watch it vanish
    temporal_softmax_loss(scores, y, mask)       cross-entropy over the positions that count
    clip_by_global_norm(grads, max_norm)         the cure for exploding gradients
    model_loss(params, tokens, targets, mask)    a one-hot RNN + linear read-out, loss and grads
    train(params, ...), predict(params, tokens)  learn the copy task (copy_task is given)

How it differs from the previous steps
    s11's MLP saw a fixed-size input. An RNN reads a sequence one element at a time and keeps
    a hidden state h_t, a summary of everything read so far. The SAME weights are used at
    every step, so the network has a fixed number of parameters whatever the length, and the
    gradient of a weight is the sum of its gradients at every time step.

The math (batch-first, as torch's batch_first=True)
    h_t = tanh(x_t Wx + h_{t-1} Wh + b)          x (N, T, D), Wx (D, H), Wh (H, H), b (H,)
    h_{-1} = h0 (N, H), zeros unless given; the outputs are h (N, T, H).
    Backward, given dh (N, T, H) = dL/dh_t from above at every step, walking t = T-1 .. 0:
        g_t  = dh[:, t] + (the gradient arriving from step t + 1; 0 at t = T-1)
        da_t = g_t * (1 - h_t^2)                 the tanh derivative, from the cached output
        dx_t = da_t Wx^T     dWx += x_t^T da_t     dWh += h_{t-1}^T da_t     db += sum_n da_t
        gradient sent to step t - 1: da_t Wh^T   (the one left at t = 0 is dh0)
    (torch's nn.RNN computes the same thing with W_ih = Wx^T, W_hh = Wh^T, b_ih + b_hh = b.)

Vanishing and exploding gradients
    dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) Wh^T: every step back multiplies by diag(tanh') and
    Wh^T. As tanh' <= 1, ||dL/dh_{t-k}|| <= ||Wh||_2^k ||dL/dh_t||: with a small recurrent
    matrix (spectral norm below 1) the signal from step t reaches step t - k shrunk
    geometrically, so the weights hardly learn from dependencies k steps apart. A large Wh can
    instead make the product grow (exploding), which clip_by_global_norm tames; nothing that
    simple cures vanishing: that is what the gates of s22's LSTM and GRU are for.

The copy task (copy_task, given): read L symbols, wait `delay` blank steps, see GO, then
    output the L symbols in order. Tokens: 0 blank, 1..n_symbols symbols, n_symbols + 1 GO;
    T = 2 L + delay; the loss counts only the last L positions (mask). The input is one-hot,
    so x_t Wx is just row tokens[n, t] of Wx: an embedding lookup.

You should be able to explain
    - why the same Wh at every step makes dWh a sum over time, and what BPTT repeats per step;
    - why RNNs struggle with long dependencies: the product of T Jacobians vanishes (or
      explodes), measured by hidden_gradient_norms;
    - why gradient clipping fixes exploding gradients but not vanishing ones;
    - why an RNN cannot be parallelised over time, unlike attention (s24).
"""

from __future__ import annotations

import numpy as np


def copy_task(n: int, length: int, delay: int, n_symbols: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, targets, mask), each (n, 2 * length + delay): recall `length` symbols after GO."""
    T = 2 * length + delay
    symbols = rng.integers(1, n_symbols + 1, size=(n, length))
    tokens = np.zeros((n, T), dtype=np.int64)
    tokens[:, :length] = symbols
    tokens[:, length + delay] = n_symbols + 1  # GO: start answering now
    targets = np.zeros((n, T), dtype=np.int64)
    targets[:, T - length:] = symbols
    mask = np.zeros((n, T), dtype=bool)
    mask[:, T - length:] = True
    return tokens, targets, mask


def init_params(vocab_size: int, hidden_size: int, seed: int = 0,
                recurrent_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Wx (V, H), Wh (H, H) = recurrent_scale * a random orthogonal matrix, b, Wy (H, V), by."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(hidden_size, hidden_size)))
    return {"Wx": rng.normal(0.0, 1.0, (vocab_size, hidden_size)) / np.sqrt(vocab_size),
            "Wh": recurrent_scale * q, "b": np.zeros(hidden_size),
            "Wy": rng.normal(0.0, 1.0, (hidden_size, vocab_size)) / np.sqrt(hidden_size),
            "by": np.zeros(vocab_size)}


def rnn_step_forward(x_t: np.ndarray, h_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                     b: np.ndarray) -> np.ndarray:
    """h_t = tanh(x_t Wx + h_prev Wh + b): x_t (N, D), h_prev (N, H) -> (N, H)."""
    raise NotImplementedError("s21 rnn: one tanh of the input and recurrent projections plus bias")


def rnn_forward(x: np.ndarray, h0: np.ndarray | None, Wx: np.ndarray, Wh: np.ndarray,
                b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """(h (N, T, H), cache) for x (N, T, D); h0 (N, H), or None for zeros."""
    N, T, _ = x.shape
    if h0 is None:
        h0 = np.zeros((N, Wh.shape[0]))
    raise NotImplementedError("s21 rnn: loop over time, feeding each h_t to the next step; cache x, h0, h, weights")


def rnn_backward(dh: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """BPTT: (dx, dh0, dWx, dWh, db) for dh (N, T, H) = dL/dh_t given at every step."""
    raise NotImplementedError("s21 rnn: walk t = T-1 .. 0, adding the future's gradient, through tanh, summing weights")


def hidden_gradient_norms(dh_last: np.ndarray, cache: tuple) -> np.ndarray:
    """(T,) ||dL/dh_t|| (Frobenius over the batch) for L = sum(h_{T-1} * dh_last) only."""
    raise NotImplementedError("s21 rnn: start at the last step with dh_last, step back through tanh' and Wh^T")


def temporal_softmax_loss(scores: np.ndarray, y: np.ndarray,
                          mask: np.ndarray) -> tuple[float, np.ndarray]:
    """(L, dL/dscores): L = mean over positions where mask is True of -log softmax(scores)[y]."""
    n_real = int(mask.sum())
    if n_real == 0:
        raise ValueError("mask selects no position: the loss would be 0 / 0")
    raise NotImplementedError("s21 rnn: stable log-softmax over the last axis, NLL averaged over the masked positions")


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient in place by max_norm / total if total > max_norm; return total,
    the norm of all gradients together, sqrt(sum of every squared entry), before clipping."""
    raise NotImplementedError("s21 rnn: one norm over all arrays; if it exceeds max_norm scale every array in place")


def model_loss(params: dict[str, np.ndarray], tokens: np.ndarray, targets: np.ndarray,
               mask: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """(loss, grads with params' keys): one-hot tokens -> RNN (h0 = 0) -> h Wy + by -> loss."""
    V = params["Wx"].shape[0]
    raise NotImplementedError("s21 rnn: forward (one-hot, rnn_forward, read-out, loss), then backward in reverse")


def predict(params: dict[str, np.ndarray], tokens: np.ndarray) -> np.ndarray:
    """(N, T) most likely token at every position."""
    raise NotImplementedError("s21 rnn: the same forward as model_loss, then argmax over the vocabulary")


def adam_update(params: dict, grads: dict, state: dict, lr: float) -> None:
    """One Adam step in place (b1 0.9, b2 0.999, eps 1e-8); state starts as {} (given)."""
    state["t"] = state.get("t", 0) + 1
    for k, g in grads.items():
        m = state.setdefault("m_" + k, np.zeros_like(g))
        v = state.setdefault("v_" + k, np.zeros_like(g))
        m[...] = 0.9 * m + 0.1 * g
        v[...] = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9 ** state["t"]), v / (1 - 0.999 ** state["t"])
        params[k] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def train(params: dict[str, np.ndarray], tokens: np.ndarray, targets: np.ndarray,
          mask: np.ndarray, *, steps: int, lr: float = 0.01, batch_size: int = 32,
          max_norm: float = 5.0, seed: int = 0) -> np.ndarray:
    """Adam on model_loss; returns the (steps,) losses. rng = np.random.default_rng(seed) once;
    each step: idx = rng.integers(0, n, batch_size), loss and grads on that batch,
    clip_by_global_norm(grads, max_norm), adam_update(params, grads, state, lr)."""
    raise NotImplementedError("s21 rnn: seeded batches, loss and grads, clip, Adam update; record every loss")

"""s33 · Scaling laws: power-law fits, 6 N D compute and the compute-optimal model size.

You build
    non_embedding_params(config)          N of a GPTConfig: every parameter but the embeddings
    training_flops(n_params, n_tokens)    C = 6 N D
    fit_power_law(x, y)                   (a, alpha) of y = a x^-alpha, least squares in log space
    fit_power_law_offset(x, y, n_grid)    (E, a, alpha) of y = E + a x^-alpha, E on a grid
    compute_optimal(budget, A, B, alpha, beta)
                                          (N_opt, D_opt) minimising E + A/N^alpha + B/D^beta
                                          on the budget 6 N D = C

How it differs from the previous steps
    s26-s30 built and trained one GPT. Here you train several (in the lab) and ask how the
    final loss moves with the model size N, the data D and the compute C. Over many orders of
    magnitude it moves as a power law: a straight line on log-log axes (Kaplan et al. 2020),
    flattening towards an irreducible loss E, the entropy of the text itself. The fitted law
    tells you, before spending a budget, how to split it between parameters and tokens
    (Hoffmann et al. 2022, "Chinchilla"). The graded functions are NumPy only.

The math
    Power law:   y = a x^-alpha   <=>   log y = log a - alpha log x
        a straight line in log space: the ordinary least-squares line through (log x, log y)
        gives slope -alpha and intercept log a (the same line np.polyfit(log x, log y, 1)
        gives). Fitting in log space weighs every decade alike; in linear space the smallest
        x (largest y) would dominate.
    With an irreducible loss:   y = E + a x^-alpha,   0 <= E < min(y)
        for a fixed E it is a power law in y - E. Try E_k = min(y) k / n_grid for
        k = 0 .. n_grid - 1, fit (a_k, alpha_k) to y - E_k in log space, score each with
        mean (log y - log(E_k + a_k x^-alpha_k))^2 and keep the best (ties: the smallest E).
    Compute: C = 6 N D FLOPs. Per token and parameter, the forward pass is one multiply and
        one add (2), the backward pass twice that (4). The attention's own T x T products
        (about 2 n_layer T n_embd per token forward) are left out, as Kaplan et al. do.
    N convention (Kaplan et al.): non-embedding parameters. Count every block (attention,
        MLP, both LayerNorms, biases when config.bias) and ln_f; leave out the token
        embedding wte (tied, so the lm_head too) and the position embedding wpe. Then
        N = n_layer (12 E^2 + 13 E) + 2 E with biases, n_layer (12 E^2 + 2 E) + E without,
        about 12 n_layer E^2 for a wide model. The embeddings do little compute per token and
        bend the small-model end of the curves when counted. (Chinchilla counts all
        parameters; at their sizes the difference is small.)
    Compute-optimal split (Chinchilla's parametric fit L(N, D) = E + A/N^alpha + B/D^beta):
        substitute D = C / (6 N) and set dL/dN = 0:
        N_opt = G (C/6)^(beta/(alpha+beta)),   D_opt = (C/6) / N_opt,
        G = (alpha A / (beta B))^(1/(alpha+beta)).   E does not move the optimum.
        Check: with Besiroglu et al.'s 2024 refit of Hoffmann et al.'s data (E = 1.8172,
        A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658) Chinchilla's budget
        C = 6 * 70e9 * 1.4e12 gives N_opt ~ 7e10 and D_opt / N_opt ~ 20 tokens per parameter,
        the famous rule of thumb. (The rounded constants printed in Hoffmann et al., A = 406.4,
        B = 410.7, alpha = 0.34, beta = 0.28, give a much larger ratio: the refit found why.)

Shapes
    x, y 1-D with at least 2 positive entries; budget and n_params / n_tokens: scalars or
    arrays (broadcast), returning floats for scalars.

You should be able to explain
    - why a power law is a straight line on log-log axes and what the slope means;
    - why an irreducible loss bends that line, and what E is for a language model;
    - where the 6 in 6 N D comes from, and which parameters N counts here and why;
    - why a fixed budget has an optimal model size: too small cannot use the data, too big
      sees too few tokens; and why Chinchilla-style laws say to grow N and D together.
"""

from __future__ import annotations

import numpy as np


def _positive_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be 1-D with at least 2 values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0 (a power law lives in log space)")
    return arr


def _xy(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _positive_1d(x, "x"), _positive_1d(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if np.ptp(x) == 0:
        raise ValueError("x needs at least two distinct values to fit a slope")
    return x, y


def non_embedding_params(config) -> int:
    """N of GPT(config): blocks + ln_f, without wte (tied lm_head) and wpe; see the docstring."""
    # BEGIN SOLUTION: per block 12 E^2 weights, 9 E biases, 2 LayerNorms; plus ln_f
    E, b = config.n_embd, int(config.bias)
    per_block = 12 * E * E + b * 9 * E + (2 + 2 * b) * E
    return config.n_layer * per_block + (1 + b) * E
    # END SOLUTION


def training_flops(n_params, n_tokens):
    """C = 6 N D floating-point operations to train N parameters on D tokens.

    Arrays broadcast and give an array; two scalars give a float (NumPy's float64).
    """
    n, d = np.asarray(n_params, dtype=np.float64), np.asarray(n_tokens, dtype=np.float64)
    # BEGIN SOLUTION: 2 N D forward + 4 N D backward
    return 6.0 * n * d  # NumPy gives a float64 scalar (a float) for 0-d inputs
    # END SOLUTION


def fit_power_law(x, y) -> tuple[float, float]:
    """(a, alpha) of y = a x^-alpha: the least-squares line log y = log a - alpha log x."""
    x, y = _xy(x, y)
    # BEGIN SOLUTION: least-squares line through (log x, log y); slope -alpha, intercept log a
    lx, ly = np.log(x), np.log(y)
    dx = lx - lx.mean()
    slope = float(dx @ (ly - ly.mean()) / (dx @ dx))
    intercept = float(ly.mean() - slope * lx.mean())
    return float(np.exp(intercept)), -slope
    # END SOLUTION


def fit_power_law_offset(x, y, n_grid: int = 1000) -> tuple[float, float, float]:
    """(E, a, alpha) of y = E + a x^-alpha, E = min(y) k / n_grid for the best k in 0..n_grid-1.

    For each k, (a, alpha) = fit_power_law(x, y - E); the score is the mean squared error in
    log space, mean (log y - log(E + a x^-alpha))^2. The lowest score wins; ties: smallest E.
    """
    x, y = _xy(x, y)
    if int(n_grid) != n_grid or n_grid < 1:
        raise ValueError(f"n_grid must be a positive integer, got {n_grid!r}")
    # BEGIN SOLUTION: for each grid E, a log-space fit of y - E; keep the lowest log-space error
    best = None
    for k in range(int(n_grid)):
        E = float(y.min()) * k / n_grid
        a, alpha = fit_power_law(x, y - E)
        score = float(np.mean((np.log(y) - np.log(E + a * x ** -alpha)) ** 2))
        if best is None or score < best[0]:
            best = (score, E, a, alpha)
    return best[1], best[2], best[3]
    # END SOLUTION


def compute_optimal(budget, A: float, B: float, alpha: float, beta: float):
    """(N_opt, D_opt) minimising A/N^alpha + B/D^beta subject to 6 N D = budget (broadcasts).

    N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)),
    D_opt = C / (6 N_opt). A scalar budget gives two floats, an array of budgets two arrays.
    """
    C = np.asarray(budget, dtype=np.float64)
    if np.any(C <= 0) or min(A, B, alpha, beta) <= 0:
        raise ValueError("the budget and A, B, alpha, beta must all be > 0")
    # BEGIN SOLUTION: closed form of dL/dN = 0 with D = C / (6 N)
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_opt = G * (C / 6.0) ** (beta / (alpha + beta))
    d_opt = C / (6.0 * n_opt)
    return n_opt, d_opt
    # END SOLUTION

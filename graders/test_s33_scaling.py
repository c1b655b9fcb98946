"""Public graders for s33 scaling: power-law fits, the N convention, 6 N D, the optimal split.

Oracles: np.polyfit on (log x, log y) in float64, the same grid search written out with it,
a GPT's real parameters counted on torch modules, and scipy's bounded scalar minimiser for
the compute-optimal model size.
"""

from dataclasses import dataclass

import numpy as np
import pytest
from torch import nn

from graders.helpers import assert_close


@dataclass
class GPTConfig:  # s26's fields: the graded function reads n_layer, n_embd and bias
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    bias: bool = True


def _real_counts(config):
    """(all parameters, non-embedding ones) of s26's GPT, counted on real torch modules."""
    E, b = config.n_embd, config.bias
    blocks = nn.ModuleList(nn.ModuleDict({
        "ln_1": nn.LayerNorm(E, bias=b), "c_attn": nn.Linear(E, 3 * E, bias=b),
        "attn_proj": nn.Linear(E, E, bias=b), "ln_2": nn.LayerNorm(E, bias=b),
        "c_fc": nn.Linear(E, 4 * E, bias=b), "mlp_proj": nn.Linear(4 * E, E, bias=b)})
        for _ in range(config.n_layer))
    body = nn.ModuleList([blocks, nn.LayerNorm(E, bias=b)])
    embeddings = nn.ModuleList([nn.Embedding(config.vocab_size, E),  # wte = lm_head (tied)
                                nn.Embedding(config.block_size, E)])
    n_body = sum(p.numel() for p in body.parameters())
    return n_body + sum(p.numel() for p in embeddings.parameters()), n_body


def _polyfit(x, y):
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(intercept)), float(-slope)


def reference_offset_fit(x, y, n_grid):
    """The docstring's grid search with np.polyfit: (E, a, alpha, score) and every score."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    scores, fits = [], []
    for k in range(n_grid):
        E = y.min() * k / n_grid
        a, alpha = _polyfit(x, y - E)
        fits.append((E, a, alpha))
        scores.append(np.mean((np.log(y) - np.log(E + a * x ** -alpha)) ** 2))
    k = int(np.argmin(scores))
    return (*fits[k], scores[k]), np.array(scores)


def log_score(x, y, E, a, alpha):
    return float(np.mean((np.log(y) - np.log(E + a * x ** -alpha)) ** 2))


@pytest.mark.points(2)
def test_fit_power_law_recovers_the_exponent_and_constant(impl):
    x = np.logspace(2, 8, 9)
    a, alpha = impl.fit_power_law(x, 3.7 * x ** -0.42)
    # exact data: only float64 rounding of logs separates the fit from the truth
    assert_close(alpha, 0.42, "fitted alpha of y = 3.7 x^-0.42 (the minus slope in log space)",
                 rtol=1e-10)
    assert_close(a, 3.7, "fitted constant a of y = 3.7 x^-0.42 (exp of the log-space intercept)",
                 rtol=1e-9)
    assert isinstance(a, float) and isinstance(alpha, float), "return two Python floats"


@pytest.mark.points(3)
def test_fit_power_law_with_noise_is_the_log_space_least_squares_line(impl, rng):
    x = np.sort(rng.uniform(1e3, 1e6, size=40))
    y = 12.0 * x ** -0.27 * np.exp(rng.normal(0, 0.05, size=40))  # 5 % multiplicative noise
    a, alpha = impl.fit_power_law(x, y)
    ref_a, ref_alpha = _polyfit(x, y)
    # the same least-squares problem in float64: only rounding differs
    assert_close(np.array([a, alpha]), np.array([ref_a, ref_alpha]),
                 "(a, alpha) vs np.polyfit(log x, log y, 1) -> (exp(intercept), -slope): fit "
                 "the line in log space, not y against x", rtol=1e-9)
    # 40 points over 3 decades with 5 % noise: the slope's standard error is about 0.005
    assert abs(alpha - 0.27) < 0.03, f"alpha = {alpha:.4f}, the data were made with 0.27"


@pytest.mark.points(3)
def test_offset_fit_recovers_the_irreducible_loss(impl):
    x = np.logspace(3, 7, 12)
    c = 4.0 * x.max() ** -0.3
    E_true = 1.5 * c  # = min(y) * 600 / 1000: exactly one of the grid's candidates
    y = E_true + 4.0 * x ** -0.3
    E, a, alpha = impl.fit_power_law_offset(x, y)
    # exact data and E_true on the grid: the fit at k = 600 is exact up to rounding
    assert_close(np.array([E, a, alpha]), np.array([E_true, 4.0, 0.3]),
                 "(E, a, alpha) of y = E + 4 x^-0.3 with E on the grid min(y) k / 1000",
                 rtol=1e-8)


@pytest.mark.points(3)
def test_offset_fit_with_noise_equals_the_reference_grid_search(impl, rng):
    x = np.logspace(1, 5, 25)
    y = (2.2 + 9.0 * x ** -0.45) * np.exp(rng.normal(0, 0.01, size=25))
    E, a, alpha = impl.fit_power_law_offset(x, y, n_grid=400)
    (ref_E, ref_a, ref_alpha, ref_score), _ = reference_offset_fit(x, y, 400)
    # the same grid and the same fits: only float rounding differs
    assert_close(np.array([E, a, alpha]), np.array([ref_E, ref_a, ref_alpha]),
                 "(E, a, alpha) vs the grid search over E = min(y) k / n_grid, each fitted in "
                 "log space and scored by mean (log y - log(E + a x^-alpha))^2", rtol=1e-7)
    assert log_score(x, y, E, a, alpha) <= ref_score * (1 + 1e-9) + 1e-15
    assert abs(E - 2.2) < 0.1, f"E = {E:.3f}; the data were made with an irreducible 2.2"


@pytest.mark.points(2)
def test_offset_fit_uses_n_grid_and_gives_ties_to_the_smallest_e(impl):
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    y = 1.0 + 2.0 * x ** -0.5
    E, a, alpha = impl.fit_power_law_offset(x, y, n_grid=4)
    m = y.min()
    assert any(abs(E - m * k / 4) < 1e-12 for k in range(4)), (
        f"with n_grid=4, E must be one of min(y) * k / 4 for k = 0..3, got {E}")
    (ref_E, ref_a, ref_alpha, _), _ = reference_offset_fit(x, y, 4)
    assert_close(np.array([E, a, alpha]), np.array([ref_E, ref_a, ref_alpha]),
                 "(E, a, alpha) of the 4-point grid search", rtol=1e-9)
    flat = np.full(5, 3.0)  # every E fits flat data exactly: a tie the smallest E must win
    E, a, alpha = impl.fit_power_law_offset(np.arange(1.0, 6.0), flat, n_grid=10)
    assert_close(np.array([E, a, alpha]), np.array([0.0, 3.0, 0.0]),
                 "flat data fit every grid E exactly: the tie goes to E = 0 (the smallest), "
                 "giving a = 3, alpha = 0", rtol=1e-9, atol=1e-12)


@pytest.mark.points(3)
def test_non_embedding_params_counts_a_real_gpt_minus_its_embeddings(impl):
    for cfg in (GPTConfig(), GPTConfig(bias=False),
                GPTConfig(vocab_size=50257, block_size=1024, n_layer=1, n_embd=8, n_head=2),
                GPTConfig(n_layer=3, n_embd=20, bias=False, vocab_size=7, block_size=3)):
        total, body = _real_counts(cfg)
        got = impl.non_embedding_params(cfg)
        assert got == body, (
            f"non_embedding_params({cfg}) = {got}, but the blocks and ln_f hold {body} "
            f"parameters (all {total} minus wte, which is tied to lm_head, and wpe): count "
            "every block's linears, biases and both LayerNorms, and ln_f; no embeddings")


@pytest.mark.points(2)
def test_training_flops_is_six_n_d_and_broadcasts(impl):
    cfg = GPTConfig(n_layer=2, n_embd=16)
    n = impl.non_embedding_params(cfg)
    _, body = _real_counts(cfg)
    got = impl.training_flops(n, 3_000)
    assert isinstance(got, float), f"scalars in, a float out; got {type(got)}"
    assert_close(got, 6.0 * body * 3000, "training_flops(N, D) = 6 N D", rtol=1e-12)
    grid = impl.training_flops(np.array([[1e6], [2e6]]), np.array([1e8, 4e8, 9e8]))
    assert_close(grid, 6.0 * np.array([[1e6], [2e6]]) * np.array([1e8, 4e8, 9e8]),
                 "training_flops on a (2, 1) x (3,) grid of N and D (broadcast to (2, 3))",
                 rtol=1e-12)
    assert_close(impl.training_flops([10.0, 20.0], 5), np.array([300.0, 600.0]),
                 "training_flops([10, 20], 5): a list of N against one D", rtol=1e-12)


@pytest.mark.points(3)
def test_compute_optimal_minimises_the_loss_on_the_budget(impl):
    from scipy.optimize import minimize_scalar

    for A, B, alpha, beta, C in ((482.01, 2085.43, 0.3478, 0.3658, 1e21),
                                 (406.4, 410.7, 0.34, 0.28, 3e19), (50.0, 900.0, 0.5, 0.2, 1e15)):
        n_opt, d_opt = impl.compute_optimal(C, A, B, alpha, beta)
        assert_close(6.0 * n_opt * d_opt, C, "6 N_opt D_opt must spend the budget", rtol=1e-9)

        def loss(log_n, A=A, B=B, alpha=alpha, beta=beta, C=C):
            n = np.exp(log_n)
            return A * n ** -alpha + B * (C / (6 * n)) ** -beta

        ref = minimize_scalar(loss, bounds=(0.0, np.log(C / 6)), method="bounded",
                              options={"xatol": 1e-10})
        # the bounded search stops within ~1e-9 in log N of the true minimum
        assert_close(np.log(n_opt), ref.x, f"log N_opt for A={A}, B={B}, alpha={alpha}, "
                     f"beta={beta}, C={C:g} vs a numerical minimum of A/N^alpha + B/D^beta "
                     "along 6 N D = C", rtol=1e-6, atol=1e-6)

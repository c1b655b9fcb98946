"""Hidden graders for s33: the Chinchilla check, exponents of the optimum, awkward data."""

import numpy as np
import pytest

from graders.helpers import assert_close
from graders.test_s33_scaling import GPTConfig, _polyfit, _real_counts, reference_offset_fit


@pytest.mark.points(2)
def test_chinchilla_budget_gives_about_20_tokens_per_parameter(impl):
    C = 6 * 70e9 * 1.4e12  # Chinchilla: 70B parameters on 1.4T tokens
    n_opt, d_opt = impl.compute_optimal(C, 482.01, 2085.43, 0.3478, 0.3658)  # Besiroglu 2024
    assert 5e10 < n_opt < 1e11 and 15 < d_opt / n_opt < 25, (
        f"with the refit Chinchilla law the budget of Chinchilla itself should give about 70B "
        f"parameters and ~20 tokens per parameter; got N_opt = {n_opt:.3g}, "
        f"D_opt / N_opt = {d_opt / n_opt:.1f}")
    budgets = np.logspace(18, 26, 5)
    n, d = impl.compute_optimal(budgets, 482.01, 2085.43, 0.3478, 0.3658)
    assert n.shape == (5,) and d.shape == (5,), "an array of budgets gives arrays of N and D"
    slope = np.polyfit(np.log(budgets), np.log(n), 1)[0]
    # exact power law in C: the slope is beta / (alpha + beta) up to rounding
    assert_close(slope, 0.3658 / (0.3478 + 0.3658), "d log N_opt / d log C (should be "
                 "beta / (alpha + beta): the data term's exponent drives the model size)",
                 rtol=1e-9)


@pytest.mark.points(1)
def test_equal_exponents_grow_n_and_d_alike(impl):
    C = np.array([1e18, 1e20])
    n, d = impl.compute_optimal(C, 100.0, 400.0, 0.3, 0.3)
    assert_close(n[1] / n[0], 10.0, "with alpha = beta, 100x the compute gives 10x N", rtol=1e-9)
    # D / N = G^-2 = (B / A)^(1 / alpha) when alpha = beta
    assert_close(d / n, np.full(2, 4.0 ** (1 / 0.3)), "D_opt / N_opt with alpha = beta",
                 rtol=1e-9)
    n, d = impl.compute_optimal(125.5, 1.0, 1.0, 0.5, 0.5)  # a small, non-integral budget
    root = (125.5 / 6) ** 0.5  # G = 1: N = D = sqrt(C / 6), no rounding anywhere
    assert_close(np.array([n, d]), np.array([root, root]), "(N_opt, D_opt) for C = 125.5, "
                 "A = B = 1, alpha = beta = 0.5 (true division, not //)", rtol=1e-12)


@pytest.mark.points(2)
def test_fits_handle_unsorted_lists_rising_data_and_far_scales(impl, rng):
    x = rng.uniform(1e15, 1e20, size=15)
    y = 2e-8 * x ** 0.12 * np.exp(rng.normal(0, 0.02, size=15))  # rising: alpha < 0
    a, alpha = impl.fit_power_law(list(x), list(y))
    ref_a, ref_alpha = _polyfit(x, y)
    # the same least-squares line; centred sums keep it exact far from the origin
    assert_close(np.array([np.log(a), alpha]), np.array([np.log(ref_a), ref_alpha]),
                 "log a and alpha for unsorted rising data at x ~ 1e15..1e20", rtol=1e-8)
    order = rng.permutation(15)
    x2 = np.logspace(0, 3, 15)
    y2 = 0.8 + 5.0 * x2 ** -0.6 + rng.normal(0, 0.002, size=15)
    first = impl.fit_power_law_offset(x2, y2, n_grid=300)
    again = impl.fit_power_law_offset(x2[order], y2[order], n_grid=300)
    assert_close(np.array(again), np.array(first), "the offset fit does not depend on the "
                 "order of the points", rtol=1e-9)


@pytest.mark.points(1)
def test_a_pure_power_law_keeps_e_at_zero(impl):
    x = np.logspace(0, 4, 10)
    y = 5.0 * x ** -0.7
    E, a, alpha = impl.fit_power_law_offset(x, y, n_grid=50)
    (ref_E, _, _, _), scores = reference_offset_fit(x, y, 50)
    assert ref_E == 0.0 and E == 0.0, f"E = {E}: no irreducible term fits best here (k = 0)"
    assert_close(np.array([a, alpha]), np.array([5.0, 0.7]), "a, alpha at E = 0", rtol=1e-9)


@pytest.mark.points(1)
def test_non_embedding_params_ignores_vocabulary_and_context(impl):
    base = impl.non_embedding_params(GPTConfig(n_layer=6, n_embd=512))
    other = impl.non_embedding_params(GPTConfig(n_layer=6, n_embd=512, vocab_size=50257,
                                                block_size=2048))
    assert base == other == _real_counts(GPTConfig(n_layer=6, n_embd=512))[1], (
        "N must not depend on vocab_size or block_size: the embeddings are not counted")
    assert abs(base / (12 * 6 * 512 ** 2) - 1) < 0.01, "a wide model has N ~ 12 n_layer E^2"


@pytest.mark.points(1)
def test_bad_inputs_are_refused(impl):
    for x, y in (([1.0, 2.0], [1.0, -1.0]), ([1.0], [2.0]), ([2.0, 2.0], [1.0, 3.0]),
                 ([1.0, 2.0, 3.0], [1.0, 2.0])):
        with pytest.raises(ValueError):
            impl.fit_power_law(x, y)
    with pytest.raises(ValueError):
        impl.fit_power_law_offset([1.0, 2.0], [2.0, 1.0], n_grid=0)
    with pytest.raises(ValueError):
        impl.compute_optimal(-1.0, 1.0, 1.0, 0.3, 0.3)
    a, alpha = impl.fit_power_law([1.0, 2.0], [2.0, 1.0])
    assert_close(np.array([a, alpha]), np.array([2.0, 1.0]), "two points: y = 2 x^-1",
                 rtol=1e-12)

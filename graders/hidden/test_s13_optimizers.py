"""Hidden graders for s13 optimizers: random hyper-parameters against torch, edge cases of
clipping and schedules, and optimizers that must actually optimise."""

import math

import numpy as np
import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close
from graders.test_s13_optimizers import run_against_torch

# One failure report, no explain phase (it re-parses source and is slow).
ONE_BUG = {"report_multiple_bugs": False,
           "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)}
unit = st.floats(0.0, 0.99)


@pytest.mark.points(2)
@settings(max_examples=8, deadline=None, **ONE_BUG)
@given(lr=st.floats(1e-3, 0.1), momentum=st.floats(0.05, 0.99), dampening=unit,
       wd=st.floats(0.0, 0.1), nesterov=st.booleans(), seed=st.integers(0, 1000))
def test_sgd_random_settings_match_torch(impl, lr, momentum, dampening, wd, nesterov, seed):
    kw = {"lr": lr, "momentum": momentum, "dampening": 0.0 if nesterov else dampening,
          "weight_decay": wd, "nesterov": nesterov}
    run_against_torch(impl.SGD, torch.optim.SGD, kw, kw, steps=40, seed=seed,
                      what="SGD with other hyper-parameters")


@pytest.mark.points(2)
@settings(max_examples=8, deadline=None, **ONE_BUG)
@given(lr=st.floats(1e-4, 0.05), b1=unit, b2=st.floats(0.5, 0.9999),
       eps=st.sampled_from([1e-8, 1e-6, 1e-3]), wd=st.floats(0.0, 0.2),
       decoupled=st.booleans(), seed=st.integers(0, 1000))
def test_adam_family_random_settings_match_torch(impl, lr, b1, b2, eps, wd, decoupled, seed):
    kw = {"lr": lr, "betas": (b1, b2), "eps": eps, "weight_decay": wd}
    ours, theirs = (impl.AdamW, torch.optim.AdamW) if decoupled else (impl.Adam,
                                                                     torch.optim.Adam)
    run_against_torch(ours, theirs, kw, kw, steps=40, seed=seed,
                      what=f"{ours.__name__} with other hyper-parameters")


@pytest.mark.points(1)
def test_rmsprop_with_tiny_gradients_matches_torch(impl):
    run_against_torch(impl.RMSProp, torch.optim.RMSprop, {"lr": 0.01, "eps": 1e-6},
                      {"lr": 0.01, "eps": 1e-6}, grad_scale=1e-6, steps=50,
                      what="RMSProp with gradients ~1e-6 (eps is added after the sqrt)")


@pytest.mark.points(1)
def test_adamw_with_a_schedule_uses_the_current_lr_for_decay(impl):
    """A schedule changes opt.lr between steps; the decoupled decay must use the new lr."""
    rng = np.random.default_rng(3)
    p0 = rng.normal(size=6)
    p, tp = p0.copy(), torch.tensor(p0, requires_grad=True)
    opt = impl.AdamW([p], lr=0.1, weight_decay=0.3)
    t_opt = torch.optim.AdamW([tp], lr=0.1, weight_decay=0.3)
    for t in range(30):
        lr = impl.cosine_with_warmup(t, 0.1, 5, 30)
        opt.lr = lr
        t_opt.param_groups[0]["lr"] = lr
        g = np.sin(np.arange(6) + t) * (tp.detach().numpy() + 1.0)
        tp.grad = torch.tensor(g)
        t_opt.step()
        opt.step([g.copy()])
    assert_close(p, tp.detach(), "AdamW driven by a warmup + cosine schedule (set opt.lr "
                 "each step) after 30 steps", 1e-9, 1e-12)


@pytest.mark.points(1)
def test_clip_grad_norm_leaves_zero_gradients_alone(impl):
    grads = [np.zeros(3), np.zeros((2, 2))]
    norm = impl.clip_grad_norm(grads, 1.0)
    assert norm == 0.0 and all(np.all(g == 0) for g in grads), (
        f"all-zero gradients: the norm is 0 and nothing changes (no NaN from 0/0); got norm "
        f"{norm}")


@pytest.mark.points(1)
def test_clip_uses_the_global_norm_not_each_tensors(impl):
    grads = [np.full(4, 3.0), np.full(4, 0.1)]  # norms 6 and 0.2; global ~6.003
    impl.clip_grad_norm(grads, 1.0)
    total = math.sqrt(36 + 0.04)
    assert_close(grads[1], np.full(4, 0.1 / (total + 1e-6)), "a small gradient next to a big "
                 "one, after clipping to global norm 1 (it is scaled by the same factor as "
                 "the big one, even though its own norm is below 1)", 1e-9, 1e-15)


@pytest.mark.points(1)
def test_cosine_schedule_shape(impl):
    W, T, base, low = 20, 120, 1.0, 0.1
    lrs = np.array([impl.cosine_with_warmup(t, base, W, T, low) for t in range(T + 10)])
    assert lrs[0] == 0.0 and lrs[W] == pytest.approx(base), (
        f"warmup starts at 0 and reaches base_lr exactly at step warmup_steps; got "
        f"{lrs[0]} at step 0 and {lrs[W]} at step {W}")
    assert np.all(np.diff(lrs[:W + 1]) > 0), "the learning rate should rise during warmup"
    assert np.all(np.diff(lrs[W:T + 1]) < 0), "after warmup the cosine should only decrease"
    assert_close(lrs[T:], np.full(10, low), "the learning rate at and after total_steps "
                 "(min_lr)", 1e-12, 1e-15)
    mid = (W + T) // 2
    assert lrs[mid] == pytest.approx((base + low) / 2), (
        "halfway through the cosine the rate should be the average of base_lr and min_lr")


@pytest.mark.points(1)
def test_step_lr_at_the_boundaries(impl):
    got = [impl.step_lr(t, 2.0, step_size=3, gamma=0.1) for t in (0, 2, 3, 5, 6)]
    assert_close(got, [2.0, 2.0, 0.2, 0.2, 0.02], "step_lr(t, 2.0, step_size=3, gamma=0.1) "
                 "at t = 0, 2, 3, 5, 6 (the first decay happens AT t = step_size)",
                 1e-12, 1e-15)


@pytest.mark.points(2)
def test_momentum_and_adam_beat_plain_sgd_on_an_ill_conditioned_quadratic(impl):
    """f(x) = 0.5 * (x0^2 + 100 x1^2): SGD's lr is capped by the steep direction."""
    curv = np.array([1.0, 100.0])

    def final_loss(make, steps=150):
        x = np.array([1.0, 1.0])
        opt = make([x])
        for _ in range(steps):
            opt.step([curv * x])
        return 0.5 * float(curv @ (x * x))

    sgd = final_loss(lambda ps: impl.SGD(ps, lr=0.009))
    heavy = final_loss(lambda ps: impl.SGD(ps, lr=0.009, momentum=0.9))
    nesterov = final_loss(lambda ps: impl.SGD(ps, lr=0.009, momentum=0.9, nesterov=True))
    adam = final_loss(lambda ps: impl.Adam(ps, lr=0.05))
    assert heavy < sgd / 100 and nesterov < sgd / 100 and adam < sgd / 10, (
        f"on an ill-conditioned quadratic after 150 steps: SGD {sgd:.3g}, momentum "
        f"{heavy:.3g}, Nesterov {nesterov:.3g}, Adam {adam:.3g}; momentum and Adam should "
        "be far below plain SGD")

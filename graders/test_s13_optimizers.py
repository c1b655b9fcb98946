"""Public graders for s13 optimizers: step-for-step equality with torch.optim (float64),
schedules against their formulas and torch's schedulers, and global-norm clipping."""

import math

import numpy as np
import pytest
import torch

from graders.helpers import assert_close

# Both sides run the same float64 formulas with operations in a slightly different order
# (torch uses lerp / addcdiv): after 120 steps they agree to ~1e-13 relative. 1e-9 is far
# above that noise and far below any convention difference (eps placement, bias correction).
RTOL, ATOL = 1e-9, 1e-12
SHAPES = [(3, 4), (5,), (2, 2, 2)]


def make_problem(seed: int, grad_scale: float = 1.0):
    """Initial parameters and a gradient function: a noisy ill-conditioned quadratic."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in SHAPES]
    curv = [np.exp(rng.uniform(-2.0, 2.0, size=s)) for s in SHAPES]  # curvatures e^-2..e^2
    noise = rng.normal(size=(400, sum(int(np.prod(s)) for s in SHAPES)))

    def grads(ps, t):
        flat_noise, out, k = noise[t % len(noise)], [], 0
        for p, c in zip(ps, curv, strict=True):
            n = p.size
            out.append(grad_scale * (c * (p - 0.5) + 0.3 * flat_noise[k:k + n].reshape(p.shape)))
            k += n
        return out

    return params, grads


def eps_steps(cls, g=1e-8, lr=0.1, eps=1e-8):
    """(the step cls takes, with eps after the sqrt, with eps inside) on one tiny gradient."""
    if cls.__name__ == "RMSProp":  # s = (1 - alpha) g^2 after one step
        root, kw = math.sqrt(0.01) * g, {"lr": lr, "alpha": 0.99, "eps": eps}
    else:  # Adam / AdamW, bias-corrected: m_hat = g, v_hat = g^2
        root, kw = g, {"lr": lr, "eps": eps, "weight_decay": 0.0}
    p = np.zeros(3)
    cls([p], **kw).step([np.full(3, g)])
    return -float(p[0]), lr * g / (root + eps), lr * g / math.sqrt(root ** 2 + eps)


def eps_hint(cls) -> str:
    """A sentence naming eps placement when cls puts eps inside the square root, else ""."""
    if cls.__name__ not in ("RMSProp", "Adam", "AdamW"):
        return ""
    try:
        step, _, inside = eps_steps(cls)
    except Exception:  # the probe must never hide the original failure
        return ""
    if math.isclose(step, inside, rel_tol=1e-6):
        return (f" {cls.__name__} puts eps INSIDE the square root (sqrt(v + eps)); torch adds "
                "it AFTER: sqrt(v_hat) + eps.")
    return ""


def run_against_torch(ours_cls, torch_cls, ours_kw, torch_kw, *, steps=120, seed=0,
                      grad_scale=1.0, what=""):
    """Feed the same gradients (computed at torch's parameters) to both optimizers and
    compare every parameter after every step."""
    init, grads = make_problem(seed, grad_scale)
    ours_params = [p.copy() for p in init]
    t_params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in init]
    opt = ours_cls(ours_params, **ours_kw)
    t_opt = torch_cls(t_params, **torch_kw)
    for t in range(steps):
        g = grads([tp.detach().numpy() for tp in t_params], t)
        for tp, gi in zip(t_params, g, strict=True):
            tp.grad = torch.tensor(gi)
        t_opt.step()
        opt.step([gi.copy() for gi in g])
        for k, (p, tp) in enumerate(zip(ours_params, t_params, strict=True)):
            try:
                assert_close(p, tp.detach(), f"{what}: parameter {k} after step {t + 1} "
                             f"(torch.optim with {torch_kw})", RTOL, ATOL)
            except AssertionError as exc:
                raise AssertionError(str(exc) + eps_hint(ours_cls)) from None
    return ours_params


# --- SGD ------------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_plain_sgd_matches_torch(impl):
    run_against_torch(impl.SGD, torch.optim.SGD, {"lr": 0.05}, {"lr": 0.05},
                      what="SGD(lr=0.05)")


@pytest.mark.points(2)
@pytest.mark.parametrize("kw", [{"momentum": 0.9}, {"momentum": 0.8, "dampening": 0.3},
                                {"momentum": 0.9, "weight_decay": 0.05}])
def test_sgd_momentum_matches_torch(impl, kw):
    run_against_torch(impl.SGD, torch.optim.SGD, {"lr": 0.02, **kw}, {"lr": 0.02, **kw},
                      what=f"SGD(lr=0.02, {kw}): the buffer starts as a copy of the first "
                      "gradient, then b = mu*b + (1 - dampening)*g")


@pytest.mark.points(1)
def test_sgd_without_momentum_ignores_dampening(impl):
    kw = {"lr": 0.05, "momentum": 0.0, "dampening": 0.5, "weight_decay": 0.1}
    run_against_torch(impl.SGD, torch.optim.SGD, kw, kw, steps=30,
                      what="SGD(momentum=0, dampening=0.5, weight_decay=0.1): with no momentum "
                      "there is no buffer, so dampening changes nothing (p -= lr * (g + wd p))")


@pytest.mark.points(2)
def test_sgd_nesterov_matches_torch(impl):
    kw = {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}
    run_against_torch(impl.SGD, torch.optim.SGD, kw, kw,
                      what="SGD with Nesterov momentum (step along g + mu*b, not b)")


# --- RMSProp --------------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.parametrize("kw", [{}, {"alpha": 0.9, "eps": 1e-6, "weight_decay": 0.01},
                                {"alpha": 0.3}])
def test_rmsprop_matches_torch(impl, kw):
    run_against_torch(impl.RMSProp, torch.optim.RMSprop, {"lr": 0.01, **kw},
                      {"lr": 0.01, **kw}, what=f"RMSProp({kw}): p -= lr*g / (sqrt(s) + eps)")


# --- Adam / AdamW ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.parametrize("kw", [{}, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}])
def test_adam_matches_torch(impl, kw):
    run_against_torch(impl.Adam, torch.optim.Adam, {"lr": 0.01, **kw}, {"lr": 0.01, **kw},
                      what=f"Adam({kw})")


@pytest.mark.points(2)
def test_adam_with_tiny_gradients_matches_torch(impl):
    run_against_torch(impl.Adam, torch.optim.Adam, {"lr": 0.01}, {"lr": 0.01},
                      grad_scale=1e-6, steps=60,
                      what="Adam with gradients ~1e-6 (here eps = 1e-8 matters: it is added "
                      "AFTER the square root, sqrt(v_hat) + eps)")


@pytest.mark.points(1)
def test_adam_first_step_moves_each_coordinate_by_lr(impl, rng):
    p = rng.normal(size=20)
    g = rng.choice([-1.0, 1.0], size=20) * np.logspace(-2, 3, 20)  # |g| from 0.01 to 1000
    before = p.copy()
    impl.Adam([p], lr=0.1).step([g])
    assert_close(before - p, 0.1 * np.sign(g), "the first Adam step (with bias correction, "
                 "m_hat / sqrt(v_hat) = g / |g|: every coordinate moves by lr, whatever its "
                 "gradient's scale)", rtol=1e-5, atol=0)  # eps / |g| <= 1e-6 here


@pytest.mark.points(2)
@pytest.mark.parametrize("name", ["RMSProp", "Adam", "AdamW"])
def test_eps_is_added_after_the_square_root(impl, name):
    """One step on a gradient of 1e-8 with eps = 1e-8: where eps goes decides the step."""
    step, outside, inside = eps_steps(getattr(impl, name))
    assert not math.isclose(step, inside, rel_tol=1e-6), (
        f"{name}: one step on a gradient of 1e-8 (eps = 1e-8) moved the parameter by "
        f"{step:.6g}, the step with eps INSIDE the square root (sqrt(v + eps)); torch adds "
        f"eps AFTER it, sqrt(v_hat) + eps, which gives {outside:.6g}.")
    assert math.isclose(step, outside, rel_tol=1e-9), (
        f"{name}: one step on a gradient of 1e-8 with eps = 1e-8 moved the parameter by "
        f"{step:.6g}; lr * g / (sqrt(v_hat) + eps) gives {outside:.6g} (eps after the square "
        "root, as torch).")


@pytest.mark.points(1)
def test_optimizers_read_the_current_lr_at_every_step(impl):
    """A schedule sets opt.lr between steps; every optimizer must use the new value."""
    schedule = [0.1 * (1 - t / 30) for t in range(30)]
    for ours, theirs, kw in ((impl.SGD, torch.optim.SGD, {"momentum": 0.9}),
                             (impl.RMSProp, torch.optim.RMSprop, {}),
                             (impl.Adam, torch.optim.Adam, {"weight_decay": 0.1}),
                             (impl.AdamW, torch.optim.AdamW, {"weight_decay": 0.1})):
        init, grads = make_problem(4)
        ps = [p.copy() for p in init]
        tps = [torch.tensor(p, requires_grad=True) for p in init]
        opt, t_opt = ours(ps, lr=0.1, **kw), theirs(tps, lr=0.1, **kw)
        for t, lr in enumerate(schedule):
            opt.lr = lr
            for group in t_opt.param_groups:
                group["lr"] = lr
            g = grads([tp.detach().numpy() for tp in tps], t)
            for tp, gi in zip(tps, g, strict=True):
                tp.grad = torch.tensor(gi)
            t_opt.step()
            opt.step([gi.copy() for gi in g])
        for k, (p, tp) in enumerate(zip(ps, tps, strict=True)):
            assert_close(p, tp.detach(), f"{ours.__name__}({kw}) with opt.lr changed before "
                         f"every step (a decaying schedule): parameter {k} after 30 steps; "
                         "read self.lr in every update, never a copy kept from __init__",
                         RTOL, ATOL)


@pytest.mark.points(2)
@pytest.mark.parametrize("wd", [0.01, 0.5])
def test_adamw_matches_torch(impl, wd):
    run_against_torch(impl.AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": wd},
                      {"lr": 0.01, "weight_decay": wd},
                      what=f"AdamW(weight_decay={wd}): p -= lr*wd*p, then the Adam step")


@pytest.mark.points(1)
def test_adamw_decay_is_independent_of_the_gradient(impl, rng):
    p = rng.normal(size=8)
    before = p.copy()
    opt = impl.AdamW([p], lr=0.1, weight_decay=0.2)
    for _ in range(5):
        opt.step([np.zeros(8)])
    assert_close(p, before * (1 - 0.1 * 0.2) ** 5, "AdamW with zero gradients for 5 steps "
                 "(decoupled decay alone: p *= 1 - lr*wd each step; an L2 term added to the "
                 "gradient would instead be normalised by Adam to a step of ~lr)",
                 rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
def test_step_updates_the_arrays_in_place(impl, rng):
    for cls in (impl.SGD, impl.RMSProp, impl.Adam, impl.AdamW):
        p = rng.normal(size=(2, 3))
        before = p.copy()
        cls([p], lr=0.1).step([np.ones((2, 3))])
        assert not np.allclose(p, before), (
            f"after {cls.__name__}.step the array passed in is unchanged: update it IN PLACE "
            "(p -= ...), as torch does; `p = p - ...` only rebinds a local name")


# --- clipping -------------------------------------------------------------------------------

def check_scaled_in_place(before, grads, max_norm, what):
    """Fail with "in place" when clipping was due but left the caller's arrays unchanged."""
    total = math.sqrt(sum(float(np.sum(b * b)) for b in before))
    if max_norm / (total + 1e-6) < 1 and all(np.array_equal(b, g) for b, g in zip(before, grads,
                                                                      strict=True)):
        raise AssertionError(
            f"{what}: the global norm is {total:.6g} and max_norm = {max_norm:g}, so every "
            "tensor should be scaled by max_norm / (n + 1e-6) < 1, yet every gradient array "
            "passed in is unchanged. Scale them IN PLACE (g *= factor, or "
            "g[...] = g * factor): `g = g * factor` inside the loop builds a new array and "
            "leaves the caller's gradient as it was.")


@pytest.mark.points(2)
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3, "exact", "1.5x"])
def test_clip_grad_norm_matches_torch(impl, rng, max_norm):
    grads = [rng.normal(size=s) for s in SHAPES]
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    if max_norm == "exact":  # max_norm equal to the norm: torch still scales by n / (n + 1e-6)
        max_norm = norm
    elif max_norm == "1.5x":  # a norm below max_norm: the gradients stay as they are
        max_norm = 1.5 * norm
    before = [g.copy() for g in grads]
    t_params = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for tp, g in zip(t_params, grads, strict=True):
        tp.grad = torch.tensor(g)
    t_norm = torch.nn.utils.clip_grad_norm_(t_params, max_norm)
    norm = impl.clip_grad_norm(grads, max_norm)
    assert_close(norm, t_norm, f"clip_grad_norm(max_norm={max_norm}) return value (the "
                 "global norm sqrt(sum_i ||g_i||^2) before clipping)", 1e-12, 1e-12)
    check_scaled_in_place(before, grads, max_norm, f"clip_grad_norm(max_norm={max_norm:.6g})")
    for k, (g, tp) in enumerate(zip(grads, t_params, strict=True)):
        assert_close(g, tp.grad, f"gradient {k} after clip_grad_norm(max_norm={max_norm}) "
                     "(all tensors are scaled by ONE factor min(1, max_norm / (n + 1e-6)))",
                     1e-12, 1e-15)


@pytest.mark.points(1)
def test_clipping_keeps_the_direction(impl, rng):
    grads = [rng.normal(size=10) * 5, rng.normal(size=3) * 0.01]  # one big, one tiny tensor
    flat, before = np.concatenate(grads), [g.copy() for g in grads]
    impl.clip_grad_norm(grads, 1.0)
    check_scaled_in_place(before, grads, 1.0, "clip_grad_norm(grads, max_norm=1)")
    clipped = np.concatenate(grads)
    cos = clipped @ flat / (np.linalg.norm(clipped) * np.linalg.norm(flat))
    assert cos > 1 - 1e-12 and np.linalg.norm(clipped) == pytest.approx(1.0, rel=1e-5), (
        f"after clipping to norm 1 the concatenated gradient should point the same way "
        f"(cosine 1, got {cos:.6f}) with norm ~1 (got {np.linalg.norm(clipped):.6f}): scale "
        "every tensor by the same factor, computed from the global norm")


# --- schedules ------------------------------------------------------------------------------

def torch_lrs(scheduler_fn, steps, base_lr=0.1):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = scheduler_fn(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.points(1)
def test_step_lr_matches_torch(impl):
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
                         30)
    ours = [impl.step_lr(t, 0.1, step_size=7, gamma=0.5) for t in range(30)]
    assert_close(ours, expected, "step_lr(t, 0.1, step_size=7, gamma=0.5) for t = 0..29 "
                 "(torch StepLR)", 1e-12, 1e-15)


@pytest.mark.points(2)
def test_cosine_with_warmup_formula(impl):
    W, T, base, low = 10, 50, 0.3, 0.01
    ours = [impl.cosine_with_warmup(t, base, W, T, low) for t in range(60)]
    expected = [base * t / W if t < W else
                low + (base - low) * 0.5 * (1 + math.cos(math.pi * (t - W) / (T - W)))
                if t <= T else low for t in range(60)]
    assert_close(ours, expected, f"cosine_with_warmup(t, {base}, warmup={W}, total={T}, "
                 f"min_lr={low}) for t = 0..59 (t = 0 gives 0, t = {W} gives base_lr, t >= "
                 f"{T} gives min_lr)", 1e-12, 1e-15)


@pytest.mark.points(1)
def test_cosine_matches_torch_schedulers(impl):
    T = 40
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
        o, T_max=T, eta_min=0.002), T + 1)
    ours = [impl.cosine_with_warmup(t, 0.1, 0, T, 0.002) for t in range(T + 1)]
    assert_close(ours, expected, "cosine_with_warmup with no warmup vs torch "
                 "CosineAnnealingLR(T_max=40, eta_min=0.002)", 1e-9, 1e-12)
    W = 8

    def factor(t):
        if t < W:
            return t / W
        return 0.5 * (1 + math.cos(math.pi * (t - W) / (T - W)))

    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, factor), T + 1)
    ours = [impl.cosine_with_warmup(t, 0.1, W, T) for t in range(T + 1)]
    assert_close(ours, expected, "cosine_with_warmup(warmup=8, total=40) vs torch LambdaLR "
                 "with the same factor", 1e-12, 1e-15)

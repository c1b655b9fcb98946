# %% [markdown]
# # s13 · Optimizers lab: trajectories, schedules and clipping
#
# This lab runs **your** `exercises/s13_optimizers.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. race SGD, momentum, Nesterov, RMSProp and Adam on an ill-conditioned quadratic and on the
#    Rosenbrock valley, and draw their paths;
# 2. plot the step and warmup + cosine learning-rate schedules;
# 3. watch gradient clipping rescue a learning rate that otherwise diverges.
#
# Every experiment is recorded under `results/s13_optimizers/`.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np

from tools.labkit import Run, load_step

opt = load_step("s13_optimizers")
config = {"quadratic_curvatures": [1.0, 25.0], "quadratic_steps": 60, "rosenbrock_steps": 1500,
          "start": [-1.5, 2.0]}
run = Run("s13_optimizers", config=config, seed=0)


def trajectory(make, grad_fn, start, steps, clip=None):
    """Positions visited by an optimizer made by `make([x])`, starting at `start`."""
    x = np.array(start, dtype=float)
    o = make([x])
    path = [x.copy()]
    for _ in range(steps):
        g = grad_fn(x)
        if clip is not None:
            opt.clip_grad_norm([g], clip)
        o.step([g])
        path.append(x.copy())
        if not np.all(np.isfinite(x)) or np.abs(x).max() > 1e6:
            break
    return np.array(path)


# %% [markdown]
# ## 1a. An ill-conditioned quadratic
# f(x) = (x0^2 + 25 x1^2) / 2. Plain SGD's learning rate is capped by the steep direction
# (lr < 2/25), so it crawls along the flat one. Momentum accumulates the consistent flat-
# direction gradient. Nesterov steps along g + mu*b, a larger step in the steep direction, so
# it needs a smaller lr (try lr=0.08 with it: it diverges). Adam moves every coordinate by
# about lr per step whatever the curvature: fast at first, then it hovers around the minimum
# unless the learning rate decays.

# %%
curv = np.array(config["quadratic_curvatures"])
quad = lambda x: 0.5 * float(curv @ (x * x))  # noqa: E731
quad_grad = lambda x: curv * x  # noqa: E731
makers = {
    "SGD lr=0.07": lambda ps: opt.SGD(ps, lr=0.07),
    "momentum 0.5": lambda ps: opt.SGD(ps, lr=0.08, momentum=0.5),
    "Nesterov 0.6": lambda ps: opt.SGD(ps, lr=0.05, momentum=0.6, nesterov=True),
    "RMSProp": lambda ps: opt.RMSProp(ps, lr=0.1),
    "Adam": lambda ps: opt.Adam(ps, lr=0.3),
}
paths = {k: trajectory(m, quad_grad, [-4.0, 1.5], config["quadratic_steps"])
         for k, m in makers.items()}

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
gx, gy = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-2, 2, 200))
ax1.contour(gx, gy, 0.5 * (curv[0] * gx ** 2 + curv[1] * gy ** 2), levels=20, colors="0.8")
for name, path in paths.items():
    ax1.plot(path[:, 0], path[:, 1], ".-", ms=3, label=name)
    ax2.semilogy([quad(x) + 1e-16 for x in path], label=name)
ax1.set_title("paths on f = (x0^2 + 25 x1^2)/2")
ax1.legend(fontsize=8)
ax2.set_xlabel("step")
ax2.set_ylabel("f")
ax2.set_title("loss")
run.figure(fig, "quadratic_trajectories")
plt.show()
for name, path in paths.items():
    run.metric(f"quadratic_final_{name.split()[0]}", quad(path[-1]))

# %% [markdown]
# ## 1b. The Rosenbrock valley
# f(x, y) = (1 - x)^2 + 100 (y - x^2)^2: the minimum (1, 1) sits at the end of a long, curved,
# flat-bottomed valley. Every optimizer finds the valley quickly; following it is the hard part.

# %%
def rosen(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def rosen_grad(p):
    x, y = p
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


makers = {
    "SGD lr=1e-3": lambda ps: opt.SGD(ps, lr=1e-3),
    "momentum 0.9": lambda ps: opt.SGD(ps, lr=1e-3, momentum=0.9),
    "Nesterov 0.9": lambda ps: opt.SGD(ps, lr=1e-3, momentum=0.9, nesterov=True),
    "RMSProp": lambda ps: opt.RMSProp(ps, lr=1e-2),
    "Adam": lambda ps: opt.Adam(ps, lr=0.02),
}
rpaths = {k: trajectory(m, rosen_grad, config["start"], config["rosenbrock_steps"])
          for k, m in makers.items()}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
gx, gy = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
ax1.contour(gx, gy, np.log10(rosen((gx, gy)) + 1e-3), levels=25, colors="0.8")
ax1.plot([1], [1], "k*", ms=12)
for name, path in rpaths.items():
    ax1.plot(path[:, 0], path[:, 1], "-", lw=1.2, label=name)
    ax2.semilogy([rosen(p) + 1e-16 for p in path], label=name)
ax1.set_title("paths on the Rosenbrock function (start (-1.5, 2))")
ax1.legend(fontsize=8)
ax2.set_xlabel("step")
ax2.set_title("f (log scale)")
run.figure(fig, "rosenbrock_trajectories")
plt.show()
for name, path in rpaths.items():
    run.metric(f"rosenbrock_final_{name.split()[0]}", rosen(path[-1]))

# %% [markdown]
# ## 2. Learning-rate schedules
# Step decay drops the rate by `gamma` every `step_size` steps. Warmup + cosine ramps up from 0
# (Adam's second-moment estimate is poor for the first steps) and then decays smoothly to
# `min_lr`.

# %%
T = 200
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot([opt.step_lr(t, 1e-3, step_size=60, gamma=0.3) for t in range(T)],
        label="step_lr(step_size=60, gamma=0.3)")
ax.plot([opt.cosine_with_warmup(t, 1e-3, 20, T) for t in range(T)],
        label="cosine, warmup 20")
ax.plot([opt.cosine_with_warmup(t, 1e-3, 50, T, min_lr=1e-4) for t in range(T)],
        label="cosine, warmup 50, min_lr 1e-4")
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
ax.legend()
run.figure(fig, "lr_schedules")
plt.show()

# %% [markdown]
# ## 3. Clipping rescues a too-large learning rate
# Momentum SGD with lr = 3e-3 on Rosenbrock: the first gradients are huge (|g| ~ 1000) and
# the iterate is flung out of the valley, then diverges. Clipping the gradient's norm to 1
# bounds every step while keeping its direction.

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the unclipped run overflows on purpose
    wild = trajectory(lambda ps: opt.SGD(ps, lr=3e-3, momentum=0.9), rosen_grad,
                      config["start"], 1500)
    tame = trajectory(lambda ps: opt.SGD(ps, lr=3e-3, momentum=0.9), rosen_grad,
                      config["start"], 1500, clip=1.0)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy([rosen(p) for p in wild], label="no clipping")
ax.semilogy([rosen(p) + 1e-16 for p in tame], label="clip_grad_norm(max_norm=1)")
ax.set_xlabel("step")
ax.set_ylabel("f")
ax.legend()
run.figure(fig, "clipping")
plt.show()
run.metric("unclipped_steps_before_divergence", len(wild) - 1)
run.metric("clipped_final_loss", rosen(tame[-1]))
print(f"unclipped: stopped after {len(wild) - 1} steps at f = {rosen(wild[-1]):.3g}; "
      f"clipped: f = {rosen(tame[-1]):.3g} after 1500 steps")

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
finals = {k.split()[0]: quad(p[-1]) for k, p in paths.items()}
rfinals = {k.split()[0]: rosen(p[-1]) for k, p in rpaths.items()}
run.finish("Quadratic after 60 steps: " + ", ".join(f"{k} {v:.1e}" for k, v in finals.items())
           + ". Rosenbrock after 1500: " + ", ".join(f"{k} {v:.1e}" for k, v in rfinals.items())
           + f". Clipping turned a run that diverged in {len(wild) - 1} steps into one that "
           f"reaches f = {rosen(tame[-1]):.1e}.")

# %% [markdown]
# # s21 · RNN lab: gradients that vanish, and a memory that fades
#
# This lab runs **your** `exercises/s21_rnn.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. measure ||dL/dh_t|| for a loss at the last step, for recurrent matrices of different
#    scales, and see the gradient vanish (or not) as it travels back in time;
# 2. train your RNN on the copy task with a growing delay between reading and answering,
#    and find the delay at which it stops learning.
#
# Every experiment is recorded under `results/s21_rnn/`.

# %%
import matplotlib.pyplot as plt
import numpy as np

from tools.labkit import Run, load_step

rnn = load_step("s21_rnn")
config = {"T": 40, "hidden": 32, "scales": [0.5, 0.9, 1.0, 1.5], "copy_length": 2,
          "n_symbols": 4, "delays": [0, 5, 10, 20, 40], "steps": 400, "lr": 0.02}
run = Run("s21_rnn", config=config, seed=0)

# %% [markdown]
# ## 1. The gradient through time
# A random input sequence of T = 40 steps goes through an RNN whose recurrent matrix is
# `scale` × a random orthogonal matrix (so ||Wh||_2 = scale). The loss only looks at the
# last hidden state; `hidden_gradient_norms` returns how much gradient reaches each
# earlier step. Every step back multiplies by tanh'(·) ≤ 1 and by Wh^T.

# %%
g = np.random.default_rng(0)
T, H, V = config["T"], config["hidden"], 6
x = np.eye(V)[g.integers(0, V, size=(16, T))]  # (N, T, V) one-hot tokens
dh_last = g.normal(size=(16, H))
fig, ax = plt.subplots(figsize=(7, 3.6))
for scale in config["scales"]:
    p = rnn.init_params(V, H, seed=1, recurrent_scale=scale)
    _, cache = rnn.rnn_forward(x, None, p["Wx"], p["Wh"], p["b"])
    norms = rnn.hidden_gradient_norms(dh_last, cache)
    ax.semilogy(np.arange(T), norms / norms[-1], label=f"||Wh||_2 = {scale}")
    run.metric(f"grad_ratio_first_over_last[scale={scale}]", float(norms[0] / norms[-1]))
ax.set_xlabel("time step t (the loss is at t = T - 1)")
ax.set_ylabel("||dL/dh_t|| / ||dL/dh_{T-1}||")
ax.set_title("vanilla RNN: gradient norm per time step")
ax.legend()
fig.tight_layout()
run.figure(fig, "gradient_norm_per_step")
plt.show()
for scale in config["scales"]:
    print(f"scale {scale}: first / last = "
          f"{run.record['metrics'][f'grad_ratio_first_over_last[scale={scale}]']:.2e}")

# %% [markdown]
# With scale 0.5 each step back at least halves the gradient: after 39 steps it is below
# 0.5^39 ≈ 2e-12 of its size at the end, so the first inputs get essentially no credit.
# Even an orthogonal matrix (scale 1) loses gradient, because tanh' < 1 wherever a unit is
# not exactly at 0. A larger scale can keep it alive longer — or make it explode.

# %% [markdown]
# ## 2. How long can the RNN remember?
# The copy task: read 2 symbols (of 4), wait `delay` blank steps, see GO, then output the
# two symbols. Chance is 25 % per symbol. Same model, same budget of Adam steps, longer and
# longer delays.

# %%
accuracies, curves = [], {}
for delay in config["delays"]:
    data = rnn.copy_task(2000, config["copy_length"], delay, config["n_symbols"],
                         np.random.default_rng(0))
    test = rnn.copy_task(500, config["copy_length"], delay, config["n_symbols"],
                         np.random.default_rng(1))
    params = rnn.init_params(config["n_symbols"] + 2, H, seed=0)
    curves[delay] = rnn.train(params, *data, steps=config["steps"], lr=config["lr"])
    pred = rnn.predict(params, test[0])
    accuracies.append(float((pred == test[1])[test[2]].mean()))
    run.metric(f"copy_accuracy[delay={delay}]", accuracies[-1])
    print(f"delay {delay:3d}: held-out accuracy {accuracies[-1]:.3f}")

fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
for delay, curve in curves.items():
    a1.plot(curve, label=f"delay {delay}", lw=1)
a1.set_yscale("log")
a1.set_xlabel("Adam step")
a1.set_ylabel("training loss")
a1.legend()
a2.plot(config["delays"], accuracies, "o-")
a2.axhline(1 / config["n_symbols"], color="grey", ls="--", label="chance")
a2.set_xlabel("delay between reading and answering")
a2.set_ylabel("held-out accuracy per symbol")
a2.set_ylim(0, 1.05)
a2.legend()
fig.tight_layout()
run.figure(fig, "copy_task_vs_delay")
plt.show()

# %% [markdown]
# Short delays are solved perfectly. As the delay grows, the gradient that would teach the
# RNN to hold a symbol must cross more and more steps and vanishes on the way (part 1): the
# loss stays near log 4 and accuracy falls towards chance. s22's LSTM adds an additive
# memory cell with a forget gate, so the gradient can travel back along c_t almost
# unchanged; its lab solves the delay this RNN fails at.

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
m = run.record["metrics"]
run.finish(
    f"With ||Wh||_2 = 0.5 the gradient 39 steps back is "
    f"{m['grad_ratio_first_over_last[scale=0.5]']:.1e} of its final size (vanishing); with "
    f"scale 1.5 it is {m['grad_ratio_first_over_last[scale=1.5]']:.1e}. The RNN copies with "
    f"accuracy {accuracies[0]:.2f} at delay 0 but only {accuracies[-1]:.2f} at delay "
    f"{config['delays'][-1]} (chance 0.25).")

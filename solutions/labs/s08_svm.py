# %% [markdown]
# # s08 · SVM lab: margins, support vectors, kernels and C
#
# This lab runs **your** `exercises/s08_svm.py`. You will
#
# 1. watch Pegasos drive the primal objective down to the optimum, and stall when the data
#    sits far from the origin (the unregularised bias),
# 2. draw a maximum-margin boundary with its margins and support vectors,
# 3. see the kernel trick separate two circles that no line can,
# 4. sweep C and watch the margin, the support vectors and the accuracy move,
# 5. sweep the RBF gamma from "almost linear" to "memorises every point".
#
# Every run is recorded under `results/s08_svm/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs, make_circles, make_moons

from tools.labkit import Run, load_step

svm = load_step("s08_svm")
run = Run("s08_svm", config={"lam": 0.05, "C_sweep": [0.01, 0.1, 1, 10, 100],
                             "gamma_sweep": [0.1, 1, 10, 100]}, seed=0)


def draw_boundary(ax, model, X, y, title):
    """Filled decision regions, the boundary f = 0 and the margins f = +-1."""
    pad = 0.5
    xx, yy = np.meshgrid(np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, 150),
                         np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, 150))
    f = model.decision_function(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
    ax.contourf(xx, yy, f > 0, alpha=0.15, cmap="coolwarm")
    ax.contour(xx, yy, f, levels=[-1, 0, 1], colors="k", linestyles=["--", "-", "--"],
               linewidths=[0.8, 1.5, 0.8])
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=14, edgecolors="none")
    if hasattr(model, "support_"):
        sv = X[model.support_]
        ax.scatter(sv[:, 0], sv[:, 1], s=70, facecolors="none", edgecolors="k", linewidths=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


# %% [markdown]
# ## 1. Pegasos: stochastic subgradient descent on the hinge loss
# The step 1/(lam t) is large at first and shrinks; the objective falls fast, then creeps
# towards the optimum (the dashed line, computed by SMO on the same problem with C = 1/(lam n)).

# %%
X, y = make_blobs(200, centers=[[-1, -1], [1.2, 1.2]], cluster_std=1.0, random_state=0)
s = np.where(y == 1, 1.0, -1.0)
lam = 0.05
peg = svm.LinearSVM(lam=lam, n_epochs=40, batch_size=16, seed=0).fit(X, y)
exact = svm.KernelSVM(C=1 / (lam * len(y)), kernel="linear").fit(X, y)
w_exact = exact.dual_coef_ @ exact.support_vectors_
opt = svm.hinge_loss(w_exact, exact.intercept_, X, s, lam)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].plot(np.arange(1, 41), peg.objective_history_, label="Pegasos")
axes[0].axhline(opt, ls="--", c="k", label="optimum (SMO)")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("J(w, b)")
axes[0].legend()
draw_boundary(axes[1], exact, X, y, "exact solution: boundary, margins, support vectors")
run.figure(fig, "pegasos_and_margin")
run.metric("pegasos_gap", peg.objective_history_[-1] / opt - 1)
print(f"Pegasos objective {peg.objective_history_[-1]:.4f}, optimum {opt:.4f}, "
      f"{len(exact.support_)} support vectors of {len(y)} samples")
plt.show()

# %% [markdown]
# ## 1b. The unregularised bias, far from the origin
# The same blobs moved by +5 and +10 in both coordinates. The optimum just moves with them (b
# absorbs the shift), but Pegasos' b has no penalty pulling it anywhere and its steps 1/(lam t)
# shrink fast, so it cannot travel that far: the objective stalls well above the optimum.
# Centring the features first (subtract the training mean) gives back the original problem.

# %%
for shift in (5.0, 10.0):
    Xs = X + shift
    raw = svm.LinearSVM(lam=lam, n_epochs=50, batch_size=16, seed=0).fit(Xs, y)
    centred = svm.LinearSVM(lam=lam, n_epochs=50, batch_size=16, seed=0).fit(Xs - Xs.mean(0), y)
    acc_raw = float(np.mean(raw.predict(Xs) == y))
    acc_centred = float(np.mean(centred.predict(Xs - Xs.mean(0)) == y))
    run.metric(f"shift{shift:g}_train_acc_raw", acc_raw)
    run.metric(f"shift{shift:g}_train_acc_centred", acc_centred)
    print(f"shift +{shift:g}: training accuracy {acc_raw:.3f} raw, {acc_centred:.3f} centred; "
          f"J {raw.objective_history_[-1]:.3f} vs {centred.objective_history_[-1]:.3f}")

# %% [markdown]
# ## 2. The kernel trick: circles
# No line separates two concentric circles; an RBF kernel implicitly maps them to a space
# where a hyperplane does.

# %%
Xc, yc = make_circles(300, noise=0.08, factor=0.4, random_state=1)
tr, te = slice(0, 200), slice(200, None)
models = {"linear (Pegasos)": svm.LinearSVM(lam=0.01, n_epochs=20).fit(Xc[tr], yc[tr]),
          "RBF kernel, gamma=1": svm.KernelSVM(C=1.0, gamma=1.0).fit(Xc[tr], yc[tr])}
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (name, model) in zip(axes, models.items(), strict=True):
    acc = float((model.predict(Xc[te]) == yc[te]).mean())
    run.metric(f"circles_acc_{name.split()[0].lower()}", acc)
    draw_boundary(ax, model, Xc[tr], yc[tr], f"{name}: test accuracy {acc:.2f}")
run.figure(fig, "circles_linear_vs_rbf")
plt.show()

# %% [markdown]
# ## 3. The C sweep
# Small C: a wide margin that many samples may violate (many support vectors, a smooth
# boundary). Large C: violations are expensive, the margin narrows around the hard cases.

# %%
Xm, ym = make_moons(300, noise=0.3, random_state=0)
Cs = run.record["config"]["C_sweep"]
fig, axes = plt.subplots(1, len(Cs), figsize=(3 * len(Cs), 3))
n_sv, test_acc = [], []
for ax, C in zip(axes, Cs, strict=True):
    model = svm.KernelSVM(C=C, gamma=1.0).fit(Xm[:200], ym[:200])
    n_sv.append(len(model.support_))
    test_acc.append(float((model.predict(Xm[200:]) == ym[200:]).mean()))
    draw_boundary(ax, model, Xm[:200], ym[:200], f"C={C}: {n_sv[-1]} SVs, acc {test_acc[-1]:.2f}")
run.figure(fig, "c_sweep_boundaries")
plt.show()

fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogx(Cs, n_sv, "o-", label="support vectors")
ax2 = ax.twinx()
ax2.semilogx(Cs, test_acc, "s-", c="C1", label="test accuracy")
ax.set_xlabel("C")
ax.set_ylabel("support vectors")
ax2.set_ylabel("test accuracy")
fig.legend(loc="upper center")
run.figure(fig, "c_sweep_curves")
for C, k, a in zip(Cs, n_sv, test_acc, strict=True):
    run.metric(f"n_sv_C{C}", k)
    run.metric(f"test_acc_C{C}", a)
plt.show()

# %% [markdown]
# ## 4. The gamma sweep
# gamma is an inverse squared length: each support vector's influence reaches about
# 1/sqrt(gamma). Tiny gamma: nearly linear. Huge gamma: islands around single points.

# %%
gammas = run.record["config"]["gamma_sweep"]
fig, axes = plt.subplots(1, len(gammas), figsize=(3 * len(gammas), 3))
for ax, gamma in zip(axes, gammas, strict=True):
    model = svm.KernelSVM(C=1.0, gamma=gamma).fit(Xm[:200], ym[:200])
    tr_acc = float((model.predict(Xm[:200]) == ym[:200]).mean())
    te_acc = float((model.predict(Xm[200:]) == ym[200:]).mean())
    run.metric(f"gamma{gamma}_train_acc", tr_acc)
    run.metric(f"gamma{gamma}_test_acc", te_acc)
    draw_boundary(ax, model, Xm[:200], ym[:200],
                  f"gamma={gamma}: train {tr_acc:.2f}, test {te_acc:.2f}")
run.figure(fig, "gamma_sweep")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(f"Only {len(exact.support_)} of {len(y)} samples fix the linear boundary. The RBF "
           "kernel separates the circles that Pegasos cannot. Raising C from "
           f"{Cs[0]} to {Cs[-1]} cut the support vectors from {n_sv[0]} to {n_sv[-1]}; a large "
           "gamma fits the training set and loses test accuracy.")

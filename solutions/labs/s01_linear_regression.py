# %% [markdown]
# # s01 · Linear regression lab: learning rates, loss landscapes and the ridge path
#
# This lab runs **your** `exercises/s01_linear_regression.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. fit the diabetes data exactly (normal equation) and by gradient descent;
# 2. draw loss curves for several learning rates, one of which diverges, and predict the
#    critical rate 2 / lambda_max from the Hessian;
# 3. see why standardising features matters (the condition number);
# 4. watch batch GD, mini-batch GD and SGD walk over the contours of a 2-parameter loss;
# 5. trace the ridge coefficient path and the validation error against alpha;
# 6. compare MSE and MAE on data with outliers.
#
# Every run is recorded under `results/s01_linear_regression/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes

from tools.labkit import Run, load_step

lr_mod = load_step("s01_linear_regression")
SEED = 0
run = Run("s01_linear_regression", config={"dataset": "diabetes", "val_frac": 0.25,
                                           "learning_rates": [0.01, 0.05, 0.2, 0.3]},
          seed=SEED)

X_raw, y = load_diabetes(return_X_y=True)
rng = np.random.default_rng(SEED)
perm = rng.permutation(len(y))
n_val = len(y) // 4
val, tr = perm[:n_val], perm[n_val:]
mu, sd = X_raw[tr].mean(0), X_raw[tr].std(0)  # training statistics only (s00)
X_tr, X_val = (X_raw[tr] - mu) / sd, (X_raw[val] - mu) / sd
y_tr, y_val = y[tr], y[val]

# %% [markdown]
# ## 1. The exact answer
# The normal equation gives the minimum of the training MSE in one linear solve. Every
# gradient-descent run below is judged against it.

# %%
w_star, b_star = lr_mod.fit_normal_equation(X_tr, y_tr)
best_train = lr_mod.mse(lr_mod.predict(X_tr, w_star, b_star), y_tr)
print(f"closed form: train MSE {best_train:.1f}, validation MSE "
      f"{lr_mod.mse(lr_mod.predict(X_val, w_star, b_star), y_val):.1f}")
run.metric("closed_form_train_mse", best_train)

# %% [markdown]
# ## 2. Learning rates: too small stalls, too big explodes
# For the MSE the Hessian is H = (2/n) A^T A with A = [X, 1]. Batch GD is stable only when
# lr < 2 / lambda_max(H). We compute that bound, then run GD just below and just above it.

# %%
A = np.column_stack([X_tr, np.ones(len(X_tr))])
eig = np.linalg.eigvalsh(2 * A.T @ A / len(A))
critical = 2 / eig.max()
print(f"lambda_max = {eig.max():.3f}, lambda_min = {eig.min():.4f}, "
      f"critical learning rate 2 / lambda_max = {critical:.4f}")
run.metric("critical_lr", critical)

fig, ax = plt.subplots(figsize=(6.5, 3.8))
for lr in [0.01, 0.05, 0.2, 0.3]:
    try:
        hist = lr_mod.gradient_descent(X_tr, y_tr, lr=lr, epochs=300).history
        label = f"lr={lr}"
    except lr_mod.DivergenceError as err:
        hist = err.history
        label = f"lr={lr}: DivergenceError at epoch {err.epoch}"
        run.metric("diverged_at_epoch", err.epoch)
        print(err)
    ax.semilogy(hist, label=label)
ax.axhline(best_train, color="k", ls=":", label="closed-form minimum")
ax.set_xlabel("epoch")
ax.set_ylabel("training MSE (log scale)")
ax.set_ylim(best_train * 0.9, None)
ax.legend(fontsize=8)
ax.set_title(f"batch GD on standardised diabetes; critical lr = {critical:.3f}")
run.figure(fig, "loss_curves_by_learning_rate")
plt.show()

# %% [markdown]
# Note the slow tail even for good rates: lambda_min is small because some diabetes features
# are strongly correlated (s1 and s2), so one direction of the bowl is almost flat. GD's speed
# is governed by the condition number lambda_max / lambda_min.
#
# ## 3. Why standardise: the condition number
# The raw diabetes features are centred but tiny (each column has norm 1). Same data, same
# model, very different bowls.

# %%
A_raw = np.column_stack([X_raw[tr], np.ones(len(tr))])
eig_raw = np.linalg.eigvalsh(2 * A_raw.T @ A_raw / len(A_raw))
for name, e in (("raw", eig_raw), ("standardised", eig)):
    print(f"{name:>13}: condition number {e.max() / e.min():12.1f}")
raw = lr_mod.gradient_descent(X_raw[tr], y_tr, lr=0.9 * 2 / eig_raw.max(), epochs=300)
std = lr_mod.gradient_descent(X_tr, y_tr, lr=0.9 * critical, epochs=300)
print(f"after 300 epochs at 0.9 x the critical rate: raw MSE {raw.history[-1]:.1f}, "
      f"standardised MSE {std.history[-1]:.1f} (minimum {best_train:.1f})")
run.metric("condition_number_raw", eig_raw.max() / eig_raw.min())
run.metric("condition_number_standardised", eig.max() / eig.min())
run.metric("raw_mse_after_300", raw.history[-1])
run.metric("standardised_mse_after_300", std.history[-1])

# %% [markdown]
# ## 4. Batch, mini-batch and SGD on a 2-parameter loss
# One feature plus a bias: the loss is a function of (w, b) that we can draw. The feature is
# not centred (mean 2), which tilts and stretches the bowl. We step with **your** `mse_grad`.

# %%
x1 = rng.normal(2.0, 1.0, size=(64, 1))
y1 = 3.0 * x1[:, 0] - 1.0 + 0.5 * rng.normal(size=64)
w1_star, b1_star = lr_mod.fit_normal_equation(x1, y1)


def gd_path(batch_size, lr, epochs, seed=0):
    gen = np.random.default_rng(seed)
    w, b, path = np.zeros(1), 0.0, [(0.0, 0.0)]
    for _ in range(epochs):
        order = gen.permutation(len(y1))
        for i in range(0, len(y1), batch_size):
            idx = order[i:i + batch_size]
            dw, db = lr_mod.mse_grad(x1[idx], y1[idx], w, b)
            w, b = w - lr * dw, b - lr * db
            path.append((w[0], b))
    return np.array(path)


W, B = np.meshgrid(np.linspace(-1, 5, 120), np.linspace(-4, 4, 120))
Z = ((W[..., None] * x1[:, 0] + B[..., None] - y1) ** 2).mean(-1)
fig, ax = plt.subplots(figsize=(6, 4.5))
ax.contour(W, B, Z, levels=Z.min() + np.geomspace(0.02, Z.max() - Z.min(), 18),
           cmap="viridis", linewidths=0.7)
for bs, lr, epochs, color in ((64, 0.15, 80, "C0"), (8, 0.05, 10, "C1"), (1, 0.02, 2, "C3")):
    p = gd_path(bs, lr, epochs)
    ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=0.8, color=color,
            label=f"batch={bs}, lr={lr}: {len(p) - 1} updates")
ax.plot(w1_star[0], b1_star, "k*", ms=12, label="normal equation")
ax.set_xlabel("w")
ax.set_ylabel("b")
ax.legend(fontsize=8)
ax.set_title("GD paths over the MSE contours")
run.figure(fig, "gd_paths_on_contours")
plt.show()

# %% [markdown]
# Batch GD zigzags across the narrow valley (the steep direction limits the learning rate);
# SGD takes many cheap, noisy steps and wanders around the minimum instead of settling on it.
#
# ## 5. The ridge path: the under/overfitting dial
# On a small training set (40 rows), sweep alpha: large alpha shrinks every weight towards 0
# (underfitting), alpha -> 0 is the plain least-squares fit (overfitting the 40 rows).

# %%
small = tr[:40]
Xs, ys = (X_raw[small] - mu) / sd, y[small]
alphas = np.logspace(-3, 4, 40)
coefs, val_mse, train_mse = [], [], []
for alpha in alphas:
    w, b = lr_mod.fit_ridge(Xs, ys, alpha)
    coefs.append(w)
    train_mse.append(lr_mod.mse(lr_mod.predict(Xs, w, b), ys))
    val_mse.append(lr_mod.mse(lr_mod.predict(X_val, w, b), y_val))
coefs = np.array(coefs)
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
for name, path in zip(load_diabetes().feature_names, coefs.T, strict=True):
    a1.semilogx(alphas, path, label=name)  # one line per feature, named in the legend
a1.set_xlabel("alpha")
a1.set_ylabel("coefficient (standardized feature)")
a1.set_title("ridge coefficient path (10 diabetes features)")
a1.legend(fontsize=7, ncol=2, title="feature", title_fontsize=7)
a2.semilogx(alphas, train_mse, label="train (40 rows)")
a2.semilogx(alphas, val_mse, label="validation")
a2.set_xlabel("alpha")
a2.set_ylabel("MSE")
a2.legend()
best_alpha = alphas[int(np.argmin(val_mse))]
a2.axvline(best_alpha, color="k", ls=":")
a2.set_title(f"best validation alpha = {best_alpha:.3g}")
run.figure(fig, "ridge_path")
run.metric("ridge_best_alpha", best_alpha)
run.metric("ridge_best_val_mse", min(val_mse))
run.metric("ols_val_mse_40_rows", val_mse[0])
plt.show()

# %% [markdown]
# ## 6. MSE vs MAE with outliers
# Five gross outliers. The MSE gradient grows with the residual, so they drag the line; the
# MAE gradient only sees the residual's sign, so it fits the bulk (the median's robustness).

# %%
xo = rng.uniform(-1, 1, size=(50, 1))
yo = 2.0 * xo[:, 0] + 1.0 + 0.1 * rng.normal(size=50)
yo[np.argsort(xo[:, 0])[-5:]] -= 8.0  # outliers at the right end
fit_mse = lr_mod.gradient_descent(xo, yo, lr=0.1, epochs=500, loss="mse")
fit_mae = lr_mod.gradient_descent(xo, yo, lr=0.02, epochs=3000, loss="mae")
grid = np.linspace(-1, 1, 2)[:, None]
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.scatter(xo[:, 0], yo, s=12, color="grey")
ax.plot(grid, lr_mod.predict(grid, fit_mse.w, fit_mse.b), label=f"MSE: slope {fit_mse.w[0]:.2f}")
ax.plot(grid, lr_mod.predict(grid, fit_mae.w, fit_mae.b), label=f"MAE: slope {fit_mae.w[0]:.2f}")
ax.plot(grid, 2 * grid + 1, "k:", label="true: slope 2.00")
ax.legend()
ax.set_title("five outliers: MSE vs MAE")
run.figure(fig, "mse_vs_mae_outliers")
run.metric("slope_mse", fit_mse.w[0])
run.metric("slope_mae", fit_mae.w[0])
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"GD is stable below lr = 2/lambda_max = {critical:.3f} and diverges above it; "
    f"standardising cut the condition number from {eig_raw.max() / eig_raw.min():.0f} to "
    f"{eig.max() / eig.min():.0f}. Ridge with alpha = {best_alpha:.2g} beat plain least squares "
    f"on 40 rows; MAE kept the slope near 2 ({fit_mae.w[0]:.2f}) where MSE gave "
    f"{fit_mse.w[0]:.2f}.")

# %% [markdown]
# # s05 · Model selection lab: bias, variance, and an honest search
#
# This lab runs **your** `exercises/s05_model_selection.py`.
#
# s01 fitted one model. Here we choose between models -- a polynomial degree, a penalty alpha --
# and the only honest judge is data the candidate never trained on. k-fold CV reuses every row
# for validation once, so its estimate varies less than one split's. Picking the best of many CV
# scores uses the validation data up (the winner's score is optimistic): keep a test set the
# search never sees. Bias-variance: training error falls with capacity, validation error is
# U-shaped, and its minimum is what a search finds. And a scaler or a feature selector *learns*
# from data: selecting the 10 features most correlated with y on all rows, then
# cross-validating, scores well on pure noise (section 5).
#
# You will
#
# 1. draw a validation curve over the polynomial degree (and over ridge's alpha),
# 2. draw learning curves for a too-simple and a too-flexible model,
# 3. trace the lasso path on the diabetes data and watch features enter one by one,
# 4. run a grid search and a random search, then check the winner on a test set it never saw,
# 5. measure how much a feature selection fitted outside CV flatters a model on pure noise.
#
# Every run is recorded under `results/s05_model_selection/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes

from tools.labkit import Run, load_step

ms = load_step("s05_model_selection")
run = Run("s05_model_selection", config={"n": 60, "noise": 0.3, "k": 5}, seed=0)

rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, size=(60, 1))
y = np.sin(3 * x[:, 0]) + rng.normal(0, 0.3, size=60)
folds = ms.kfold(len(x), 5, seed=0)


def poly_ridge(degree=3, alpha=1e-6):
    """A fresh pipeline: features -> scaling -> ridge. Everything is fitted inside each fold."""
    return ms.Pipeline([ms.PolynomialFeatures(degree), ms.Standardizer()], ms.Ridge(alpha))


# %% [markdown]
# ## 1. Validation curves: capacity up, training error down, validation error U-shaped
# Left: the degree (alpha fixed tiny). Right: alpha at degree 12 (a big penalty = less capacity,
# so the x-axis runs the other way).

# %%
degrees = list(range(1, 16))
vc_deg = ms.validation_curve(poly_ridge, "degree", degrees, x, y, folds, ms.r2_score)
alphas = np.logspace(-6, 3, 19)
vc_alpha = ms.validation_curve(lambda alpha: poly_ridge(12, alpha), "alpha", alphas, x, y, folds,
                               ms.r2_score)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, res, xs, label in ((axes[0], vc_deg, degrees, "degree"),
                           (axes[1], vc_alpha, alphas, "alpha (degree 12)")):
    ax.plot(xs, res.train_scores.mean(1), "o-", label="train")
    ax.plot(xs, res.val_scores.mean(1), "o-", label="validation (5-fold)")
    ax.set_xlabel(label)
    ax.set_ylabel("R^2")
    ax.set_ylim(-0.5, 1.05)
    ax.legend()
axes[1].set_xscale("log")
run.figure(fig, "validation_curves")
best_degree = degrees[int(np.argmax(vc_deg.val_scores.mean(1)))]
best_alpha = alphas[int(np.argmax(vc_alpha.val_scores.mean(1)))]
run.metric("best_degree", best_degree)
run.metric("best_alpha_at_degree_12", best_alpha)
print("best degree:", best_degree, "| best alpha at degree 12:", best_alpha)
plt.show()

# %% [markdown]
# ## 2. Learning curves: more data, or more capacity?
# Degree 1 (high bias): train and validation meet early at a low score; more data will not
# help. Degree 12 (high variance): a wide gap that closes as data grows.

# %%
sizes = [8, 12, 20, 30, 40, 48]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, degree in zip(axes, (1, 12), strict=True):
    lc = ms.learning_curve(lambda d=degree: poly_ridge(d), x, y, sizes, folds, ms.r2_score)
    ax.plot(sizes, np.median(lc.train_scores, 1), "o-", label="train")
    ax.plot(sizes, np.median(lc.val_scores, 1), "o-", label="validation")
    ax.set_title(f"degree {degree}")
    ax.set_xlabel("training rows")
    ax.set_ylim(-1, 1.05)
    run.metric(f"lc_gap_degree{degree}_at_{sizes[-1]}",
               np.median(lc.train_scores[-1]) - np.median(lc.val_scores[-1]))
axes[0].set_ylabel("median R^2 over folds")
axes[0].legend()
run.figure(fig, "learning_curves")
plt.show()

# %% [markdown]
# ## 3. The lasso path
# Standardise the ten diabetes features, then sweep alpha from alpha_max (all zero) down.
# Features enter one at a time; ridge would shrink all of them smoothly and zero none.

# %%
diabetes = load_diabetes()
Xd, yd, names = diabetes.data, diabetes.target, diabetes.feature_names
Zd = ms.Standardizer().fit(Xd).transform(Xd)
alpha_max = np.max(np.abs((Zd - Zd.mean(0)).T @ (yd - yd.mean()))) / len(yd)
path_alphas = alpha_max * np.logspace(0, -3, 40)
coefs = np.array([ms.Lasso(a).fit(Zd, yd).coef_ for a in path_alphas])  # (40, 10)
fig, ax = plt.subplots(figsize=(7, 4))
for j, name in enumerate(names):  # one labelled line per feature
    ax.plot(path_alphas, coefs[:, j], label=name, color=plt.cm.tab10(j))
ax.legend(title="feature", fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
ax.set_xscale("log")
ax.invert_xaxis()
ax.set_xlabel("alpha (decreasing ->)")
ax.set_ylabel("coefficient")
ax.set_title("lasso path, diabetes (standardised)")
fig.tight_layout()
run.figure(fig, "lasso_path")
entry = [int(np.argmax(coefs[:, j] != 0)) for j in range(coefs.shape[1])]
print("order in which features enter:", [names[j] for j in np.argsort(entry, kind="stable")])
run.metric("nonzero_at_alpha_max_over_10", np.count_nonzero(coefs[np.argmin(
    np.abs(path_alphas - alpha_max / 10))]))
plt.show()

# %% [markdown]
# ## 4. Grid vs random search, then the test set
# Hold out a test set first; search on the rest. The best CV score is optimistic (it is the
# max of many noisy estimates); the test score is the honest one.

# %%
x_all = rng.uniform(-1, 1, size=(200, 1))
y_all = np.sin(3 * x_all[:, 0]) + rng.normal(0, 0.3, size=200)
x_dev, y_dev, x_test, y_test = x_all[:150], y_all[:150], x_all[150:], y_all[150:]
dev_folds = ms.kfold(150, 5, seed=1)
grid = ms.grid_search(poly_ridge, {"degree": [1, 3, 5, 9, 15], "alpha": [1e-6, 1e-3, 1.0]},
                      x_dev, y_dev, dev_folds, ms.r2_score)
rand = ms.random_search(poly_ridge, {"degree": list(range(1, 16)),
                                     "alpha": lambda r: 10 ** r.uniform(-6, 1)},
                        15, x_dev, y_dev, dev_folds, ms.r2_score, seed=0)
for name, res in (("grid", grid), ("random", rand)):
    test = ms.r2_score(y_test, poly_ridge(**res.best_params).fit(x_dev, y_dev).predict(x_test))
    print(f"{name:6}: best {res.best_params}, CV R^2 {res.best_score:.3f}, test R^2 {test:.3f}")
    run.metric(f"{name}_best_cv", res.best_score)
    run.metric(f"{name}_test", test)

# %% [markdown]
# ## 5. Leakage: selecting features before CV
# 2000 pure-noise features, a pure-noise target. Choose the 10 most correlated features on
# all rows and then cross-validate, and the model "explains" noise. Do it inside each fold and
# CV reports the truth: nothing to learn.

# %%
noise = np.random.default_rng(1)
Xn, yn = noise.normal(size=(60, 2000)), noise.normal(size=60)
nfolds = ms.kfold(60, 5, seed=0)
honest = ms.cross_validate(lambda: ms.Pipeline([ms.SelectKBest(10)], ms.Ridge(1.0)), Xn, yn,
                           nfolds, ms.r2_score).val_scores
Xsel = ms.SelectKBest(10).fit(Xn, yn).transform(Xn)  # the leak: selection saw every row
leaky = ms.cross_validate(lambda: ms.Ridge(1.0), Xsel, yn, nfolds, ms.r2_score).val_scores
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(["selection inside CV", "selection before CV"], [honest.mean(), leaky.mean()],
       yerr=[honest.std(), leaky.std()], color=["tab:green", "tab:red"])
ax.axhline(0, color="k", lw=0.8)
ax.set_ylabel("cross-validated R^2 on pure noise")
run.figure(fig, "selection_leak")
run.metric("noise_r2_honest", honest.mean())
run.metric("noise_r2_leaky", leaky.mean())
print(f"honest {honest.mean():.3f} vs leaky {leaky.mean():.3f}")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(f"Validation R^2 peaks at degree {best_degree}; degree 12 needs alpha ~ "
           f"{best_alpha:.2g}. The grid's best CV score {grid.best_score:.3f} is a max over "
           f"15 candidates, so a little optimistic. Selecting features before CV turned pure "
           f"noise into R^2 {leaky.mean():.2f}; inside CV it is {honest.mean():.2f}.")

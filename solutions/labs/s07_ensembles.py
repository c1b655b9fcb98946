# %% [markdown]
# # s07 · Ensembles lab: averaging away variance, boosting away bias
#
# This lab runs **your** `exercises/s07_ensembles.py`. You will
#
# 1. compare the decision regions of one deep tree, bagging and a random forest,
# 2. watch the out-of-bag error settle as trees are added, next to the test error,
# 3. draw boosting's training and test loss for several learning rates (shrinkage),
# 4. measure how correlated the trees of bagging and of a forest are.
#
# Every run is recorded under `results/s07_ensembles/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes, make_classification, make_moons
from sklearn.model_selection import train_test_split

from tools.labkit import Run, load_step

ens = load_step("s07_ensembles")
run = Run("s07_ensembles", config={"moons_noise": 0.35, "n_trees": 60}, seed=0)

# %% [markdown]
# ## 1. One tree vs bagging vs a random forest
# A single deep tree carves a box around every noisy point. Averaging 60 bootstrapped trees
# smooths the boundary; on two features, sqrt(2) = 1 candidate feature per split makes the
# forest's trees even more different from one another.

# %%
X, y = make_moons(400, noise=0.35, random_state=0)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=0)
models = {
    "one bootstrapped tree": ens.RandomForestClassifier(1, max_features=None, seed=0),
    "bagging (60)": ens.RandomForestClassifier(60, max_features=None, seed=0),
    "random forest (60)": ens.RandomForestClassifier(60, max_features="sqrt", seed=0),
}
xx, yy = np.meshgrid(np.linspace(-2, 3, 150), np.linspace(-1.5, 2, 150))
grid = np.column_stack([xx.ravel(), yy.ravel()])
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
for ax, (name, model) in zip(axes, models.items(), strict=True):
    model.fit(Xtr, ytr)
    acc = np.mean(model.predict(Xte) == yte)
    ax.contourf(xx, yy, model.predict_proba(grid)[:, 1].reshape(xx.shape), levels=20,
                cmap="RdBu_r", alpha=0.6)
    ax.scatter(Xtr[:, 0], Xtr[:, 1], c=ytr, cmap="RdBu_r", s=8, edgecolors="k", linewidths=0.3)
    ax.set_title(f"{name}: test acc {acc:.3f}")
    run.metric(f"test_acc_{name.split(' (')[0].replace(' ', '_')}", acc)
run.figure(fig, "tree_vs_forest_regions")
plt.show()

# %% [markdown]
# ## 2. Out-of-bag error as trees are added
# Each row is voted on only by the trees whose bootstrap missed it. The OOB error tracks the
# test error without touching the test set. (A single tree leaves about 37% of rows out of bag;
# with a handful of trees some rows still have no vote, so the curve starts noisy.)

# %%
Xc, yc = make_classification(600, 10, n_informative=4, n_redundant=2, flip_y=0.1,
                             random_state=0)
Xc_tr, Xc_te, yc_tr, yc_te = train_test_split(Xc, yc, test_size=0.5, random_state=0)
forest = ens.RandomForestClassifier(60, seed=0).fit(Xc_tr, yc_tr)
K = len(forest.classes_)
votes = np.zeros((len(Xc_tr), K))
test_votes = np.zeros((len(Xc_te), K))
oob_err, test_err = [], []
for tree, mask in zip(forest.trees_, forest.oob_masks_, strict=True):
    votes[mask] += tree.predict(Xc_tr[mask])
    test_votes += tree.predict(Xc_te)
    seen = votes.sum(1) > 0
    oob_err.append(1 - np.mean(votes[seen].argmax(1) == yc_tr[seen]))
    test_err.append(1 - np.mean(test_votes.argmax(1) == yc_te))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, 61), oob_err, label="out-of-bag error")
ax.plot(range(1, 61), test_err, label="test error")
ax.set_xlabel("number of trees")
ax.set_ylabel("error")
ax.legend()
run.figure(fig, "oob_vs_trees")
run.metric("oob_score", forest.oob_score_)
run.metric("test_acc_forest_60", 1 - test_err[-1])
print(f"OOB accuracy {forest.oob_score_:.3f}, test accuracy {1 - test_err[-1]:.3f}")
plt.show()

# %% [markdown]
# ## 3. Boosting: training and test loss per stage, for three learning rates
# Training loss falls monotonically (each tree fits the current residuals). A large learning
# rate falls fast and starts overfitting early; shrinkage needs more trees but ends lower.

# %%
Xd, yd = load_diabetes(return_X_y=True)
Xd_tr, Xd_te, yd_tr, yd_te = train_test_split(Xd, yd, test_size=0.3, random_state=0)
fig, ax = plt.subplots(figsize=(7, 4))
for lr, color in ((1.0, "tab:red"), (0.3, "tab:orange"), (0.05, "tab:green")):
    gb = ens.GradientBoostingRegressor(n_estimators=150, learning_rate=lr, max_depth=2)
    gb.fit(Xd_tr, yd_tr)
    test_loss = [np.mean((yd_te - p) ** 2) for p in gb.staged_predict(Xd_te)]
    ax.plot(gb.train_loss_, color=color, ls="--", label=f"train, lr={lr}")
    ax.plot(test_loss, color=color, label=f"test, lr={lr}")
    run.metric(f"boost_best_test_mse_lr{lr}", min(test_loss))
    run.metric(f"boost_best_stage_lr{lr}", int(np.argmin(test_loss)) + 1)
ax.set_xlabel("boosting stage")
ax.set_ylabel("MSE")
ax.set_ylim(0, 6000)
ax.legend(ncol=2, fontsize=8)
run.figure(fig, "boosting_loss_curves")
plt.show()

# %% [markdown]
# ## 4. Why feature subsampling helps: tree correlation
# The variance of an average of B trees is rho s^2 + (1 - rho) s^2 / B. Measure rho, the mean
# correlation between the trees' predicted probabilities on the test set.

# %%
for name, mf in (("bagging", None), ("random forest", "sqrt")):
    model = ens.RandomForestClassifier(30, max_features=mf, seed=0).fit(Xc_tr, yc_tr)
    P = np.array([t.predict(Xc_te)[:, 1] for t in model.trees_])  # (trees, rows)
    C = np.corrcoef(P)
    rho = C[np.triu_indices_from(C, 1)].mean()
    print(f"{name:14s} mean tree correlation {rho:.3f}, test accuracy "
          f"{np.mean(model.predict(Xc_te) == yc_te):.3f}")
    run.metric(f"tree_correlation_{name.replace(' ', '_')}", rho)

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(f"The OOB accuracy {forest.oob_score_:.3f} tracks the test accuracy "
           f"{1 - test_err[-1]:.3f} with no held-out data. Boosting with lr=1 overfits within a "
           "few stages; shrinkage reaches a lower test loss with more trees. Feature "
           "subsampling lowers the trees' correlation, which is what averaging needs.")

# %% [markdown]
# # s02 · Logistic regression lab: boundaries, loss curves and class weights
#
# This lab runs **your** `exercises/s02_logistic_regression.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. see why the sigmoid must be written stably,
# 2. fit a 2-D toy set and draw the decision boundary at several thresholds,
# 3. compare loss curves for several learning rates,
# 4. measure what class weights do to recall and precision of a rare class.
#
# Every experiment is recorded under `results/s02_logistic_regression/`.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs

from tools.labkit import Run, load_step

lr_mod = load_step("s02_logistic_regression")
run = Run("s02_logistic_regression",
          config={"toy": "2 blobs, 300 points", "lrs": [0.05, 0.5, 3.0], "minority_share": 0.05},
          seed=0)

# %% [markdown]
# ## 1. A stable sigmoid
# The textbook formula `1 / (1 + exp(-z))` computes `exp(1000)` at z = -1000: it overflows
# to inf, warns, and only happens to return the right 0. Its twin in the loss,
# `log(1 - sigmoid(z))`, returns `-inf` instead of -1000. Yours should stay quiet.

# %%
z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    naive = 1.0 / (1.0 + np.exp(-z))
    ours = lr_mod.sigmoid(z)
print("naive:", naive, "| yours:", ours)
print("warnings raised:", [str(w.message) for w in caught])
print("loss at z = 1000, y = 0 (should be 1000):",
      lr_mod.binary_cross_entropy(np.array([1000.0]), np.array([0])))

# %% [markdown]
# ## 2. Decision boundary on a 2-D toy set
# The boundary P(y = 1 | x) = t is the straight line w . x + b = log(t / (1 - t)). Raising
# the threshold slides it, parallel, into the positive class.

# %%
X, y = make_blobs(n_samples=300, centers=[[-1.0, -0.5], [1.2, 0.8]], cluster_std=1.0,
                  random_state=0)
model = lr_mod.LogisticRegression(lr=0.5, n_iters=2000).fit(X, y)
acc = float(np.mean(model.predict(X) == y))
run.metric("toy_train_accuracy", acc)

gx, gy = np.meshgrid(np.linspace(-4.5, 4.5, 200), np.linspace(-4, 4.5, 200))
P = model.predict_proba(np.c_[gx.ravel(), gy.ravel()]).reshape(gx.shape)
fig, ax = plt.subplots(figsize=(5.5, 4.5))
im = ax.contourf(gx, gy, P, levels=20, cmap="RdBu_r", alpha=0.6)
fig.colorbar(im, ax=ax, label="P(y = 1 | x)")
ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolor="k", s=15)
x0 = np.linspace(-4.5, 4.5, 2)
for t, style in ((0.5, "-"), (0.1, ":"), (0.9, "--")):
    ax.plot(x0, lr_mod.decision_boundary(model.coef_, model.intercept_, x0, threshold=t),
            "k" + style, label=f"P = {t}")
ax.set_ylim(-4, 4.5)
ax.legend(loc="lower right")
ax.set_title(f"logistic regression, train accuracy {acc:.2f}")
run.figure(fig, "decision_boundary")
plt.show()

# %% [markdown]
# ## 3. Loss curves and the learning rate
# The loss is convex, so any small enough step goes downhill: too small crawls, a larger one
# arrives in a few steps (and stops early at the gradient tolerance), and past about
# 2 / (largest curvature) the iterates oscillate -- try lr = 50. The first loss is always
# log 2 = 0.693: w = 0 predicts 1/2 for everyone.

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for lr in run.record["config"]["lrs"]:
    m = lr_mod.LogisticRegression(lr=lr, n_iters=300).fit(X, y)
    ax.plot(m.loss_history_, label=f"lr = {lr}")
    run.metric(f"final_loss_lr_{lr}", m.loss_history_[-1])
ax.set_xlabel("gradient step")
ax.set_ylabel("cross-entropy")
ax.set_yscale("log")
ax.legend()
run.figure(fig, "loss_curves")
plt.show()

# %% [markdown]
# ## 4. Class weights on a 95 / 5 data set
# Predicting "negative" everywhere already scores 95% accuracy. Weighting the rare class by
# w buys recall with precision; "balanced" is w = n_0 / n_1.

# %%
gen = np.random.default_rng(0)
Xi = np.vstack([gen.normal(0.0, 1.0, size=(950, 2)), gen.normal(1.5, 1.0, size=(50, 2))])
yi = np.r_[np.zeros(950, int), np.ones(50, int)]
weights = [1, 2, 5, 10, 19, 50]
recalls, precisions, accs = [], [], []
for w in weights:
    pred = lr_mod.LogisticRegression(class_weight={0: 1.0, 1: float(w)}).fit(Xi, yi).predict(Xi)
    tp = int(np.sum((pred == 1) & (yi == 1)))
    recalls.append(tp / 50)
    precisions.append(tp / max(1, int(pred.sum())))
    accs.append(float(np.mean(pred == yi)))
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot(weights, recalls, "o-", label="minority recall")
ax.plot(weights, precisions, "s-", label="minority precision")
ax.plot(weights, accs, "^-", label="accuracy")
ax.axvline(19, color="gray", ls=":", label="balanced (950 / 50)")
ax.set_xscale("log")
ax.set_xlabel("weight of the rare class")
ax.legend()
run.figure(fig, "class_weights")
run.metric("minority_recall_unweighted", recalls[0])
run.metric("minority_recall_balanced", recalls[weights.index(19)])
run.metric("accuracy_unweighted", accs[0])
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
rec0, rec_bal = recalls[0], recalls[weights.index(19)]
acc0, acc_bal = accs[0], accs[weights.index(19)]
run.finish(f"Weighting the rare class raised its recall from {rec0:.2f} to {rec_bal:.2f} while "
           f"accuracy fell from {acc0:.3f} to {acc_bal:.3f}: accuracy hides the rare class, and "
           "weights trade precision for recall.")

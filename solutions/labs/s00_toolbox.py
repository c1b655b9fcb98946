# %% [markdown]
# # s00 · Toolbox lab: why splits and scalers are fitted on training data only
#
# This lab runs **your** `exercises/s00_toolbox.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. check that `set_seed` makes an experiment repeatable,
# 2. see what stratification does to a rare class across many random splits,
# 3. measure the optimism that a leaky scaler adds to a test score.
#
# Every experiment is recorded under `results/s00_toolbox/` (config, seed, commit, metrics,
# figures and your interpretation), so you can compare runs later.

# %%
import matplotlib.pyplot as plt
import numpy as np

from tools.labkit import Run, load_step

toolbox = load_step("s00_toolbox")
run = Run("s00_toolbox", config={"n_splits": 200, "rare_class_share": 0.05}, seed=0)

# %% [markdown]
# ## 1. Determinism
# Two runs seeded alike must draw the same numbers; a different seed must not.

# %%
a = toolbox.set_seed(0).normal(size=3)
b = toolbox.set_seed(0).normal(size=3)
c = toolbox.set_seed(1).normal(size=3)
print("same seed, same draws:", np.array_equal(a, b), "| other seed differs:",
      not np.array_equal(a, c))

# %% [markdown]
# ## 2. Stratification keeps a rare class in every split
# 200 random splits of a data set where class 1 is 5% of 200 rows. Without stratification
# the number of rare examples in the validation split swings widely (sometimes to zero, and
# then a validation recall is undefined); with it, it is always round(0.15 * 10) = 2.

# %%
y = np.array([0] * 190 + [1] * 10)
X = np.arange(200, dtype=float)[:, None]
counts = {False: [], True: []}
for seed in range(200):
    for stratify in (False, True):
        s = toolbox.train_val_test_split(X, y, seed=seed, stratify=stratify)
        counts[stratify].append(int(s.y_val.sum()))

fig, ax = plt.subplots(figsize=(6, 3))
bins = np.arange(0, 8) - 0.5
ax.hist(counts[False], bins=bins, alpha=0.6, label="random split")
ax.hist(counts[True], bins=bins, alpha=0.6, label="stratified split")
ax.set_xlabel("rare-class examples in the validation split")
ax.set_ylabel("splits (of 200)")
ax.legend()
run.figure(fig, "stratification")
run.metric("random_split_val_rare_zero_share", np.mean(np.array(counts[False]) == 0))
run.metric("stratified_val_rare_std", np.std(counts[True]))
plt.show()

# %% [markdown]
# ## 3. Leakage: fit the scaler on everything, and the test score stops being honest
# A nearest-centroid classifier on data whose test rows come from a shifted distribution.
# Fitting the scaler on train + test lets the test set's statistics into training: the
# score you report is then not the score a model fitted without the test set would get.
# Whether the leak raises or lowers it here, the number no longer measures deployment.

# %%
rng = np.random.default_rng(0)
n = 400
Xall = rng.normal(size=(n, 5)) * np.array([1.0, 10.0, 0.1, 5.0, 1.0])
yall = (Xall[:, 0] + 0.1 * Xall[:, 1] > 0).astype(int)
split = toolbox.train_val_test_split(Xall, yall, seed=0)
X_test_shifted = split.X_test + np.array([0.5, 5.0, 0.0, 0.0, 0.0])  # deployment drift


def centroid_accuracy(Z_train, y_train, Z_test, y_test):
    centroids = np.stack([Z_train[y_train == k].mean(0) for k in (0, 1)])
    pred = np.argmin(((Z_test[:, None, :] - centroids) ** 2).sum(-1), axis=1)
    return float((pred == y_test).mean())


honest = toolbox.Standardizer().fit(split.X_train)
leaky = toolbox.Standardizer().fit(np.vstack([split.X_train, X_test_shifted]))
acc_honest = centroid_accuracy(honest.transform(split.X_train), split.y_train,
                               honest.transform(X_test_shifted), split.y_test)
acc_leaky = centroid_accuracy(leaky.transform(split.X_train), split.y_train,
                              leaky.transform(X_test_shifted), split.y_test)
print(f"test accuracy, scaler fitted on train only: {acc_honest:.3f}")
print(f"test accuracy, scaler fitted on train+test: {acc_leaky:.3f}")
run.metric("acc_train_only_scaler", acc_honest)
run.metric("acc_leaky_scaler", acc_leaky)

# %% [markdown]
# ## 4. Mini-batches: one epoch, every row once
# The histogram of how often each row is visited over 5 epochs must be a single bar at 5.

# %%
visits = np.zeros(103, dtype=int)
gen = np.random.default_rng(0)
for _epoch in range(5):
    for _, yb in toolbox.iterate_minibatches(np.zeros((103, 1)), np.arange(103), 16, rng=gen):
        visits[yb] += 1
fig, ax = plt.subplots(figsize=(4, 2.5))
ax.hist(visits, bins=np.arange(0, 8) - 0.5)
ax.set_xlabel("visits per row over 5 epochs")
run.figure(fig, "epoch_coverage")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish("Stratification pins the rare class count; a leaky scaler changes the test score "
           "by %.3f on shifted data, so the number we report is not the one we would see."
           % (acc_leaky - acc_honest))

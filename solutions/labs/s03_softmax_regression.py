# %% [markdown]
# # s03 · Softmax regression lab: digits, loss curves, confusions and weight images
#
# This lab runs **your** `exercises/s03_softmax_regression.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. check the softmax invariants and its stability on huge logits,
# 2. train on the 8x8 digits with full-batch and mini-batch gradient descent and compare
#    their loss curves,
# 3. see which digits get confused with which,
# 4. look at the learned weights as images: each class's column of W is a template.
#
# Every experiment is recorded under `results/s03_softmax_regression/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tools.labkit import Run, load_step

sm = load_step("s03_softmax_regression")
config = {"full_batch": {"lr": 2.0, "n_epochs": 400}, "mini_batch": {"lr": 0.5, "n_epochs": 20,
          "batch_size": 32}, "l2": 1e-3, "test_size": 0.25, "pixels": "divided by 16"}
run = Run("s03_softmax_regression", config=config, seed=0)

# %% [markdown]
# ## 1. Invariants and stability
# Adding a constant to every logit of a row changes nothing; a naive softmax of
# [1000, 1001, 1002] returns NaN, yours the same as for [0, 1, 2].

# %%
z = np.array([[1000.0, 1001.0, 1002.0]])
print("softmax([1000, 1001, 1002]) =", sm.softmax(z))
print("softmax([0, 1, 2])          =", sm.softmax(z - 1000))
print("log_softmax([0, -1000])     =", sm.log_softmax(np.array([[0.0, -1000.0]])))

# %% [markdown]
# ## 2. Training on digits: full batch vs mini-batch
# Pixels are scaled to [0, 1] (not standardized) so that the weights can be read as images.
# A full-batch step sees all 1347 images; a mini-batch step sees 32, so one epoch makes 43
# noisier but much cheaper steps. Compare the curves per *epoch* of data seen.

# %%
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

full = sm.SoftmaxRegression(l2=config["l2"], seed=0, **config["full_batch"]).fit(X_tr, y_tr)
mini = sm.SoftmaxRegression(l2=config["l2"], seed=0, **config["mini_batch"]).fit(X_tr, y_tr)
acc_full = float(np.mean(full.predict(X_te) == y_te))
acc_mini = float(np.mean(mini.predict(X_te) == y_te))
run.metric("test_accuracy_full_batch", acc_full)
run.metric("test_accuracy_mini_batch", acc_mini)
print(f"test accuracy: full batch {acc_full:.3f}, mini-batch {acc_mini:.3f}")

steps_per_epoch = int(np.ceil(len(X_tr) / config["mini_batch"]["batch_size"]))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(1, len(full.loss_history_) + 1), full.loss_history_, label="full batch")
ax.plot(np.arange(1, len(mini.loss_history_) + 1) / steps_per_epoch, mini.loss_history_,
        alpha=0.7, label="mini-batch (32)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("epochs of data seen")
ax.set_ylabel("training loss (cross-entropy + L2)")
ax.legend()
run.figure(fig, "loss_curves")
plt.show()

# %% [markdown]
# ## 3. Which digits are confused?
# Row = true digit, column = predicted digit, diagonal removed so the mistakes stand out.

# %%
pred = full.predict(X_te)
conf = np.zeros((10, 10), dtype=int)
np.add.at(conf, (y_te, pred), 1)
off = conf.copy()
np.fill_diagonal(off, 0)
fig, ax = plt.subplots(figsize=(4.5, 4))
im = ax.imshow(off, cmap="Reds")
for i, j in zip(*np.nonzero(off), strict=True):
    ax.text(j, i, off[i, j], ha="center", va="center", fontsize=8)
ax.set_xticks(range(10))
ax.set_yticks(range(10))
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_title("test-set confusions (diagonal hidden)")
run.figure(fig, "confusions")
worst = np.unravel_index(np.argmax(off), off.shape)
run.metric("most_common_confusion", f"{worst[0]} -> {worst[1]} ({off[worst]} times)")
plt.show()

# %% [markdown]
# ## 4. The weights as images
# Column k of W scores an image by a dot product: bright (red) pixels vote for class k,
# blue pixels against. With a little L2 the templates look like the digits they detect.

# %%
fig, axes = plt.subplots(2, 5, figsize=(8, 3.5))
lim = np.abs(full.W).max()
for k, ax in enumerate(axes.ravel()):
    ax.imshow(full.W[:, k].reshape(8, 8), cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(str(k))
    ax.axis("off")
run.figure(fig, "weight_images")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
confusion = run.record["metrics"]["most_common_confusion"]
run.finish(f"Full batch reached {acc_full:.3f} and mini-batch {acc_mini:.3f} test accuracy; the "
           f"most common mistake was {confusion}; the weight columns look like blurred digit "
           "templates.")

# %% [markdown]
# # s15 · CNN lab: a LeNet on 8x8 digits, its filters and feature maps, and why im2col
#
# This lab runs **your** `exercises/s15_cnn.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. time your im2col convolution against a plain six-loop convolution;
# 2. train the LeNet on the 8x8 digits and draw its loss curve;
# 3. look at the first layer's filters and the feature maps they produce;
# 4. look at the digits it still gets wrong;
# 5. compare it with s11's idea, an MLP, on digits shifted by one pixel.
#
# Every run is recorded under `results/s15_cnn/`.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tools.labkit import Run, load_step

cnn = load_step("s15_cnn")
SEED = 0
CFG = {"test_size": 0.25, "epochs": 15, "batch_size": 16, "lr": 0.05}
run = Run("s15_cnn", config=CFG, seed=SEED)

X, y = load_digits(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X.reshape(-1, 1, 8, 8), y, test_size=CFG["test_size"],
                                          random_state=SEED, stratify=y)
mu, sd = X_tr.mean(), X_tr.std()  # training statistics only
X_tr, X_te = (X_tr - mu) / sd, (X_te - mu) / sd

# %% [markdown]
# ## 1. Why im2col: one matrix product instead of six loops
# The definition of a convolution is six nested loops (n, f, i, j and the window). im2col
# copies every window into a row once, then a single BLAS matrix product does all the
# multiply-adds. Both give the same numbers.

# %%
def conv_loops(x, W, b, pad):
    N, C, H, Wd = x.shape
    Fo, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, Fo, H + 2 * pad - kh + 1, Wd + 2 * pad - kw + 1))
    for n in range(N):
        for f in range(Fo):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    out[n, f, i, j] = np.sum(xp[n, :, i:i + kh, j:j + kw] * W[f]) + b[f]
    return out


rng = np.random.default_rng(SEED)
xb, Wb, bb = X_tr[:64], rng.normal(size=(16, 1, 3, 3)), np.zeros(16)
t0 = time.perf_counter()
slow = conv_loops(xb, Wb, bb, 1)
t1 = time.perf_counter()
fast, _ = cnn.conv2d_forward(xb, Wb, bb, 1, 1)
t2 = time.perf_counter()
print(f"loops: {t1 - t0:.3f}s, im2col: {t2 - t1:.4f}s, speed-up x{(t1 - t0) / (t2 - t1):.0f}, "
      f"max difference {np.abs(slow - fast).max():.2e}")
run.metric("im2col_speedup", (t1 - t0) / (t2 - t1))

# %% [markdown]
# ## 2. Train the LeNet
# Two conv + pool stages (8x8 -> 4x4 -> 2x2), then two Linear layers. Plain SGD with a
# linearly decaying learning rate; a few seconds on a laptop.

# %%
model = cnn.LeNet(seed=SEED)
t0 = time.perf_counter()
history = cnn.train(model, X_tr, y_tr, lr=CFG["lr"], epochs=CFG["epochs"],
                    batch_size=CFG["batch_size"], seed=SEED)
seconds = time.perf_counter() - t0
pred = model.forward(X_te).argmax(axis=1)
acc = float(np.mean(pred == y_te))
n_params = sum(p.size for layer in model.layers for p, _ in layer.params())
print(f"{n_params} parameters, trained in {seconds:.1f}s, test accuracy {acc:.3f}")
run.metric("test_accuracy", acc)
run.metric("train_seconds", seconds)
run.metric("parameters", n_params)

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot(range(1, len(history) + 1), history, "o-", ms=3)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("mean training cross-entropy")
ax.set_title(f"LeNet on 8x8 digits: test accuracy {acc:.3f}")
run.figure(fig, "loss_curve")
plt.show()

# %% [markdown]
# ## 3. What the first layer learned
# The 16 filters of the first convolution (3x3 each) and their ReLU feature maps for one
# test digit. Look for oriented light-dark transitions: edge and stroke detectors.

# %%
conv1 = model.layers[0]
digit = X_te[:1]
maps = np.maximum(conv1.forward(digit), 0)[0]  # (16, 8, 8): conv1 then its ReLU
fig = plt.figure(figsize=(16, 3.4))
grid = fig.add_gridspec(2, 17)
ax = fig.add_subplot(grid[:, 0])
ax.imshow(digit[0, 0], cmap="gray_r")
ax.set_title(f"input (a {y_te[0]})", fontsize=8)
ax.axis("off")
for f in range(16):
    for row, image, cmap in ((0, conv1.W[f, 0], "RdBu_r"), (1, maps[f], "viridis")):
        ax = fig.add_subplot(grid[row, f + 1])
        ax.imshow(image, cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        if f == 0:
            ax.set_ylabel("filter" if row == 0 else "ReLU map")
run.figure(fig, "conv1_filters_and_feature_maps")
plt.show()

# %% [markdown]
# ## 4. The mistakes

# %%
wrong = np.flatnonzero(pred != y_te)
fig, axes = plt.subplots(1, max(len(wrong[:10]), 1), figsize=(12, 1.8), squeeze=False)
for a, i in zip(axes[0], wrong[:10], strict=False):
    a.imshow(X_te[i, 0], cmap="gray_r")
    a.set_title(f"true {y_te[i]}, said {pred[i]}", fontsize=8)
    a.axis("off")
run.figure(fig, "misclassified_digits")
plt.show()
run.metric("test_errors", len(wrong))

# %% [markdown]
# ## 5. Shifted digits: weight sharing vs a fully connected layer
# Shift every test digit one pixel to the right. The convolutions see the same strokes one
# position over (the feature maps shift with them) and pooling absorbs part of the shift. A
# model with one weight per pixel (logistic regression on the 64 pixels, as in s03) has
# never seen ink in the new positions.

# %%
from sklearn.linear_model import LogisticRegression  # noqa: E402  (a reference model)

shifted = np.roll(X_te, 1, axis=3)
shifted[:, :, :, 0] = X_te.min()  # the column that wrapped around becomes background
lin = LogisticRegression(max_iter=3000).fit(X_tr.reshape(len(X_tr), -1), y_tr)
rows = {
    "LeNet (yours)": (acc, float(np.mean(model.forward(shifted).argmax(1) == y_te))),
    "logistic regression": (lin.score(X_te.reshape(len(X_te), -1), y_te),
                            lin.score(shifted.reshape(len(X_te), -1), y_te)),
}
for name, (a0, a1) in rows.items():
    print(f"{name:>20}: {a0:.3f} on the test digits, {a1:.3f} shifted by one pixel")
    run.metric(f"shifted_acc_{name.split()[0].lower()}", a1)

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"im2col made the convolution ~{(t1 - t0) / (t2 - t1):.0f}x faster than loops; the LeNet "
    f"({n_params} parameters) reached {acc:.3f} on 8x8 digits in {seconds:.1f}s. Shifted by "
    f"one pixel it kept {rows['LeNet (yours)'][1]:.3f} where logistic regression fell to "
    f"{rows['logistic regression'][1]:.3f}.")

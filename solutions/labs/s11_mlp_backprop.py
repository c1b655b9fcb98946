# %% [markdown]
# # s11 · MLP lab: decision boundaries, and why initialisation decides whether a net trains
#
# This lab runs **your** `exercises/s11_mlp_backprop.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. train a 2-hidden-layer MLP on the moons data and draw its decision boundary and loss;
# 2. push a batch through 20 layers for each init scheme and look at the activations;
# 3. measure the gradient norm of every layer after one backward pass;
# 4. train the same deep net with each init and see which ones learn at all.
#
# Every run is recorded under `results/s11_mlp_backprop/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from tools.labkit import Run, load_step

nn = load_step("s11_mlp_backprop")
SEED = 0
CFG = {"moons_n": 600, "moons_noise": 0.2, "hidden": [32, 32], "lr": 0.1, "epochs": 150,
       "batch_size": 32, "depth": 20, "width": 256}
run = Run("s11_mlp_backprop", config=CFG, seed=SEED)

# %% [markdown]
# ## 1. Moons: a non-linear boundary from two ReLU layers
# A linear model (s02) cannot separate the two moons; two hidden layers of 32 ReLUs can.

# %%
X, y = make_moons(CFG["moons_n"], noise=CFG["moons_noise"], random_state=SEED)
X_tr, y_tr, X_te, y_te = X[:400], y[:400], X[400:], y[400:]
model = nn.MLP([2, *CFG["hidden"], 2], activation="relu", init="he", seed=SEED)
history = nn.train(model, X_tr, y_tr, lr=CFG["lr"], epochs=CFG["epochs"],
                   batch_size=CFG["batch_size"], seed=SEED)
test_acc = float(np.mean(model.predict(X_te) == y_te))
print(f"final training loss {history[-1]:.4f}, test accuracy {test_acc:.3f}")
run.metric("moons_test_accuracy", test_acc)
run.metric("moons_final_train_loss", history[-1])

gx, gy = np.meshgrid(np.linspace(-1.6, 2.6, 200), np.linspace(-1.2, 1.7, 200))
logits = model.forward(np.column_stack([gx.ravel(), gy.ravel()]))
p1 = np.exp(logits - logits.max(1, keepdims=True))
p1 = (p1[:, 1] / p1.sum(1)).reshape(gx.shape)
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
a1.contourf(gx, gy, p1, levels=20, cmap="RdBu_r", alpha=0.6)
a1.contour(gx, gy, p1, levels=[0.5], colors="k")
a1.scatter(X_te[:, 0], X_te[:, 1], c=y_te, cmap="RdBu_r", edgecolors="k", s=15)
a1.set_title(f"decision boundary, test accuracy {test_acc:.3f}")
a2.plot(history)
a2.set_yscale("log")
a2.set_xlabel("epoch")
a2.set_ylabel("mean training cross-entropy")
a2.set_title("loss curve")
run.figure(fig, "moons_boundary_and_loss")
plt.show()

# %% [markdown]
# ## 2. Activations through a 20-layer net (19 hidden activations), for each init
# Histograms of the tanh activations at a few depths (the classic CS231n picture): with
# 0.01 N(0, 1) they shrink to a spike at 0; with N(0, 1) they saturate at +-1 (where
# tanh' = 0); with Xavier they keep a healthy spread.

# %%
x0 = np.random.default_rng(SEED).normal(size=(500, CFG["width"]))
INITS = ["small", "normal", "xavier", "he"]


def activations(activation, init):
    net = nn.MLP([CFG["width"]] * (CFG["depth"] + 1), activation=activation, init=init,
                 seed=SEED)
    h, outs = x0, []
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in net.layers[:-1]:
            h = layer.forward(h)
            if not isinstance(layer, nn.Linear):
                outs.append(h)
    return outs  # the output of each hidden layer's activation


show = [0, 4, 9, 18]
fig, axes = plt.subplots(len(INITS), len(show), figsize=(12, 8), sharex=True)
for r, init in enumerate(INITS):
    acts = activations("tanh", init)
    for c, depth in enumerate(show):
        axes[r, c].hist(acts[depth].ravel(), bins=60, range=(-1, 1), color=f"C{r}")
        axes[r, c].set_yticks([])
        axes[r, c].set_title(f"{init}, layer {depth + 1}: std {acts[depth].std():.2g}",
                             fontsize=9)
fig.suptitle("tanh activations by init scheme and depth")
fig.tight_layout()
run.figure(fig, "activation_histograms_tanh")
plt.show()

fig, ax = plt.subplots(figsize=(6.5, 4))
for act, style in (("relu", "-"), ("tanh", "--")):
    for i, init in enumerate(INITS):
        stds = [a.std() for a in activations(act, init)]
        ax.semilogy(range(1, len(stds) + 1), stds, style, color=f"C{i}", label=f"{act}/{init}")
        run.metric(f"act_std_layer{len(stds)}_{act}_{init}", stds[-1])
ax.set_xlabel("layer")
ax.set_ylabel("activation std (log scale)")
ax.legend(fontsize=7, ncol=2)
ax.set_title("activation scale over depth")
run.figure(fig, "activation_std_over_depth")
plt.show()

# %% [markdown]
# ## 3. Gradient norms per layer
# One forward and backward pass through 10 layers of width 64 (a softmax cross-entropy head
# on 64 classes), for several activation / init pairs. Backward multiplies by W^T and the
# activation's derivative at each layer: sigmoid' <= 1/4 makes the first layers' gradients
# vanish; a bad init scale makes all of them tiny or huge.

# %%
xg = np.random.default_rng(1).normal(size=(200, 64))
yg = np.random.default_rng(2).integers(0, 64, size=200)
fig, ax = plt.subplots(figsize=(6.5, 4))
for act, init in (("relu", "he"), ("relu", "small"), ("relu", "normal"), ("tanh", "xavier"),
                  ("sigmoid", "xavier")):
    net = nn.MLP([64] * 11, activation=act, init=init, seed=SEED)
    with np.errstate(over="ignore", invalid="ignore"):
        _, dlogits = nn.softmax_cross_entropy(net.forward(xg), yg)
        net.backward(dlogits)
    norms = [np.linalg.norm(layer.dW) for layer in net.layers if isinstance(layer, nn.Linear)]
    ax.semilogy(range(1, 11), norms, "o-", ms=3, label=f"{act}/{init}")
    run.metric(f"grad_norm_first_over_last_{act}_{init}", norms[0] / norms[-1])
ax.set_xlabel("Linear layer (1 = next to the input)")
ax.set_ylabel("||dW|| (log scale)")
ax.legend(fontsize=8)
ax.set_title("gradient norm per layer after one backward pass")
run.figure(fig, "gradient_norms_per_layer")
plt.show()

# %% [markdown]
# ## 4. Does it train? A 6-layer net on moons with each init
# Same data, same optimiser, only the initial scale differs. With 0.01 N(0, 1) the gradients
# are so small that nothing moves; with N(0, 1) the logits start in the thousands and the
# first updates overflow (a dotted line marks that curve, which has no finite points).

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
for i, init in enumerate(INITS):
    net = nn.MLP([2, 32, 32, 32, 32, 32, 2], activation="relu", init=init, seed=SEED)
    with np.errstate(over="ignore", invalid="ignore"):
        hist = nn.train(net, X_tr, y_tr, lr=0.05, epochs=60, batch_size=32, seed=SEED)
        acc = float(np.mean(net.predict(X_te) == y_te))
    label = f"{init}: test acc {acc:.2f}"
    if not np.all(np.isfinite(hist)):  # exploded: the loss overflowed to inf / NaN
        label += f", loss NaN from epoch {int(np.argmax(~np.isfinite(hist))) + 1}"
        ax.axhline(0.7, color=f"C{i}", ls=":", lw=0.8)
    ax.plot(hist, color=f"C{i}", label=label)
    run.metric(f"deep_moons_test_acc_{init}", acc)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.legend()
ax.set_title("6-layer ReLU MLP on moons, by init")
run.figure(fig, "deep_training_by_init")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"Two ReLU layers separate the moons (test accuracy {test_acc:.3f}). Over 20 layers He "
    "(ReLU) and Xavier (tanh) keep the activation scale, 0.01 N(0,1) collapses it to ~0 and "
    "N(0,1) explodes (ReLU) or saturates (tanh); sigmoid gradients vanish towards the input, "
    "and only the well-scaled inits train the 6-layer net.")

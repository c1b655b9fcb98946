# %% [markdown]
# # s14 · Regularisation and normalisation lab
#
# This lab runs **your** `exercises/s14_regularization_norm.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. overfit a small training set on purpose, then compare train / validation curves with
#    dropout and with L2 weight decay;
# 2. mark where early stopping halts training, and compare the restored best weights with the
#    last ones;
# 3. follow the activation statistics of a deep network with no normalisation, LayerNorm and
#    BatchNorm.
#
# Every experiment is recorded under `results/s14_regularization_norm/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from tools.labkit import Run, load_step

reg = load_step("s14_regularization_norm")
config = {"n_train": 200, "n_val": 500, "label_noise": 0.3, "hidden": 128, "epochs": 200,
          "lr": 0.1, "momentum": 0.9, "dropout": 0.5, "weight_decay": 1e-2, "patience": 10}
run = Run("s14_regularization_norm", config=config, seed=0)

digits = load_digits()
X = digits.data / 16.0
y = digits.target
order = np.random.default_rng(0).permutation(len(X))
tr, va = order[:config["n_train"]], order[config["n_train"]:config["n_train"] + config["n_val"]]
y_train = y[tr].copy()  # 30% of the training labels replaced by random ones: noise to memorise
noisy = np.random.default_rng(1).random(len(tr)) < config["label_noise"]
y_train[noisy] = np.random.default_rng(2).integers(0, 10, int(noisy.sum()))

# %% [markdown]
# ## A small MLP (given: Linear + ReLU by hand, as in s11) with optional dropout and L2
# Full-batch SGD with momentum on 200 digit images, 30% of them with a random label: the
# network is big enough to memorise the noise, which is exactly what overfitting is. The
# validation labels are clean.

# %%
def softmax_xent(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(labels)
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1
    return -logp[np.arange(n), labels].mean(), grad / n


def train(dropout_p=0.0, weight_decay=0.0, seed=0, stopper=None):
    rng = np.random.default_rng(seed)
    h = config["hidden"]
    W = {"W1": rng.normal(0, np.sqrt(2 / 64), (64, h)), "b1": np.zeros(h),
         "W2": rng.normal(0, np.sqrt(2 / h), (h, 10)), "b2": np.zeros(10)}
    vel = {k: np.zeros_like(v) for k, v in W.items()}
    drop = reg.Dropout(dropout_p, rng=np.random.default_rng(seed + 1))
    hist = {"train": [], "val": [], "val_acc": []}

    def forward(x, train_mode):
        a = np.maximum(0, x @ W["W1"] + W["b1"])
        a_d = drop.forward(a, train=train_mode)
        return a, a_d, a_d @ W["W2"] + W["b2"]

    for _epoch in range(config["epochs"]):
        a, a_d, logits = forward(X[tr], True)
        loss, dlogits = softmax_xent(logits, y_train)
        l2, l2_grads = reg.l2_penalty([W["W1"], W["W2"]], weight_decay)
        grads = {"W2": a_d.T @ dlogits + l2_grads[1], "b2": dlogits.sum(0)}
        da = drop.backward(dlogits @ W["W2"].T) * (a > 0)
        grads["W1"] = X[tr].T @ da + l2_grads[0]
        grads["b1"] = da.sum(0)
        for k in W:  # SGD with momentum, in place
            vel[k] *= config["momentum"]
            vel[k] += grads[k]
            W[k] -= config["lr"] * vel[k]
        _, _, tr_logits = forward(X[tr], False)
        _, _, va_logits = forward(X[va], False)
        hist["train"].append(softmax_xent(tr_logits, y_train)[0])
        hist["val"].append(softmax_xent(va_logits, y[va])[0])
        hist["val_acc"].append(float((va_logits.argmax(1) == y[va]).mean()))
        if stopper is not None and stopper.step(hist["val"][-1], W):
            break
    return W, hist, forward


# %% [markdown]
# ## 1. Train / validation curves: plain, dropout, weight decay

# %%
variants = {"plain": {}, f"dropout p={config['dropout']}": {"dropout_p": config["dropout"]},
            f"L2 wd={config['weight_decay']}": {"weight_decay": config["weight_decay"]}}
results = {name: train(**kw)[1] for name, kw in variants.items()}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for (name, hist), color in zip(results.items(), ["C0", "C1", "C2"], strict=True):
    axes[0].plot(hist["train"], color=color, ls="--", label=f"{name} train")
    axes[0].plot(hist["val"], color=color, label=f"{name} val")
    axes[1].plot(hist["val_acc"], color=color, label=name)
axes[0].set_yscale("log")
axes[0].set_xlabel("epoch")
axes[0].set_title("cross-entropy (dashed: train, solid: validation)")
axes[0].legend(fontsize=8)
axes[1].set_xlabel("epoch")
axes[1].set_title("validation accuracy")
axes[1].legend(fontsize=8)
run.figure(fig, "train_val_curves")
plt.show()
for name, hist in results.items():
    key = name.split()[0]
    run.metric(f"{key}_final_train_loss", hist["train"][-1])
    run.metric(f"{key}_final_val_loss", hist["val"][-1])
    run.metric(f"{key}_min_val_loss", min(hist["val"]))
    run.metric(f"{key}_final_val_acc", hist["val_acc"][-1])
    print(f"{name:16s} train {hist['train'][-1]:.4f}  val {hist['val'][-1]:.4f} "
          f"(min {min(hist['val']):.4f})  val acc {hist['val_acc'][-1]:.3f}")

# %% [markdown]
# ## 2. Early stopping on the plain network
# Stop once the validation loss has not improved for `patience` epochs, then restore the best
# weights. Compare the restored model with the one training ended on.

# %%
stopper = reg.EarlyStopping(patience=config["patience"])
W, hist, forward = train(stopper=stopper)
last_acc = float((forward(X[va], False)[2].argmax(1) == y[va]).mean())
stopper.restore(W)
best_acc = float((forward(X[va], False)[2].argmax(1) == y[va]).mean())
stop_epoch = len(hist["val"]) - 1
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(results["plain"]["val"], color="0.7", label="val loss, no early stopping")
ax.plot(hist["val"], label="val loss with early stopping")
ax.axvline(stopper.best_epoch, color="C2", ls="--", label=f"best epoch {stopper.best_epoch}")
ax.axvline(stop_epoch, color="C3", ls=":", label=f"stopped at epoch {stop_epoch}")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.legend(fontsize=8)
run.figure(fig, "early_stopping")
plt.show()
print(f"stopped at epoch {stop_epoch}, best epoch {stopper.best_epoch}: val accuracy "
      f"{last_acc:.3f} with the last weights, {best_acc:.3f} with the restored best")
run.metric("early_stop_epoch", stop_epoch)
run.metric("best_epoch", stopper.best_epoch)
run.metric("val_acc_last_weights", last_acc)
run.metric("val_acc_restored_best", best_acc)

# %% [markdown]
# ## 3. Activation statistics through a deep network
# 12 layers of 128 tanh units with a too-small init (std 0.5 / sqrt(fan_in)): without
# normalisation the activations shrink layer after layer; LayerNorm or BatchNorm before each
# nonlinearity put every pre-activation back to zero mean and unit variance.

# %%
depth, width = 12, 128
gen = np.random.default_rng(0)
Ws = [gen.normal(0, 0.5 / np.sqrt(width), (width, width)) for _ in range(depth)]
x0 = gen.normal(size=(256, width))
stds = {}
for kind in ("none", "LayerNorm", "BatchNorm"):
    h, layer_std = x0, []
    for Wl in Ws:
        z = h @ Wl
        if kind == "LayerNorm":
            z = reg.LayerNorm(width).forward(z)
        elif kind == "BatchNorm":
            z = reg.BatchNorm1d(width).forward(z, train=True)
        h = np.tanh(z)
        layer_std.append(float(h.std()))
    stds[kind] = layer_std
fig, ax = plt.subplots(figsize=(6, 3.5))
for (kind, s), style in zip(stds.items(), ["o-", "s--", "^:"], strict=True):
    ax.plot(range(1, depth + 1), s, style, label=kind)  # the two norms overlap: ~0.63
ax.set_yscale("log")
ax.set_xlabel("layer")
ax.set_ylabel("std of tanh activations")
ax.legend()
run.figure(fig, "activation_statistics")
plt.show()
for kind, s in stds.items():
    run.metric(f"last_layer_activation_std_{kind}", s[-1])

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
plain, dro, l2 = (results[k] for k in variants)
run.finish(f"Plain: train loss {plain['train'][-1]:.3g} vs val {plain['val'][-1]:.3g} "
           f"(overfits); dropout val {dro['val'][-1]:.3g}, L2 val {l2['val'][-1]:.3g}. Early "
           f"stopping halted at epoch {stop_epoch} (best {stopper.best_epoch}); restoring the "
           f"best weights gave val acc {best_acc:.3f} vs {last_acc:.3f}. Without normalisation "
           f"the last layer's activation std fell to {stds['none'][-1]:.2g}; with LayerNorm it "
           f"stayed at {stds['LayerNorm'][-1]:.2g}.")

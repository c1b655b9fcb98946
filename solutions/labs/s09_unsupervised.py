# %% [markdown]
# # s09 · Unsupervised lab: k-means iterations, the elbow, PCA on digits
#
# This lab runs **your** `exercises/s09_unsupervised.py`. You will
#
# 1. watch Lloyd's iterations move the centres and push the inertia down,
# 2. compare k-means++ with a uniformly random start over many seeds,
# 3. draw an elbow curve and see why it only hints at k,
# 4. project the 64-pixel digits onto two principal components,
# 5. read the explained variance and look at reconstructions with k components.
#
# Every run is recorded under `results/s09_unsupervised/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits, make_blobs

from tools.labkit import Run, load_step

us = load_step("s09_unsupervised")
run = Run("s09_unsupervised", config={"blobs": 5, "elbow_k": list(range(1, 11)),
                                      "init_seeds": 30, "pca_k": [2, 5, 10, 20, 40]}, seed=0)

# %% [markdown]
# ## 1. Lloyd's iterations
# A deliberately poor start (the five rows nearest one corner). Each assignment step and each
# update step can only lower the inertia; the trails show the centres walking out. Look at
# where they stop: monotone descent guarantees a local minimum, not the best clustering (two
# blobs may end up sharing a centre while another blob is split).

# %%
X, y = make_blobs(500, centers=5, cluster_std=1.3, random_state=4)
start = X[np.argsort(X[:, 0] + X[:, 1])[:5]]
centres, trail = start.copy(), [start.copy()]
for _ in range(15):
    labels = us.assign_clusters(X, centres)
    centres = us.update_centres(X, labels, centres)
    trail.append(centres.copy())
trail = np.stack(trail)  # (iterations + 1, k, 2)
km = us.KMeans(n_clusters=5, init=start).fit(X)

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].scatter(X[:, 0], X[:, 1], c=km.labels_, s=8, cmap="tab10", alpha=0.5)
for c in range(5):
    axes[0].plot(trail[:, c, 0], trail[:, c, 1], "k.-", lw=1, ms=4)
axes[0].scatter(*trail[0].T, marker="x", c="k", s=60, label="start")
axes[0].scatter(*km.cluster_centers_.T, marker="*", c="red", s=150, label="final")
axes[0].legend()
axes[0].set_title("centres over Lloyd iterations")
axes[1].plot(np.arange(1, len(km.inertia_history_) + 1), km.inertia_history_, "o-")
axes[1].set_xlabel("iteration")
axes[1].set_ylabel("inertia")
axes[1].set_title("inertia never increases")
run.figure(fig, "kmeans_iterations")
run.metric("iterations_from_poor_start", km.n_iter_)
run.metric("final_inertia", km.inertia_)
plt.show()

# %% [markdown]
# ## 2. k-means++ against a uniformly random start
# Lloyd only finds a local minimum. Over 30 seeds, compare the final inertia from k-means++
# with the one from k rows drawn uniformly.

# %%
final = {"uniform": [], "k-means++": []}
for seed in range(run.record["config"]["init_seeds"]):
    g = np.random.default_rng(seed)
    uniform = X[g.choice(len(X), 5, replace=False)]
    final["uniform"].append(us.KMeans(n_clusters=5, init=uniform).fit(X).inertia_)
    final["k-means++"].append(us.KMeans(n_clusters=5, seed=seed).fit(X).inertia_)
fig, ax = plt.subplots(figsize=(5, 3))
ax.boxplot(list(final.values()), tick_labels=list(final.keys()))
ax.set_ylabel("final inertia")
run.figure(fig, "init_comparison")
for name, vals in final.items():
    run.metric(f"median_inertia_{name}", np.median(vals))
    run.metric(f"worst_inertia_{name}", np.max(vals))
plt.show()

# %% [markdown]
# ## 3. The elbow curve
# Inertia always falls as k grows (k = n gives 0), so the minimum cannot choose k. Look for
# the bend where adding a cluster stops paying; here the data were made with 5 blobs.

# %%
ks = run.record["config"]["elbow_k"]
elbow = [min(us.KMeans(n_clusters=k, seed=s).fit(X).inertia_ for s in range(3)) for k in ks]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(ks, elbow, "o-")
ax.axvline(5, ls="--", c="gray")
ax.set_xlabel("k")
ax.set_ylabel("inertia (best of 3 seeds)")
run.figure(fig, "elbow")
run.metric("inertia_k4_over_k5", elbow[3] / elbow[4])
run.metric("inertia_k5_over_k6", elbow[4] / elbow[5])
plt.show()

# %% [markdown]
# ## 4. PCA of the digits
# 1797 images of 8x8 pixels. Two directions out of 64 already separate several digits.

# %%
digits = load_digits()
pca = us.PCA(n_components=2).fit(digits.data)
Z = pca.transform(digits.data)
fig, ax = plt.subplots(figsize=(6, 5))
sc = ax.scatter(Z[:, 0], Z[:, 1], c=digits.target, cmap="tab10", s=6)
fig.colorbar(sc, ax=ax, label="digit")
ax.set_xlabel("PC 1")
ax.set_ylabel("PC 2")
run.figure(fig, "digits_pca_2d")
plt.show()

# %% [markdown]
# ## 5. Explained variance and reconstructions
# The ratio curve says how much of the pixel variance k components keep; the images show what
# keeping it looks like.

# %%
full = us.PCA(n_components=64).fit(digits.data)
cum = np.cumsum(full.explained_variance_ratio_)
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(np.arange(1, 65), full.explained_variance_ratio_, label="per component")
ax.plot(np.arange(1, 65), cum, "r-", label="cumulative")
ax.set_xlabel("component")
ax.set_ylabel("explained variance ratio")
ax.legend()
run.figure(fig, "explained_variance")
run.metric("components_for_90pct", int(np.searchsorted(cum, 0.9) + 1))
plt.show()

pca_ks = run.record["config"]["pca_k"]
fig, axes = plt.subplots(len(pca_ks) + 1, 6, figsize=(6, 1.1 * (len(pca_ks) + 1)))
for col in range(6):
    axes[0, col].imshow(digits.data[col].reshape(8, 8), cmap="gray_r")
for row, k in enumerate(pca_ks, start=1):
    p = us.PCA(n_components=k).fit(digits.data)
    rec = p.inverse_transform(p.transform(digits.data[:6]))
    run.metric(f"reconstruction_mse_k{k}",
               np.mean((digits.data - p.inverse_transform(p.transform(digits.data))) ** 2))
    for col in range(6):
        axes[row, col].imshow(rec[col].reshape(8, 8), cmap="gray_r")
    axes[row, 0].set_ylabel(f"k={k}", rotation=0, labelpad=15, fontsize=8)
axes[0, 0].set_ylabel("original", rotation=0, labelpad=20, fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
run.figure(fig, "reconstructions")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(f"From a poor start Lloyd needed {km.n_iter_} iterations and the inertia fell every "
           f"time. k-means++ had a worst final inertia of {max(final['k-means++']):.0f} against "
           f"{max(final['uniform']):.0f} for uniform starts. "
           f"{int(np.searchsorted(cum, 0.9) + 1)} of 64 components keep 90% of the digit variance.")

# %% [markdown]
# # s06 · Decision tree lab: what a tree asks, where it draws lines, when it overfits
#
# This lab runs **your** `exercises/s06_decision_tree.py`. You will
#
# 1. print a small tree on breast_cancer and read it as a list of questions,
# 2. draw decision regions on the two-moons data for growing depths,
# 3. plot training and test accuracy against depth (bias, then variance),
# 4. compare Gini and entropy, and time your tree against scikit-learn's.
#
# Every run is recorded under `results/s06_decision_tree/`.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification, make_moons
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier as SkTree

from tools.labkit import Run, load_step

dt = load_step("s06_decision_tree")
run = Run("s06_decision_tree", config={"dataset": "breast_cancer + moons", "test_size": 0.3},
          seed=0)

# %% [markdown]
# ## 1. A tree is a list of questions
# Walk the flat arrays from the root: internal nodes ask `feature <= threshold`, leaves hold
# class proportions.

# %%
data = load_breast_cancer()
Xtr, Xte, ytr, yte = train_test_split(data.data, data.target, test_size=0.3, random_state=0,
                                      stratify=data.target)
small = dt.DecisionTreeClassifier(max_depth=3).fit(Xtr, ytr)


def show(tree, names, node=0, indent=""):
    if tree.feature_[node] < 0:
        p = tree.value_[node]
        print(f"{indent}leaf: {data.target_names[int(np.argmax(p))]}  p={np.round(p, 2)}")
        return
    f, t = tree.feature_[node], tree.threshold_[node]
    print(f"{indent}if {names[f]} <= {t:.3g}:")
    show(tree, names, tree.left_[node], indent + "    ")
    print(f"{indent}else:")
    show(tree, names, tree.right_[node], indent + "    ")


show(small, data.feature_names)
run.metric("depth3_test_accuracy", np.mean(small.predict(Xte) == yte))

# %% [markdown]
# ## 2. Decision regions: axis-aligned boxes
# Depth 1 is a single vertical or horizontal line; an unlimited tree carves a box around
# every noisy point.

# %%
Xm, ym = make_moons(300, noise=0.3, random_state=0)
xx, yy = np.meshgrid(np.linspace(-2, 3, 200), np.linspace(-1.5, 2, 200))
grid = np.column_stack([xx.ravel(), yy.ravel()])
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
for ax, depth in zip(axes, (1, 3, 6, None), strict=True):
    tree = dt.DecisionTreeClassifier(max_depth=depth).fit(Xm, ym)
    ax.contourf(xx, yy, tree.predict_proba(grid)[:, 1].reshape(xx.shape), levels=20,
                cmap="RdBu_r", alpha=0.6)
    ax.scatter(Xm[:, 0], Xm[:, 1], c=ym, cmap="RdBu_r", s=8, edgecolors="k", linewidths=0.3)
    ax.set_title(f"max_depth={depth}: {tree.n_leaves} leaves")
run.figure(fig, "decision_regions")
plt.show()

# %% [markdown]
# ## 3. Depth vs accuracy
# Training accuracy climbs to 1; test accuracy peaks early and then wobbles or falls.

# %%
depths = list(range(1, 11))
train_acc, test_acc, sk_acc = [], [], []
for depth in depths:
    tree = dt.DecisionTreeClassifier(max_depth=depth).fit(Xtr, ytr)
    train_acc.append(np.mean(tree.predict(Xtr) == ytr))
    test_acc.append(np.mean(tree.predict(Xte) == yte))
    sk_acc.append(SkTree(max_depth=depth, random_state=0).fit(Xtr, ytr).score(Xte, yte))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(depths, train_acc, "o-", label="train (yours)")
ax.plot(depths, test_acc, "o-", label="test (yours)")
ax.plot(depths, sk_acc, "x--", label="test (sklearn)")
ax.set_xlabel("max_depth")
ax.set_ylabel("accuracy")
ax.legend()
run.figure(fig, "depth_vs_accuracy")
run.metric("best_test_depth", depths[int(np.argmax(test_acc))])
run.metric("max_gap_to_sklearn", np.max(np.abs(np.array(test_acc) - np.array(sk_acc))))
plt.show()

# %% [markdown]
# ## 4. Gini vs entropy, and speed
# The two criteria nearly always pick similar splits. The vectorised search (sort once, cumsum
# the one-hot labels) should fit a depth-8 tree on 5000 x 20 in well under a second.

# %%
for criterion in ("gini", "entropy"):
    acc = np.mean(dt.DecisionTreeClassifier(max_depth=4, criterion=criterion)
                  .fit(Xtr, ytr).predict(Xte) == yte)
    print(f"{criterion:8s} depth 4 test accuracy {acc:.3f}")
    run.metric(f"{criterion}_depth4_test_accuracy", acc)
Xb, yb = make_classification(5000, 20, n_informative=10, random_state=0)
t0 = time.perf_counter()
dt.DecisionTreeClassifier(max_depth=8).fit(Xb, yb)
ours_s = time.perf_counter() - t0
t0 = time.perf_counter()
SkTree(max_depth=8).fit(Xb, yb)
sk_s = time.perf_counter() - t0
print(f"depth-8 tree on 5000x20: yours {ours_s:.2f}s, sklearn {sk_s:.2f}s")
run.metric("fit_5000x20_depth8_s", ours_s)

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(f"Test accuracy peaks at depth {depths[int(np.argmax(test_acc))]} while training "
           f"accuracy keeps rising to {train_acc[-1]:.2f}: deeper trees memorise noise. My tree "
           f"stays within {np.max(np.abs(np.array(test_acc) - np.array(sk_acc))):.3f} of sklearn.")

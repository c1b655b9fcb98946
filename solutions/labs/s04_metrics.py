# %% [markdown]
# # s04 · Metrics lab: ROC, PR and reliability curves for three classifiers
#
# This lab runs **your** `exercises/s04_metrics.py`. Finish the step first
# (`python tools/check.py`), then run every cell. On an imbalanced problem (10% positives)
# you will
#
# 1. see why accuracy alone misleads, and how macro and micro averages differ,
# 2. draw ROC and precision-recall curves for three scikit-learn classifiers,
# 3. draw their reliability diagrams and compare expected calibration errors.
#
# The classifiers come from scikit-learn; every number and curve comes from *your* metrics.
# Every experiment is recorded under `results/s04_metrics/`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB

from tools.labkit import Run, load_step

metrics = load_step("s04_metrics")
config = {"n_samples": 4000, "positive_share": 0.1, "n_features": 20, "n_bins": 10,
          "forest_trees": 100}
run = Run("s04_metrics", config=config, seed=0)

X, y = make_classification(n_samples=config["n_samples"], n_features=config["n_features"],
                           n_informative=5, n_redundant=5, weights=[0.9], flip_y=0.02,
                           class_sep=0.8, random_state=0)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)

# %% [markdown]
# ## 1. The accuracy paradox
# A "classifier" that always says *negative* is right 90% of the time. Precision, recall and
# F1 of the positive class, and the macro average, expose it; the micro average, which
# weights every sample equally, equals accuracy and hides it.

# %%
always_negative = np.zeros_like(y_te)
acc = metrics.accuracy(y_te, always_negative)
p, r, f = metrics.precision_recall_f1(y_te, always_negative, average="binary")
macro_f1 = metrics.precision_recall_f1(y_te, always_negative, average="macro")[2]
micro_f1 = metrics.precision_recall_f1(y_te, always_negative, average="micro")[2]
print(f"always negative: accuracy {acc:.3f}, positive-class P/R/F1 {p:.2f}/{r:.2f}/{f:.2f}, "
      f"macro F1 {macro_f1:.3f}, micro F1 {micro_f1:.3f}")
print("confusion matrix (rows true, columns predicted):\n",
      metrics.confusion_matrix(y_te, always_negative, labels=np.array([0, 1])))
run.metric("always_negative_accuracy", acc)
run.metric("always_negative_macro_f1", macro_f1)

# %% [markdown]
# ## 2. Three classifiers, ranked by ROC and PR curves
# ROC's false-positive rate divides by the 1800 negatives, so a few hundred false alarms
# barely move it; precision divides by what was flagged and shows them. On imbalanced data
# the PR curve separates models that ROC makes look alike. The dashed PR line is the
# positive share: what a random ranking achieves.

# %%
models = {
    "logistic regression": LogisticRegression(max_iter=1000),
    "Gaussian naive Bayes": GaussianNB(),
    "random forest": RandomForestClassifier(n_estimators=config["forest_trees"], random_state=0,
                                            n_jobs=1),
}
probs = {name: m.fit(X_tr, y_tr).predict_proba(X_te)[:, 1] for name, m in models.items()}

fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4))
for name, prob in probs.items():
    fpr, tpr, _ = metrics.roc_curve(y_te, prob)
    auc = metrics.roc_auc(y_te, prob)
    prec, rec, _ = metrics.precision_recall_curve(y_te, prob)
    ap = metrics.average_precision(y_te, prob)
    ax_roc.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax_pr.step(rec, prec, where="post", label=f"{name} (AP {ap:.3f})")
    run.metric(f"roc_auc/{name}", auc)
    run.metric(f"average_precision/{name}", ap)
ax_roc.plot([0, 1], [0, 1], "k:", lw=1)
ax_roc.set_xlabel("false-positive rate")
ax_roc.set_ylabel("true-positive rate (recall)")
ax_roc.legend(fontsize=8)
ax_pr.axhline(y_te.mean(), color="k", ls="--", lw=1)
ax_pr.set_xlabel("recall")
ax_pr.set_ylabel("precision")
ax_pr.legend(fontsize=8)
run.figure(fig, "roc_and_pr")
plt.show()

# %% [markdown]
# ## 3. Reliability diagrams: do the probabilities come true?
# A point (mean predicted probability, fraction of positives) on the diagonal is calibrated.
# Naive Bayes multiplies likelihoods as if the features were independent; with redundant
# features it double-counts evidence and pushes probabilities towards 0 and 1. A model can
# rank well (high AUC) and still be confidently wrong: ECE measures that gap.

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfectly calibrated")
for name, prob in probs.items():
    prob_true, prob_pred, counts = metrics.calibration_curve(y_te, prob, config["n_bins"])
    ece = metrics.expected_calibration_error(y_te, prob, config["n_bins"])
    ax.plot(prob_pred, prob_true, "o-", label=f"{name} (ECE {ece:.3f})")
    run.metric(f"ece/{name}", ece)
ax.set_xlabel("mean predicted probability (per bin)")
ax.set_ylabel("fraction of positives (per bin)")
ax.legend(fontsize=8)
run.figure(fig, "reliability")
plt.show()

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
m = run.record["metrics"]
best_ap = max(probs, key=lambda n: m[f"average_precision/{n}"])
worst_ece = max(probs, key=lambda n: m[f"ece/{n}"])
run.finish(f"Always-negative scores {m['always_negative_accuracy']:.2f} accuracy but macro F1 "
           f"{m['always_negative_macro_f1']:.2f}. The PR curve separates the models more than "
           f"ROC does; {best_ap} has the best AP, and {worst_ece} is the worst calibrated.")

# %% [markdown]
# # s19 · n-gram lab: how much context helps on Tiny Shakespeare
#
# This lab runs **your** `exercises/s19_ngram_lm.py`. You will
#
# 1. encode Tiny Shakespeare as characters, one sequence per line, and split the lines 90 / 10
#    into train and validation (the end token takes the place of the newline),
# 2. fit n-gram models for n = 1..5 with several smoothing constants k,
# 3. plot the validation NLL against n: context helps until the counts run out,
# 4. see why k = 0 gives an infinite validation perplexity,
# 5. sample from the models and read the difference.
#
# Reference point (different data): Karpathy's makemore bigram on a names data set reaches a
# NLL of 2.4765 nats per character. The uniform model over V symbols scores ln V.
# The data comes from `python tools/fetch_data.py tinyshakespeare` (verified by sha256).
# Every run is recorded under `results/s19_ngram_lm/`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from tools.fetch_data import fetch
from tools.labkit import Run, load_step

ng = load_step("s19_ngram_lm")
config = {"split": 0.9, "orders": [1, 2, 3, 4, 5], "ks": [1.0, 0.1, 0.01], "sample_seed": 0}
run = Run("s19_ngram_lm", config=config, seed=0)

text = fetch("tinyshakespeare").read_text(encoding="utf-8")
lines = text.split("\n")
vocab = ng.build_vocab(lines)
V = len(vocab)
cut = int(config["split"] * len(lines))
train = [ng.encode(line, vocab) for line in lines[:cut]]
val = [ng.encode(line, vocab) for line in lines[cut:]]
n_train, n_val = (sum(len(s) + 1 for s in part) for part in (train, val))
print(f"{len(lines):,} lines, V = {V} (64 characters + the boundary), predictions: "
      f"train {n_train:,}, validation {n_val:,}")
print(f"uniform model: NLL ln V = {math.log(V):.4f}, perplexity {V}")

# %% [markdown]
# ## 2-3. Validation NLL for n = 1..5
# Counting is done once per n; only the smoothing changes with k (the counts are shared, so
# we set `model.k` and score again).

# %%
results = {}
for n in config["orders"]:
    model = ng.NGramLM(n, V).fit(train)
    for k in config["ks"]:
        model.k = k
        results[(n, k)] = (model.nll(train), model.nll(val))
    print(f"n={n}: " + ", ".join(f"k={k}: val {results[(n, k)][1]:.4f}" for k in config["ks"]))

best = min(results, key=lambda key: results[key][1])
for n in config["orders"]:
    run.metric(f"val_nll_n{n}", min(results[(n, k)][1] for k in config["ks"]))
run.metric("best_n", best[0])
run.metric("best_k", best[1])
run.metric("best_val_nll", results[best][1])
run.metric("best_val_perplexity", math.exp(results[best][1]))

fig, ax = plt.subplots(figsize=(6, 3.8))
for k in config["ks"]:
    ax.plot(config["orders"], [results[(n, k)][1] for n in config["orders"]], "o-",
            label=f"validation, k={k}")
    ax.plot(config["orders"], [results[(n, k)][0] for n in config["orders"]], "x:",
            alpha=0.6, label=f"train, k={k}")
ax.axhline(math.log(V), color="gray", ls="--", label="uniform (ln V)")
ax.set_xlabel("n (context = n - 1 characters)")
ax.set_ylabel("NLL (nats per character)")
ax.set_xticks(config["orders"])
ax.legend(fontsize=7, ncol=2)
ax.set_title("character n-grams on Tiny Shakespeare")
run.figure(fig, "val_nll_vs_n")
plt.show()

# %% [markdown]
# Read the plot: the training NLL keeps falling with n (a 5-gram memorises), while the
# validation NLL turns up once most 5-character contexts of the validation text were seen
# rarely or never. A smaller k trusts the counts more: good where counts are large, bad
# where they are thin.
#
# ## 4. No smoothing
# With k = 0 a single validation n-gram never seen in training has probability 0.

# %%
raw = ng.NGramLM(3, V, k=0.0).fit(train)
print("k=0, n=3: validation perplexity =", raw.perplexity(val))
seen = ng.count_ngrams(train, 3)
unseen = sum(c for g, c in ng.count_ngrams(val, 3).items() if g not in seen)
print(f"{unseen} of {n_val} validation trigrams never occur in training")
run.metric("val_trigrams_unseen", unseen)

# %% [markdown]
# ## 5. Samples
# Each sample is one line. The same seed for every n: longer contexts give real words and
# even speaker names. Watch for a line of pure noise: once a sample wanders into a context
# never seen in training, add-k gives a nearly uniform next character, and every following
# context is unseen too. That is the sparsity an MLP over embeddings (s20) fixes.

# %%
for n in (1, 2, 3, 5):
    k = min(config["ks"], key=lambda k: results[(n, k)][1])
    model = ng.NGramLM(n, V, k=k).fit(train)
    rng = np.random.default_rng(config["sample_seed"])
    sample = "\n".join(ng.decode(model.sample(rng, 80), vocab) for _ in range(6))
    print(f"--- n={n}, k={k}\n{sample}\n")

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(f"The best validation NLL was {results[best][1]:.3f} nats/char (perplexity "
           f"{math.exp(results[best][1]):.1f}) at n={best[0]}, k={best[1]}, against ln V = "
           f"{math.log(V):.2f} for the uniform model; beyond that the counts get too thin and "
           "validation NLL rises while training NLL keeps falling.")

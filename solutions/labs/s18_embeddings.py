# %% [markdown]
# # s18 · Embeddings lab: counting vs predicting, a 2-D map, analogies and their bias
#
# This lab runs **your** `exercises/s18_embeddings.py`. You will
#
# 1. generate a small corpus with planted relations (gender x role, like king / queen),
# 2. build PPMI + SVD embeddings and skip-gram embeddings from it,
# 3. project both to 2-D and see the parallel "gender" offsets,
# 4. measure analogy accuracy and look at nearest neighbours,
# 5. plant a bias in the corpus and watch the embeddings learn it faithfully.
#
# Every run is recorded under `results/s18_embeddings/`.

# %%
import matplotlib.pyplot as plt
import numpy as np

from tools.labkit import Run, load_step

emb = load_step("s18_embeddings")
config = {"n_sentences": 1500, "window": 3, "ppmi_alpha": 0.75, "svd_dim": 8,
          "svd_power": 0.5, "sgns": {"dim": 10, "window": 3, "epochs": 5, "lr": 4.0,
                                     "batch_size": 128}, "bias": 0.8}
run = Run("s18_embeddings", config=config, seed=0)

PAIRS = [("king", "queen"), ("prince", "princess"), ("actor", "actress"),
         ("waiter", "waitress"), ("uncle", "aunt"), ("father", "mother")]
GENDER = [["he", "him", "his"], ["she", "her", "hers"]]
ROLE = [["crown", "throne", "realm"], ["heir", "castle", "young"], ["stage", "film", "role"],
        ["table", "menu", "tip"], ["nephew", "niece", "visit"], ["child", "home", "family"]]
NEUTRAL = {"doctor": ["hospital", "patient", "clinic"], "nurse": ["ward", "care", "shift"]}
FILLERS = ["the", "a", "of"]


def make_corpus(rng, n_sentences, bias):
    """A target word with 2 of its gender's markers, 2 of its role's markers and 2 fillers.
    'doctor' and 'nurse' have no gender of their own; they take 'he' words with probability
    `bias` (doctor) or 1 - bias (nurse): the corpus, not the words, carries the bias."""
    words = [w for pair in PAIRS for w in pair] + list(NEUTRAL)
    words += [m for g in GENDER for m in g] + [m for r in ROLE for m in r]
    words += [m for ms in NEUTRAL.values() for m in ms] + FILLERS
    ids = {w: i for i, w in enumerate(words)}
    sentences = []
    for _ in range(n_sentences):
        if rng.random() < 0.8:
            r, g = rng.integers(len(PAIRS)), rng.integers(2)
            target, role = PAIRS[r][g], ROLE[r]
        else:
            target = ["doctor", "nurse"][rng.integers(2)]
            p_he = bias if target == "doctor" else 1 - bias
            g, role = int(rng.random() >= p_he), NEUTRAL[target]
        sent = [target, *rng.choice(GENDER[g], 2, replace=False),
                *rng.choice(role, 2, replace=False), *rng.choice(FILLERS, 2)]
        rng.shuffle(sent)
        sentences.append([ids[w] for w in sent])
    return sentences, words, ids


rng = np.random.default_rng(0)
sentences, words, ids = make_corpus(rng, config["n_sentences"], config["bias"])
V = len(words)
print(f"{len(sentences)} sentences, vocabulary {V}; e.g.", [words[i] for i in sentences[0]])

# %% [markdown]
# ## 2. Counting (PPMI + SVD) and predicting (skip-gram)

# %%
C = emb.cooccurrence(sentences, V, window=config["window"])
P = emb.ppmi(C, alpha=config["ppmi_alpha"])
E_svd = emb.svd_embeddings(P, config["svd_dim"], power=config["svd_power"])
W_in, W_out, losses = emb.train_sgns(sentences, V, seed=0, **config["sgns"])
E_sg = W_in
run.metric("sgns_first_loss", losses[0])
run.metric("sgns_last_loss", float(np.mean(losses[-20:])))

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses, lw=0.6)
ax.plot(np.convolve(losses, np.ones(25) / 25, mode="valid"), lw=2, label="25-step mean")
ax.set_xlabel("SGD step")
ax.set_ylabel("SGNS loss (batch mean)")
ax.legend()
run.figure(fig, "sgns_loss")
plt.show()

# %% [markdown]
# ## 3. A 2-D map of the target words
# A plain PCA would spend both axes on the six roles. Instead, the x axis is the mean
# male -> female offset of the six pairs (unit rows), the y axis the first principal
# component of what is left. If the relation was learned, every arrow is nearly horizontal
# and of the same length: the same offset, whatever the role.

# %%
targets = [w for pair in PAIRS for w in pair] + list(NEUTRAL)
t_idx = [ids[w] for w in targets]


def project_2d(E):
    X = E[t_idx] / np.linalg.norm(E[t_idx], axis=1, keepdims=True)
    X = X - X.mean(axis=0)
    pos = {w: X[i] for i, w in enumerate(targets)}
    d = np.mean([pos[f] - pos[m] for m, f in PAIRS], axis=0)
    d /= np.linalg.norm(d)
    rest = X - np.outer(X @ d, d)
    _, _, Vt = np.linalg.svd(rest, full_matrices=False)
    return np.column_stack([X @ d, rest @ Vt[0]])


fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, E, name in ((axes[0], E_svd, "PPMI + SVD"), (axes[1], E_sg, "skip-gram (SGNS)")):
    Z = project_2d(E)
    pos = {w: Z[i] for i, w in enumerate(targets)}
    for m, f in PAIRS:
        ax.annotate("", pos[f], pos[m], arrowprops={"arrowstyle": "->", "color": "tab:gray"})
    for w, (x, y) in pos.items():
        color = "tab:red" if w in NEUTRAL else "tab:blue"
        ax.scatter(x, y, color=color, s=12)
        ax.annotate(w, (x, y), fontsize=8, color=color)
    ax.set_title(f"{name}: male -> female arrows")
    ax.set_xlabel("mean male -> female direction")
    ax.set_ylabel("first principal component of the rest")
run.figure(fig, "projection_2d")
plt.show()

# %% [markdown]
# ## 4. Analogies and neighbours
# "king : queen :: actor : ?" is answered by the word nearest to queen - king + actor.

# %%
questions = []
for i, (m1, f1) in enumerate(PAIRS):
    for j, (m2, f2) in enumerate(PAIRS):
        if i != j:
            questions += [(m1, f1, m2, f2), (m1, m2, f1, f2)]
q = np.array([[ids[w] for w in row] for row in questions])
for E, name in ((E_svd, "svd"), (E_sg, "sgns")):
    acc = float(np.mean(emb.analogy(E, q[:, 0], q[:, 1], q[:, 2]) == q[:, 3]))
    run.metric(f"analogy_accuracy_{name}", acc)
    print(f"{name}: analogy accuracy {acc:.2f} on {len(q)} questions")
for w in ("king", "actress", "stage"):
    print(f"nearest to {w!r} (SVD):", [words[i] for i in emb.most_similar(E_svd, ids[w], 4)])

# %% [markdown]
# ## 5. Analogies reflect the corpus
# Nothing about "doctor" or "nurse" is male or female, but in this corpus doctors appear with
# "he" words 80% of the time and nurses 20%. The embeddings learn that skew as faithfully as
# they learned king / queen. Ask "king : queen :: doctor : ?" (and the same with the other five
# pairs) among the target words: the answer is "nurse" far more often than chance. Real
# corpora carry real biases (gender, culture, ...); embeddings trained on them reproduce
# them, and so do the systems built on those embeddings.

# %%
ti = {w: i for i, w in enumerate(targets)}
m_ids, f_ids = [ti[m] for m, _ in PAIRS], [ti[f] for _, f in PAIRS]
for E, name in ((E_svd, "svd"), (E_sg, "sgns")):
    answers = emb.analogy(E[t_idx], m_ids, f_ids, [ti["doctor"]] * len(PAIRS))
    share = float(np.mean([targets[i] == "nurse" for i in answers]))
    unit = E / np.linalg.norm(E, axis=1, keepdims=True)
    gap = {w: float(unit[ids[w]] @ unit[ids["he"]] - unit[ids[w]] @ unit[ids["she"]])
           for w in NEUTRAL}
    run.metric(f"doctor_to_nurse_share_{name}", share)
    run.metric(f"bias_gap_doctor_{name}", gap["doctor"])
    print(f"{name}: 'male : female :: doctor : ?' answered nurse {share:.0%} of the time "
          f"(chance {1 / (len(targets) - 3):.0%}); cos(w, he) - cos(w, she): doctor "
          f"{gap['doctor']:+.2f}, nurse {gap['nurse']:+.2f}")

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
acc_svd = run.record["metrics"]["analogy_accuracy_svd"]
acc_sg = run.record["metrics"]["analogy_accuracy_sgns"]
run.finish(f"PPMI+SVD answered {acc_svd:.0%} and SGNS {acc_sg:.0%} of the planted analogies; "
           "the male -> female arrows are nearly parallel in 2-D; the planted 80/20 skew made "
           "'doctor' closer to 'he' than 'nurse' is: the embedding learned the corpus's bias.")

# %% [markdown]
# # s47 · Sequence labelling lab: an HMM tagger on a generated part-of-speech corpus
#
# This lab runs **your** `exercises/s47_sequence_labeling.py`. A known hidden Markov model with
# six part-of-speech-like tags generates a tagged corpus (so the best possible tagger is known:
# the true HMM). You will
#
# 1. fit an HMM by counting and look at its confusion matrix: which tags get mixed up;
# 2. draw the learning curve, accuracy against the number of training sentences, next to the
#    true HMM and a tagger without context (each word's most likely tag);
# 3. see what the `<unk>` column learns when rare training words are mapped to it;
# 4. compare Viterbi with the per-token posterior argmax, and watch a product of probabilities
#    underflow where log space does not.
#
# Every experiment is recorded under `results/s47_sequence_labeling/`.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tools.labkit import Run, load_step

hm = load_step("s47_sequence_labeling")
TAGS = ["DET", "ADJ", "NOUN", "VERB", "ADV", "PUNCT"]
SIZES = [8, 300, 500, 300, 80, 6]  # words per tag: closed classes (DET, PUNCT) are small
K, V, LENGTH = len(TAGS), 20 + sum(SIZES), 12  # ids 0..19: ambiguous words
run = Run("s47_sequence_labeling", config={"tags": TAGS, "vocabulary": V, "length": LENGTH},
          seed=0)
t_start = time.perf_counter()


def make_hmm(seed: int):
    """A POS-like HMM: grammar-ish transitions, each tag a Zipf-shaped block of words, and a
    few ambiguous words ('can', 'light', 'run') that several tags emit."""
    rng = np.random.default_rng(seed)
    start = np.array([0.6, 0.1, 0.2, 0.02, 0.07, 0.01])
    trans = np.array([[0.0, 0.4, 0.6, 0.0, 0.0, 0.0],     # DET -> ADJ / NOUN
                      [0.0, 0.15, 0.8, 0.0, 0.0, 0.05],   # ADJ -> NOUN
                      [0.05, 0.0, 0.1, 0.55, 0.05, 0.25],  # NOUN -> VERB / PUNCT
                      [0.45, 0.1, 0.15, 0.0, 0.25, 0.05],  # VERB -> DET / ADV
                      [0.2, 0.2, 0.0, 0.4, 0.0, 0.2],     # ADV -> VERB
                      [0.6, 0.05, 0.2, 0.0, 0.15, 0.0]]) + 0.005  # PUNCT -> DET
    trans /= trans.sum(axis=1, keepdims=True)
    emit = np.zeros((K, V))
    lo = 20  # ids 0..19 are the ambiguous words every open class shares
    for k, size in enumerate(SIZES):
        zipf = 1.0 / np.arange(1, size + 1)
        emit[k, lo:lo + size] = rng.permutation(zipf)
        lo += size
    emit[1:5, :20] += rng.dirichlet(np.ones(20), size=4) * 0.6  # ambiguous words
    return start, trans, emit / emit.sum(axis=1, keepdims=True)


start, trans, emit = make_hmm(0)
train_all = hm.sample_corpus(start, trans, emit, 2000, LENGTH, seed=1)
test = hm.sample_corpus(start, trans, emit, 400, LENGTH, seed=2)
with np.errstate(divide="ignore"):  # a tag never emits the other tags' words: log 0 = -inf
    true_hmm = (np.log(start), np.log(trans), np.log(np.hstack([emit, np.full((K, 1), 1e-12)])))
print("a training sentence:", [TAGS[z] for z in train_all[0][1]])

# %% [markdown]
# ## 1. Fit by counting, tag by Viterbi, read the confusion matrix
# Rows are the gold tags, columns the predicted ones; the diagonal is what the tagger gets
# right. The closed classes (DET, PUNCT) are easy; the open classes that share the ambiguous
# words are where the mistakes are, and only the neighbouring tags can resolve them.

# %%
hmm = hm.fit_hmm(train_all, K, V, alpha=0.1)
acc, confusion = hm.evaluate(hmm, test, V)
best, _ = hm.evaluate(true_hmm, test, V)
print(f"fitted HMM: accuracy {acc:.3f}; the true HMM: {best:.3f}")
fig, ax = plt.subplots(figsize=(5, 4.5))
norm = confusion / confusion.sum(axis=1, keepdims=True).clip(min=1)
ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
for i in range(K):
    for j in range(K):
        ax.text(j, i, confusion[i, j], ha="center", va="center", fontsize=7,
                color="white" if norm[i, j] > 0.6 else "black")
ax.set_xticks(range(K), TAGS, rotation=45)
ax.set_yticks(range(K), TAGS)
ax.set_xlabel("predicted tag")
ax.set_ylabel("gold tag")
ax.set_title(f"confusion on held-out data (accuracy {acc:.3f})")
fig.tight_layout()
run.figure(fig, "confusion_matrix")
run.metric("accuracy_2000_sentences", acc)
run.metric("accuracy_true_hmm", best)

# %% [markdown]
# ## 2. Accuracy against training size
# The context-free baseline tags each word with its most likely tag (uniform start and
# transitions: Viterbi then decides word by word). With few sentences most test words were
# never seen and smoothing alone has nothing to say about them; as the corpus grows the
# fitted HMM approaches the true one, and the gap to the baseline is what context is worth.

# %%
sizes = [5, 10, 20, 50, 100, 200, 500, 1000, 2000]
curve, flat_curve = [], []
uniform = (np.full(K, -np.log(K)), np.full((K, K), -np.log(K)))
for n in sizes:
    fitted = hm.fit_hmm(train_all[:n], K, V, alpha=0.1)
    curve.append(hm.evaluate(fitted, test, V)[0])
    flat_curve.append(hm.evaluate((*uniform, fitted[2]), test, V)[0])
    run.metric(f"accuracy_n{n}", curve[-1])
    print(f"{n:5d} sentences: HMM {curve[-1]:.3f}, no context {flat_curve[-1]:.3f}")
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot(sizes, curve, marker="o", label="fitted HMM (Viterbi)")
ax.plot(sizes, flat_curve, marker="s", label="no context (most likely tag per word)")
ax.axhline(best, ls="--", c="gray", label="true HMM")
ax.set_xscale("log")
ax.set_xlabel("training sentences")
ax.set_ylabel("held-out token accuracy")
ax.legend(fontsize=8)
fig.tight_layout()
run.figure(fig, "accuracy_vs_training_size")

# %% [markdown]
# ## 3. Unknown words: what `<unk>` learns
# With 100 training sentences many test words are new. Without help every tag gives `<unk>`
# only its smoothed share alpha / (c(k) + alpha (V + 1)), largest for the tags seen least
# (the blue bars lean towards ADV, PUNCT and DET: backwards). Mapping the training words
# seen only once to `<unk>` (any id outside the vocabulary counts there) teaches the column
# which tags rare words belong to: the open classes (NOUN, ADJ, VERB), almost never DET or
# PUNCT. Whether that lifts the accuracy on unseen words depends on the corpus: here the
# context already rules the closed classes out, and what is left (NOUN against ADJ against
# VERB) the column cannot settle. Real taggers add what an HMM's single word id cannot see:
# suffixes ("-ly", "-ing"), capitals, digits.


# %%
def unk_accuracy(fitted, corpus, known):
    hits = total = 0
    for words, tags in corpus:
        pred, _ = hm.viterbi(fitted, hm.unknown_to_column(words, V))
        unseen = ~known[words]
        hits += int((pred[unseen] == tags[unseen]).sum())
        total += int(unseen.sum())
    return hits / max(total, 1)


small = train_all[:100]
counts = np.bincount(np.concatenate([w for w, _ in small]), minlength=V)
known = counts > 0
plain = hm.fit_hmm(small, K, V, alpha=0.1)
rare = [(np.where(counts[w] == 1, -1, w), z) for w, z in small]  # -1: outside the vocabulary
with_unk = hm.fit_hmm(rare, K, V, alpha=0.1)
u_plain, u_rare = unk_accuracy(plain, test, known), unk_accuracy(with_unk, test, known)
print(f"accuracy on unseen test words: plain {u_plain:.3f}, rare words as <unk> {u_rare:.3f}")
fig, ax = plt.subplots(figsize=(5.5, 3))
for shift, (name, fitted) in zip((-0.2, 0.2), (("plain", plain), ("rare words as <unk>", with_unk)),
                                 strict=True):
    b = np.exp(fitted[2][:, V])
    ax.bar(np.arange(K) + shift, b / b.sum(), width=0.4, label=name)
ax.set_xticks(range(K), TAGS)
ax.set_ylabel("B[tag, <unk>], normalised over tags")
ax.set_title("which tags emit unknown words")
ax.legend(fontsize=8)
fig.tight_layout()
run.figure(fig, "unk_column")
run.metric("unseen_word_accuracy_plain", u_plain)
run.metric("unseen_word_accuracy_rare_as_unk", u_rare)

# %% [markdown]
# ## 4. Viterbi against the posterior argmax; log space
# Viterbi returns the single most probable tag *sequence*; the posterior argmax picks, at
# each position, the tag with the highest marginal p(z_t | words), maximising the expected
# number of correct tokens. They mostly agree; where they do not, the posterior argmax may
# stitch together a sequence the HMM finds very unlikely (here DET -> VERB has probability
# 0.005), because each position is decided on its own.

# %%
agree = post_hits = vit_hits = tokens = 0
for words, tags in test:
    w = hm.unknown_to_column(words, V)
    pred, _ = hm.viterbi(hmm, w)
    post = hm.posteriors(hmm, w).argmax(axis=1)
    agree += int((pred == post).sum())
    vit_hits += int((pred == tags).sum())
    post_hits += int((post == tags).sum())
    tokens += len(tags)
print(f"Viterbi and posterior argmax agree on {agree / tokens:.3f} of the tokens; accuracy "
      f"Viterbi {vit_hits / tokens:.3f}, posterior {post_hits / tokens:.3f}")
run.metric("viterbi_posterior_agreement", agree / tokens)
run.metric("posterior_argmax_accuracy", post_hits / tokens)

long_words, long_tags = hm.sample_corpus(start, trans, emit, 1, 2000, seed=3)[0]
direct = np.prod(np.exp(hm.joint_logprob(true_hmm, long_words[:1], long_tags[:1]))
                 * np.array([trans[a, b] * emit[b, w] for a, b, w in
                             zip(long_tags[:-1], long_tags[1:], long_words[1:], strict=True)]))
_, log_p = hm.forward(hmm, hm.unknown_to_column(long_words, V))
print(f"2000 words: the product of probabilities is {direct}, the forward log p(words) = "
      f"{log_p:.1f} nats (p = 10^{log_p / np.log(10):.0f})")
run.metric("log_p_2000_words", log_p)
run.metric("lab_seconds", time.perf_counter() - t_start)

# %%
run.finish(f"On {LENGTH}-word sentences from a 6-tag HMM: the fitted HMM tags {acc:.3f} of "
           f"held-out tokens (true HMM {best:.3f}); with 5 sentences it tags {curve[0]:.3f}, "
           f"the context-free baseline reaches {flat_curve[-1]:.3f} at 2000. With 100 sentences "
           f"it tags {curve[sizes.index(100)]:.3f} of all tokens but {u_plain:.3f} of the unseen "
           f"ones ({u_rare:.3f} with rare training words as <unk>). Viterbi and "
           f"the posterior argmax agree on {agree / tokens:.3f} of the tokens; a 2000-word "
           f"product of probabilities is {direct} while log p = {log_p:.0f}.")

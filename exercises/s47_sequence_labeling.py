"""s47 · Sequence labelling: a hidden Markov model tagger with Viterbi and the forward algorithm.

You build
    logsumexp(a, axis)                  log(sum(exp(a))) along an axis, without overflow or
                                        underflow; a slice of only -inf gives -inf
    sample_corpus(start, trans, emit, n_sentences, length, seed)
                                        tagged sentences drawn from a known HMM
    fit_hmm(corpus, n_tags, n_words, alpha)
                                        supervised estimation by counting, add-alpha smoothing,
                                        an <unk> emission column; returns log-probabilities
    unknown_to_column(words, n_words)   word ids outside [0, n_words) -> n_words (<unk>)
    joint_logprob(hmm, words, tags)     log p(words, tags)
    viterbi(hmm, words)                 the most probable tag sequence and its log p(words, tags)
    forward(hmm, words)                 log alpha (T, K) and log p(words)
    backward(hmm, words)                log beta (T, K)
    posteriors(hmm, words)              p(tag_t = k | words), (T, K), rows sum to 1
    evaluate(hmm, corpus, n_words)      Viterbi's token accuracy and confusion matrix

How it differs from the previous steps
    A language model predicts the next token; a tagger labels every token of a sentence (a part
    of speech, an entity type). The labels are hidden: we see words, and the label of a word
    depends on its neighbours' labels ("can" is a verb after "you", a noun after "the"). A
    hidden Markov model is the generative model behind this: a Markov chain over tags, each tag
    emitting one word. It is the n-gram model of s19 moved onto hidden states, and Viterbi is
    the dynamic programme that beam search (s34) approximates when the state space is too big.
    Modern taggers put a neural encoder (BERT, s27) under the same decoding idea (a CRF layer).

The model (K tags, V known words, a sentence w_0..w_{T-1} with tags z_0..z_{T-1})
    p(w, z) = pi[z_0] B[z_0, w_0] * prod_{t >= 1} A[z_{t-1}, z_t] B[z_t, w_t]
    pi (K,) start probabilities, A (K, K) transitions (rows sum to 1), B (K, V + 1) emissions,
    whose last column is <unk>: any word the model has no column for.
    All three are kept as logs; hmm = (log_pi, log_A, log_B), a plain tuple.

Estimation from a tagged corpus (counts c, smoothing alpha > 0)
    pi[k]   = (c(first tag = k) + alpha) / (n_sentences + alpha K)
    A[j, k] = (c(j followed by k) + alpha) / (c(j followed by anything) + alpha K)
    B[k, w] = (c(k emits w) + alpha) / (c(k) + alpha (V + 1))     for w in 0..V,
    where training words outside [0, V) count as <unk> (w = V). Without smoothing one unseen
    word or transition gives a sentence probability 0 and log -inf for every tagging.

Decoding, all in log space (a product of 2000 probabilities ~ 0.1 is 1e-2000: float64
underflows to 0 below 1e-308, so probabilities are never multiplied, log-probabilities added)
    Viterbi  delta_0(k) = log pi_k + log B[k, w_0]
             delta_t(k) = max_j (delta_{t-1}(j) + log A[j, k]) + log B[k, w_t], psi_t(k) = argmax
             best last tag = argmax_k delta_{T-1}(k), then follow psi backwards: O(T K^2),
             against K^T for brute force.
    forward  alpha_t(k) = log p(w_0..w_t, z_t = k): the same recursion with logsumexp for max;
             log p(w) = logsumexp_k alpha_{T-1}(k)
    backward beta_{T-1}(k) = 0; beta_t(j) = logsumexp_k (log A[j, k] + log B[k, w_{t+1}]
             + beta_{t+1}(k)) = log p(w_{t+1}..w_{T-1} | z_t = j)
    posterior p(z_t = k | w) = exp(alpha_t(k) + beta_t(k) - log p(w))
    logsumexp(a) = m + log(sum(exp(a - m))) with m = max(a): the largest term becomes exp(0).

Shapes
    words, tags int (T,); corpus a list of (words, tags) pairs; alpha, beta, posteriors (T, K).

You should be able to explain
    - why the tags must be decoded jointly (Viterbi) and not one word at a time;
    - why Viterbi's path and the per-token posterior argmax can differ, and which maximises what;
    - why log space is needed and where logsumexp replaces a sum;
    - what smoothing does to unseen words and transitions, and how mapping rare training words
      to <unk> teaches the model which tags unknown words tend to have.
"""

from __future__ import annotations

import numpy as np


def logsumexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(a), axis)) computed as m + log(sum(exp(a - m))) with m the max along axis:
    finite for huge or tiny inputs; a slice that is all -inf gives -inf (no nan, no warning)."""
    a = np.asarray(a, dtype=np.float64)
    raise NotImplementedError("s47 sequence labeling: subtract the max (0 where it is -inf), exp, sum, log, add the max back")


def sample_corpus(start: np.ndarray, trans: np.ndarray, emit: np.ndarray, n_sentences: int,
                  length: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """n_sentences pairs (words, tags), each int64 (length,), drawn from the HMM with
    probabilities start (K,), trans (K, K), emit (K, V): z_0 ~ start, z_t ~ trans[z_{t-1}],
    w_t ~ emit[z_t], with np.random.default_rng(seed) (same seed, same corpus)."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    rng = np.random.default_rng(seed)
    corpus = []
    raise NotImplementedError("s47 sequence labeling: draw the tag chain, then one word per tag")
    return corpus


def unknown_to_column(words: np.ndarray, n_words: int) -> np.ndarray:
    """A copy of words (int64) where every id outside [0, n_words) becomes n_words, the <unk>
    emission column; known ids are unchanged."""
    words = np.asarray(words, dtype=np.int64)
    raise NotImplementedError("s47 sequence labeling: known ids stay, the rest become n_words")


def fit_hmm(corpus: list[tuple[np.ndarray, np.ndarray]], n_tags: int, n_words: int,
            alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log_pi (K,), log_A (K, K), log_B (K, n_words + 1)) from a tagged corpus by add-alpha
    smoothed counts (module docstring); training words outside [0, n_words) count as <unk>,
    the last emission column. alpha > 0 (ValueError otherwise)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    raise NotImplementedError("s47 sequence labeling: count first tags, tag bigrams and tag-word pairs, smooth, normalise, log")


def _check(words) -> np.ndarray:
    words = np.asarray(words, dtype=np.int64)
    if words.ndim != 1 or words.size == 0:
        raise ValueError(f"a sentence is a non-empty 1-D array of word ids, got {words.shape}")
    return words


def joint_logprob(hmm, words: np.ndarray, tags: np.ndarray) -> float:
    """log p(words, tags) = log pi[z_0] + sum_t log B[z_t, w_t] + sum_{t>=1} log A[z_{t-1}, z_t],
    with hmm = (log_pi, log_A, log_B) and words already in B's columns."""
    log_pi, log_A, log_B = hmm
    words, tags = _check(words), np.asarray(tags, dtype=np.int64)
    raise NotImplementedError("s47 sequence labeling: the start, every emission, every transition")


def viterbi(hmm, words: np.ndarray) -> tuple[np.ndarray, float]:
    """(tags int64 (T,), log p(words, tags)) for the tag sequence of highest joint probability
    (any one of them on exact ties), by dynamic programming in log space."""
    log_pi, log_A, log_B = hmm
    words = _check(words)
    raise NotImplementedError("s47 sequence labeling: delta and back-pointers forwards, then follow them back from the best end")


def forward(hmm, words: np.ndarray) -> tuple[np.ndarray, float]:
    """(log alpha (T, K), log p(words)): alpha[t, k] = log p(w_0..w_t, z_t = k), and
    log p(words) = logsumexp of the last row."""
    log_pi, log_A, log_B = hmm
    words = _check(words)
    raise NotImplementedError("s47 sequence labeling: alpha_0 = start + emission; then logsumexp over the previous tag")


def backward(hmm, words: np.ndarray) -> np.ndarray:
    """log beta (T, K): beta[t, j] = log p(w_{t+1}..w_{T-1} | z_t = j), the last row 0."""
    _, log_A, log_B = hmm
    words = _check(words)
    raise NotImplementedError("s47 sequence labeling: beta_{T-1} = 0; logsumexp over the next tag of A + B(next word) + beta")


def posteriors(hmm, words: np.ndarray) -> np.ndarray:
    """(T, K) probabilities p(z_t = k | words) = exp(alpha + beta - log p(words)); each row
    sums to 1."""
    raise NotImplementedError("s47 sequence labeling: combine forward and backward, normalise by log p(words)")


def evaluate(hmm, corpus: list[tuple[np.ndarray, np.ndarray]],
             n_words: int) -> tuple[float, np.ndarray]:
    """(token accuracy, confusion (K, K) int64 with confusion[gold, predicted] counts) of the
    Viterbi tags on a tagged corpus, words mapped by unknown_to_column(words, n_words) first."""
    if sum(len(tags) for _, tags in corpus) == 0:
        raise ValueError("evaluate needs at least one tagged token")
    n_tags = len(hmm[0])
    confusion = np.zeros((n_tags, n_tags), dtype=np.int64)
    raise NotImplementedError("s47 sequence labeling: tag each sentence with viterbi, count (gold, predicted) pairs")
    return float(np.trace(confusion) / confusion.sum()), confusion

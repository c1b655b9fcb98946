"""s18 · Word embeddings: counting (PPMI + SVD) and predicting (skip-gram with negatives).

You build
    cooccurrence(sentences, V, window)        C (V, V): how often w and c are within `window`
    ppmi(C, alpha)                            positive pointwise mutual information
    svd_embeddings(M, dim, power)             dense vectors from a truncated SVD
    skipgram_pairs(sentences, window)         the (center, context) pairs skip-gram trains on
    negative_distribution(counts, power)      unigram^0.75: where negatives are drawn from
    sgns_loss_and_grads(W_in, W_out, ...)     skip-gram negative-sampling loss and gradients
    train_sgns(sentences, V, ...)             mini-batch SGD on that loss, seeded
    most_similar(E, i, k), analogy(E, a, b, c) nearest words by cosine, 3CosAdd analogies

How it differs from s17
    s17 gave each WORD a column and each document a row: vectors as long as the vocabulary,
    with "dog" and "puppy" orthogonal. Here each word gets a short dense vector learned from
    the company it keeps (the distributional hypothesis): words used in similar contexts get
    similar vectors, so "dog" and "puppy" end up close without anyone saying so.

The math
    Co-occurrence: C[w, c] = number of times c appears within `window` positions of w, in
    the same sentence (weighted 1/distance when harmonic). C is symmetric.
    PPMI, with N = sum C, P(w) = C[w, :].sum() / N and context smoothing alpha:
        P_alpha(c) = C[:, c].sum()^alpha / sum_c' C[:, c'].sum()^alpha
        PMI(w, c)  = ln( (C[w, c] / N) / (P(w) P_alpha(c)) ),  PPMI = max(PMI, 0), 0 if C = 0.
    alpha = 0.75 raises rare contexts' probability, taming PMI's love of rare words.
    SVD: M = U S V^T; E = U[:, :dim] * S[:dim]^power. A singular vector's sign is arbitrary;
    we flip each column of E so its largest-magnitude entry is positive (a unique answer).

    Skip-gram with negative sampling (word2vec): for a pair (w, c) and K negatives n_1..n_K
    drawn from P_neg(x) ~ count(x)^0.75, with v = W_in[w], u = W_out[.], sigma the sigmoid,
        loss(w, c) = -ln sigma(u_c . v) - sum_k ln sigma(-u_{n_k} . v),
    averaged over the batch. With s = sigma(u . v): d/dv = (s_c - 1) u_c + sum_k s_k u_{n_k},
    d/du_c = (s_c - 1) v, d/du_{n_k} = s_k v. A word can appear several times in one batch:
    its gradient rows must ADD (np.add.at), not overwrite. Levy & Goldberg (2014): SGNS
    implicitly factorises a shifted PMI matrix, so the two routes meet.

    Analogy (3CosAdd): with unit rows e, "a is to b as c is to ?" is
        argmax_{d not in {a, b, c}} cos(e_d, e_b - e_a + e_c).

Shapes
    sentences: a list of int sequences (token ids in [0, V)). C, PPMI: (V, V). E: (V, dim).
    pairs: (P, 2) ints. W_in, W_out: (V, d). centers, contexts: (B,), negatives: (B, K).

You should be able to explain
    - what an embedding "means" operationally (a position that predicts contexts);
    - why cosine similarity is used (direction, not frequency-driven length);
    - why PMI needs the positive clip and context smoothing, and why negatives follow ^0.75;
    - how nearest neighbours in embedding space become retrieval (RAG starts here);
    - that analogies reflect the corpus: planted relations here, human biases (gender,
      culture) in real text, which embeddings learn and reproduce just as faithfully.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_ids(sentences: Sequence[Sequence[int]], vocab_size: int) -> list[np.ndarray]:
    out = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sentences]
    for s in out:
        if s.size and (s.min() < 0 or s.max() >= vocab_size):
            raise ValueError(f"token ids must lie in [0, {vocab_size}), got {s.min()}..{s.max()}")
    return out


def cooccurrence(sentences: Sequence[Sequence[int]], vocab_size: int, window: int = 2,
                 harmonic: bool = False) -> np.ndarray:
    """C (V, V): C[w, c] += 1 (or 1 / distance if ``harmonic``) for every ordered pair of
    positions i != j of one sentence with |i - j| <= window."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    # BEGIN SOLUTION: for each offset d = 1..window, add the pairs (s[i], s[i + d]) both ways
    C = np.zeros((vocab_size, vocab_size))
    for s in _check_ids(sentences, vocab_size):
        for d in range(1, window + 1):
            weight = 1.0 / d if harmonic else 1.0
            np.add.at(C, (s[:-d], s[d:]), weight)
            np.add.at(C, (s[d:], s[:-d]), weight)
    return C
    # END SOLUTION


def ppmi(C: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """max(0, ln(P(w, c) / (P(w) P_alpha(c)))), with 0 where C[w, c] = 0."""
    C = np.asarray(C, dtype=np.float64)
    # BEGIN SOLUTION: joint, row marginal, smoothed context marginal, log ratio, clip
    p_wc = C / C.sum()
    p_w = C.sum(axis=1, keepdims=True) / C.sum()
    ctx = C.sum(axis=0) ** alpha
    p_c = ctx / ctx.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(p_wc / (p_w * p_c))
    return np.where(C > 0, np.maximum(pmi, 0.0), 0.0)
    # END SOLUTION


def svd_embeddings(M: np.ndarray, dim: int, power: float = 1.0) -> np.ndarray:
    """E (V, dim) = U[:, :dim] * S[:dim] ** power; each column's largest |entry| positive."""
    M = np.asarray(M, dtype=np.float64)
    if not 1 <= dim <= min(M.shape):
        raise ValueError(f"dim must be between 1 and {min(M.shape)}, got {dim}")
    # BEGIN SOLUTION: SVD, keep the top dim, scale by S**power, fix each column's sign
    U, S, _ = np.linalg.svd(M)
    E = U[:, :dim] * S[:dim] ** power
    signs = np.sign(E[np.argmax(np.abs(E), axis=0), np.arange(dim)])
    return E * np.where(signs == 0, 1.0, signs)
    # END SOLUTION


def skipgram_pairs(sentences: Sequence[Sequence[int]], window: int) -> np.ndarray:
    """(P, 2) ints: for each sentence, position i, then j = i - window .. i + window (j != i,
    inside the sentence) in increasing order, the pair (s[i], s[j])."""
    # BEGIN SOLUTION: nested loops over sentences, centers and the window around each
    pairs = []
    for s in sentences:
        for i in range(len(s)):
            for j in range(max(0, i - window), min(len(s), i + window + 1)):
                if j != i:
                    pairs.append((s[i], s[j]))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
    # END SOLUTION


def negative_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """P_neg (V,) = counts ** power / sum(counts ** power)."""
    # BEGIN SOLUTION: raise the counts to the power and normalise
    w = np.asarray(counts, dtype=np.float64) ** power
    return w / w.sum()
    # END SOLUTION


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def sgns_loss_and_grads(W_in: np.ndarray, W_out: np.ndarray, centers: np.ndarray,
                        contexts: np.ndarray, negatives: np.ndarray
                        ) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean over the batch of -ln s(u_c . v) - sum_k ln s(-u_nk . v); returns (loss, dW_in,
    dW_out), both full (V, d) arrays with repeated words' gradients summed."""
    # BEGIN SOLUTION: gather v, u_pos, u_neg; scores; loss; scatter-add the gradients
    B = len(centers)
    v = W_in[centers]                                    # (B, d)
    u_pos = W_out[contexts]                              # (B, d)
    u_neg = W_out[negatives]                             # (B, K, d)
    pos = np.einsum("bd,bd->b", u_pos, v)                # (B,)
    neg = np.einsum("bkd,bd->bk", u_neg, v)              # (B, K)
    loss = -(_log_sigmoid(pos).sum() + _log_sigmoid(-neg).sum()) / B
    g_pos = (np.exp(_log_sigmoid(pos)) - 1.0) / B        # dloss/dpos
    g_neg = np.exp(_log_sigmoid(neg)) / B                # dloss/dneg
    dW_in, dW_out = np.zeros_like(W_in), np.zeros_like(W_out)
    np.add.at(dW_in, centers, g_pos[:, None] * u_pos + np.einsum("bk,bkd->bd", g_neg, u_neg))
    np.add.at(dW_out, contexts, g_pos[:, None] * v)
    np.add.at(dW_out, negatives, g_neg[:, :, None] * v[:, None, :])
    return float(loss), dW_in, dW_out
    # END SOLUTION


def train_sgns(sentences: Sequence[Sequence[int]], vocab_size: int, dim: int = 10,
               window: int = 2, n_negatives: int = 5, epochs: int = 5, lr: float = 1.0,
               batch_size: int = 64, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(W_in, W_out, batch losses). rng = default_rng(seed); W_in ~ rng.uniform(-0.5 / dim,
    0.5 / dim, (V, dim)), W_out = 0; pairs = skipgram_pairs; negatives from
    negative_distribution(token counts). Each epoch: order = rng.permutation(P); for each
    consecutive batch: rng.choice(V, (B, n_negatives), p=P_neg), then an SGD step with lr."""
    ids = _check_ids(sentences, vocab_size)
    # BEGIN SOLUTION: init, pairs and P_neg, then epochs of shuffled batches and SGD steps
    rng = np.random.default_rng(seed)
    W_in = rng.uniform(-0.5 / dim, 0.5 / dim, (vocab_size, dim))
    W_out = np.zeros((vocab_size, dim))
    pairs = skipgram_pairs(ids, window)
    counts = np.bincount(np.concatenate(ids), minlength=vocab_size)
    p_neg = negative_distribution(counts)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(pairs), batch_size):
            batch = pairs[order[start:start + batch_size]]
            neg = rng.choice(vocab_size, size=(len(batch), n_negatives), p=p_neg)
            loss, g_in, g_out = sgns_loss_and_grads(W_in, W_out, batch[:, 0], batch[:, 1], neg)
            W_in -= lr * g_in
            W_out -= lr * g_out
            losses.append(loss)
    return W_in, W_out, losses
    # END SOLUTION


def _unit_rows(E: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    return E / np.where(norms > 0, norms, 1.0)


def most_similar(E: np.ndarray, i: int, k: int) -> np.ndarray:
    """The k words (ints) with the highest cosine to word i, i itself excluded, best first,
    equal cosines by lower index."""
    # BEGIN SOLUTION: cosines to row i, drop i, stable sort of the negatives
    e = _unit_rows(np.asarray(E, dtype=np.float64))
    sims = e @ e[i]
    sims[i] = -np.inf
    return np.argsort(-sims, kind="stable")[:k]
    # END SOLUTION


def analogy(E: np.ndarray, a, b, c) -> np.ndarray:
    """For each (a, b, c): argmax over d not in {a, b, c} of cos(e_d, e_b - e_a + e_c), e the
    unit rows of E; equal cosines by lower index. a, b, c: ints or (q,) arrays -> (q,) ints."""
    a, b, c = (np.atleast_1d(np.asarray(x, dtype=np.int64)) for x in (a, b, c))
    # BEGIN SOLUTION: unit rows, target vectors, cosines, exclude the three inputs, argmax
    e = _unit_rows(np.asarray(E, dtype=np.float64))
    target = _unit_rows(e[b] - e[a] + e[c])             # (q, d)
    sims = target @ e.T                                  # (q, V)
    rows = np.arange(len(a))
    for x in (a, b, c):
        sims[rows, x] = -np.inf
    return np.argmax(sims, axis=1)
    # END SOLUTION

"""s29 · The data pipeline: batches, padding and masks, BOS/EOS, deduplication, leakage.

You build
    pack_documents(docs, bos, eos)           one token stream: [bos] doc [eos] [bos] doc ...
    get_batch(stream, B, T, generator)       B random windows: x (B, T) and y = x shifted by one
    eval_batches(stream, B, T)               the whole stream in order, for validation loss
    pad_batch(docs, pad_id, ...)             variable-length documents -> x, y, attention_mask
    exact_dedup(docs)                        drop repeated documents (the first copy stays)
    shingles, jaccard, minhash, estimate_jaccard, near_dedup     MinHash near-duplicates
    find_leakage(train_docs, val_docs, n)    validation documents that share text with train

How it differs from the previous step
    s28 turned text into ids. A language model trains on (x, y) pairs where y[t] = x[t + 1]:
    the target of every position is the NEXT token. Getting that shift, the document
    boundaries (BOS / EOS) and the padding right is most of what "the data pipeline" means,
    and a wrong shift trains without complaint (the loss just goes to zero on copying). The
    other half is the data itself: duplicated documents are memorised and waste compute, and
    validation text that also sits in the training set makes the validation loss a lie.

Batches
    Packing: concatenate the documents, each as [bos] + doc + [eos] (either may be None).
    get_batch draws starts = torch.randint(0, len(stream) - T, (B,), generator=generator),
    ONE call, and takes x[b] = stream[s_b : s_b + T], y[b] = stream[s_b + 1 : s_b + T + 1].
    eval_batches cuts the stream into windows at 0, T, 2T, ... (the last window must still have
    its T + 1 tokens), grouped B at a time, the last group possibly smaller.
    Padding: each sequence is [bos] + doc + [eos], cut to max_len tokens when given, then
    right-padded with pad_id to the longest, L tokens; x = seq[:, :-1], y = seq[:, 1:] with
    ignore_index where the TARGET is padding; attention_mask[b, t] = x[b, t] is a real token
    (it comes from the lengths: pad_id may also be an ordinary id). The last real token of a
    row (EOS) is attended to but has no target: the loss mask is (y != ignore_index).

MinHash (Broder 1997)
    shingles(text, k): the set of character k-grams (the whole text when shorter than k).
    jaccard(A, B) = |A & B| / |A | B| (1.0 when both are empty).
    minhash: h(s) = _hash32(s), a fixed 32-bit hash; p = PRIME = 2^32 - 5; a, b =
    rng.integers(1, p, P), rng.integers(0, p, P) (uint64) with rng = np.random.default_rng(seed):
        signature[i] = min over s of (a[i] * h(s) + b[i]) mod p          (uint64, P entries)
    Each row is a random hash function; two sets share their minimum with probability
    exactly J(A, B), so estimate_jaccard = the fraction of equal entries, an unbiased estimate
    with standard deviation sqrt(J (1 - J) / P). near_dedup keeps a document unless its
    estimate with an earlier KEPT document is >= threshold. (All pairs here; LSH banding is
    how it scales to billions of documents.)

Leakage
    words(text) = re.findall(r"\\w+", text.lower()); a document's n-grams are its runs of n
    consecutive words (the whole word tuple when it has fewer than n words). A validation
    document leaks when it shares one n-gram with the training set (GPT-3 used n = 13); a
    document without any word never leaks.

You should be able to explain
    - why y is x shifted by one, and what goes wrong silently if it is not;
    - why the attention mask comes from the lengths and the loss mask from the targets;
    - why P(min-hashes equal) = Jaccard, and how the error shrinks with the number of hashes;
    - why duplicates and train/validation overlap make a model look better than it is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import numpy as np
import torch

PRIME = 4_294_967_291  # the largest prime below 2^32: a * h + b < 2^64 never overflows uint64


def pack_documents(docs: Sequence[Sequence[int]], bos: int | None = None,
                   eos: int | None = None) -> torch.Tensor:
    """One int64 stream: [bos] + doc + [eos] for each document in order (None: left out)."""
    # BEGIN SOLUTION: wrap each document in bos / eos when given, concatenate
    out: list[int] = []
    for doc in docs:
        out += ([bos] if bos is not None else []) + list(doc) + ([eos] if eos is not None else [])
    return torch.tensor(out, dtype=torch.long)
    # END SOLUTION


def get_batch(stream: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T) = stream[s : s + T], y = stream[s + 1 : s + T + 1], s from one randint draw."""
    if len(stream) <= block_size:
        raise ValueError(f"a stream of {len(stream)} tokens has no window of {block_size} + 1")
    # BEGIN SOLUTION: one torch.randint draw of B starts, then stack the windows
    starts = torch.randint(0, len(stream) - block_size, (batch_size,), generator=generator)
    x = torch.stack([stream[s:s + block_size] for s in starts.tolist()])
    y = torch.stack([stream[s + 1:s + block_size + 1] for s in starts.tolist()])
    return x, y
    # END SOLUTION


def eval_batches(stream: torch.Tensor, batch_size: int,
                 block_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Windows at 0, T, 2T, ... (each with its T + 1 tokens), B per batch, the last smaller."""
    # BEGIN SOLUTION: starts 0, T, 2T, ... while s + T + 1 <= len; yield them B at a time
    starts = list(range(0, len(stream) - block_size, block_size))
    for i in range(0, len(starts), batch_size):
        group = starts[i:i + batch_size]
        yield (torch.stack([stream[s:s + block_size] for s in group]),
               torch.stack([stream[s + 1:s + block_size + 1] for s in group]))
    # END SOLUTION


def pad_batch(docs: Sequence[Sequence[int]], pad_id: int, bos: int | None = None,
              eos: int | None = None, max_len: int | None = None, ignore_index: int = -100,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, attention_mask), each (B, L - 1): right padding, y ignore_index on padding."""
    if not docs:
        raise ValueError("pad_batch needs at least one document")
    # BEGIN SOLUTION: wrap, cut to max_len, pad to the longest, shift, mask from the lengths
    seqs = [([bos] if bos is not None else []) + list(d) + ([eos] if eos is not None else [])
            for d in docs]
    seqs = [s[:max_len] if max_len is not None else s for s in seqs]
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs])
    real = torch.arange(L)[None, :] < lengths[:, None]  # (B, L)
    y = ids[:, 1:].masked_fill(~real[:, 1:], ignore_index)
    return ids[:, :-1], y, real[:, :-1]
    # END SOLUTION


def exact_dedup(docs: Sequence[str]) -> list[int]:
    """Indices of the documents kept: the first copy of each distinct text, in order."""
    # BEGIN SOLUTION: remember the texts seen; keep an index the first time its text appears
    seen, kept = set(), []
    for i, doc in enumerate(docs):
        if doc not in seen:
            seen.add(doc)
            kept.append(i)
    return kept
    # END SOLUTION


def shingles(text: str, k: int = 5) -> set[str]:
    """The set of character k-grams of text ({text} when it is shorter than k)."""
    # BEGIN SOLUTION: every substring of length k
    if len(text) < k:
        return {text}
    return {text[i:i + k] for i in range(len(text) - k + 1)}
    # END SOLUTION


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|, and 1.0 for two empty sets."""
    # BEGIN SOLUTION: intersection over union
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
    # END SOLUTION


def _hash32(shingle: str) -> int:
    """A fixed 32-bit hash of a shingle (Python's hash() changes with every process)."""
    return int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=4).digest(),
                          "little")


def minhash(shingle_set: set[str], num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """(num_perm,) uint64: min over s of (a_i h(s) + b_i) mod PRIME, see the module docstring."""
    if not shingle_set:
        raise ValueError("the MinHash of an empty set is undefined")
    rng = np.random.default_rng(seed)
    a = rng.integers(1, PRIME, num_perm, dtype=np.uint64)
    b = rng.integers(0, PRIME, num_perm, dtype=np.uint64)
    # BEGIN SOLUTION: hash every shingle, apply all num_perm hash functions, take the minimum
    h = np.array([_hash32(s) for s in shingle_set], dtype=np.uint64)  # (S,)
    return ((a[:, None] * h[None, :] + b[:, None]) % np.uint64(PRIME)).min(axis=1)
    # END SOLUTION


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of positions where the two signatures agree."""
    # BEGIN SOLUTION: mean of the element-wise equality
    return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))
    # END SOLUTION


def near_dedup(docs: Sequence[str], threshold: float = 0.8, k: int = 5, num_perm: int = 128,
               seed: int = 0) -> list[int]:
    """Indices kept: a document goes when its estimate with an earlier KEPT one is >= threshold."""
    # BEGIN SOLUTION: signatures of every document; greedy pass keeping the first of each group
    sigs = [minhash(shingles(d, k), num_perm, seed) for d in docs]
    kept: list[int] = []
    for i, sig in enumerate(sigs):
        if all(estimate_jaccard(sig, sigs[j]) < threshold for j in kept):
            kept.append(i)
    return kept
    # END SOLUTION


def find_leakage(train_docs: Sequence[str], val_docs: Sequence[str], n: int = 8) -> list[int]:
    """Indices of the validation documents sharing a word n-gram with any training document."""
    # BEGIN SOLUTION: the set of training n-grams; flag a validation doc that hits one
    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        if len(words) < n:
            return {tuple(words)} if words else set()
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}

    seen = set().union(*(grams(t) for t in train_docs))
    return [i for i, doc in enumerate(val_docs) if grams(doc) & seen]
    # END SOLUTION

"""Hidden graders for s29: the documented MinHash, near_dedup's greedy rule, leakage edge
cases, the global RNG, padding without BOS, short streams."""

import hashlib

import numpy as np
import pytest
import torch

from graders.test_s29_data_pipeline import edit, random_doc

PRIME = 4_294_967_291


def reference_minhash(shingle_set, num_perm, seed):
    """The module docstring's MinHash, with Python integers (no overflow anywhere)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, PRIME, num_perm, dtype=np.uint64)
    b = rng.integers(0, PRIME, num_perm, dtype=np.uint64)
    hs = [int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(), "little")
          for s in shingle_set]
    return np.array([min((int(ai) * h + int(bi)) % PRIME for h in hs)
                     for ai, bi in zip(a, b, strict=True)], dtype=np.uint64)


@pytest.mark.points(3)
def test_minhash_is_the_documented_family(impl, rng):
    for k, num_perm, seed in ((5, 16, 0), (3, 40, 7), (2, 1, 11)):
        text = random_doc(rng, 12)
        sh = impl.shingles(text, k)
        got = np.asarray(impl.minhash(sh, num_perm, seed))
        want = reference_minhash(sh, num_perm, seed)
        assert got.shape == want.shape and np.array_equal(got.astype(np.uint64), want), (
            f"minhash(shingles, num_perm={num_perm}, seed={seed}) differs from the docstring's "
            f"min over s of (a_i * h(s) + b_i) mod (2^32 - 5), with a = rng.integers(1, p, "
            f"num_perm) drawn BEFORE b = rng.integers(0, p, num_perm) from "
            f"np.random.default_rng(seed): first entries {want[:3]} expected, got {got[:3]}")
    one = impl.minhash({"hello"}, 8, 0)
    assert np.array_equal(np.asarray(one).astype(np.uint64), reference_minhash({"hello"}, 8, 0))
    with pytest.raises(ValueError):
        impl.minhash(set(), 8, 0)


@pytest.mark.points(2)
def test_estimate_counts_the_agreeing_positions(impl):
    a = np.array([1, 2, 3, 4, 5, 6, 7, 8], dtype=np.uint64)
    b = np.array([1, 9, 3, 9, 9, 6, 9, 8], dtype=np.uint64)
    assert impl.estimate_jaccard(a, b) == pytest.approx(0.5), "4 of 8 positions agree: 0.5"
    assert impl.estimate_jaccard(a, a) == 1.0 and impl.estimate_jaccard(a, a + 1) == 0.0
    assert isinstance(impl.estimate_jaccard(a, b), float), "return a Python float"


@pytest.mark.points(2)
def test_near_dedup_compares_with_kept_documents_only(impl, rng):
    base = random_doc(rng, 40)
    chain = [base]
    for _ in range(6):  # each a small edit of the previous: neighbours close, ends far apart
        chain.append(edit(rng, chain[-1], 6))
    docs = chain + [random_doc(rng, 40)]
    for threshold, k, num_perm, seed in ((0.55, 5, 64, 0), (0.4, 4, 96, 3)):
        sigs = [reference_minhash(impl.shingles(d, k), num_perm, seed) for d in docs]
        expected = []
        for i, s in enumerate(sigs):
            if all(np.mean(s == sigs[j]) < threshold for j in expected):
                expected.append(i)
        got = impl.near_dedup(docs, threshold=threshold, k=k, num_perm=num_perm, seed=seed)
        assert got == expected, (
            f"near_dedup(threshold={threshold}, k={k}, num_perm={num_perm}, seed={seed}) on "
            f"a chain of documents, each a small edit of the one before: expected kept "
            f"{expected}, got {got}. A document is dropped only when its estimate with an "
            "earlier document that was KEPT reaches the threshold (>=)")
    assert impl.near_dedup([]) == [] and impl.near_dedup(["only one"]) == [0]


@pytest.mark.points(2)
def test_near_dedup_threshold_is_inclusive(impl):
    docs = ["the same words", "the same words", "other text entirely"]
    assert impl.near_dedup(docs, threshold=1.0) == [0, 2], (
        "identical documents have estimate exactly 1.0: with threshold=1.0 the copy must go "
        "(estimate >= threshold)")


@pytest.mark.points(2)
def test_leakage_normalises_case_and_punctuation_and_handles_short_documents(impl):
    train = ["The quick brown fox jumps over the lazy dog near the river bank today.",
             "short one", ""]
    val = ["the QUICK, brown fox -- jumps over the lazy dog!",  # 9 words: 8-grams match
           "Short One",                                       # fewer than n words, equal
           "a brown fox sleeps",                              # shares words, no 8-gram
           "",                                                # no words: never leaks
           "short one more",                                  # 3 words, not equal to any
           "lazy dog near"]                                   # a 3-gram of the training text
    assert impl.find_leakage(train, val, n=8) == [0, 1], (
        "case and punctuation do not hide a copy (lower-case, \\w+ words); a document with "
        "fewer than n words leaks when its words equal a short training document's; an empty "
        f"document never leaks: expected [0, 1], got {impl.find_leakage(train, val, n=8)}")
    assert impl.find_leakage(train, val, n=3) == [0, 1, 5], (
        "with n=3, 'lazy dog near' is a 3-gram of the first training document and leaks too; "
        "'short one more' is one 3-gram found nowhere: expected [0, 1, 5], got "
        f"{impl.find_leakage(train, val, n=3)}")
    assert impl.find_leakage([], val, n=8) == [], "no training text: nothing can leak"
    train = ["w1 w2 w3 w4 w5 w6 w7 w8 w9"]
    val = ["q w3 w4 w5 w6 w7 w8 w9",  # only 7 words in common: no shared 8-gram
           "w2 w3 w4 w5 w6 w7 w8 w9",  # the last 8-gram of the training document
           "w1 w2 w3 w4 w5 w6 w7 w8 z"]  # the first one
    assert impl.find_leakage(train, val, n=8) == [1, 2], (
        "an n-gram is exactly n consecutive words, from the first window to the last: a "
        "document sharing only 7 words with the training text does not leak, one holding "
        f"its first or last 8 words does; expected [1, 2], got {impl.find_leakage(train, val)}")


@pytest.mark.points(1)
def test_get_batch_without_generator_uses_the_global_rng(impl):
    stream = torch.arange(40)
    torch.manual_seed(5)
    x, y = impl.get_batch(stream, 4, 6)
    torch.manual_seed(5)
    starts = torch.randint(0, 34, (4,))
    assert x[:, 0].tolist() == starts.tolist() and torch.equal(y, x + 1), (
        "generator=None draws from torch's global generator (torch.manual_seed)")
    with pytest.raises(ValueError):
        impl.get_batch(torch.arange(6), 2, 6)


@pytest.mark.points(2)
def test_pad_batch_with_bos_only_a_single_document_and_short_streams(impl):
    x, y, mask = impl.pad_batch([[7, 8], [9]], pad_id=3, bos=1)
    assert x.tolist() == [[1, 7], [1, 9]] and y.tolist() == [[7, 8], [9, -100]], (
        f"bos=1 only: sequences [1, 7, 8] and [1, 9, pad]: x [[1, 7], [1, 9]], y [[7, 8], "
        f"[9, -100]]; got x {x.tolist()}, y {y.tolist()}")
    assert mask.tolist() == [[True, True], [True, True]]
    assert x.dtype == y.dtype == torch.int64, "x and y are int64 token ids"
    x, y, mask = impl.pad_batch([[5, 6, 7]], pad_id=0, bos=1, eos=2, max_len=3)
    assert x.tolist() == [[1, 5]] and y.tolist() == [[5, 6]] and mask.tolist() == [[True, True]]
    assert list(impl.eval_batches(torch.arange(5), 3, 5)) == [], (
        "a stream of 5 tokens has no window of 5 + 1: eval_batches yields nothing")
    batches = list(impl.eval_batches(torch.arange(11), 3, 5))
    assert len(batches) == 1 and batches[0][0].tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], (
        "11 = 2 * 5 + 1 tokens: exactly 2 windows, the last target is the last token")
    assert impl.pack_documents([]).tolist() == [] and impl.pack_documents([[4]], bos=9).tolist() \
        == [9, 4], "bos only: [bos] + doc"

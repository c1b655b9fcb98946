"""Public graders for s29 data_pipeline: shifted targets, the documented draw, padding masks
that line up with BOS / EOS, duplicates, MinHash's error bound, planted leakage.

Oracles: torch.randint on a cloned Generator, hand-built expected tensors, exact Jaccard on
the shingle sets, datasketch's MinHash when installed.
"""

import importlib.util
import math

import numpy as np
import pytest
import torch

WORDS = ("river stone lantern copper meadow violet thunder harbor pepper marble orchard "
         "falcon ember quiet silver candle willow saddle basket ladder crimson pebble jungle "
         "kettle nimbus oyster quartz rhubarb tundra umbra vortex wizard yodel zephyr bramble "
         "cobalt dynamo fjord gizmo hickory igloo jasmine kiosk lagoon mosaic nectar onyx "
         "plinth quiver rosin sprocket tavern").split()


def random_doc(rng, n_words):
    return " ".join(rng.choice(WORDS, size=n_words))


def edit(rng, doc, n_changes):
    """doc with n_changes words replaced: a near-duplicate."""
    words = doc.split()
    for i in rng.choice(len(words), size=n_changes, replace=False):
        words[i] = str(rng.choice(WORDS)).upper()
    return " ".join(words)


def bound(J, num_perm):
    """4.5 standard deviations of a Binomial(num_perm, J) fraction, plus one hash's worth."""
    return 4.5 * math.sqrt(J * (1 - J) / num_perm) + 1.5 / num_perm


@pytest.mark.points(2)
def test_pack_documents_wraps_every_document(impl):
    docs = [[5, 6, 7], [], [8]]
    got = impl.pack_documents(docs, bos=1, eos=2)
    assert got.dtype == torch.int64, f"the stream must be int64 token ids, got {got.dtype}"
    assert got.tolist() == [1, 5, 6, 7, 2, 1, 2, 1, 8, 2], (
        f"[bos] + doc + [eos] per document, in order (an empty document still gets both): "
        f"expected [1, 5, 6, 7, 2, 1, 2, 1, 8, 2], got {got.tolist()}")
    assert impl.pack_documents(docs, eos=0).tolist() == [5, 6, 7, 0, 0, 8, 0], (
        "with eos only (bos=None), each document ends with eos and nothing goes in front")
    assert impl.pack_documents(docs).tolist() == [5, 6, 7, 8], "no bos / eos: plain concatenation"


@pytest.mark.points(3)
def test_get_batch_targets_are_the_inputs_shifted_by_one(impl):
    stream = (torch.arange(60) * 7) % 61  # distinct values: a window is known by its start
    gen = torch.Generator().manual_seed(123)
    x, y = impl.get_batch(stream, 6, 9, gen)
    assert x.shape == y.shape == (6, 9), (
        f"x and y must be (B, T) = (6, 9), got {tuple(x.shape)}, {tuple(y.shape)}")
    assert torch.equal(y[:, :-1], x[:, 1:]), (
        "y must be x shifted by one: y[b, t] == x[b, t + 1]. The target of position t is the "
        "NEXT token")
    ref = torch.Generator().manual_seed(123)
    starts = torch.randint(0, 60 - 9, (6,), generator=ref)
    expected_x = torch.stack([stream[s:s + 9] for s in starts])
    expected_y = torch.stack([stream[s + 1:s + 10] for s in starts])
    assert torch.equal(x, expected_x) and torch.equal(y, expected_y), (
        "the windows must start at torch.randint(0, len(stream) - block_size, (batch_size,), "
        f"generator=generator), one call: expected starts {starts.tolist()}, got "
        f"{[int((stream == r[0]).nonzero()[0]) for r in x]}")
    assert torch.equal(torch.randint(0, 1000, (3,), generator=gen),
                       torch.randint(0, 1000, (3,), generator=ref)), (
        "get_batch must draw from the generator exactly once (one randint of batch_size)")


@pytest.mark.points(1)
def test_get_batch_reaches_the_last_window(impl):
    stream = torch.arange(12)
    gen = torch.Generator().manual_seed(0)
    x, y = impl.get_batch(stream, 400, 8, gen)
    assert int(x[:, 0].max()) == 3 and int(x[:, 0].min()) == 0, (
        "with 12 tokens and block_size 8 the starts are 0..3 (y needs one token more); got "
        f"starts from {int(x[:, 0].min())} to {int(x[:, 0].max())}")
    assert int(y.max()) == 11, "the last token of the stream is a target of the last window"


@pytest.mark.points(2)
def test_eval_batches_walk_the_stream_in_order(impl):
    stream = torch.arange(53)
    batches = list(impl.eval_batches(stream, 4, 5))
    starts = [int(s) for x, _ in batches for s in x[:, 0]]
    assert starts == list(range(0, 50, 5)), (
        f"53 tokens, block_size 5: windows start at 0, 5, ..., 45 (45 + 5 + 1 <= 53, 50 + 6 "
        f"> 53), got starts {starts}")
    assert [len(x) for x, _ in batches] == [4, 4, 2], "4 per batch, the last batch smaller"
    for x, y in batches:
        assert torch.equal(y, x + 1), "y is x shifted by one in every evaluation window"
    assert len(list(impl.eval_batches(torch.arange(16), 2, 5))) == 2, (
        "16 tokens = 3 windows of 5 + 1 target: 2 batches (2 + 1)")


@pytest.mark.points(3)
def test_pad_batch_masks_line_up_with_bos_eos_and_padding(impl):
    PAD, BOS, EOS = 0, 1, 2  # pad_id 0 also occurs inside a document
    docs = [[7, 0, 9], [5], [], [3, 4, 5, 6, 8]]
    x, y, mask = impl.pad_batch(docs, PAD, bos=BOS, eos=EOS)
    seqs = [[BOS, *d, EOS] for d in docs]  # lengths 5, 3, 2, 7 -> L = 7, x / y are (4, 6)
    ex = torch.tensor([s + [PAD] * (7 - len(s)) for s in seqs])[:, :-1]
    ey = torch.tensor([s[1:] + [-100] * (7 - len(s)) for s in seqs])
    em = torch.tensor([[t < len(s) for t in range(6)] for s in seqs])
    assert tuple(x.shape) == tuple(y.shape) == tuple(mask.shape) == (4, 6), (
        f"4 documents, the longest 7 tokens with BOS and EOS: x, y and the mask are (4, 6), got "
        f"{tuple(x.shape)}, {tuple(y.shape)}, {tuple(mask.shape)}")
    assert torch.equal(x, ex), f"x = the padded sequences minus the last column:\n{ex}\ngot\n{x}"
    assert torch.equal(y, ey), (
        f"y = the padded sequences shifted by one, -100 where the TARGET is padding (EOS is "
        f"still a target):\n{ey}\ngot\n{y}")
    assert mask.dtype == torch.bool and torch.equal(mask, em), (
        "attention_mask[b, t] is True where x[b, t] is a real token, from the lengths: the "
        f"pad id 0 also appears inside the first document\nexpected\n{em}\ngot\n{mask}")
    assert torch.equal(mask & (y == -100), torch.tensor(
        [[t == len(s) - 1 for t in range(6)] for s in seqs])), (
        "in each row exactly one real input has no target: the last real token (EOS)")


@pytest.mark.points(2)
def test_pad_batch_max_len_ignore_index_and_no_bos_eos(impl):
    x, y, mask = impl.pad_batch([[4, 5, 6, 7, 8, 9], [3, 3]], 99, eos=2, max_len=4,
                                ignore_index=-1)
    assert x.tolist() == [[4, 5, 6], [3, 3, 2]] and y.tolist() == [[5, 6, 7], [3, 2, -1]], (
        f"max_len=4 cuts [4..9, eos] to 4 tokens and [3, 3, eos] pads to 4; with "
        f"ignore_index=-1: x [[4, 5, 6], [3, 3, 2]], y [[5, 6, 7], [3, 2, -1]]; got "
        f"x {x.tolist()}, y {y.tolist()}")
    assert mask.tolist() == [[True] * 3, [True] * 3], f"every input is real here, got {mask}"
    x, y, mask = impl.pad_batch([[1, 2], [3]], 0)
    assert x.tolist() == [[1], [3]] and y.tolist() == [[2], [-100]], (
        f"no bos / eos: [1, 2] and [3, pad] give x [[1], [3]], y [[2], [-100]]; got x "
        f"{x.tolist()}, y {y.tolist()}")
    assert mask.tolist() == [[True], [True]], "both inputs are real tokens"


@pytest.mark.points(2)
def test_exact_dedup_keeps_the_first_copy_in_order(impl):
    docs = ["b", "a", "b", "c", "a", "a", "d", "B", "b "]
    kept = impl.exact_dedup(docs)
    assert kept == [0, 1, 3, 6, 7, 8], (
        f"indices of the first copy of each text, in order: [0, 1, 3, 6, 7, 8] ('B' and 'b ' "
        f"are different texts), got {kept}")
    assert impl.exact_dedup([]) == [] and impl.exact_dedup(["x"]) == [0]


@pytest.mark.points(2)
def test_shingles_and_exact_jaccard(impl):
    assert impl.shingles("abcab", 2) == {"ab", "bc", "ca"}, (
        f"2-shingles of 'abcab' are {{'ab', 'bc', 'ca'}}, got {impl.shingles('abcab', 2)}")
    assert impl.shingles("hello", 5) == {"hello"} and impl.shingles("hi", 5) == {"hi"}, (
        "a text of exactly k characters is one shingle; a shorter one is its own shingle")
    assert len(impl.shingles("abcdefgh")) == 4, "default k = 5: 'abcdefgh' has 4 shingles"
    assert impl.jaccard({1, 2, 3}, {2, 3, 4, 5}) == pytest.approx(2 / 5)
    assert impl.jaccard({1}, {2}) == 0.0 and impl.jaccard(set(), set()) == 1.0, (
        "disjoint sets have Jaccard 0; two empty sets are identical: 1.0")
    assert impl.jaccard(set(), {"ab"}) == 0.0 == impl.jaccard({"ab"}, set()), (
        "an empty set and a non-empty one share nothing: Jaccard 0.0 (only two EMPTY sets "
        "give 1.0)")


@pytest.mark.points(3)
def test_minhash_estimate_is_within_the_binomial_error_bound(impl, rng):
    universe = [f"s{i}" for i in range(400)]
    for num_perm, seed in ((128, 0), (256, 5)):
        for target in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0):
            n_common = round(200 * target / (1 + target))  # |A & B| / |A | B| = target
            pick = rng.permutation(universe)
            common, only = list(pick[:n_common]), list(pick[n_common:])
            a = set(common + only[:100 - n_common])
            b = set(common + only[100 - n_common:200 - 2 * n_common])
            J = impl.jaccard(a, b)
            sa, sb = impl.minhash(a, num_perm, seed), impl.minhash(b, num_perm, seed)
            assert sa.shape == (num_perm,), f"a signature has num_perm = {num_perm} entries"
            est = impl.estimate_jaccard(sa, sb)
            assert abs(est - J) <= bound(J, num_perm), (
                f"MinHash with {num_perm} hash functions estimated Jaccard {est:.3f} for two "
                f"sets whose exact Jaccard is {J:.3f}: more than 4.5 standard deviations "
                f"(sqrt(J(1-J)/P) = {math.sqrt(J * (1 - J) / num_perm):.3f}) away. Each entry "
                "must be the MINIMUM over the set of one hash function, a different (a, b) per "
                "entry, the same functions for both sets")


@pytest.mark.points(2)
@pytest.mark.skipif(importlib.util.find_spec("datasketch") is None,
                    reason="the MinHash oracle needs datasketch: pip install -e '.[data]'")
def test_minhash_agrees_with_datasketch_within_the_bound(impl, rng):
    from datasketch import MinHash
    for _ in range(6):
        d1 = random_doc(rng, 60)
        d2 = edit(rng, d1, int(rng.integers(1, 25)))
        A, B = impl.shingles(d1), impl.shingles(d2)
        J = impl.jaccard(A, B)
        ma, mb = MinHash(num_perm=256, seed=1), MinHash(num_perm=256, seed=1)
        ma.update_batch([s.encode() for s in A])
        mb.update_batch([s.encode() for s in B])
        theirs = ma.jaccard(mb)
        ours = impl.estimate_jaccard(impl.minhash(A, 256, 3), impl.minhash(B, 256, 3))
        assert abs(theirs - J) <= bound(J, 256), "oracle set-up: datasketch is off"
        # two independent estimates of the same J: each within the bound of it
        assert abs(ours - J) <= bound(J, 256), (
            f"exact Jaccard {J:.3f}, datasketch estimates {theirs:.3f}, yours {ours:.3f}")


@pytest.mark.points(3)
def test_near_dedup_removes_planted_near_duplicates_only(impl, rng):
    originals = [random_doc(rng, 50) for _ in range(8)]
    docs, near = [], set()
    for i, d in enumerate(originals):
        docs.append(d)
        if i % 2 == 0:  # a copy with 2 of 50 words changed: Jaccard ~0.85
            near.add(len(docs))
            docs.append(edit(rng, d, 2))
    docs.append(originals[0])  # and one exact copy
    near.add(len(docs) - 1)
    kept = impl.near_dedup(docs, threshold=0.7)
    expected = [i for i in range(len(docs)) if i not in near]
    assert kept == expected, (
        f"documents {sorted(near)} are near-copies of earlier ones (a few words changed, or "
        f"identical) and should go; every other document shares little: expected kept "
        f"{expected}, got {kept}")
    assert impl.near_dedup(docs, threshold=1.01) == list(range(len(docs))), (
        "no estimate reaches a threshold above 1: every document is kept")


@pytest.mark.points(3)
def test_leakage_flags_the_planted_overlaps_and_nothing_else(impl, rng):
    train = [random_doc(rng, 40) for _ in range(30)]
    val = [random_doc(rng, 40) for _ in range(20)]
    planted = {3: None, 8: None, 15: None}
    for i in planted:
        source = train[int(rng.integers(len(train)))].split()
        start = int(rng.integers(0, len(source) - 10))
        passage = " ".join(source[start:start + 10])
        words = val[i].split()
        val[i] = " ".join(words[:12] + ["xylophone", passage.upper() + ",", "xylophone"]
                          + words[12:])  # fenced by a word no training document has
    flagged = impl.find_leakage(train, val, n=8)
    assert flagged == sorted(planted), (
        f"validation documents {sorted(planted)} contain a 10-word passage copied from the "
        f"training set (in capitals, a comma after it); nothing else overlaps by 8 "
        f"words: expected {sorted(planted)}, got {flagged}. Lower-case, split into words "
        "(\\w+), compare word 8-grams")
    assert impl.find_leakage(train, val, n=11) == [], (
        "a 10-word copy holds no 11-gram: with n=11 nothing should be flagged")
    assert np.all(np.diff(flagged) > 0), "flagged indices come sorted, each once"

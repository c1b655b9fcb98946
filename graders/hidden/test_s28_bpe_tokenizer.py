"""Hidden graders for s28: training equals a plain reference trainer, chunk boundaries,
broken UTF-8, overlapping special tokens, the vocabulary table, prefixes of training."""

import re
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.test_s28_bpe_tokenizer import TEXT, describe, fixture_text, reference_encode

SPECIALS = ["<|endoftext|>", "<pad>"]


def _ordinary(text, specials):
    """The text between the special tokens (longest special first where they overlap)."""
    if not specials:
        return [text]
    pattern = "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True))
    return re.split(pattern, text)


def reference_train(text, vocab_size, specials, split):
    """Plain BPE training over every chunk occurrence (no counting of distinct chunks)."""
    seqs = [list(c.encode("utf-8")) for part in _ordinary(text, specials) for c in split(part)]
    merges = []
    for new_id in range(256, vocab_size - len(specials)):
        counts = {}
        for s in seqs:
            for p in pairwise(s):
                counts[p] = counts.get(p, 0) + 1
        if not counts:
            break
        top = max(counts.values())
        pair = min(p for p, c in counts.items() if c == top)
        merges.append(pair)
        out = []
        for s in seqs:
            new, i = [], 0
            while i < len(s):
                if s[i:i + 2] == list(pair):
                    new.append(new_id)
                    i += 2
                else:
                    new.append(s[i])
                    i += 1
            out.append(new)
        seqs = out
    return merges


texts = st.lists(st.one_of(st.sampled_from(["ab", " ab", "aab", "ba", " ", "\n", "é", "é",
                                            "🙂", "12", "!?", "<pad>", "<|endoftext|>", "'s"]),
                           st.text(alphabet="abé 1.\n", max_size=4)),
                 min_size=1, max_size=30).map("".join)


@pytest.mark.points(3)
@settings(max_examples=30, deadline=None)
@given(text=texts, n_merges=st.integers(0, 25), with_specials=st.booleans())
def test_training_equals_a_reference_trainer(impl, text, n_merges, with_specials):
    specials = SPECIALS if with_specials else []
    vocab_size = 256 + n_merges + len(specials)
    tok = impl.BPETokenizer.train(text, vocab_size, special_tokens=specials)
    expected = reference_train(text, vocab_size, specials, impl.SPLIT_PATTERN.findall)
    assert tok.merges == expected, (
        f"training with vocab_size {vocab_size} on {describe(text)} (special tokens: "
        f"{specials or 'none'}) learned {tok.merges}, a plain trainer learns {expected}. Cut "
        "at the special tokens, chunk with SPLIT_PATTERN, count each chunk as often as it "
        "occurs, take the most frequent pair (smallest on ties), merge, repeat")
    assert tok.vocab_size == 256 + len(expected) + len(specials)
    ids = tok.encode(text)
    assert tok.decode(ids) == text, f"round trip failed on {describe(text)}"
    found = re.findall("|".join(map(re.escape, specials)), text) if specials else []
    assert [i for i in ids if i >= 256 + len(expected)] == [tok.special_tokens[s] for s in found], (
        f"encoding {describe(text)}: special ids must appear exactly where the special "
        "tokens are, and nowhere else")


@pytest.mark.points(2)
@settings(max_examples=40, deadline=None)
@given(s=st.text(alphabet="kaotrimensélv .,!?'\n0123", max_size=40))
def test_encode_equals_the_reference_on_random_text(impl, s):
    tok = _fixture_tokenizer(impl)
    expected = reference_encode(tok.merges, s, impl.SPLIT_PATTERN.findall)
    assert tok.encode(s) == expected, (
        f"encode({describe(s)}) = {tok.encode(s)}, rank-order BPE over the chunks gives "
        f"{expected}")


_CACHE = {}


def _fixture_tokenizer(impl):
    if id(impl) not in _CACHE:
        _CACHE[id(impl)] = impl.BPETokenizer.train(TEXT, 380)
    return _CACHE[id(impl)]


@pytest.mark.points(2)
def test_merges_never_cross_chunk_boundaries(impl):
    tok = impl.BPETokenizer.train("ab ab ab ab", 270)
    assert tok.merges == [(97, 98), (32, 256)], (
        f"'ab ab ab ab' is the chunks 'ab', ' ab', ' ab', ' ab': after ab and ' ab' nothing "
        f"is left (no merge joins two chunks), got {tok.merges}")
    big = _fixture_tokenizer(impl)
    for left, right in (("Kato", " mensa"), ("ri", "."), ("1999", " ka"), ("ve", "\n\n")):
        assert big.encode(left + right) == big.encode(left) + big.encode(right), (
            f"{left!r} and {right!r} are separate chunks: encode(a + b) must equal "
            "encode(a) + encode(b)")


@pytest.mark.points(2)
def test_decode_replaces_broken_utf8_and_takes_any_int_iterable(impl):
    tok = impl.BPETokenizer.train("é🙂 é🙂", 300)
    cut = list("🙂".encode())[:2]
    assert tok.decode(cut) == "\ufffd", (
        f"decode of the first 2 bytes of a 4-byte character should be U+FFFD (errors="
        f"'replace'), got {tok.decode(cut)!r}")
    assert tok.decode([0xFF, 104, 105]) == "\ufffdhi", "a lone 0xFF byte decodes to U+FFFD"
    ids = tok.encode("é🙂 é🙂")
    assert len(ids) < len("é🙂 é🙂".encode()), "the merges should shorten the text"
    assert tok.decode(np.array(ids)) == tok.decode(tuple(ids)) == "é🙂 é🙂", (
        "decode must accept any iterable of ints (a NumPy array, a tuple)")


@pytest.mark.points(2)
def test_overlapping_special_tokens_match_the_longest(impl):
    tok = impl.BPETokenizer([(97, 98)], special_tokens=["<a>", "<a><b>", "<b>"])
    assert tok.special_tokens == {"<a>": 257, "<a><b>": 258, "<b>": 259}
    got = tok.encode("ab<a><b>ab<a>x<b>")
    assert got == [256, 258, 256, 257, 120, 259], (
        f"special tokens '<a>', '<a><b>', '<b>' on 'ab<a><b>ab<a>x<b>': the longest special "
        f"that matches wins, so [ab, <a><b>, ab, <a>, x, <b>] = [256, 258, 256, 257, 120, "
        f"259]; got {got}")
    assert tok.decode(got) == "ab<a><b>ab<a>x<b>"


@pytest.mark.points(2)
def test_vocab_table_holds_the_bytes_of_every_id(impl):
    tok = impl.BPETokenizer.train(fixture_text(3000, seed=5), 320, special_tokens=["<pad>"])
    vocab = tok.vocab
    assert len(vocab) == tok.vocab_size == 320, f"vocab must have {tok.vocab_size} entries"
    assert all(vocab[i] == bytes([i]) for i in range(256)), "ids 0..255 are the single bytes"
    for r, (a, b) in enumerate(tok.merges):
        assert vocab[256 + r] == vocab[a] + vocab[b], (
            f"merge {r} = ({a}, {b}): vocab[{256 + r}] must be vocab[{a}] + vocab[{b}]")
    assert vocab[319] == b"<pad>", "the special token's bytes come last"


@pytest.mark.points(2)
def test_fewer_merges_are_a_prefix_of_more(impl):
    few = impl.BPETokenizer.train(TEXT, 300)
    many = _fixture_tokenizer(impl)
    assert few.merges == many.merges[:44], (
        "training is greedy: the first 44 merges of a 124-merge run are the 44 merges of a "
        "44-merge run")
    assert len(few.encode(TEXT)) > len(many.encode(TEXT)), "more merges compress more"
    bare = impl.BPETokenizer.train("abc", 256)
    assert bare.merges == [] and bare.encode("abc") == [97, 98, 99], (
        "vocab_size 256 leaves room for no merge: encode gives the raw bytes")
    with pytest.raises(ValueError):
        impl.BPETokenizer.train("abc", 256, special_tokens=["<s>"])  # no room for the special

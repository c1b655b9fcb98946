"""Public graders for s28 bpe_tokenizer: the worked example, ties, rank order, round trips,
special tokens, compression against SentencePiece and Hugging Face, save / load.

Oracles: SentencePiece's BPE (and Hugging Face `tokenizers`' BPE trainer when installed)
trained on the same generated text; a plain reference encoder written here.
"""

import importlib.util
import io
import random
import unicodedata
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SYLLABLES = ["ka", "to", "ri", "men", "sa", "lo", "ve", "nor", "qui", "da", "el", "un", "tha",
             "bre", "is", "mo", "ga", "ple", "st", "ou", "ré", "ñe"]


def fixture_text(n_bytes: int = 8000, seed: int = 0) -> str:
    """Generated prose: Zipf-distributed invented words (some accented), numbers, punctuation."""
    rng = random.Random(seed)
    words = sorted({"".join(rng.choices(SYLLABLES, k=rng.choice([1, 1, 2, 2, 2, 3, 3, 4])))
                    for _ in range(600)})
    rng.shuffle(words)
    weights = [1 / (r + 1) for r in range(len(words))]
    lines, line, total = [], [], 0
    while total < n_bytes:
        ws = rng.choices(words, weights, k=rng.randint(3, 12))
        if rng.random() < 0.2:
            ws.insert(rng.randrange(len(ws)), str(rng.randint(0, 2000)))
        sentence = " ".join(ws).capitalize() + rng.choice([".", ".", ".", "?", "!", ",", ";"])
        line.append(sentence)
        total += len(sentence.encode("utf-8")) + 1
        if rng.random() < 0.3:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


TEXT = fixture_text()
LINES = TEXT.splitlines()
N_BYTES = sum(len(line.encode("utf-8")) for line in LINES)


def reference_encode(merges, text, split):
    """Rank-order BPE written plainly: per chunk, merge the lowest-rank pair until none is left."""
    rank = {tuple(p): r for r, p in enumerate(merges)}
    out = []
    for chunk in split(text):
        ids = list(chunk.encode("utf-8"))
        while True:
            ranked = [(rank[p], i) for i, p in enumerate(pairwise(ids)) if p in rank]
            if not ranked:
                break
            r = min(ranked)[0]
            new, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and rank.get((ids[i], ids[i + 1])) == r:
                    new.append(256 + r)
                    i += 2
                else:
                    new.append(ids[i])
                    i += 1
            ids = new
        out += ids
    return out


def describe(s: str) -> str:
    """s in plain words, naming its unusual characters: 'é' (LATIN SMALL LETTER E WITH ACUTE)."""
    if not s:
        return "the empty string"
    odd = []
    for c in dict.fromkeys(s):
        if not (c.isascii() and c.isprintable()) or c.isspace():
            name = unicodedata.name(c, f"U+{ord(c):04X}")
            odd.append(f"{c!r} ({name}, {len(c.encode('utf-8'))} byte(s) in UTF-8)")
    tail = "; characters worth a look: " + ", ".join(odd[:4]) if odd else ""
    return f"{s!r}, {len(s)} characters, {len(s.encode('utf-8'))} bytes{tail}"


def tokens_of(tok, text):
    return [tok.decode([i]) for i in tok.encode(text)]


@pytest.fixture(scope="module")
def trained(impl):
    """One tokenizer trained on the fixture (vocab 420, one special token), shared by tests."""
    return impl.BPETokenizer.train(TEXT, 420, special_tokens=["<|endoftext|>"])


@pytest.mark.points(3)
def test_worked_example_aaabdaaabac(impl):
    tok = impl.BPETokenizer.train("aaabdaaabac", 259)
    assert tok.merges == [(97, 97), (97, 98), (256, 257)], (
        f"3 merges on 'aaabdaaabac' should be [(97, 97), (97, 98), (256, 257)] (aa: 4 "
        "overlapping pairs; then a tie at 2 between (256, 97) and (97, 98), the smaller pair "
        f"wins; then aa+ab), got {tok.merges}")
    ids = tok.encode("aaabdaaabac")
    assert ids == [258, 100, 258, 97, 99], (
        f"encode('aaabdaaabac') should be [258, 100, 258, 97, 99] ('aaab' d 'aaab' a c), got "
        f"{ids}")
    assert tok.vocab_size == 259, f"256 bytes + 3 merges = 259, got vocab_size {tok.vocab_size}"
    assert tok.decode(ids) == "aaabdaaabac", f"decode gave {tok.decode(ids)!r}"


@pytest.mark.points(2)
def test_pair_counts_count_overlaps_and_merge_scans_left_to_right(impl):
    assert impl.pair_counts([97, 97, 97, 98]) == {(97, 97): 2, (97, 98): 1}, (
        "pair_counts([a, a, a, b]) should count the overlapping pairs: {(a, a): 2, (a, b): 1}, "
        f"got {impl.pair_counts([97, 97, 97, 98])}")
    counts = {(97, 97): 5}
    out = impl.pair_counts([97, 97, 1], counts, weight=3)
    assert out is counts and counts == {(97, 97): 8, (97, 1): 3}, (
        "pair_counts(ids, counts, weight=3) should ADD weight per occurrence into counts and "
        f"return it: expected {{(97, 97): 8, (97, 1): 3}}, got {out}")
    assert impl.pair_counts([5]) == {} and impl.pair_counts([]) == {}, \
        "fewer than two ids have no pairs: pair_counts must return {}"
    assert impl.merge([97, 97, 97], (97, 97), 256) == [256, 97], (
        "merge([a, a, a], (a, a), 256) should be [256, a]: after a match skip BOTH tokens, "
        f"got {impl.merge([97, 97, 97], (97, 97), 256)}")
    got = impl.merge([1, 2, 3, 1, 2, 1], (1, 2), 9)
    assert got == [9, 3, 9, 1], (
        f"merge([1, 2, 3, 1, 2, 1], (1, 2), 9) should be [9, 3, 9, 1], got {got}")
    assert impl.merge([], (1, 2), 9) == [] and impl.merge([1], (1, 2), 9) == [1]
    # 600 ids above 256, parsed at run time: compare ids with ==, never with `is`
    long = [int(s) for s in "300 301 300 301 301 300".split()] * 100
    got = impl.merge(long, (int("300"), int("301")), int("999"))
    assert got == [999, 999, 301, 300] * 100, (
        "merge on 600 ids such as 300 and 301 went wrong: compare ids with == (not `is`, "
        "which only works for small cached ints) and scan to the very end of the list")


@pytest.mark.points(2)
def test_ties_go_to_the_smallest_pair(impl):
    for text, expected, why in (
            ("dcba", [(98, 97)], "(b, a) = (98, 97) is the smallest of three pairs seen once"),
            ("acab", [(97, 98)], "(a, b) beats (a, c) on the second id, even though (a, c) "
                                 "comes first in the text"),
            ("zzyx", [(121, 120), (122, 122)], "four pairs seen once: (y, x) first, then of "
                                               "(z, z) and (z, 256), (z, z) is smaller")):
        got = impl.BPETokenizer.train(text, 256 + len(expected)).merges
        assert got == expected, (
            f"training on {text!r}: {why}, so the merges should be {expected}, got {got}. Ties "
            "in the pair counts go to the smallest pair (a, b), comparing a first, then b")


@pytest.mark.points(3)
def test_merges_are_applied_in_rank_order(impl):
    tok = impl.BPETokenizer([(98, 99), (97, 98)])  # (b, c) has rank 0, (a, b) rank 1
    assert tok.encode("abc") == [97, 256], (
        f"merges [(b, c), (a, b)] on 'abc' must give [a, bc] = [97, 256] (rank 0 first), got "
        f"{tok.encode('abc')}: apply the lowest-rank merge present, not the leftmost pair")
    tok = impl.BPETokenizer([(97, 98), (98, 99), (256, 99)])
    assert tok.encode("abcbc") == [258, 257], (
        f"merges [(a, b), (b, c), (ab, c)] on 'abcbc' should give [abc, bc] = [258, 257], got "
        f"{tok.encode('abcbc')}")
    tok = impl.BPETokenizer([(99, 100), (98, 99), (97, 98), (258, 256)])
    assert tok.encode("abcd") == [259], (
        f"merges [(c, d), (b, c), (a, b), (ab, cd)] on 'abcd': cd, then ab (bc is gone), then "
        f"ab+cd, so [259]; got {tok.encode('abcd')}: keep merging until no learned pair is left")


@pytest.mark.points(2)
def test_encoding_of_the_fixture_equals_a_reference_encoder(impl, trained):
    text = fixture_text(1500, seed=7)  # same word style, other sentences
    expected = reference_encode(trained.merges, text, impl.SPLIT_PATTERN.findall)
    assert trained.encode(text) == expected, (
        "encode differs from a plain rank-order BPE over SPLIT_PATTERN's chunks on new text: "
        "chunk with SPLIT_PATTERN.findall, start each chunk from its UTF-8 bytes, then merge "
        "the lowest-rank pair until none is left")


@pytest.mark.points(3)
@settings(max_examples=60, deadline=None)
@given(s=st.lists(st.one_of(st.text(max_size=6), st.sampled_from(
    ["ka", " to", "ré", "ñe", "<|endoftext|>", "\n\n", "  ", "🙂", "東京", "e\u0301", "\x00"])),
    max_size=8).map("".join))
def test_decode_encode_round_trip_for_any_unicode(trained, s):
    ids = trained.encode(s)
    back = trained.decode(ids)
    assert back == s, (
        f"decode(encode(s)) must give s back for ANY string; for s = {describe(s)} it gave "
        f"{back!r} (ids {ids[:12]}{' ...' if len(ids) > 12 else ''}). Encode whole UTF-8 "
        "bytes, keep every character of the text (no stripping), and decode the joined bytes "
        "once at the end")
    assert all(isinstance(i, int) and 0 <= i < trained.vocab_size for i in ids), (
        f"encode must return Python ints in 0..vocab_size-1, got {ids[:12]}")


@pytest.mark.points(3)
def test_special_tokens_are_never_split_and_never_made_by_ordinary_text(impl, trained):
    eot = trained.special_tokens["<|endoftext|>"]
    assert eot == 256 + len(trained.merges) == trained.vocab_size - 1 == 419, (
        f"the special token comes after the merges: id {256 + len(trained.merges)} of a "
        f"vocabulary of 420, got id {eot}, {len(trained.merges)} merges, vocab_size "
        f"{trained.vocab_size}")
    a, b = "Kato mensa ri.", " Velo nor"
    ids = trained.encode(a + "<|endoftext|>" + b)
    assert ids == trained.encode(a) + [eot] + trained.encode(b), (
        "text + '<|endoftext|>' + text must encode as encode(left) + [its id] + "
        "encode(right): match the special tokens before chunking and never split them")
    assert trained.decode([eot]) == "<|endoftext|>", "decode([special id]) gives its text"
    for text in (TEXT[:800], "<|endoftext", "endoftext|>", "<| endoftext |>", "<|ENDOFTEXT|>"):
        assert all(i < eot for i in trained.encode(text)), (
            f"ordinary text must never produce a special id; encoding {text[:30]!r} did")
    learned = [trained.decode([i]) for i in range(256, eot)]
    assert not [t for t in learned if "<|" in t or "|>" in t], (
        "merges learned across or inside '<|endoftext|>': cut the training text at the "
        "special tokens so they are never learned")


@pytest.mark.points(3)
def test_compression_within_10_percent_of_sentencepiece_bpe(impl):
    import sentencepiece as spm
    alphabet = set("".join(LINES).replace(" ", "\u2581"))
    for n_merges in (60, 180):
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(LINES), model_writer=model, model_type="bpe",
            vocab_size=n_merges + len(alphabet) + 3, character_coverage=1.0,
            normalization_rule_name="identity", add_dummy_prefix=False,
            remove_extra_whitespaces=False, minloglevel=2, num_threads=1)
        sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
        learned = sum(len(sp.id_to_piece(i)) > 1 for i in range(sp.get_piece_size())
                      if not (sp.is_control(i) or sp.is_unknown(i)))
        assert learned == n_merges, f"oracle set-up: SentencePiece learned {learned} pieces"
        sp_ratio = N_BYTES / sum(len(sp.encode(line)) for line in LINES)
        tok = impl.BPETokenizer.train(TEXT, 256 + n_merges)
        ours = N_BYTES / sum(len(tok.encode(line)) for line in LINES)
        # the same greedy algorithm: only pre-splitting and tie-breaking differ (a few %)
        assert abs(ours / sp_ratio - 1) <= 0.10, (
            f"with {n_merges} merges your tokenizer compresses the fixture to {ours:.3f} bytes "
            f"per token, SentencePiece's BPE with the same number of learned pieces to "
            f"{sp_ratio:.3f}: more than 10 % apart. Merge the MOST frequent pair each round, "
            "counting every chunk as often as it occurs")


@pytest.mark.points(2)
@pytest.mark.skipif(importlib.util.find_spec("tokenizers") is None,
                    reason="the Hugging Face oracle needs tokenizers: pip install -e '.[hf]'")
def test_compression_within_10_percent_of_hugging_face_bpe(impl):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    for vocab in (330, 460):
        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.train_from_iterator(LINES, trainers.BpeTrainer(
            vocab_size=vocab, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # the 256 bytes, like ours
        hf_ratio = N_BYTES / sum(len(hf.encode(line).ids) for line in LINES)
        tok = impl.BPETokenizer.train(TEXT, vocab)
        ours = N_BYTES / sum(len(tok.encode(line)) for line in LINES)
        # byte-level on both sides, GPT-2's pre-split on both sides: ties are all that differ
        assert abs(ours / hf_ratio - 1) <= 0.10, (
            f"at vocab_size {vocab} your tokenizer gives {ours:.3f} bytes per token on the "
            f"fixture, Hugging Face's byte-level BPE {hf_ratio:.3f}: more than 10 % apart")


@pytest.mark.points(2)
def test_save_then_load_gives_the_same_tokenizer(impl, trained, tmp_path):
    path = tmp_path / "bpe.json"
    trained.save(path)
    again = impl.BPETokenizer.load(path)
    assert again.merges == trained.merges and again.special_tokens == trained.special_tokens
    text = fixture_text(600, seed=3) + "<|endoftext|>é🙂"
    assert again.encode(text) == trained.encode(text), "a loaded tokenizer must encode alike"
    assert again.decode(again.encode(text)) == text and again.vocab_size == trained.vocab_size


@pytest.mark.points(2)
def test_vocab_size_and_stopping_when_nothing_is_left(impl):
    tok = impl.BPETokenizer.train("ab ab", 300, special_tokens=["<s>", "</s>"])
    # chunks 'ab' and ' ab': merges ab, then ' '+ab; after that every chunk is one token
    assert tok.merges == [(97, 98), (32, 256)], (
        f"'ab ab' has the chunks 'ab' and ' ab': 2 merges, then nothing is left to merge, "
        f"got merges {tok.merges}")
    assert tok.vocab_size == 256 + 2 + 2 and tok.special_tokens == {"<s>": 258, "</s>": 259}, (
        f"256 bytes + 2 merges + 2 special tokens: vocab_size 260, specials {{'<s>': 258, "
        f"'</s>': 259}}; got {tok.vocab_size}, {tok.special_tokens}")
    small = impl.BPETokenizer.train(TEXT, 256 + 40 + 1, special_tokens=["<s>"])
    assert len(small.merges) == 40, (
        f"vocab_size = 256 + 40 merges + 1 special token must learn 40 merges, got "
        f"{len(small.merges)}: the special tokens count in vocab_size")

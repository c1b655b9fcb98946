"""s28 · A byte-level BPE tokenizer: train, encode, decode, special tokens.

You build
    pair_counts(ids, counts)       how often each adjacent pair (a, b) occurs (overlaps count)
    merge(ids, pair, new_id)       replace every (a, b), left to right, by new_id
    BPETokenizer                   byte-level BPE (GPT-2's scheme, minbpe's layout):
        .train(text, vocab_size, special_tokens)   learn merges by repeated pair counting
        .encode(text) -> list[int]                 bytes, then the merges in rank order
        .decode(ids) -> str                        the inverse, for any Unicode text
        .merges, .special_tokens, .vocab, .vocab_size, .save(path), .load(path)

How it differs from the previous steps
    s17-s26 cut text into characters or words. Characters make sequences long (a model of
    context T sees T characters); words make the vocabulary huge and still meet unknown words.
    Byte Pair Encoding starts from the 256 byte values, so EVERY string is encodable (no <unk>),
    then learns subword units from data: the most frequent adjacent pair becomes a new token,
    again and again. Frequent words end up as one token, rare ones as a few pieces.

The algorithm
    ids 0..255 are the bytes; merge i (rank i) gets id 256 + i; special tokens come last:
        vocab_size = 256 + len(merges) + len(special_tokens)
    train: split the text at the special tokens (they are never learned and no merge crosses
    them), cut each piece into chunks with SPLIT_PATTERN (GPT-2's rule: a word with its leading
    space, a number, a run of punctuation, whitespace; merges never cross a chunk boundary),
    write each chunk as its UTF-8 bytes, then repeat vocab_size - 256 - len(special_tokens)
    times: count the adjacent pairs over all chunks, merge the most frequent one everywhere.
    Stop early when no chunk has two tokens left.
    Ties: among pairs with the same count, the smallest pair (a, b) wins, comparing a first,
    then b (Hugging Face's BPE trainer breaks ties the same way, in its own ids).
    encode: special tokens (longest first where they overlap) map to their ids; the text
    between them is chunked the same way, and within a chunk the merge of LOWEST RANK present
    is applied, again and again, until no learned pair is left. Rank order matters: with
    merges (b, c) -> 256 then (a, b) -> 257, "abc" is [97, 256], never [257, 99].
    decode: concatenate the bytes of every id and decode them as UTF-8 (errors="replace": a
    cut in the middle of a multi-byte character shows as U+FFFD instead of raising).

    The worked example (Wikipedia's): "aaabdaaabac" with 3 merges learns aa -> 256 (4 pairs,
    overlaps count), then ab -> 257 (a tie of 2 with (256, 97): (97, 98) is smaller), then
    (256, 257) -> 258, and encodes as [258, 100, 258, 97, 99].

    Compression ratio = UTF-8 bytes / tokens. At the same vocabulary it is close to
    SentencePiece's and Hugging Face's BPE on the same text: all three are the same greedy
    algorithm, differing only in how they pre-split text and break ties.

File format (save / load): JSON {"format": "ml-to-llm/bpe/1", "merges": [[a, b], ...],
    "special_tokens": ["<|endoftext|>", ...]}; ids are implied by the order.

You should be able to explain
    - why byte-level BPE never needs an <unk> token, and why decode needs errors="replace";
    - why merges must be applied in rank order at encode time (not left to right);
    - why special tokens are matched before chunking and never produced by ordinary text;
    - what a larger vocabulary buys (shorter sequences) and costs (a bigger embedding table,
      rarer tokens with fewer training examples each).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from itertools import pairwise

# GPT-2's pre-tokenizer in the standard library's re: contractions, an optional space + letters,
# an optional space + digits, an optional space + other symbols, then whitespace runs.
SPLIT_PATTERN = re.compile(
    r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
FORMAT = "ml-to-llm/bpe/1"


def pair_counts(ids: Sequence[int], counts: dict | None = None, weight: int = 1) -> dict:
    """{(a, b): number of i with ids[i] == a and ids[i+1] == b}, times weight, added to counts."""
    counts = {} if counts is None else counts
    # BEGIN SOLUTION: count every adjacent pair (overlapping), each occurrence adding weight
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + weight
    # END SOLUTION
    return counts


def merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """ids with each occurrence of pair replaced by new_id, scanning left to right."""
    # BEGIN SOLUTION: scan left to right; on a match emit new_id and skip both tokens
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    # END SOLUTION


class BPETokenizer:
    """Byte-level BPE: ids 0..255 bytes, 256 + i merge i, then the special tokens."""

    def __init__(self, merges: Iterable[tuple[int, int]] = (),
                 special_tokens: Sequence[str] = ()):
        self.merges = [(int(a), int(b)) for a, b in merges]
        for rank, (a, b) in enumerate(self.merges):
            if not (0 <= a < 256 + rank and 0 <= b < 256 + rank):
                raise ValueError(f"merge {rank} = ({a}, {b}) uses an id that does not exist yet")
        if len(set(special_tokens)) != len(special_tokens) or "" in special_tokens:
            raise ValueError(f"special tokens must be distinct and non-empty: {special_tokens}")
        first = 256 + len(self.merges)
        self.special_tokens = {s: first + i for i, s in enumerate(special_tokens)}
        # BEGIN SOLUTION: self.vocab: id -> bytes for the bytes, the merges, the special tokens
        self.vocab = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.vocab += [s.encode("utf-8") for s in special_tokens]
        # END SOLUTION

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    @classmethod
    def train(cls, text: str, vocab_size: int,
              special_tokens: Sequence[str] = ()) -> BPETokenizer:
        """Learn vocab_size - 256 - len(special_tokens) merges (fewer if the text runs out)."""
        if vocab_size < 256 + len(special_tokens):
            raise ValueError(f"vocab_size={vocab_size} must be at least 256 + "
                             f"{len(special_tokens)} special tokens")
        pieces = _split_special(text, special_tokens)[::2]  # the ordinary text between them
        merges: list[tuple[int, int]] = []  # in rank order: merges[i] gets the id 256 + i
        # BEGIN SOLUTION: count the chunks' byte sequences, then merge the top pair repeatedly
        chunks: dict[str, int] = {}
        for piece in pieces:
            for chunk in SPLIT_PATTERN.findall(piece):
                chunks[chunk] = chunks.get(chunk, 0) + 1
        words = [(list(chunk.encode("utf-8")), n) for chunk, n in chunks.items()]
        for new_id in range(256, vocab_size - len(special_tokens)):
            counts: dict = {}
            for ids, n in words:
                pair_counts(ids, counts, n)
            if not counts:
                break
            pair = min(counts, key=lambda p: (-counts[p], p))  # most frequent, then smallest
            merges.append(pair)
            words = [(merge(ids, pair, new_id), n) for ids, n in words]
        # END SOLUTION
        return cls(merges, special_tokens)

    def encode(self, text: str) -> list[int]:
        """Special tokens -> their ids; each chunk of the rest -> its merges in rank order."""
        # BEGIN SOLUTION: split at specials, chunk, start from bytes, apply the lowest rank
        ranks = {pair: 256 + r for r, pair in enumerate(self.merges)}
        out: list[int] = []
        for k, piece in enumerate(_split_special(text, self.special_tokens)):
            if k % 2:
                out.append(self.special_tokens[piece])
                continue
            for chunk in SPLIT_PATTERN.findall(piece):
                ids = list(chunk.encode("utf-8"))
                while len(ids) > 1:
                    pair = min(pairwise(ids), key=lambda p: ranks.get(p, float("inf")))
                    if pair not in ranks:
                        break
                    ids = merge(ids, pair, ranks[pair])
                out += ids
        return out
        # END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The UTF-8 text of the concatenated bytes of ids (errors="replace")."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids {bad[:5]} are outside 0..{self.vocab_size - 1}")
        # BEGIN SOLUTION: join the bytes of every id, decode UTF-8 with errors="replace"
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")
        # END SOLUTION

    def save(self, path) -> None:
        """Write the merges and special tokens as JSON (see the module docstring)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "merges": self.merges,
                       "special_tokens": list(self.special_tokens)}, f)

    @classmethod
    def load(cls, path) -> BPETokenizer:
        """The tokenizer written by save(path)."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file (format={data.get('format')!r})")
        return cls(data["merges"], data["special_tokens"])


def _split_special(text: str, special_tokens: Iterable[str]) -> list[str]:
    """[text, special, text, special, ..., text]: the specials sit at the odd positions."""
    specials = sorted(special_tokens, key=len, reverse=True)  # longest first where they overlap
    if not specials:
        return [text]
    return re.split("(" + "|".join(re.escape(s) for s in specials) + ")", text)

# %% [markdown]
# # s28 · BPE lab: watch merges being learned, then compression against SentencePiece
#
# This lab runs **your** `exercises/s28_bpe_tokenizer.py`. Finish the step first
# (`python tools/check.py`), then run every cell. You will
#
# 1. replay the worked example "aaabdaaabac" one merge at a time;
# 2. train your tokenizer on Tiny Shakespeare (a generated text if it is not fetched yet:
#    `python tools/fetch_data.py tinyshakespeare`) and read the first tokens it learns;
# 3. plot compression (bytes per token) against vocabulary size, yours against SentencePiece's
#    BPE trained on the same text with the same number of merges;
# 4. look at special tokens, a round trip through emoji, and where characters get cut.
#
# Every experiment is recorded under `results/s28_bpe_tokenizer/`.

# %%
import io
import random
import time
from collections import Counter

import matplotlib.pyplot as plt
import sentencepiece as spm  # the `text` extra

from tools.fetch_data import cache_dir, datasets, fetch
from tools.labkit import Run, load_step

bpe = load_step("s28_bpe_tokenizer")
shakespeare = cache_dir() / datasets()["tinyshakespeare"].file
if shakespeare.exists():
    text, source = fetch("tinyshakespeare").read_text(encoding="utf-8"), "Tiny Shakespeare"
else:  # generated prose, so the lab runs before the data set is fetched
    rng = random.Random(0)
    words = ["".join(rng.choices("etaoinshrdlucmfwyp", k=rng.randint(1, 7))) for _ in range(900)]
    text = "\n".join(" ".join(rng.choices(words, [1 / (r + 1) for r in range(900)], k=12))
                     for _ in range(6000))
    source = "generated text (fetch tinyshakespeare for the real thing)"
train_text, val_text = text[:200_000], text[-50_000:]
MAX_MERGES = 512
run = Run("s28_bpe_tokenizer", config={"source": source, "train_chars": len(train_text),
                                       "val_chars": len(val_text), "max_merges": MAX_MERGES},
          seed=0)
print(f"training on {len(train_text):,} characters of {source}")

# %% [markdown]
# ## 1. The worked example, one merge at a time
# Train with 1, 2, 3 merges and print what each merge adds. Overlapping pairs count
# ("aaa" holds two "aa"), and the tie at the second merge goes to the smaller pair.

# %%
for n in (1, 2, 3):
    tok = bpe.BPETokenizer.train("aaabdaaabac", 256 + n)
    new = tok.merges[-1]
    print(f"{n} merge(s): {new} -> {255 + n} = {tok.decode([255 + n])!r}; "
          f"encode = {tok.encode('aaabdaaabac')}")

# %% [markdown]
# ## 2. Train on real text
# Training is greedy, so the first k merges of a long run are exactly what a k-merge run
# learns: we train once and cut the merge list to get every smaller vocabulary. The first
# merges are the commonest pairs of the language: ' t', 'he', ' the', ...

# %%
t0 = time.process_time()
tok = bpe.BPETokenizer.train(train_text, 256 + MAX_MERGES)
train_seconds = time.process_time() - t0
run.metric("train_cpu_seconds", train_seconds)
print(f"{len(tok.merges)} merges in {train_seconds:.1f} s of CPU")
print("first 30 tokens learned:", [tok.decode([i]) for i in range(256, 286)])
longest = sorted(range(256, tok.vocab_size), key=lambda i: -len(tok.vocab[i]))[:10]
print("longest tokens:", [tok.decode([i]) for i in longest])

# %% [markdown]
# ## 3. Compression against SentencePiece
# Bytes per token on the held-out text, one point per vocabulary size. SentencePiece starts
# from the characters of the text instead of the 256 bytes, so "the same vocabulary" here
# means the same number of learned merges (its vocab_size = merges + alphabet + 3 control
# pieces). The two curves should nearly coincide: it is the same greedy algorithm.

# %%
lines, val_lines = train_text.splitlines(), val_text.splitlines()
alphabet = set("".join(lines).replace(" ", "\u2581"))
n_bytes = sum(len(line.encode("utf-8")) for line in val_lines)
sizes = [32, 64, 128, 256, 384, 512]
ours, theirs = [], []
for m in sizes:
    cut = bpe.BPETokenizer(tok.merges[:m])
    ours.append(n_bytes / sum(len(cut.encode(line)) for line in val_lines))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe",
        vocab_size=m + len(alphabet) + 3, character_coverage=1.0,
        normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    theirs.append(n_bytes / sum(len(sp.encode(line)) for line in val_lines))
    print(f"{m:4d} merges: yours {ours[-1]:.3f}, SentencePiece {theirs[-1]:.3f} bytes/token")
run.metric("bytes_per_token_512", ours[-1])
run.metric("sentencepiece_bytes_per_token_512", theirs[-1])

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot([256 + m for m in sizes], ours, "o-", label="your BPE (256 bytes + merges)")
ax.plot([256 + m for m in sizes], theirs, "s--", label="SentencePiece BPE, same merges")
ax.set_xlabel("vocabulary size (bytes + merges)")
ax.set_ylabel("bytes per token (held-out)")
ax.set_title(f"Compression vs vocabulary size on {source.split(' (')[0]}")
ax.legend()
fig.tight_layout()
run.figure(fig, "compression_vs_vocab")
plt.show()

# %% [markdown]
# ## 4. Token lengths, special tokens and broken characters
# Most tokens the model sees are short; each doubling of the vocabulary buys less. A special
# token is one id, never split and never produced by ordinary text. Decoding ONE token of a
# multi-byte character gives U+FFFD: bytes are not characters.

# %%
counts = Counter(len(tok.vocab[i]) for i in tok.encode(val_text))
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(sorted(counts), [counts[k] for k in sorted(counts)])
ax.set_xlabel("bytes in the token")
ax.set_ylabel("tokens in the held-out text")
fig.tight_layout()
run.figure(fig, "token_lengths")
plt.show()

chat = bpe.BPETokenizer.train(train_text[:50_000], 256 + 128 + 1, ["<|endoftext|>"])
sample = "To be, or not to be<|endoftext|>Ünïcödé 🙂 and 東京"
ids = chat.encode(sample)
print(ids)
print([chat.decode([i]) for i in ids])
assert chat.decode(ids) == sample
run.metric("sample_round_trip", chat.decode(ids) == sample)

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"On {source} with {MAX_MERGES} merges my tokenizer gives {ours[-1]:.2f} bytes per token "
    f"on held-out text, SentencePiece {theirs[-1]:.2f}; compression grows with the "
    f"vocabulary but each doubling buys less (from {ours[0]:.2f} at {sizes[0]} merges).")

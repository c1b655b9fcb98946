# %% [markdown]
# # s29 · Data pipeline lab: batches you can read, masks you can see, duplicates you can count
#
# This lab runs **your** `exercises/s29_data_pipeline.py` (and your s28 tokenizer when it is
# finished; characters otherwise). You will
#
# 1. cut Tiny Shakespeare (a generated text if it is not fetched yet:
#    `python tools/fetch_data.py tinyshakespeare`) into speeches and pack them into one stream;
# 2. decode a random batch and see that y is x moved one token to the left;
# 3. draw the attention mask and the loss mask of a padded batch;
# 4. check MinHash against the exact Jaccard and watch its error shrink like 1/sqrt(P);
# 5. count exact and near duplicates, and the validation speeches that leak from training.
#
# Every experiment is recorded under `results/s29_data_pipeline/`.

# %%
import math
import random

import matplotlib.pyplot as plt
import numpy as np
import torch

from tools.fetch_data import cache_dir, datasets, fetch
from tools.labkit import Run, load_step

dp = load_step("s29_data_pipeline")
shakespeare = cache_dir() / datasets()["tinyshakespeare"].file
if shakespeare.exists():
    text, source = fetch("tinyshakespeare").read_text(encoding="utf-8"), "Tiny Shakespeare"
else:  # generated speeches (with planted repeats), so the lab runs before the data is fetched
    rng0 = random.Random(0)
    lines = ["".join(rng0.choices("etaoinshrdlu ", k=rng0.randint(20, 80))) for _ in range(300)]
    text = "\n\n".join("SPEAKER:\n" + "\n".join(rng0.choices(lines, k=3)) for _ in range(1500))
    source = "generated speeches (fetch tinyshakespeare for the real thing)"
all_speeches = [s.strip() for s in text.split("\n\n") if s.strip()]
speeches = all_speeches[:1200]
run = Run("s29_data_pipeline", config={"source": source, "speeches": len(speeches),
                                       "block_size": 32, "batch_size": 4}, seed=0)
print(f"{len(speeches)} speeches from {source}")

# %% [markdown]
# ## 1. Tokens: your BPE if s28 is finished, else characters
# The pipeline does not care which tokenizer made the ids; BOS and EOS only need ids of their
# own. With BPE they are special tokens; with characters they are two ids past the alphabet.

# %%
try:
    bpe = load_step("s28_bpe_tokenizer")
    tok = bpe.BPETokenizer.train("\n\n".join(speeches[:400]), 256 + 200 + 2, ["<bos>", "<eos>"])
    encode, decode = tok.encode, tok.decode
    BOS, EOS = tok.special_tokens["<bos>"], tok.special_tokens["<eos>"]
    tokenizer = "your s28 BPE (200 merges)"
except NotImplementedError:
    chars = sorted(set("".join(speeches)))
    stoi = {c: i for i, c in enumerate(chars)}
    BOS, EOS = len(chars), len(chars) + 1
    names = {BOS: "<bos>", EOS: "<eos>"}

    def encode(s):
        return [stoi[c] for c in s]

    def decode(ids):
        return "".join(names.get(i) or chars[i] for i in ids)
    tokenizer = "characters (finish s28 to use your BPE)"
docs = [encode(s) for s in speeches]
stream = dp.pack_documents(docs, bos=BOS, eos=EOS)
run.metric("stream_tokens", len(stream))
print(f"tokenizer: {tokenizer}; {len(stream):,} tokens in the stream")

# %% [markdown]
# ## 2. A batch you can read
# Row b of y is row b of x moved one token left: every position's target is the next token.
# Document boundaries are just tokens in the stream; a window may cross one.

# %%
x, y = dp.get_batch(stream, 4, 32, torch.Generator().manual_seed(0))
for b in range(2):
    print("x:", repr(decode(x[b].tolist())))
    print("y:", repr(decode(y[b].tolist())))
    print()
assert torch.equal(x[:, 1:], y[:, :-1])

# %% [markdown]
# ## 3. Padding and the two masks
# Short documents padded to the longest. The attention mask marks real INPUT tokens; the loss
# mask (y != -100) marks real TARGETS. They differ by one position per row: the last real
# token (EOS) is read but has nothing to predict.

# %%
short = sorted(docs[:40], key=len)[:6]
xp, yp, att = dp.pad_batch([d[:30] for d in short], pad_id=0, bos=BOS, eos=EOS)
loss_mask = yp != -100
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
for ax, m, title in ((axes[0], att, "attention_mask (real inputs)"),
                     (axes[1], loss_mask, "loss mask (y != -100)")):
    ax.imshow(m.numpy(), cmap="Greens", aspect="auto", vmin=0, vmax=1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("position t")
axes[0].set_ylabel("document")
fig.tight_layout()
run.figure(fig, "padding_masks")
plt.show()
run.metric("padding_fraction", 1 - float(att.float().mean()))

# %% [markdown]
# ## 4. MinHash against the exact Jaccard
# Pairs of speeches and edited copies: the estimate scatters around the diagonal with a
# standard deviation sqrt(J (1 - J) / P). Quadrupling the number of hash functions halves it.

# %%
rng = np.random.default_rng(0)
pairs = []
for i in rng.choice(len(speeches), 60, replace=False):
    a = speeches[i]
    words = a.split()
    keep = rng.random(len(words)) > rng.uniform(0, 0.6)  # drop up to 60 % of the words
    pairs.append((dp.shingles(a), dp.shingles(" ".join(w for w, k in zip(words, keep,
                                                                          strict=True) if k))))
exact = np.array([dp.jaccard(a, b) for a, b in pairs])
errors = {}
for P in (16, 64, 256):
    est = np.array([dp.estimate_jaccard(dp.minhash(a, P, 1), dp.minhash(b, P, 1))
                    for a, b in pairs])
    errors[P] = float(np.sqrt(np.mean((est - exact) ** 2)))
    if P == 64:
        est64 = est
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
axes[0].scatter(exact, est64, s=12)
grid = np.linspace(0, 1, 50)
band = 2 * np.sqrt(grid * (1 - grid) / 64)
axes[0].plot(grid, grid, "k-", lw=1)
axes[0].fill_between(grid, grid - band, grid + band, alpha=0.2, label="±2 sd, P = 64")
axes[0].set_xlabel("exact Jaccard")
axes[0].set_ylabel("MinHash estimate")
axes[0].legend()
axes[1].loglog(list(errors), list(errors.values()), "o-", label="measured RMS error")
axes[1].loglog(list(errors), [errors[16] * math.sqrt(16 / P) for P in errors], "--",
               label="1 / sqrt(P)")
axes[1].set_xlabel("hash functions P")
axes[1].set_xticks(list(errors), [str(P) for P in errors])
axes[1].minorticks_off()
axes[1].legend()
fig.tight_layout()
run.figure(fig, "minhash_vs_exact")
plt.show()
for P, e in errors.items():
    run.metric(f"minhash_rms_error_P{P}", e)

# %% [markdown]
# ## 5. Duplicates and leakage
# Plays repeat themselves ("Exeunt.", short answers, refrains): count the exact copies over
# every speech, then the near copies among the first 1200. For leakage, split the deduplicated
# speeches into train and validation and plant 10 lightly edited copies of training speeches
# in validation, as a careless scrape would. The detector should find the planted ones; any
# other hit is a real 8-word overlap (a refrain, a stock phrase) worth reading.

# %%
kept_all = dp.exact_dedup(all_speeches)
kept_exact = dp.exact_dedup(speeches)
kept_near = dp.near_dedup([speeches[i] for i in kept_exact], threshold=0.8, num_perm=64)
clean = [speeches[kept_exact[i]] for i in kept_near]
order = np.random.default_rng(1).permutation(len(clean))
cut = int(0.85 * len(clean))
train, val = [clean[i] for i in order[:cut]], [clean[i] for i in order[cut:]]
planted = []
for j in np.random.default_rng(2).choice(len(train), 10, replace=False):
    copy = train[j].upper().replace(",", ";")  # another case and punctuation: still a copy
    planted.append(len(val))
    val.append(copy)
leaks = dp.find_leakage(train, val, n=8)
found = sorted(set(leaks) & set(planted))
natural = sorted(set(leaks) - set(planted))
print(f"all {len(all_speeches)} speeches: {len(all_speeches) - len(kept_all)} exact copies")
print(f"first {len(speeches)}: {len(speeches) - len(kept_exact)} exact, "
      f"{len(kept_exact) - len(kept_near)} more near copies (MinHash estimate >= 0.8)")
print(f"leakage: {len(found)} of {len(planted)} planted copies flagged, "
      f"{len(natural)} natural overlaps among {len(val) - len(planted)} validation speeches")
for i in natural[:3]:
    print("  natural overlap:", repr(val[i][:70]))
run.metric("exact_duplicates_all", len(all_speeches) - len(kept_all))
run.metric("near_duplicates", len(kept_exact) - len(kept_near))
run.metric("planted_leaks_found", len(found))
run.metric("natural_leaks", len(natural))

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell.

# %%
run.finish(
    f"{len(all_speeches) - len(kept_all)} of {len(all_speeches)} speeches were exact copies; "
    f"the leakage check found {len(found)} of {len(planted)} planted copies and "
    f"{len(natural)} natural overlaps. MinHash's RMS error went from {errors[16]:.3f} "
    f"(16 hashes) to {errors[256]:.3f} (256), about 1/sqrt(P).")

# %% [markdown]
# # s33 · Scaling lab: a sweep of tiny GPTs, loss against compute, a fitted law
#
# This lab runs **your** `exercises/s33_scaling.py` (the fits, N and 6 N D) and **your**
# `exercises/s26_gpt.py` (the models). You will
#
# 1. train five character GPTs of growing width on the same text, evaluating each along the way;
# 2. plot validation loss against training compute C = 6 N D, one curve per model, and fit a
#    power law with an irreducible loss to the best loss reached at each compute;
# 3. fit loss against model size, and ask Chinchilla's law how it would split real budgets.
#
# The text is Tiny Shakespeare when `python tools/fetch_data.py tinyshakespeare` has put it in
# `datasets/cache/`, otherwise a generated text with a grammar (the lab says which). The whole
# sweep takes about a minute on a laptop CPU. Every run is recorded under `results/s33_scaling/`.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from tools.fetch_data import cache_dir
from tools.labkit import Run, load_step

torch.set_num_threads(1)  # models this small run fastest on one core
sc = load_step("s33_scaling")
gpt = load_step("s26_gpt")


def generated_text(n_chars: int, seed: int = 0) -> str:
    """A small language: 40 made-up words, sentences that follow a fixed word-order grammar."""
    rng = np.random.default_rng(seed)
    syll = ["ka", "lo", "mi", "ten", "su", "ra", "vo", "ne", "di", "po", "shu", "gar"]
    words = sorted({"".join(rng.choice(syll, size=rng.integers(1, 4))) for _ in range(60)})[:40]
    nouns, verbs, adjs = words[:16], words[16:28], words[28:]
    out, size = [], 0
    while size < n_chars:
        s = f"the {rng.choice(adjs)} {rng.choice(nouns)} {rng.choice(verbs)} "
        s += f"the {rng.choice(nouns)}"
        s += f" and {rng.choice(verbs)}.\n" if rng.random() < 0.3 else ".\n"
        out.append(s)
        size += len(s)
    return "".join(out)[:n_chars]


shakespeare = cache_dir() / "tinyshakespeare.txt"
if shakespeare.exists():
    text, source = shakespeare.read_text(encoding="utf-8")[:300_000], "Tiny Shakespeare"
else:
    text, source = generated_text(300_000), "a generated text (fetch tinyshakespeare to use it)"
print("text:", source, f"({len(text):,} characters)")
chars = sorted(set(text))
data = torch.tensor([chars.index(c) for c in text])
train, val = data[:270_000], data[270_000:]

config = {"widths": [8, 16, 24, 32, 48], "n_layer": 2, "n_head": 2, "block_size": 32,
          "batch": 16, "steps": 400, "eval_at": [25, 50, 100, 200, 400], "lr": 3e-3,
          "text": source}
run = Run("s33_scaling", config=config, seed=0)

# %% [markdown]
# ## 1. The sweep
# Same data, same optimiser, same number of steps; only the width changes. Each model is
# evaluated on the same validation windows after 25, 50, ..., 400 steps, so one training run
# gives several (D, loss) points: D = steps * batch * block_size tokens.

# %%
T, Bsz = config["block_size"], config["batch"]


def batch(split, gen):
    ix = torch.randint(0, len(split) - T - 1, (Bsz,), generator=gen)
    return (torch.stack([split[i:i + T] for i in ix]),
            torch.stack([split[i + 1:i + T + 1] for i in ix]))


val_batches = [batch(val, torch.Generator().manual_seed(100 + i)) for i in range(8)]
points = []  # (width, N, tokens, val loss)
start = time.time()
for width in config["widths"]:
    cfg = gpt.GPTConfig(vocab_size=len(chars), block_size=T, n_layer=config["n_layer"],
                        n_head=config["n_head"], n_embd=width)
    torch.manual_seed(0)
    model = gpt.GPT(cfg)
    N = sc.non_embedding_params(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"])
    gen = torch.Generator().manual_seed(0)  # the same batches for every width
    for step in range(1, config["steps"] + 1):
        _, loss = model(*batch(train, gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in config["eval_at"]:
            with torch.no_grad():
                v = float(np.mean([float(model(x, y)[1]) for x, y in val_batches]))
            points.append((width, N, step * Bsz * T, v))
    print(f"n_embd {width:2d}  N = {N:6,d}  val loss after {config['steps']} steps: {v:.3f}")
print(f"sweep: {time.time() - start:.0f} s")
pts = np.array(points, dtype=float)
compute = sc.training_flops(pts[:, 1], pts[:, 2])

# %% [markdown]
# ## 2. Loss against compute
# Each curve is one model. At small compute the small models are best (they learn fast);
# with more compute the wider ones overtake them. The lower envelope, the best loss reached
# at each compute, is what the scaling law describes: fit L(C) = E + a C^-alpha to it.

# %%
order = np.argsort(compute)
frontier = [i for n, i in enumerate(order) if pts[i, 3] <= pts[order[:n + 1], 3].min()]
E_c, a_c, alpha_c = sc.fit_power_law_offset(compute[frontier], pts[frontier, 3])
run.metric("compute_law", {"E": E_c, "a": a_c, "alpha": alpha_c})
fig, ax = plt.subplots(figsize=(6.5, 4))
for width in config["widths"]:
    m = pts[:, 0] == width
    ax.plot(compute[m], pts[m, 3], "o-", ms=3, label=f"n_embd {width}")
grid = np.logspace(np.log10(compute.min()), np.log10(compute.max()), 100)
ax.plot(grid, E_c + a_c * grid ** -alpha_c, "k--",
        label=f"fit {E_c:.2f} + {a_c:.3g} C^-{alpha_c:.2f}")
ax.set_xscale("log")
ax.set_xlabel("training compute C = 6 N D (FLOPs, N non-embedding)")
ax.set_ylabel("validation loss (nats / char)")
ax.legend(fontsize=8)
fig.tight_layout()
run.figure(fig, "loss_vs_compute")
plt.show()

# %% [markdown]
# ## 3. Loss against model size, and Chinchilla's split
# At the end of training every model saw the same D; the final loss against N is another
# power law. Then ask the refit Chinchilla law (Besiroglu et al. 2024) how it would spend
# this sweep's budget and a real one: about 20 tokens per parameter at large budgets.

# %%
last = pts[:, 2] == pts[:, 2].max()
E_n, a_n, alpha_n = sc.fit_power_law_offset(pts[last, 1], pts[last, 3])
a_pure, alpha_pure = sc.fit_power_law(pts[last, 1], pts[last, 3])
run.metric("size_law", {"E": E_n, "a": a_n, "alpha": alpha_n, "alpha_without_E": alpha_pure})
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.plot(pts[last, 1], pts[last, 3], "o", label="final validation loss")
ns = np.logspace(np.log10(pts[last, 1].min()), np.log10(pts[last, 1].max()), 100)
ax.plot(ns, E_n + a_n * ns ** -alpha_n, "k--", label=f"E + a N^-alpha, alpha = {alpha_n:.2f}")
ax.plot(ns, a_pure * ns ** -alpha_pure, ":", label=f"a N^-alpha, alpha = {alpha_pure:.2f}")
ax.set_xscale("log")
ax.set_xlabel("non-embedding parameters N")
ax.set_ylabel("validation loss")
ax.legend(fontsize=8)
fig.tight_layout()
run.figure(fig, "loss_vs_size")
plt.show()

FIT = {"A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
for label, C in (("this sweep's largest run", float(compute.max())),
                 ("Chinchilla (70B x 1.4T tokens)", 6 * 70e9 * 1.4e12)):
    n_opt, d_opt = sc.compute_optimal(C, **FIT)
    print(f"{label}: C = {C:.3g} -> N_opt = {n_opt:.3g}, D_opt = {d_opt:.3g}, "
          f"{d_opt / n_opt:.1f} tokens per parameter")
    run.metric(f"optimal_at_{C:.3g}", {"N": n_opt, "D": d_opt})

# %% [markdown]
# ## Record your interpretation
# Edit the sentence below with what *you* saw, then run the cell. Are five tiny models enough
# to pin down an exponent? How would a different learning rate per width change the picture?

# %%
run.finish(
    f"On {source}, the best loss at each compute follows {E_c:.2f} + {a_c:.3g} C^-{alpha_c:.2f}; "
    f"the final loss against size has alpha = {alpha_n:.2f} with an irreducible "
    f"{E_n:.2f} (alpha = {alpha_pure:.2f} if E is forced to 0).")

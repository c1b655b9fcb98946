# %% [markdown]
# # s45 · Speculative decoding lab: a cheap draft, the big model's text
#
# This lab runs **your** `exercises/s45_speculative_decoding.py` with a GPT pretrained on Tiny
# Shakespeare as the target: your own checkpoint from s30 (`python tools/pretrain.py`) when
# `results/` has one, otherwise a small one trained now in about 30 seconds. You will
#
# 1. build two drafts: a bigram table counted from the training text (almost free to run) and
#    a one-layer GPT a quarter of the target's width trained for a few seconds;
# 2. measure how often the target accepts each draft (alpha = sum min(p, q)) and how many
#    tokens each target call yields as k grows, against the theory (1 - a^(k+1)) / (1 - a);
# 3. check that greedy speculative decoding gives the target's own greedy text, token for token.
#
# Every experiment is recorded under `results/s45_speculative_decoding/`.

# %%
import os
import time

import matplotlib.pyplot as plt
import torch

from tools.checkpoint import lab_model
from tools.labkit import Run, load_step
from tools.pretrain import read_text

spec = load_step("s45_speculative_decoding")
torch.set_num_threads(1)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
target, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                   else "exercises")
target.eval()
print("target:", source)
text = read_text(None)
split = int(0.9 * len(text))
train_ids = torch.tensor(encode(text[:split]))
val_ids = torch.tensor(encode(text[split:]))
V, BLOCK = config.vocab_size, config.block_size
run = Run("s45_speculative_decoding", config={"model": source}, seed=0)

# %% [markdown]
# ## 1. Two drafts
# A draft must be much cheaper than the target and often agree with it. The bigram table
# (next character given the last one, add-one smoothed counts) costs one lookup; the small GPT
# costs a real but much smaller forward pass.

# %%
counts = torch.ones(V, V)
counts.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1),
                  accumulate=True)


class Bigram(torch.nn.Module):
    def __init__(self, counts):
        super().__init__()
        self.table = (counts / counts.sum(1, keepdim=True)).log()

    def forward(self, idx, targets=None):
        return self.table[idx], None


small_config = type(config)(vocab_size=V, block_size=BLOCK, n_layer=1, n_head=2,
                            n_embd=max(16, config.n_embd // 4))
torch.manual_seed(0)
small = type(target)(small_config)
optimizer = torch.optim.AdamW(small.parameters(), lr=3e-3)
gen = torch.Generator().manual_seed(0)
start = time.perf_counter()
for _ in range(300):
    starts = torch.randint(0, len(train_ids) - BLOCK - 1, (16,), generator=gen)
    chunk = torch.stack([train_ids[s:s + BLOCK + 1] for s in starts.tolist()])
    _, loss = small(chunk[:, :-1], chunk[:, 1:])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
small.eval()
print(f"small GPT draft: {sum(p.numel() for p in small.parameters())} parameters, "
      f"trained in {time.perf_counter() - start:.1f} s (loss {loss.item():.2f})")
drafts = {"bigram table": Bigram(counts), "1-layer GPT": small}

# %% [markdown]
# ## 2. How often does the target agree?
# On held-out text, alpha(position) = sum_i min(p_i, q_i) is the chance the target accepts the
# draft's token there. Its mean predicts the tokens per target call.

# %%
windows = torch.stack([val_ids[s:s + BLOCK] for s in range(0, 40 * BLOCK, BLOCK)])
TEMPERATURE = 0.8
with torch.no_grad():
    p = spec.token_probs(target(windows)[0], TEMPERATURE)
    alpha = {name: spec.acceptance_probability(p, spec.token_probs(d(windows)[0], TEMPERATURE))
             for name, d in drafts.items()}
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, a in alpha.items():
    ax.hist(a.flatten().numpy(), bins=40, histtype="step", label=f"{name} (mean {a.mean():.2f})")
    run.metric(f"alpha {name}", float(a.mean()))
ax.set_xlabel("acceptance probability sum min(p, q) at a position")
ax.set_ylabel("positions")
ax.legend()
run.figure(fig, "acceptance")

# %% [markdown]
# ## 3. Tokens per target call as k grows
# Each run generates 48 characters after 8-character prompts from the validation text (the
# sequences stay within one block, so each round costs one target forward). Plain sampling
# would cost one target call per token.

# %%
prompts = [val_ids[s:s + 8][None] for s in range(5000, 5000 + 12 * 300, 300)]
ks = (1, 2, 3, 4, 6, 8)
start = time.perf_counter()
for i, prompt in enumerate(prompts):  # plain sampling: the target drafting for itself
    spec.propose(target, prompt, 48, TEMPERATURE, BLOCK, torch.Generator().manual_seed(i))
plain_seconds = time.perf_counter() - start
run.metric("seconds plain sampling", plain_seconds)
print(f"plain sampling: 1.00 tokens per target call, {plain_seconds:.1f} s")
measured = {}
for name, draft in drafts.items():
    measured[name] = []
    for k in ks:
        tokens = calls = proposed = accepted = 0
        start = time.perf_counter()
        for i, prompt in enumerate(prompts):
            out, stats = spec.speculative_generate(target, draft, prompt, 48, k=k,
                                                   temperature=TEMPERATURE, block_size=BLOCK,
                                                   generator=torch.Generator().manual_seed(i))
            tokens += out.size(1) - prompt.size(1)
            calls += stats["target_calls"]
            proposed += stats["proposed"]
            accepted += stats["accepted"]
        seconds = time.perf_counter() - start
        measured[name].append(tokens / calls)
        run.metric(f"tokens_per_target_call {name} k={k}", tokens / calls)
        run.metric(f"acceptance {name} k={k}", accepted / proposed)
        run.metric(f"seconds {name} k={k}", seconds)
        print(f"{name:13s} k={k}: {tokens / calls:.2f} tokens per target call, "
              f"{accepted / proposed:.2f} of drafts accepted, {seconds:.1f} s")
fig, ax = plt.subplots(figsize=(6, 4))
for name in drafts:
    a = float(alpha[name].mean())
    line, = ax.plot(ks, measured[name], "o-", label=f"{name}: measured")
    ax.plot(ks, [spec.expected_tokens_per_call(a, k) for k in ks], "--", color=line.get_color(),
            label=f"{name}: theory at alpha = {a:.2f}")
ax.plot(ks, [k + 1 for k in ks], ":", color="gray", label="every draft accepted (k + 1)")
ax.set_xlabel("drafts per round k")
ax.set_ylabel("tokens per target call")
ax.legend(fontsize=8)
run.figure(fig, "tokens_per_call")

# %% [markdown]
# The theory assumes one alpha for every position; real acceptance varies (high inside a word,
# low at its start), so measured values sit a little off the curve. More drafts per round
# always yield more tokens per target call but with diminishing returns, while the draft's cost
# grows linearly in k: the best k balances the two. With a target as small as this one, the
# draft GPT's forward costs a good fraction of the target's, so wall time barely improves;
# the gain is real when the target is 10-100x the draft (a 7B target with a 100M draft).

# %% [markdown]
# ## 4. Greedy: the same text
# At temperature 0 every accepted draft is the target's argmax and every correction is too, so
# the text is the target's own greedy text, whatever the draft.

# %%
prompt = torch.tensor([encode("ROMEO:\n")])
plain = spec.propose(target, prompt, 40, 0, BLOCK)[0]  # the target drafting for itself
fast, stats = spec.speculative_generate(target, small, prompt, 40, k=4, temperature=0,
                                        block_size=BLOCK)
print(decode(fast[0].tolist()))
print(stats)
same = fast[0, prompt.size(1):].tolist() == plain.tolist()
run.metric("greedy_identical", same)
print("identical to the target's greedy text:", same)

# %%
run.finish(f"On {source} at temperature {TEMPERATURE}: alpha = "
           + ", ".join(f"{float(alpha[n].mean()):.2f} for the {n}" for n in drafts)
           + "; tokens per target call at k=4: "
           + ", ".join(f"{measured[n][ks.index(4)]:.2f} ({n})" for n in drafts)
           + f"; plain sampling took {plain_seconds:.1f} s for what speculative decoding did in "
           + ", ".join(f"{run.record['metrics'][f'seconds {n} k=4']:.1f} s ({n}, k=4)"
                       for n in drafts)
           + f"; greedy speculative text identical to the target's: {same}.")

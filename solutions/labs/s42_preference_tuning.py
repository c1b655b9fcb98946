# %% [markdown]
# # s42 · Preference tuning lab: DPO on a pretrained GPT
#
# This lab runs **your** `exercises/s42_preference_tuning.py` on a GPT pretrained on Tiny
# Shakespeare: your own checkpoint from s30 (`python tools/pretrain.py`) when `results/` has
# one, otherwise a small one trained now in about 30 seconds. You will
#
# 1. build preference pairs from generated instructions: the same prompt with the correct
#    answer (chosen) and a plausible wrong one (rejected);
# 2. measure how often the pretrained model already gives the chosen answer the higher
#    log-probability on held-out words;
# 3. run DPO against a frozen copy of the model and watch the implicit reward margin and the
#    chosen / rejected log-probabilities over the steps;
# 4. measure the held-out preference accuracy again.
#
# Every experiment is recorded under `results/s42_preference_tuning/`.

# %%
import copy
import os
import random

import matplotlib.pyplot as plt
import torch

from tools.checkpoint import lab_model
from tools.instruct_data import NUMBERS, make_examples
from tools.labkit import Run, load_step

pt = load_step("s42_preference_tuning")
torch.set_num_threads(1)
torch.manual_seed(0)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
model, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                  else "exercises")
print("model:", source)
BETA, LR, STEPS, BATCH = 0.1, 3e-4, 120, 16
run = Run("s42_preference_tuning", config={"model": source, "beta": BETA, "lr": LR,
                                           "steps": STEPS, "batch": BATCH}, seed=0)

# %% [markdown]
# ## 1. Preference pairs
# Each task has one right answer; the rejected answer is the mistake a weak model makes: the
# word not reversed, left in lower case, a count one too high, two repetitions instead of
# three, the last letter instead of the first. The prompt is shared, so only the response
# tokens are scored (`response_logprobs` with a mask on the answer).


# %%
def corrupt(example: dict, rng: random.Random) -> str:
    word, task = example["word"], example["task"]
    if task == "reverse":
        return word
    if task == "uppercase":
        return word
    if task == "count":
        return NUMBERS[(len(word) + rng.choice([1, 2])) % len(NUMBERS)]
    if task == "repeat":
        return " ".join([word] * 2)
    return word[-1] if word[-1] != word[0] else word[1]


def to_batch(examples, rng):
    """Right-padded (chosen_ids, chosen_mask, rejected_ids, rejected_mask)."""
    rows = []
    for e in examples:
        prompt = encode(e["prompt"] + "\n")
        rows.append((prompt, encode(e["response"] + "\n"), encode(corrupt(e, rng) + "\n")))
    out = []
    for which in (1, 2):
        width = max(len(r[0]) + len(r[which]) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for b, r in enumerate(rows):
            n = len(r[0]) + len(r[which])
            ids[b, :n] = torch.tensor(r[0] + r[which])
            mask[b, len(r[0]):n] = True
        out += [ids, mask]
    return tuple(out)


def fits(e):  # prompt, newline, answer and newline inside the model's context
    return len(e["prompt"]) + len(e["response"]) + 2 <= config.block_size


rng = random.Random(0)
train = [e for e in make_examples(800, seed=0) if fits(e)][:STEPS * BATCH // 4]
test = [e for e in make_examples(200, seed=1, split="test") if fits(e)]
batches = [to_batch(train[i:i + BATCH], rng) for i in range(0, len(train), BATCH)]
held_out = to_batch(test, rng)
print(f"{len(train)} training pairs in {len(batches)} batches, {len(test)} held-out pairs")
print("example:", repr(test[0]["prompt"]), "chosen", repr(test[0]["response"]),
      "rejected", repr(corrupt(test[0], random.Random(1))))

# %% [markdown]
# ## 2. What the pretrained model prefers
# The preference accuracy is the share of held-out pairs where log p(chosen | prompt) >
# log p(rejected | prompt): `ranking_accuracy` on the two summed log-probabilities.


# %%
def preference(m):
    m.eval()
    with torch.no_grad():
        c = pt.response_logprobs(m, held_out[0], held_out[1])
        r = pt.response_logprobs(m, held_out[2], held_out[3])
    return c, r


reference = copy.deepcopy(model)
for p in reference.parameters():
    p.requires_grad_(False)
ref_c, ref_r = preference(reference)
acc_before = pt.ranking_accuracy(ref_c, ref_r)
print(f"held-out preference accuracy before DPO: {acc_before:.1%}")
run.metric("preference_accuracy_before", acc_before)

# %% [markdown]
# ## 3. DPO
# At step 0 the policy is the reference: every implicit reward is 0 and the loss is log 2.
# The margin beta * [(log pi - log ref)(chosen) - (log pi - log ref)(rejected)] should grow.
# Watch the chosen log-probability too: DPO only promises to widen the gap, and it can lower
# both answers' log-probabilities while it does.

# %%
history = pt.train_dpo(model, reference, batches, steps=STEPS, beta=BETA, lr=LR)
steps = range(len(history))
margin = [h["chosen_reward"] - h["rejected_reward"] for h in history]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
axes[0].plot(steps, [h["loss"] for h in history])
axes[0].axhline(torch.log(torch.tensor(2.0)).item(), ls="--", c="gray", label="log 2")
axes[0].set_title("DPO loss")
axes[0].legend()
axes[1].plot(steps, margin)
axes[1].set_title("implicit reward margin (chosen - rejected)")
axes[2].plot(steps, [h["chosen_logp"] for h in history], label="chosen")
axes[2].plot(steps, [h["rejected_logp"] for h in history], label="rejected")
axes[2].set_title("policy log p(response | prompt)")
axes[2].legend()
for ax in axes:
    ax.set_xlabel("step")
fig.tight_layout()
run.figure(fig, "dpo_training")
run.metric("loss_first", history[0]["loss"])
run.metric("loss_last", history[-1]["loss"])
run.metric("margin_last", margin[-1])

# %% [markdown]
# ## 4. Held-out preference accuracy after DPO
# The held-out words were never in a training pair. The implicit reward accuracy asks the
# same question of beta * (log pi - log ref): does the policy move towards the right answer
# more than towards the wrong one?
#
# Look at "repeat": the right answer (three copies) is longer than the wrong one (two), and a
# sum of log-probabilities falls with every extra token, so the raw log-probability may still
# prefer the short wrong answer even when DPO has moved the policy the right way. The implicit
# reward divides the reference out, which is why DPO compares log-ratios and not log-probs.

# %%
pi_c, pi_r = preference(model)
acc_after = pt.ranking_accuracy(pi_c, pi_r)
implicit = pt.ranking_accuracy(BETA * (pi_c - ref_c), BETA * (pi_r - ref_r))
tasks = sorted({e["task"] for e in test})
per_task = {}
for t in tasks:
    idx = torch.tensor([i for i, e in enumerate(test) if e["task"] == t])
    per_task[t] = (pt.ranking_accuracy(ref_c[idx], ref_r[idx]),
                   pt.ranking_accuracy(pi_c[idx], pi_r[idx]))
fig, ax = plt.subplots(figsize=(7, 3.5))
x = torch.arange(len(tasks) + 1).float()
ax.bar(x - 0.2, [v[0] for v in per_task.values()] + [acc_before], 0.4, label="before DPO")
ax.bar(x + 0.2, [v[1] for v in per_task.values()] + [acc_after], 0.4, label="after DPO")
ax.set_xticks(x.tolist(), tasks + ["all"])
ax.set_ylabel("held-out preference accuracy")
ax.set_ylim(0, 1)
ax.legend()
run.figure(fig, "preference_accuracy")
print(f"held-out preference accuracy: {acc_before:.1%} -> {acc_after:.1%}; implicit reward "
      f"accuracy {implicit:.1%}")
for t, (b, a) in per_task.items():
    print(f"  {t:>12}: {b:.0%} -> {a:.0%}")
    run.metric(f"accuracy {t}", a)
run.metric("preference_accuracy_after", acc_after)
run.metric("implicit_reward_accuracy", implicit)

# %%
run.finish(f"On {source}: DPO (beta {BETA}, {STEPS} steps) took the loss from "
           f"{history[0]['loss']:.3f} (log 2) to {history[-1]['loss']:.3f} and the held-out "
           f"preference accuracy from {acc_before:.1%} to {acc_after:.1%}; the implicit reward "
           f"ranks {implicit:.1%} of held-out pairs correctly. The chosen log-probability went "
           f"from {history[0]['chosen_logp']:.1f} to {history[-1]['chosen_logp']:.1f}, the "
           f"rejected one from {history[0]['rejected_logp']:.1f} to "
           f"{history[-1]['rejected_logp']:.1f}.")

# %% [markdown]
# # s38 · Evaluation lab: did fine-tuning help, and what did it cost?
#
# This lab runs **your** `exercises/s38_evaluation.py` on two models:
#
# - **base**: the GPT pretrained on Tiny Shakespeare (your s30 checkpoint when `results/` has
#   one, else a small one trained in about 30 seconds);
# - **tuned**: the fine-tuned model of s37 when `results/sft/ckpt.pt` exists, otherwise a copy
#   of base given a short supervised fine-tune (about 30 s, prompt tokens masked out of the
#   loss) on generated instructions (reverse / uppercase / count / repeat / first letter).
#
# You will
#
# 1. check your metrics on a few hand-made pairs (BLEU with and without brevity, ROUGE-L, F1);
# 2. measure general ability: held-out perplexity on Shakespeare that neither model trained on;
# 3. measure instruction following on held-out words, and again under unseen paraphrases
#    (prompt sensitivity), categorise the failures, and write the comparison report.
#
# Every experiment is recorded under `results/s38_evaluation/`.

# %%
import copy
import os
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from tools.checkpoint import ROOT, lab_model, load_gpt
from tools.instruct_data import make_examples
from tools.labkit import Run, load_step

ev = load_step("s38_evaluation")
torch.set_num_threads(1)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoints
S26 = "solutions" if IMPL == "solutions" else "exercises"
base, encode, decode, config, source = lab_model(S26)
print("base model:", source)
run = Run("s38_evaluation", config={"base": source}, seed=0)

# %% [markdown]
# ## 1. The metrics on pairs you can check by hand
# A hypothesis that is a perfect prefix of its reference has every n-gram precision 1, so
# only the brevity penalty stops BLEU from calling it perfect. Clipping stops "the the the"
# from collecting credit for each repetition.

# %%
pairs = [("the cat sat on the mat", "the cat sat on the mat"),
         ("the cat sat on the", "the cat sat on the mat"),
         ("the the the the the the", "the cat sat on the mat"),
         ("on the mat the cat sat", "the cat sat on the mat")]
for hyp, ref in pairs:
    print(f"{hyp!r:28} BLEU {ev.corpus_bleu([hyp], [ref]):.3f}  "
          f"BLEU-1 {ev.corpus_bleu([hyp], [ref], max_n=1):.3f}  "
          f"ROUGE-L F {ev.rouge_l(hyp, ref)[2]:.3f}  F1 {ev.token_f1(hyp, ref):.3f}")

# %% [markdown]
# ## 2. The tuned model
# Each example is `prompt + "\n"` followed by `response + "\n"`; the loss counts only the
# response's characters (the prompt is given, not predicted). Sequences longer than the
# block keep their last `block_size + 1` characters.

# %%
SFT = ROOT / "results" / "sft" / "ckpt.pt"


def encode_example(e):
    ids = encode(e["prompt"] + "\n") + encode(e["response"] + "\n")
    n_prompt = len(encode(e["prompt"] + "\n"))
    targets = [-100] * (n_prompt - 1) + ids[n_prompt:]
    return ids[:-1][-config.block_size:], targets[-config.block_size:]


def sft(model, examples, steps, batch=32, lr=2e-3, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    data = [encode_example(e) for e in examples]
    losses = []
    model.train()
    for step in range(steps):
        rows = [data[(step * batch + i) % len(data)] for i in range(batch)]
        width = max(len(x) for x, _ in rows)
        x = torch.tensor([xs + [0] * (width - len(xs)) for xs, _ in rows])
        y = torch.tensor([ys + [-100] * (width - len(ys)) for _, ys in rows])
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


start = time.time()
if SFT.is_file():
    tuned = load_gpt(SFT, S26)[0]
    tuned_source, losses = f"the fine-tuned checkpoint {SFT.relative_to(ROOT)}", []
else:
    tuned = copy.deepcopy(base)
    losses = sft(tuned, make_examples(4000, seed=0), steps=250)
    tuned_source = "a copy of base fine-tuned here for 250 steps of 32 examples"
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(losses)
    ax.set_xlabel("step")
    ax.set_ylabel("response-token loss")
    run.figure(fig, "sft_loss")
print("tuned model:", tuned_source, f"({time.time() - start:.0f} s)")
run.record["config"]["tuned"] = tuned_source


# %% [markdown]
# ## 3. General ability and instruction following
# Perplexity on the last 3,000 characters of Tiny Shakespeare (outside the 90 % both models
# pretrained on): does tuning on instructions cost the model its Shakespeare? Then greedy
# answers (until a newline, at most 40 characters) to instructions about held-out words, in
# the training phrasings and in paraphrases neither model has seen.

# %%
text = (ROOT / "datasets" / "cache" / "tinyshakespeare.txt").read_text()
held = torch.tensor(encode(text[-3000:]))
ppl = {name: ev.perplexity(m, held, config.block_size)
       for name, m in (("base", base), ("tuned", tuned))}


def answerer(model):
    def generate(prompt):
        idx = torch.tensor([encode(prompt + "\n")])
        out = []
        with torch.no_grad():
            for _ in range(40):
                logits, _ = model(idx[:, -config.block_size:])
                nxt = int(logits[0, -1].argmax())
                if decode([nxt]) == "\n":
                    break
                out.append(nxt)
                idx = torch.cat([idx, torch.tensor([[nxt]])], dim=1)
        return decode(out)
    return generate


examples = make_examples(50, seed=1, split="test")
paraphrases = make_examples(25, seed=1, split="test", phrasing="paraphrase")
summary = ev.compare_models({"base": answerer(base), "tuned": answerer(tuned)}, examples,
                            paraphrases, ppl, n_show=6, seed=0)
report = ev.write_report(summary, run._staging)
print(report.read_text())

# %%
tasks = [t for t in summary["exact_match"]["base"] if t != "all"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for i, name in enumerate(summary["systems"]):
    em = summary["exact_match"][name]
    axes[0].bar([j + 0.4 * i for j in range(len(tasks) + 1)], [em[t] for t in [*tasks, "all"]],
                0.4, label=name)
    fails = summary["failures"][name]
    axes[1].bar([j + 0.4 * i for j in range(len(fails))], list(fails.values()), 0.4, label=name)
axes[0].set_xticks(range(len(tasks) + 1), [*tasks, "all"], fontsize=8)
axes[0].set_ylabel("exact match (held-out words)")
axes[1].set_xticks(range(len(ev.FAILURES)), ev.FAILURES, fontsize=7, rotation=20)
axes[1].set_ylabel("failures")
axes[0].legend()
run.figure(fig, "instruction_following")
for name in summary["systems"]:
    run.metric(f"perplexity {name}", ppl[name])
    run.metric(f"exact_match {name}", summary["exact_match"][name]["all"])
    run.metric(f"paraphrase_exact_match {name}", summary["paraphrase_exact_match"][name]["all"])
    run.metric(f"token_f1 {name}", summary["token_f1"][name])

# %%
em = {n: summary["exact_match"][n]["all"] for n in summary["systems"]}
pem = {n: summary["paraphrase_exact_match"][n]["all"] for n in summary["systems"]}
run.finish(f"Base ({source}) follows {em['base']:.0%} of held-out instructions, tuned "
           f"({tuned_source}) {em['tuned']:.0%}, and {pem['tuned']:.0%} when they are "
           f"paraphrased (sensitivity {summary['sensitivity']['tuned']:+.2f}). Held-out "
           f"Shakespeare perplexity goes from {ppl['base']:.2f} to {ppl['tuned']:.2f}: what "
           "tuning buys in instruction following it can cost in general language modelling.")

# %% [markdown]
# # s40 · Tool use lab: teach a tiny GPT to call tools, and let the runtime keep it honest
#
# This lab runs **your** `exercises/s40_tool_use.py` (and your s26 GPT). The pretrained
# Shakespeare checkpoint cannot be used here: its characters have no `{`, `}` or `"`, so it
# cannot even spell a JSON call. Instead a tiny GPT is trained **from scratch** on generated
# tool-call transcripts (about 20 CPU seconds). You will
#
# 1. build a registry of five word tools (reverse, uppercase, count_letters, repeat,
#    first_letter) whose JSON Schemas the runtime enforces;
# 2. generate transcripts: an instruction, the call the model should write, the tool's result,
#    and the final answer that copies it;
# 3. train the GPT on them and follow, with `classify_reply`, how its replies to held-out
#    instructions move from malformed JSON to valid calls;
# 4. hand the trained model to `run_agent` and measure end-to-end exact match, on the training
#    phrasings and on paraphrases it has never seen (where the guardrails earn their keep).
#
# Every experiment is recorded under `results/s40_tool_use/`.

# %%
import json
import random
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from tools.instruct_data import NUMBERS, SYLLABLES, TASKS, is_correct, make_examples
from tools.labkit import Run, load_step

tu = load_step("s40_tool_use")
gpt = load_step("s26_gpt")
torch.set_num_threads(1)
torch.manual_seed(0)
STEPS, BATCH, LR, BLOCK = 400, 32, 3e-3, 64
run = Run("s40_tool_use", config={"model": "tiny GPT from scratch (2 layers, 64 wide)",
                                  "steps": STEPS, "batch": BATCH, "lr": LR}, seed=0)

# %% [markdown]
# ## 1. The tools
# Every tool takes a word of lower-case letters; repeat also takes how many times (1 to 5).
# `additionalProperties: false` is what turns a renamed argument into an error instead of a
# silently ignored key.

# %%
WORD = {"type": "string", "pattern": "^[a-z]+$"}


def schema(**props):
    return {"type": "object", "properties": props, "required": sorted(props),
            "additionalProperties": False}


registry = tu.make_registry([
    tu.Tool("reverse", "Reverse a word.", schema(word=WORD), lambda word: word[::-1]),
    tu.Tool("uppercase", "Upper-case a word.", schema(word=WORD), lambda word: word.upper()),
    tu.Tool("count_letters", "Count a word's letters, in words.", schema(word=WORD),
            lambda word: NUMBERS[len(word)]),
    tu.Tool("repeat", "Repeat a word, with spaces.",
            schema(word=WORD, times={"type": "integer", "minimum": 1, "maximum": 5}),
            lambda word, times: " ".join([word] * times)),
    tu.Tool("first_letter", "The first letter of a word.", schema(word=WORD),
            lambda word: word[0]),
])
TASK_TOOL = {"reverse": "reverse", "uppercase": "uppercase", "count": "count_letters",
             "repeat": "repeat", "first_letter": "first_letter"}
print(tu.tool_prompt(registry))

# %% [markdown]
# ## 2. Transcripts
# The model sees a compact rendering of the conversation: `U:` the user, `A:` the assistant,
# `T:` a tool result, `E:` an error. The system prompt (`tool_prompt`) is the same in every
# transcript, so this tiny model is trained without it: fine-tuning has baked the tool list
# into its weights. The loss counts only the assistant's characters.

# %%
TAGS = {"user": "U:", "assistant": "A:", "tool": "T:", "error": "E:"}


def call_of(example: dict) -> str:
    args = {"word": example["word"]}
    if example["task"] == "repeat":
        args["times"] = 3
    return tu.CALL_PREFIX + json.dumps({"name": TASK_TOOL[example["task"]], "arguments": args},
                                       separators=(",", ":"))


def turns(example: dict) -> list[tuple[str, str]]:
    """Two training sequences: the user turn and its call, the tool result and the answer."""
    result = json.dumps(example["response"])
    return [(f"U:{example['prompt']}\nA:", call_of(example) + "\n"),
            (f"T:{result}\nA:", example["response"] + "\n")]


train = make_examples(3000, seed=0)
test = make_examples(60, seed=1, split="test")
para = make_examples(60, seed=1, split="test", phrasing="paraphrase")
# Characters would make every call 60-100 tokens long, and a 2-layer GPT needs thousands of
# steps to learn to copy a 12-letter word one letter at a time. A small vocabulary of pieces
# fixes that: the JSON scaffolding, the tool names, the instruction templates' text and the
# words' syllables (also upper-cased and reversed, for the tools' results) are one token each,
# any other character is its own token (greedy longest
# match; decoding is just concatenation, so the runtime still sees plain text).
pieces = {c for e in train + test + para for p, r in turns(e) for c in p + r} | set("E:_")
pieces |= set(SYLLABLES) | {x.upper() for x in SYLLABLES} | {x[::-1] for x in SYLLABLES}
pieces |= set(NUMBERS) | set(TASK_TOOL.values()) | {"U:", "\nA:", "T:", "\n"}
pieces |= {tu.CALL_PREFIX + '{"name":"', '","arguments":{"word":"', '","times":3}}', '"}}'}
for _, train_phrasings, paraphrases in TASKS.values():
    for template in train_phrasings + paraphrases:
        pieces |= {part for part in template.split("{w}") if part}
vocab = sorted(pieces)
stoi = {t: i for i, t in enumerate(vocab)}
LENGTHS = sorted({len(t) for t in vocab}, reverse=True)


def encode(text: str) -> list[int]:
    ids, i = [], 0
    while i < len(text):
        n = next((n for n in LENGTHS if text[i:i + n] in stoi), 0)
        if n == 0:  # a character the vocabulary has never seen: skip it
            i += 1
            continue
        ids.append(stoi[text[i:i + n]])
        i += n
    return ids


def decode(ids: list[int]) -> str:
    return "".join(vocab[i] for i in ids)


calls = [tuple(map(encode, turns(e)[0])) for e in train]
answers = [tuple(map(encode, turns(e)[1])) for e in train]
print(f"{len(calls) + len(answers)} training sequences, {len(vocab)} tokens; e.g.")
print("".join(turns(train[3])[0]) + "".join(turns(train[3])[1]), end="")
print("as tokens:", [vocab[i] for i in encode("".join(turns(train[3])[0]))])


def batch_of(rows):
    """(ids, targets) (B, T - 1), T the longest row: targets are -1 but on the response."""
    width = min(max(len(p) + len(r) for p, r in rows), BLOCK)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    tgt = torch.full((len(rows), width), -1, dtype=torch.long)
    for b, (p, r) in enumerate(rows):
        seq = (p + r)[:width]
        ids[b, :len(seq)] = torch.tensor(seq)
        tgt[b, len(p) - 1:len(seq) - 1] = torch.tensor(seq[len(p):])
    return ids[:, :-1], tgt[:, :-1]

# %% [markdown]
# ## 3. Training, and what the replies look like on the way
# Odd steps train on user turns and their calls, even steps on tool results and the answers
# that copy them. Every 100 steps the model answers 60 held-out instructions (words it has
# never seen) with greedy decoding, and `classify_reply` sorts each reply: a valid call,
# malformed JSON, an invented tool, arguments that drift from the schema, or a plain answer
# instead of a call.


# %%
def greedy(model, prompts: list[list[int]], max_new: int = 40) -> list[str]:
    """Greedy continuations up to a newline, all prompts in one right-padded batch: row b
    reads its logits at its own last position (causal attention ignores the padding after)."""
    model.eval()
    width = min(max(map(len, prompts)) + max_new, BLOCK - 1)
    x = torch.zeros((len(prompts), width), dtype=torch.long)
    for b, p in enumerate(prompts):
        x[b, :len(p)] = torch.tensor(p)
    pos = torch.tensor([len(p) for p in prompts])
    rows = torch.arange(len(prompts))
    done = pos >= width
    with torch.no_grad():
        while not done.all():
            upto = int(pos[~done].max())
            nxt = model(x[:, :upto])[0][rows, (pos - 1).clamp(max=upto - 1)].argmax(-1)
            live = ~done
            x[rows[live], pos[live]] = nxt[live]
            pos = pos + live.long()
            done = done | (live & (nxt == stoi["\n"])) | (pos >= width)
    model.train()
    out = []
    for b, p in enumerate(prompts):
        out.append(decode(x[b, len(p):int(pos[b])].tolist()).split("\n")[0])
    return out


def rates(model, examples) -> dict[str, float]:
    replies = greedy(model, [encode(f"U:{e['prompt']}\nA:") for e in examples])
    kinds = [tu.classify_reply(r, registry) for r in replies]
    return {k: kinds.count(k) / len(kinds) for k in
            ("valid", "malformed", "unknown_tool", "invalid_arguments", "answer")}


config = gpt.GPTConfig(vocab_size=len(vocab), block_size=BLOCK - 1, n_layer=2, n_head=4,
                       n_embd=64)
model = gpt.GPT(config)
opt = torch.optim.AdamW(model.parameters(), lr=LR)
rng = random.Random(0)
curve = [(0, rates(model, test))]
losses, start = [], time.process_time()
for step in range(1, STEPS + 1):
    ids, tgt = batch_of(rng.sample(calls if step % 2 else answers, BATCH))
    logits = model(ids)[0]
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 100 == 0:
        curve.append((step, rates(model, test)))
        print(f"step {step}: loss {loss.item():.3f}, valid calls {curve[-1][1]['valid']:.0%}")
train_seconds = time.process_time() - start  # CPU seconds: the machine may be busy
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
axes[0].plot(losses)
axes[0].set_yscale("log")
axes[0].set_title("training loss (assistant characters)")
axes[0].set_xlabel("step")
for kind in curve[0][1]:
    axes[1].plot([s for s, _ in curve], [r[kind] for _, r in curve], marker="o", label=kind)
axes[1].set_title("held-out replies, by classify_reply")
axes[1].set_xlabel("step")
axes[1].set_ylim(0, 1)
axes[1].legend(fontsize=8)
fig.tight_layout()
run.figure(fig, "training")
run.metric("train_cpu_seconds", round(train_seconds, 1))
run.metric("valid_call_rate_before", curve[0][1]["valid"])
run.metric("valid_call_rate_after", curve[-1][1]["valid"])

# %% [markdown]
# ## 4. The trained model inside the runtime
# The model adapter renders the last message (a user turn, a tool result or an error) and
# decodes greedily. `run_agent` parses the reply, validates it, runs the tool and feeds the
# result back; the model's second reply should copy it. On paraphrased instructions the model
# is out of its depth: watch which guardrail catches what, and what none of them can catch. A
# well-formed call to the *wrong* tool (upper-casing a word it was asked to reverse) passes
# every schema: validation makes a call safe to run, not right.


# %%
def as_model(messages: list[dict]) -> str:
    last = messages[-1]
    text = last["kind"] if last["role"] == "error" else last["content"]
    return greedy(model, [encode(f"{TAGS[last['role']]}{text}\nA:")])[0]


def evaluate(examples) -> tuple[float, dict[str, int], list]:
    right, events, wrong = 0, {}, []
    for e in examples:
        out = tu.run_agent(as_model, registry, e["prompt"], max_steps=3)
        ok = out["answer"] is not None and is_correct(e, out["answer"])
        right += ok
        if not ok:
            wrong.append((e["prompt"], [m["content"] for m in out["messages"][2:]]))
        first = tu.parse_reply(out["messages"][2]["content"]) if \
            tu.classify_reply(out["messages"][2]["content"], registry) == "valid" else None
        if first is not None and first["name"] != TASK_TOOL[e["task"]]:
            events["valid call, wrong tool"] = events.get("valid call, wrong tool", 0) + 1
        for m in out["messages"]:
            if m["role"] in ("tool", "error"):
                key = "ran" if m["role"] == "tool" else m["kind"]
                events[key] = events.get(key, 0) + 1
        events[out["stop"]] = events.get(out["stop"], 0) + 1
    return right / len(examples), events, wrong


em_test, ev_test, wrong_test = evaluate(test[:20])
em_para, ev_para, wrong_para = evaluate(para[:20])
para_rates = rates(model, para)
print(f"end-to-end exact match: {em_test:.0%} held-out words, {em_para:.0%} paraphrases")
print("runtime events, held-out:", ev_test)
print("runtime events, paraphrases:", ev_para)
for prompt, contents in (wrong_test[:2] + wrong_para[:3]):
    print(f"  wrong: {prompt!r} -> {contents}")
example = tu.run_agent(as_model, registry, test[0]["prompt"], max_steps=3)
for m in example["messages"][1:]:
    print(f"  {m['role']:>9}: {m['content']}")
fig, ax = plt.subplots(figsize=(8, 3.5))
kinds = list(curve[-1][1])
x = torch.arange(len(kinds)).float()
ax.bar(x - 0.2, [curve[-1][1][k] for k in kinds], 0.4, label="training phrasings")
ax.bar(x + 0.2, [para_rates[k] for k in kinds], 0.4, label="paraphrases")
ax.set_xticks(x.tolist(), kinds)
ax.set_ylabel("share of held-out replies")
ax.set_ylim(0, 1)
ax.legend()
run.figure(fig, "reply_kinds")
run.metric("exact_match_test", em_test)
run.metric("exact_match_paraphrase", em_para)
run.metric("valid_call_rate_paraphrase", para_rates["valid"])
run.metric("wrong_tool_paraphrase", ev_para.get("valid call, wrong tool", 0) / 20)

# %%
run.finish(f"A 2-layer GPT trained from scratch for {STEPS} steps ({train_seconds:.0f} CPU s) on "
           f"generated transcripts wrote valid tool calls for {curve[-1][1]['valid']:.0%} of "
           f"held-out instructions (0 steps: {curve[0][1]['valid']:.0%}), and "
           f"{para_rates['valid']:.0%} of paraphrased ones. Inside run_agent it answered "
           f"{em_test:.0%} of held-out instructions exactly and {em_para:.0%} of paraphrases; "
           f"on paraphrases the runtime reported {ev_para.get('malformed', 0)} malformed, "
           f"{ev_para.get('unknown_tool', 0)} unknown-tool and "
           f"{ev_para.get('invalid_arguments', 0)} invalid-argument calls and ran none of them, "
           f"but {ev_para.get('valid call, wrong tool', 0)} of its first calls were valid calls "
           f"to the wrong tool, which no schema can catch.")

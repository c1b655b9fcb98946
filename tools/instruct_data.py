"""Generated instruction data with checkable answers, shared by Phase 5's labs and graders.

    from tools.instruct_data import make_examples, is_correct, write_mlx_jsonl
    train = make_examples(2000, seed=0)                     # {"task", "prompt", "response"}
    test = make_examples(200, seed=1, split="test")         # words never seen in training
    probe = make_examples(200, seed=1, split="test", phrasing="paraphrase")

Every task has one right answer that a program can check (reverse a word, upper-case it,
count its letters, repeat it, give its first letter), so "the tuned model follows
instructions better than the base" is a number, not an impression. Every character is in
Tiny Shakespeare's vocabulary (no digits: counts are spelled out), so the character-level
GPT pretrained in s30 can read every prompt without new characters; the chat template's
special tokens are the step's business (s37), not this module's.

Words are made of syllables, and a word belongs to the test split when a checksum of it says
so: the held-out instructions ask about words the tuned model has never been shown. The
"paraphrase" phrasings never appear in training, for a prompt-sensitivity probe.
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

SYLLABLES = ("ba", "ce", "di", "fo", "gu", "ha", "ke", "li", "mo", "nu", "pa", "re", "si",
             "to", "vu", "wa", "ye", "zo", "bri", "cla", "dre", "gro", "pla", "sto", "tri")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
           "ten", "eleven", "twelve")

# Per task: the answer, the training phrasings and the held-out paraphrases ({w} is the word).
TASKS: dict[str, tuple] = {
    "reverse": (lambda w: w[::-1],
                ("Reverse the word: {w}", "Spell {w} backwards."),
                ("Write {w} from its last letter to its first.",)),
    "uppercase": (str.upper,
                  ("Uppercase: {w}", "Write {w} in capital letters."),
                  ("Give {w} with every letter made a capital.",)),
    "count": (lambda w: NUMBERS[len(w)],
              ("How many letters are in {w}?", "Count the letters of {w}."),
              ("Tell me the number of letters that {w} has.",)),
    "repeat": (lambda w: " ".join([w] * 3),
               ("Say {w} three times.", "Repeat {w} three times, with spaces."),
               ("Write the word {w}, then again, then once more.",)),
    "first_letter": (lambda w: w[0],
                     ("What is the first letter of {w}?", "First letter of {w}:"),
                     ("Which letter does {w} begin with?",)),
}
SPLITS = ("train", "test")
PHRASINGS = ("train", "paraphrase")


def split_of(word: str) -> str:
    """"test" for about one word in five (by a checksum, so it never changes), else "train"."""
    return "test" if zlib.crc32(word.encode()) % 5 == 0 else "train"


def make_word(rng: random.Random, split: str) -> str:
    """A 2-4 syllable word (4-12 letters) of the given split."""
    while True:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if split_of(word) == split:
            return word


def make_examples(n: int, seed: int = 0, split: str = "train", phrasing: str = "train",
                  tasks: tuple[str, ...] | None = None) -> list[dict]:
    """n examples {"task", "prompt", "response", "word"}, deterministic in (n, seed, split,
    phrasing, tasks); tasks cycle in order so every task has n / len(tasks) examples."""
    if split not in SPLITS or phrasing not in PHRASINGS:
        raise ValueError(f"split must be one of {SPLITS} and phrasing one of {PHRASINGS}")
    names = tuple(tasks) if tasks is not None else tuple(TASKS)
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise ValueError(f"unknown tasks {unknown}; the tasks are {tuple(TASKS)}")
    rng = random.Random(f"{seed}/{split}/{phrasing}")
    out = []
    for i in range(n):
        task = names[i % len(names)]
        answer, train_phrasings, paraphrases = TASKS[task]
        word = make_word(rng, split)
        template = rng.choice(train_phrasings if phrasing == "train" else paraphrases)
        out.append({"task": task, "prompt": template.format(w=word),
                    "response": answer(word), "word": word})
    return out


def is_correct(example: dict, answer: str) -> bool:
    """Exact match after stripping surrounding whitespace (the tasks' only fair grading)."""
    return answer.strip() == example["response"]


def write_mlx_jsonl(folder: Path | str, train: list[dict], valid: list[dict],
                    test: list[dict] | None = None) -> Path:
    """Write train/valid(/test).jsonl in mlx-lm's completions format, {"prompt", "completion"},
    the format `mlx_lm.lora --data <folder> --mask-prompt` reads; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": train, "valid": valid, **({"test": test} if test is not None else {})}
    for name, examples in parts.items():
        lines = [json.dumps({"prompt": e["prompt"], "completion": e["response"]}) for e in examples]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder

"""tools/instruct_data.py: deterministic, split by word, every character readable by s30's model."""

import json

import pytest

from tools import instruct_data as data

SHAKESPEARE_CHARS = set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def test_examples_are_deterministic_balanced_and_checkable():
    a = data.make_examples(100, seed=3)
    assert a == data.make_examples(100, seed=3) and a != data.make_examples(100, seed=4)
    counts = {t: sum(e["task"] == t for e in a) for t in data.TASKS}
    assert set(counts.values()) == {20}
    for e in a:
        assert data.is_correct(e, f"  {e['response']}\n")
        assert not data.is_correct(e, e["response"] + "x")
        assert set(e["prompt"] + e["response"]) <= SHAKESPEARE_CHARS, e


def test_test_words_never_appear_in_training_and_paraphrases_are_unseen():
    train = data.make_examples(500, seed=0)
    test = data.make_examples(100, seed=0, split="test", phrasing="paraphrase")
    assert not {e["word"] for e in train} & {e["word"] for e in test}
    train_templates = {p for _, phr, _ in data.TASKS.values() for p in phr}
    assert all(e["prompt"] not in {t.format(w=e["word"]) for t in train_templates} for e in test)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        data.make_examples(3, split="valid")
    with pytest.raises(ValueError, match="unknown tasks"):
        data.make_examples(3, tasks=("sort",))


def test_mlx_jsonl_is_the_completions_format(tmp_path):
    ex = data.make_examples(4)
    folder = data.write_mlx_jsonl(tmp_path / "d", ex[:3], ex[3:])
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    assert rows[0] == {"prompt": ex[0]["prompt"], "completion": ex[0]["response"]}
    assert len(rows) == 3 and (folder / "valid.jsonl").is_file()

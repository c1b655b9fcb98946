"""tools/pretrain.py (the s30 pretraining run) and tools/checkpoint.py, on a tiny config."""

import json

import pytest

torch = pytest.importorskip("torch")

from tools import pretrain  # noqa: E402
from tools.checkpoint import FORMAT, latest_checkpoint, load_gpt  # noqa: E402

WORDS = "the king and queen of rome speak to people in a hall".split()


@pytest.fixture
def text_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    lines = [" ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (10,), generator=g))
             for _ in range(120)]
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _run(out, data, *extra):
    return pretrain.main(["--config", "tiny", "--impl", "solutions", "--data", str(data),
                          "--out", str(out), "--threads", "1", "--device", "cpu", *extra])


def test_s30_pretrain_tiny_run_writes_the_run_folder(tmp_path, text_file):
    out = tmp_path / "results"
    assert _run(out, text_file, "--max-steps", "6", "--eval-every", "3") == 0
    run = out / "tiny"
    for name in ("config.json", "metrics.jsonl", "samples.txt", "ckpt.pt", "loss.png", "lr.png",
                 "grad_norm.png"):
        assert (run / name).is_file(), name
    meta = json.loads((run / "config.json").read_text())
    assert meta["seed"] == 1337 and meta["impl"] == "solutions" and meta["commit"]
    assert meta["model"]["n_layer"] == 1 and meta["train"]["max_steps"] == 6
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "lr", "grad_norm"} <= set(lines[0])
    assert "val_loss" in lines[2] and "val_loss" in lines[5] and "val_loss" not in lines[0]
    assert "--- step 6 ---" in (run / "samples.txt").read_text()
    ckpt = torch.load(run / "ckpt.pt", weights_only=False)
    assert ckpt["format"] == FORMAT and ckpt["step"] == 6
    assert ckpt["tokenizer"]["kind"] == "char" and ckpt["config"]["n_embd"] == 32
    model, encode, decode, config = load_gpt(run / "ckpt.pt")
    assert config.vocab_size == len(ckpt["tokenizer"]["chars"])
    assert decode(encode("the king")) == "the king"
    assert latest_checkpoint(out) == run / "ckpt.pt"
    # an existing run is not overwritten by accident
    assert _run(out, text_file, "--max-steps", "6") == 2


def test_s30_pretrain_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, text_file):
    out = tmp_path / "results"
    assert _run(out, text_file, "--max-steps", "8", "--eval-every", "3",
                "--run-name", "straight") == 0
    assert _run(out, text_file, "--max-steps", "8", "--eval-every", "3", "--run-name", "broken",
                "--stop-after", "4") == 0
    assert torch.load(out / "broken" / "ckpt.pt", weights_only=False)["step"] == 4
    assert _run(out, text_file, "--resume", "broken") == 0
    a = torch.load(out / "straight" / "ckpt.pt", weights_only=False)
    b = torch.load(out / "broken" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 8
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name

    def numbers(run):
        rows = [json.loads(line) for line in (out / run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "sample"} for r in rows]

    assert numbers("straight") == numbers("broken")


def test_s30_pretrain_unfinished_exercises_get_a_clear_message(tmp_path, text_file, capsys):
    code = pretrain.main(["--config", "tiny", "--data", str(text_file), "--out",
                          str(tmp_path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not finished yet" in err and "--impl solutions" in err and "check.py" in err


def test_s30_pretrain_bad_config_and_missing_data_are_explained(tmp_path, capsys, monkeypatch):
    assert pretrain.main(["--config", "nope", "--impl", "solutions", "--out",
                          str(tmp_path)]) == 2
    assert "unknown config 'nope'" in capsys.readouterr().err
    monkeypatch.setenv("ML2LLM_DATA_DIR", str(tmp_path / "empty"))
    assert pretrain.main(["--config", "tiny", "--impl", "solutions", "--out",
                          str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "python tools/fetch_data.py tinyshakespeare" in err
    assert pretrain.main(["--config", "tiny", "--impl", "solutions", "--out", str(tmp_path),
                          "--data", str(tmp_path / "missing.txt")]) == 2
    assert "no data file" in capsys.readouterr().err
    assert pretrain.main(["--resume", "nothing-here", "--out", str(tmp_path)]) == 2
    assert "no checkpoint found" in capsys.readouterr().err


def test_s30_pretrain_configs_match_nanogpt_cpu_and_gpu():
    model, train, _ = pretrain.CONFIGS["shakespeare-char"]
    assert (model["n_layer"], model["n_head"], model["n_embd"], model["block_size"]) == \
        (4, 4, 128, 64)
    assert (train["batch_size"], train["max_steps"], train["lr"]) == (12, 2000, 3e-3)
    from tools.course import find_step
    from tools.loader import load_implementation
    s26 = load_implementation(find_step("s26_gpt"), "solutions")
    n = sum(p.numel() for p in s26.GPT(s26.GPTConfig(vocab_size=65, **model)).parameters())
    assert round((n - 64 * 128) / 1e6, 2) == 0.80  # nanoGPT's count leaves out wpe
    model, train, _ = pretrain.CONFIGS["shakespeare-char-gpu"]
    assert (model["n_layer"], model["n_head"], model["n_embd"], model["block_size"],
            train["max_steps"]) == (6, 6, 384, 256, 5000)


def test_s30_pretrain_bpe_without_s28_or_unfinished_says_so(tmp_path, text_file, capsys):
    from tools.course import find_step
    try:
        find_step("s28_bpe_tokenizer")
    except KeyError:
        assert pretrain.main(["--config", "tiny", "--impl", "solutions", "--tokenizer", "bpe",
                              "--data", str(text_file), "--out", str(tmp_path)]) == 2
        assert "s28" in capsys.readouterr().err
        return
    assert pretrain.main(["--config", "tiny", "--tokenizer", "bpe", "--data", str(text_file),
                          "--out", str(tmp_path), "--threads", "1", "--device", "cpu"]) == 2
    assert "not finished yet" in capsys.readouterr().err


def test_lab_model_uses_the_newest_checkpoint_else_trains_the_lab_config_once(
        tmp_path, monkeypatch, text_file):
    from tools import checkpoint
    from tools.fetch_data import cache_dir, datasets

    if not (cache_dir() / datasets()["tinyshakespeare"].file).exists():
        pytest.skip("Tiny Shakespeare is not fetched (python tools/fetch_data.py tinyshakespeare)")
    monkeypatch.setattr(checkpoint, "ROOT", tmp_path)
    monkeypatch.setitem(pretrain.CONFIGS, "lab", pretrain.CONFIGS["tiny"])  # seconds, not 30 s
    model, encode, decode, config, source = checkpoint.lab_model()
    assert source == "the pretrained checkpoint results/lab/ckpt.pt" and config.n_layer == 1
    assert decode(encode("ROMEO:")) == "ROMEO:"
    first = (tmp_path / "results" / "lab" / "ckpt.pt").stat().st_mtime_ns
    assert _run(tmp_path / "results", text_file, "--max-steps", "2") == 0  # a newer run
    *_, source = checkpoint.lab_model()
    assert source == "the pretrained checkpoint results/tiny/ckpt.pt", source
    assert (tmp_path / "results" / "lab" / "ckpt.pt").stat().st_mtime_ns == first

"""Read the GPT checkpoints written by s30 and tools/pretrain.py (ml-to-llm/gpt-checkpoint/1).

    from tools.checkpoint import latest_checkpoint, load_gpt
    path = latest_checkpoint()                      # newest results/*/ckpt.pt, or None
    model, encode, decode, config = load_gpt(path)  # s26's GPT (the reference by default)
    model, encode, decode, config, source = lab_model()  # what Phase 5's labs start from
    print(decode(model.generate(torch.tensor([encode("ROMEO:")]), 100)[0].tolist()))

A checkpoint is a dict saved with torch.save: {"format", "model" (state_dict), "config"
(dataclasses.asdict of s26's GPTConfig), "tokenizer" ({"kind": "char", "chars": the sorted
vocabulary} or {"kind": "bpe", "path": the file BPETokenizer.save wrote, relative to the
checkpoint's folder}), "step", "optimizer", "scheduler", "rng", "data_position"}.
"""

from __future__ import annotations

from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from tools.course import ROOT, find_step

FORMAT = "ml-to-llm/gpt-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be read; the message says why."""


def latest_checkpoint(results: Path | str | None = None) -> Path | None:
    """The most recently written results/<run>/ckpt.pt, or None when there is none."""
    folder = Path(results) if results is not None else ROOT / "results"
    found = [p for p in folder.glob("*/ckpt.pt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def read(path: Path | str) -> dict:
    """The checkpoint dict, after checking its format."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint (format: {got!r})")
    return ckpt


def tokenizer_of(ckpt: dict, folder: Path, impl: str = "solutions"):
    """(encode, decode) for the checkpoint's tokenizer entry."""
    tok = ckpt["tokenizer"]
    if tok["kind"] == "char":
        chars = tok["chars"]
        stoi = {c: i for i, c in enumerate(chars)}

        def encode(text: str) -> list[int]:
            missing = sorted({c for c in text if c not in stoi})
            if missing:
                raise ValueError(f"characters {missing} are not in the model's vocabulary")
            return [stoi[c] for c in text]

        return encode, lambda ids: "".join(chars[int(i)] for i in ids)
    if tok["kind"] == "bpe":
        from tools.loader import load_implementation
        try:
            s28 = load_implementation(find_step("s28_bpe_tokenizer"), impl)
        except KeyError as exc:
            raise CheckpointError("this checkpoint uses a BPE tokenizer, and step "
                                  "s28_bpe_tokenizer is not in this copy of the course") from exc
        bpe = s28.BPETokenizer.load(str(folder / tok["path"]))
        return bpe.encode, bpe.decode
    raise CheckpointError(f"unknown tokenizer kind {tok['kind']!r}")


def load_gpt(path: Path | str, impl: str = "solutions"):
    """(model in eval mode, encode, decode, GPTConfig) from a checkpoint, with s26's GPT from
    `impl` ("solutions", the default, or "exercises": the learner's own)."""
    from tools.loader import load_implementation

    path = Path(path)
    ckpt = read(path)
    s26 = load_implementation(find_step("s26_gpt"), impl)
    config = s26.GPTConfig(**ckpt["config"])
    model = s26.GPT(config)
    model.load_state_dict(ckpt["model"])
    model.eval()
    encode, decode = tokenizer_of(ckpt, path.parent, impl)
    return model, encode, decode, config


def lab_model(impl: str = "solutions"):
    """(model, encode, decode, config, source) for a lab that starts from a pretrained GPT:
    the newest results/*/ckpt.pt, else the "lab" config of tools/pretrain.py trained now on
    Tiny Shakespeare (about 30 s, once: later labs find results/lab/ckpt.pt). `source` says
    which, in words, for the lab to print."""
    results = ROOT / "results"
    path = latest_checkpoint(results)
    if path is None:
        results.mkdir(exist_ok=True)
        with open(results / ".lab-model.lock", "w") as lock:  # two labs at once train it once
            if fcntl is not None:  # Windows has no flock; two labs at once are rare there
                fcntl.flock(lock, fcntl.LOCK_EX)
            path = latest_checkpoint(results)
            if path is None:
                from tools import pretrain

                code = pretrain.main(["--config", "lab", "--impl", impl, "--out", str(results),
                                      "--threads", "1", "--log-every", "400"])
                if code:
                    raise CheckpointError("could not pretrain the lab's model (see the message "
                                          "above); or pretrain your own: python tools/pretrain.py")
                path = results / "lab" / "ckpt.pt"
    model, encode, decode, config = load_gpt(path, impl)
    return model, encode, decode, config, f"the pretrained checkpoint {path.relative_to(ROOT)}"

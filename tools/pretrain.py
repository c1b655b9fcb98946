"""Pretrain your own GPT (s26) with your own loop (s30) on Tiny Shakespeare, from one command.

    python tools/fetch_data.py tinyshakespeare          # once: download and verify the text
    python tools/pretrain.py --config shakespeare-char  # nanoGPT's CPU config, ~0.8M parameters
    python tools/pretrain.py --config shakespeare-char --resume shakespeare-char
    python tools/pretrain.py --config shakespeare-char-gpu --device cuda
    python tools/pretrain.py --config shakespeare-char --impl solutions   # the reference code
    python tools/pretrain.py --config shakespeare-char --tokenizer bpe    # s28's BPETokenizer

By default the model and the loop are yours (exercises/s26_gpt.py, exercises/s30_pretraining.py);
``--impl solutions`` runs the reference. Each run writes ``results/<run-name>/`` (git-ignored):
config.json (configs, seed, commit, device, data), metrics.jsonl (one JSON line per update;
eval lines carry train_loss / val_loss / val_perplexity; sample lines carry the text),
samples.txt, ckpt.pt (the latest checkpoint, format ml-to-llm/gpt-checkpoint/1, read by
tools/checkpoint.py) and loss.png, lr.png, grad_norm.png. ``--resume RUN`` continues a run
from its ckpt.pt and gives the same weights, bit for bit, as a run that was never stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.course import ROOT, find_step

PROMPT = "ROMEO:"  # the fixed prompt of the samples logged while the model learns

# name -> (GPTConfig fields, TrainConfig fields, run options). shakespeare-char is the command
# of nanoGPT's README for CPUs (train_shakespeare_char.py with a smaller model, no dropout), with
# a 3x higher learning rate: at 0.8M parameters 3e-3 reaches val loss 1.77 where 1e-3 stops at
# 1.89 after the same 2000 updates (README, "Pretraining").
CONFIGS: dict[str, tuple[dict, dict, dict]] = {
    "shakespeare-char": (
        {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "bias": False},
        {"max_steps": 2000, "batch_size": 12, "block_size": 64, "lr": 3e-3, "min_lr": 3e-4,
         "warmup_steps": 100, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
         "eval_every": 250, "eval_batches": 20, "seed": 1337},
        {"sample_every": 500, "sample_tokens": 200, "ckpt_every": 250}),
    "shakespeare-char-gpu": (
        {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "bias": False},
        {"max_steps": 5000, "batch_size": 64, "block_size": 256, "lr": 1e-3, "min_lr": 1e-4,
         "warmup_steps": 100, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
         "eval_every": 250, "eval_batches": 200, "seed": 1337},
        {"sample_every": 500, "sample_tokens": 300, "ckpt_every": 250}),
    "lab": (  # what Phase 5's labs train when you have no checkpoint yet (~30 s on one core)
        {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64, "bias": False},
        {"max_steps": 1200, "batch_size": 16, "block_size": 64, "lr": 3e-3, "min_lr": 3e-4,
         "warmup_steps": 50, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
         "eval_every": 400, "eval_batches": 10, "seed": 1337},
        {"sample_every": 400, "sample_tokens": 100, "ckpt_every": 400}),
    "tiny": (  # a seconds-long run for tests and a first look
        {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16, "bias": False},
        {"max_steps": 20, "batch_size": 4, "block_size": 16, "lr": 3e-3, "min_lr": 3e-4,
         "warmup_steps": 2, "eval_every": 10, "eval_batches": 2, "seed": 1337},
        {"sample_every": 10, "sample_tokens": 20, "ckpt_every": 5}),
}


class PretrainError(Exception):
    """Something the user must fix; the message says what and how."""


class _Stop(Exception):
    """Raised from the callback to stop a run early (--stop-after), like an interruption."""


def load_modules(impl: str, tokenizer: str):
    """(s26, s30, s28 or None) from exercises or solutions, with a clear message if undone."""
    from tools.loader import ImplementationError, load_implementation

    mods = []
    steps = ["s26_gpt", "s30_pretraining"] + (["s28_bpe_tokenizer"] if tokenizer == "bpe" else [])
    for sid in steps:
        try:
            mods.append(load_implementation(find_step(sid), impl))
        except KeyError as exc:
            raise PretrainError(f"--tokenizer bpe needs step {sid} (s28's BPETokenizer), which "
                                "this copy of the course does not have yet; use the character "
                                "tokenizer (the default)") from exc
        except ImplementationError as exc:
            raise PretrainError(str(exc)) from exc
    if tokenizer == "bpe" and not hasattr(mods[2], "BPETokenizer"):
        raise PretrainError("s28_bpe_tokenizer has no BPETokenizer class")
    return mods[0], mods[1], (mods[2] if tokenizer == "bpe" else None)


def _undone(exc: NotImplementedError, impl: str) -> PretrainError:
    where = "exercises/s26_gpt.py and exercises/s30_pretraining.py" if impl == "exercises" else impl
    return PretrainError(
        f"your code is not finished yet ({where}): {exc}. Pretraining uses your GPT (s26) "
        "and your training loop (s30): pass them with `python tools/check.py`, or run the "
        "reference with `--impl solutions`")


def read_text(path: Path | None) -> str:
    if path is None:
        from tools.fetch_data import DataError, cache_dir, datasets
        path = cache_dir() / datasets()["tinyshakespeare"].file
        if not path.exists():
            raise PretrainError(f"Tiny Shakespeare is not here yet ({path}): run `python "
                                "tools/fetch_data.py tinyshakespeare` first (add --from FILE "
                                "to use a copy you already have)")
        del DataError
    if not Path(path).is_file():
        raise PretrainError(f"no data file {path}")
    text = Path(path).read_text(encoding="utf-8")
    if len(text) < 100:
        raise PretrainError(f"{path} holds {len(text)} characters: too little to train on")
    return text


def build_tokenizer(text: str, kind: str, s28, run_dir: Path, vocab_size: int, resume: dict | None):
    """(encode, decode, checkpoint entry) for the character or the BPE tokenizer."""
    if kind == "char":
        chars = resume["chars"] if resume else "".join(sorted(set(text)))
        stoi = {c: i for i, c in enumerate(chars)}
        return (lambda s: [stoi[c] for c in s if c in stoi], lambda ids: "".join(
            chars[i] for i in ids), {"kind": "char", "chars": chars})
    path = run_dir / "tokenizer.bpe"
    try:
        if resume:
            tok = s28.BPETokenizer.load(str(run_dir / resume["path"]))
        else:
            tok = s28.BPETokenizer.train(text[:int(0.9 * len(text))], vocab_size)
            tok.save(str(path))
    except NotImplementedError as exc:
        raise PretrainError(f"--tokenizer bpe uses your s28 BPETokenizer, which is not finished "
                            f"yet: {exc}. Finish s28 or use --impl solutions") from exc
    return tok.encode, tok.decode, {"kind": "bpe", "path": path.name}


def _commit() -> str:
    from tools.labkit import _commit as commit
    return commit()


def _plots(run_dir: Path, records: list[dict]) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)")
        return
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "val_loss" in r]
    for name, ys, label in (("lr", "lr", "learning rate"), ("grad_norm", "grad_norm",
                                                             "gradient norm (before clipping)")):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([r["step"] for r in train], [r[ys] for r in train])
        ax.set(xlabel="update", ylabel=label, title=label)
        fig.tight_layout()
        fig.savefig(run_dir / f"{name}.png", dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], alpha=0.4, label="batch loss")
    for key in ("train_loss", "val_loss"):
        ax.plot([r["step"] for r in evals], [r[key] for r in evals], "o-", label=key)
    ax.set(xlabel="update", ylabel="cross-entropy (nats / token)", title="loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "loss.png", dpi=100)
    plt.close(fig)


class _Progress:
    """tqdm when installed, else a plain line every `every` updates."""

    def __init__(self, total: int, start: int, every: int):
        self.every, self.bar, self.t0, self.last = every, None, time.perf_counter(), start
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        except ImportError:
            pass

    def update(self, step: int, loss: float, tok_s: float, line: str = "") -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}, {tok_s:,.0f} tok/s")
            self.bar.update(step - self.last)
            if line:
                self.bar.write(line)
        elif line or step % self.every == 0:
            print(line or f"step {step}: loss {loss:.4f}, {tok_s:,.0f} tok/s", flush=True)
        self.last = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _device(name: str | None) -> str:
    from tools.device import pick_device
    if name:
        import torch
        ok = {"cpu": True, "cuda": torch.cuda.is_available(),
              "mps": getattr(torch.backends, "mps", None) is not None
              and torch.backends.mps.is_available()}
        if name not in ok or not ok[name]:
            raise PretrainError(f"--device {name} is not available here; use cpu, cuda or mps")
        return name
    device = pick_device()
    return "cpu" if device == "mlx" else device


def _dtype(device: str) -> str:
    """bf16 autocast where the device has fast bf16 (CUDA with bf16 support), else float32."""
    import torch
    return "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"


def _resolve_resume(arg: str, out: Path) -> Path:
    for p in (Path(arg), out / arg, out / arg / "ckpt.pt"):
        p = p / "ckpt.pt" if p.is_dir() else p
        if p.is_file():
            return p
    raise PretrainError(f"--resume {arg}: no checkpoint found (looked for {out / arg / 'ckpt.pt'})")


def run(args: argparse.Namespace) -> dict:
    """Train according to args; returns a summary (final losses, tokens/s, run folder)."""
    import torch

    if args.config not in CONFIGS:
        raise PretrainError(f"unknown config {args.config!r}; choose one of {', '.join(CONFIGS)}")
    model_cfg, train_cfg, opts = (dict(c) for c in CONFIGS[args.config])
    for key, value in (("max_steps", args.max_steps), ("eval_every", args.eval_every),
                       ("seed", args.seed), ("lr", args.lr), ("min_lr", args.min_lr)):
        if value is not None:
            train_cfg[key] = value
    out = Path(args.out)
    resume = None
    if args.resume:
        ckpt_path = _resolve_resume(args.resume, out)
        run_dir = ckpt_path.parent
        saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        model_cfg, train_cfg, opts = saved["model"], saved["train"], saved["run"]
        args.tokenizer, args.impl = saved["tokenizer"], args.impl or saved["impl"]
        resume = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    else:
        run_dir = out / (args.run_name or args.config)
        if (run_dir / "ckpt.pt").exists() and not args.overwrite:
            raise PretrainError(f"{run_dir} already holds a run: continue it with --resume "
                                f"{run_dir.name}, or pass --run-name NAME or --overwrite")
    impl = args.impl or "exercises"
    s26, s30, s28 = load_modules(impl, args.tokenizer)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    train_cfg.setdefault("dtype", _dtype(device))
    text = read_text(Path(args.data) if args.data else None)
    run_dir.mkdir(parents=True, exist_ok=True)
    encode, decode, tok_entry = build_tokenizer(text, args.tokenizer, s28, run_dir, args.bpe_vocab,
                                                resume["tokenizer"] if resume else None)
    n = int(0.9 * len(text))  # nanoGPT's split: the first 90 % of the characters train
    train_data = torch.tensor(encode(text[:n]), dtype=torch.long)
    val_data = torch.tensor(encode(text[n:]), dtype=torch.long)
    vocab = len(tok_entry["chars"]) if tok_entry["kind"] == "char" else \
        s28.BPETokenizer.load(str(run_dir / tok_entry["path"])).vocab_size
    try:
        torch.manual_seed(train_cfg["seed"])
        model = s26.GPT(s26.GPTConfig(vocab_size=vocab, **model_cfg))
        trainer = s30.Trainer(model, train_data, val_data, s30.TrainConfig(**train_cfg), device)
        if resume:
            trainer.load_state_dict(resume)
    except NotImplementedError as exc:
        raise _undone(exc, impl) from exc
    if not resume:
        meta = {"config_name": args.config, "model": model_cfg, "train": train_cfg, "run": opts,
                "tokenizer": args.tokenizer, "impl": impl, "seed": train_cfg["seed"],
                "commit": _commit(), "device": device, "vocab_size": vocab,
                "parameters": sum(p.numel() for p in model.parameters()),
                "data": {"file": str(args.data or "tinyshakespeare"), "characters": len(text),
                         "train_tokens": len(train_data), "val_tokens": len(val_data)},
                "torch": torch.__version__, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        (run_dir / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return _train(args, trainer, run_dir, s30, encode, decode, tok_entry, opts, device, resume)


def _train(args, trainer, run_dir, s30, encode, decode, tok_entry, opts, device, resume) -> dict:
    import torch

    cfg = trainer.cfg
    metrics_path, samples_path = run_dir / "metrics.jsonl", run_dir / "samples.txt"
    start = trainer.step
    kept = []  # a resumed run keeps the lines up to its checkpoint, as if never stopped
    if resume and metrics_path.exists():
        kept = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
        kept = [r for r in kept if r["step"] <= start]
    records = list(kept)
    metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    if not resume:
        samples_path.write_text("")
    tokens_per_step = cfg.batch_size * cfg.block_size * cfg.grad_accum
    print(f"{run_dir}: {sum(p.numel() for p in trainer.model.parameters()) / 1e6:.2f}M "
          f"parameters, {device}, {cfg.dtype}, {len(trainer.train_data):,} training tokens, "
          f"updates {start} -> {cfg.max_steps}" + (" (resumed)" if resume else ""), flush=True)
    bar = _Progress(cfg.max_steps, start, args.log_every)
    clock = {"t0": time.perf_counter(), "other_s": 0.0}  # other: eval, samples, checkpoints
    estimate = trainer.estimate_loss

    def timed_estimate():
        t = time.perf_counter()
        try:
            return estimate()
        finally:
            clock["other_s"] += time.perf_counter() - t

    trainer.estimate_loss = timed_estimate  # so tokens/s counts training time only
    prompt = torch.tensor([encode(PROMPT) or [0]], dtype=torch.long, device=device)

    def save(step: int) -> None:
        tmp = run_dir / "ckpt.pt.tmp"
        s30.save_checkpoint(str(tmp), trainer, tok_entry)
        os.replace(tmp, run_dir / "ckpt.pt")  # never a half-written checkpoint

    def sample(step: int) -> str:
        model, was = trainer.model, trainer.model.training
        model.eval()
        gen = torch.Generator(device=device).manual_seed(cfg.seed)  # not the training RNG
        ids = model.generate(prompt, opts["sample_tokens"], temperature=0.8, top_k=None,
                             generator=gen)[0].tolist()
        model.train(was)
        text = decode(ids)
        with open(samples_path, "a", encoding="utf-8") as f:
            f.write(f"--- step {step} ---\n{text}\n\n")
        return text

    def callback(tr, record: dict) -> None:
        step = record["step"]
        line = ""
        if "val_loss" in record:
            line = (f"step {step}: train loss {record['train_loss']:.4f}, val loss "
                    f"{record['val_loss']:.4f}, val perplexity {record['val_perplexity']:.2f}")
        if step % opts["sample_every"] == 0 or step == cfg.max_steps:
            t = time.perf_counter()
            record = {**record, "sample": sample(step)}
            line += ("\n" if line else "") + f"sample at step {step}: {record['sample'][:120]!r}"
            clock["other_s"] += time.perf_counter() - t
        record = {k: (float(v) if isinstance(v, float) else v) for k, v in record.items()}
        records.append(record)
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        train_s = time.perf_counter() - clock["t0"] - clock["other_s"]
        bar.update(step, record["loss"], (step - start) * tokens_per_step / max(train_s, 1e-9),
                   line)
        t = time.perf_counter()
        if step % opts["ckpt_every"] == 0 or step == cfg.max_steps or (
                args.stop_after is not None and step >= args.stop_after):
            save(step)
        clock["other_s"] += time.perf_counter() - t
        if args.stop_after is not None and step >= args.stop_after:
            raise _Stop

    stopped = False
    try:
        try:
            trainer.fit(callback)
        except _Stop:
            stopped = True
        except KeyboardInterrupt:
            bar.close()
            print(f"\ninterrupted; the latest checkpoint is {run_dir / 'ckpt.pt'}: continue with "
                  f"--resume {run_dir.name}")
            raise
        except NotImplementedError as exc:
            raise _undone(exc, args.impl or "exercises") from exc
    finally:
        bar.close()
    wall = time.perf_counter() - clock["t0"]
    train_s = wall - clock["other_s"]
    _plots(run_dir, records)
    evals = [r for r in records if "val_loss" in r]
    summary = {"run_dir": str(run_dir), "step": trainer.step, "stopped": stopped,
               "wall_s": wall, "val_loss": evals[-1]["val_loss"] if evals else math.nan,
               "train_loss": evals[-1]["train_loss"] if evals else math.nan,
               "train_s": train_s,
               "tokens_per_s": (trainer.step - start) * tokens_per_step / max(train_s, 1e-9)}
    print(f"done: {trainer.step} updates in {wall:.1f} s, {summary['tokens_per_s']:,.0f} "
          "training tokens/s"
          + (f", val loss {summary['val_loss']:.4f}" if evals else "")
          + f"; run folder {run_dir}" + (" (stopped early: --stop-after)" if stopped else ""))
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Pretrain a GPT (s26) with the s30 loop.")
    p.add_argument("--config", default="shakespeare-char", help=", ".join(CONFIGS))
    p.add_argument("--impl", choices=["exercises", "solutions"], default=None,
                   help="whose code: your exercises (default) or the reference solutions")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None,
                   help="default: tools/device.py's choice (CUDA, then MPS, then CPU)")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default="char")
    p.add_argument("--bpe-vocab", type=int, default=512, help="BPE vocabulary size")
    p.add_argument("--resume", metavar="RUN", help="a run name, run folder or ckpt.pt to continue")
    p.add_argument("--run-name", help="folder name under --out (default: the config's name)")
    p.add_argument("--out", default=str(ROOT / "results"), help="where run folders go")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--data", help="a text file instead of Tiny Shakespeare")
    p.add_argument("--max-steps", type=int, help="override the config's number of updates")
    p.add_argument("--eval-every", type=int, help="override the config's eval interval")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--lr", type=float, help="override the config's peak learning rate")
    p.add_argument("--min-lr", type=float, help="override the config's final learning rate")
    p.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after this update")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--log-every", type=int, default=50, help="plain progress lines (no tqdm)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args)
    except PretrainError as exc:
        print(f"pretrain: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks: the speed figures the README quotes. Never run as tests (no wall-clock asserts).

    python tools/bench.py                  # everything
    python tools/bench.py steps            # per-step reference vs oracle (tools/benchmarks/<id>.py)
    python tools/bench.py check            # verdict latency of `python tools/check.py <step>`
    python tools/bench.py first            # the first verdict after a fresh start, and cold
    python tools/bench.py steps s06 s07    # only some steps
    python tools/bench.py pretrain         # s30's reference on nanoGPT's CPU config (minutes)
    python tools/bench.py pretrain --nanogpt PATH   # + nanoGPT's train.py, at the same time
    python tools/bench.py kvcache          # s35's decoding tokens/s with and without the cache
    python tools/bench.py serve            # s46's HTTP API on loopback: latency and tokens/s

A step benchmark is tools/benchmarks/<id>.py with ``bench() -> list[dict]``; each row has
step, task, data, ours_s, metric, ours and, where an oracle exists, sklearn_s and sklearn
(or ref_s / ref for another reference). Printed as a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.course import ROOT, find_step, load_steps
from tools.release import source_files


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def step_rows(only: list[str]) -> list[dict]:
    rows = []
    for step in load_steps():
        if only and step.id not in only:
            continue
        if not (ROOT / "tools" / "benchmarks" / f"{step.id}.py").exists():
            continue
        if step.missing_extras():
            print(f"skipping {step.id}: needs {', '.join(step.missing_extras())}",
                  file=sys.stderr)
            continue
        module = importlib.import_module(f"tools.benchmarks.{step.id}")
        rows.extend(module.bench())
    return rows


def print_step_table(rows: list[dict]) -> None:
    print("| step | task | data | ours (s) | reference (s) | ratio | metric | ours | reference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref_s = r.get("sklearn_s", r.get("ref_s"))
        ref = r.get("sklearn", r.get("ref"))
        ratio = r["ours_s"] / ref_s if ref_s else None
        cells = [r["step"], r["task"], r.get("data", ""), _fmt(r["ours_s"]), _fmt(ref_s),
                 f"{ratio:.1f}×" if ratio else "–", r.get("metric", ""), _fmt(r.get("ours")),
                 _fmt(ref)]
        print("| " + " | ".join(cells) + " |")


def _solved_copy() -> Path:
    """A copy of the course (tracked files) where every exercise holds its solution."""
    tmp = Path(tempfile.mkdtemp(prefix="ml2llm-bench-"))
    for rel in source_files():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp / rel)
    for step in load_steps():
        if step.solution.exists():
            shutil.copy2(step.solution, tmp / "exercises" / step.solution.name)
    return tmp


def check_latency(step_ids: list[str], repeats: int = 5) -> list[dict]:
    """Median wall time of `python tools/check.py STEP` on a passing step."""
    course = _solved_copy()
    rows = []
    try:
        env = dict(os.environ)
        for sid in step_ids:
            step = find_step(sid)
            if step.missing_extras():
                continue
            cmd = [sys.executable, str(course / "tools" / "check.py"), step.id]
            subprocess.run(cmd, cwd=course, env=env, capture_output=True)  # warm-up, progress
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                if out.returncode != 0:
                    raise RuntimeError(f"check.py {step.id} failed on the solution:\n"
                                       f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
            kind = "torch" if "torch" in step.requires else "NumPy"
            rows.append({"step": step.id, "kind": kind, "median_s": statistics.median(times),
                         "min_s": min(times), "max_s": max(times), "runs": repeats})
    finally:
        shutil.rmtree(course, ignore_errors=True)
    return rows


def first_verdict(step_id: str, repeats: int = 3) -> dict:
    """Wall time of the first `check.py STEP` when no grading server is up, and cold.

    Each try gets a server of its own (a distinct but equivalent OMP_NUM_THREADS value changes
    the server's key), so servers other users of the machine rely on are left alone; it is
    stopped afterwards.
    """
    from tools import grading, warm

    course = _solved_copy()
    step = find_step(step_id)
    cmd = [sys.executable, str(course / "tools" / "check.py"), step.id]
    first, cold = [], []
    try:
        for i in range(repeats):
            env = dict(os.environ, OMP_NUM_THREADS="0" * (i + 2) + "1")
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=course, env=env, capture_output=True)
            first.append(time.perf_counter() - t0)
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                sock = warm.socket_dir() / f"warm-{warm.server_key(grading.child_env())}.sock"
            finally:
                os.environ.clear()
                os.environ.update(saved)
            sock.unlink(missing_ok=True)  # that server exits within 50 ms
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=course, env=dict(env, ML2LLM_WARM="0"), capture_output=True)
            cold.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(course, ignore_errors=True)
    return {"step": step.id, "first_s": statistics.median(first), "cold_s": statistics.median(cold),
            "runs": repeats}


NANOGPT_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
                "--eval_iters=20", "--log_interval=1", "--block_size=64", "--batch_size=12",
                "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
                "--lr_decay_iters=2000", "--dropout=0.0"]  # the CPU command of nanoGPT's README


def full_val_loss(model, data, block_size: int, batch: int = 64) -> float:
    """Mean loss per token over the whole validation split, in non-overlapping windows."""
    import torch

    n = (len(data) - 1) // block_size
    x = data[:n * block_size].view(n, block_size)
    y = data[1:n * block_size + 1].view(n, block_size)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for i in range(0, n, batch):
            total += float(model(x[i:i + batch], y[i:i + batch])[1]) * y[i:i + batch].numel()
    return total / y.numel()


def _nanogpt_figures(log: str, repo: Path, val_data) -> dict:
    """nanoGPT's reported val loss at its last eval, tokens/s from its per-iteration times
    (iterations that include an evaluation left out), and its checkpoint's full-split loss."""
    import re

    pattern = r"iter (\d+): loss [\d.]+, time ([\d.]+)ms"
    times = [(int(i), float(ms)) for i, ms in re.findall(pattern, log)]
    dts = [ms for i, ms in times if i % 250]
    evals = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", log)
    out = {"val_loss_reported": float(evals[-1][2]) if evals else None,
           "tokens_per_s": 12 * 64 / (statistics.mean(dts) / 1000) if dts else None}
    ckpt = repo / "out-bench" / "ckpt.pt"
    if ckpt.exists():
        import torch
        sys.path.insert(0, str(repo))
        try:
            from model import GPT as NanoGPT  # nanoGPT's model.py
            from model import GPTConfig as NanoConfig
        finally:
            sys.path.remove(str(repo))
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model = NanoGPT(NanoConfig(**state["model_args"]))
        model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in state["model"].items()})
        out["val_loss_full"] = full_val_loss(model, val_data, 64)
        out["ckpt_iter"] = state["iter_num"]
    return out


def bench_pretrain(nanogpt: str | None, threads: int, max_steps: int | None) -> list[dict]:
    """Run s30's reference on shakespeare-char (and nanoGPT's train.py alongside, if given)."""
    import resource

    import torch

    from tools.checkpoint import load_gpt
    from tools.pretrain import CONFIGS, read_text

    text = read_text(None)
    out = Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    nano = None
    if nanogpt:
        repo = Path(nanogpt).resolve()
        data_dir = repo / "data" / "shakespeare_char"
        if not (data_dir / "train.bin").exists():
            shutil.copy(ROOT / "datasets" / "cache" / "tinyshakespeare.txt", data_dir / "input.txt")
            subprocess.run([sys.executable, "prepare.py"], cwd=data_dir, check=True,
                           capture_output=True)
        train_cfg = CONFIGS["shakespeare-char"][1]  # the same learning rates as ours
        nano_args = NANOGPT_ARGS + [f"--learning_rate={train_cfg['lr']}",
                                    f"--min_lr={train_cfg['min_lr']}"]
        nano_args += [f"--max_iters={max_steps}"] if max_steps else []
        nano_log = open(out / "nanogpt.log", "w")  # a file, not a pipe: no one reads it meanwhile
        nano_t0 = time.perf_counter()
        nano = subprocess.Popen([sys.executable, "train.py", *nano_args, "--out_dir=out-bench"],
                                cwd=repo, env=env, stdout=nano_log, stderr=subprocess.STDOUT)
    cmd = [sys.executable, str(ROOT / "tools" / "pretrain.py"), "--config", "shakespeare-char",
           "--impl", "solutions", "--device", "cpu", "--threads", str(threads), "--out",
           str(out), "--run-name", "bench", "--log-every", "250"]
    cmd += ["--max-steps", str(max_steps)] if max_steps else []
    t0 = time.perf_counter()
    ours = subprocess.run(cmd, env={**env, "TQDM_DISABLE": "1"}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if ours.returncode:
        raise SystemExit(ours.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    metrics = [json.loads(line) for line in (out / "bench" / "metrics.jsonl").read_text()
               .splitlines()]
    last = [r for r in metrics if "val_loss" in r][-1]
    model, encode, _, config = load_gpt(out / "bench" / "ckpt.pt")
    val = torch.tensor(encode(text[int(0.9 * len(text)):]))
    train_s = re.search(r"([\d,]+) training tokens/s", ours.stdout)
    rows = [{"run": "ours (s30 reference, s26 GPT)", "iterations": last["step"],
             "val_loss_reported": last["val_loss"],
             "val_loss_full": full_val_loss(model, val, config.block_size),
             "tokens_per_s": float(train_s.group(1).replace(",", "")) if train_s else None,
             "wall_s": wall, "peak_mb": peak_mb}]
    if nano is not None:
        nano.wait()
        nano_log.close()
        log = (out / "nanogpt.log").read_text()
        rows.append({"run": "nanoGPT train.py", "iterations": max_steps or 2000,
                     **_nanogpt_figures(log, repo, val), "wall_s": time.perf_counter() - nano_t0,
                     "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})
    print(f"run folders: {out}")
    return rows


def print_pretrain(rows: list[dict]) -> None:
    print("| run | iterations | val loss (its eval, 20 batches) | val loss (whole val split) | "
          "training tokens/s | wall (s) | peak RSS of the children (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['iterations']} | {_fmt(r.get('val_loss_reported'))} | "
              f"{_fmt(r.get('val_loss_full'))} | {_fmt(r.get('tokens_per_s'))} | "
              f"{_fmt(r.get('wall_s'))} | {_fmt(r.get('peak_mb'))} |")
    if len(rows) == 2 and rows[0]["tokens_per_s"] and rows[1]["tokens_per_s"]:
        ratio = rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]
        print(f"\nthroughput ratio ours / nanoGPT: {ratio:.2f}")


def bench_kvcache(threads: int) -> dict:
    """s35's reference: greedy tokens/s with and without the KV cache, filling block 256."""
    import torch

    step = importlib.import_module("solutions.s35_kv_cache")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = step.GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384)
    model = step.GPT(config).eval()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    new = config.block_size - 1  # the cache fills the block exactly
    out, wall, cpu = {}, {}, {}
    for use_cache in (False, True):
        t0, c0 = time.perf_counter(), time.process_time()
        out[use_cache] = step.generate(model, prompt, new, use_cache=use_cache)
        wall[use_cache], cpu[use_cache] = time.perf_counter() - t0, time.process_time() - c0
    return {"params": sum(p.numel() for p in model.parameters()), "new_tokens": new,
            "threads": threads, "plain_tok_s": new / wall[False], "cached_tok_s": new / wall[True],
            "plain_cpu_tok_s": new / cpu[False], "cached_cpu_tok_s": new / cpu[True],
            "same_tokens": torch.equal(out[False], out[True])}


def bench_serve(threads: int, per_client: int = 2, new_tokens: int = 32) -> list[dict]:
    """s46's reference app on uvicorn (127.0.0.1, a free port) around s35's GPT at the lab's
    size (random weights: speed does not depend on them), read by httpx: p50 / p99 latency
    and total tokens/s at 1, 4 and 16 concurrent clients, each sending `per_client` requests
    of `new_tokens` tokens back to back, with 16 slots (so nothing is refused)."""
    import threading

    import httpx
    import torch

    serving = importlib.import_module("solutions.s46_serving")
    gpt = importlib.import_module("solutions.s35_kv_cache")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = gpt.GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=64)
    chars = [chr(c) for c in range(32, 97)]

    def encode(text):
        return [chars.index(c) for c in text]

    def decode(ids):
        return "".join(chars[int(i)] for i in ids)

    app = serving.create_app(gpt.GPT(config), encode, decode, config.block_size,
                             max_concurrency=16, max_tokens_limit=new_tokens)
    server = serving.ServerThread(app)
    url = server.start()
    def worker(client, first_seed, latencies, lock):
        for j in range(per_client):
            t0 = time.perf_counter()
            r = client.post("/generate", json={"prompt": "ROMEO:", "seed": first_seed + j,
                                               "max_tokens": new_tokens})
            r.raise_for_status()
            with lock:
                latencies.append(time.perf_counter() - t0)

    rows = []
    try:
        for clients in (1, 4, 16):
            latencies, lock = [], threading.Lock()
            with httpx.Client(base_url=url, timeout=120,
                              limits=httpx.Limits(max_connections=clients)) as client:
                start = time.perf_counter()
                workers = [threading.Thread(target=worker, args=(client, 10 * i, latencies, lock))
                           for i in range(clients)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                wall = time.perf_counter() - start
            lat = sorted(latencies)
            rows.append({"clients": clients, "requests": len(lat),
                         "p50_ms": 1000 * statistics.median(lat),
                         "p99_ms": 1000 * lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
                         "tokens_per_s": new_tokens * len(lat) / wall})
    finally:
        server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the README's benchmark tables.")
    parser.add_argument("what", nargs="?", choices=["all", "steps", "check", "first", "pretrain",
                                                      "kvcache", "serve"],
                        default="all")
    parser.add_argument("steps", nargs="*", help="limit to these step ids")
    parser.add_argument("--nanogpt", help="pretrain: a nanoGPT checkout to run alongside")
    parser.add_argument("--threads", type=int, default=1,
                        help="pretrain / kvcache / serve: torch threads")
    parser.add_argument("--max-steps", type=int, help="pretrain: fewer iterations (a quick look)")
    args = parser.parse_args(argv)
    if args.what == "pretrain":
        print_pretrain(bench_pretrain(args.nanogpt, args.threads, args.max_steps))
        return 0
    if args.what == "serve":
        print("| concurrent clients | requests | p50 latency (ms) | p99 latency (ms) | "
              "tokens/s, all clients |\n|---|---|---|---|---|")
        for r in bench_serve(args.threads):
            print(f"| {r['clients']} | {r['requests']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} "
                  f"| {r['tokens_per_s']:.0f} |")
        return 0
    if args.what == "kvcache":
        r = bench_kvcache(args.threads)
        print(f"| GPT parameters | new tokens (block 256) | threads | tokens/s, no cache | "
              f"tokens/s, KV cache | speed-up | per CPU second: no cache / cache | "
              f"same tokens |\n|---|---|---|---|---|---|---|---|\n"
              f"| {r['params'] / 1e6:.1f}M | {r['new_tokens']} | {r['threads']} | "
              f"{r['plain_tok_s']:.0f} | {r['cached_tok_s']:.0f} | "
              f"{r['cached_tok_s'] / r['plain_tok_s']:.1f}× | {r['plain_cpu_tok_s']:.0f} / "
              f"{r['cached_cpu_tok_s']:.0f} | {r['same_tokens']} |")
        return 0
    only = [find_step(s).id for s in args.steps]
    if args.what == "first":
        print("| step | first verdict, server starting (s) | cold, ML2LLM_WARM=0 (s) | runs |")
        print("|---|---|---|---|")
        for sid in only or ["s00_toolbox"]:
            r = first_verdict(sid)
            print(f"| {r['step']} | {r['first_s']:.2f} | {r['cold_s']:.2f} | {r['runs']} |")
        return 0
    if args.what in ("all", "check"):
        ids = only or [s.id for s in load_steps()]  # every step
        print("| step | kind | median verdict (s) | min | max | runs |")
        print("|---|---|---|---|---|---|")
        for r in check_latency(ids):
            print(f"| {r['step']} | {r['kind']} | {r['median_s']:.2f} | {r['min_s']:.2f} | "
                  f"{r['max_s']:.2f} | {r['runs']} |")
        print()
    if args.what in ("all", "steps"):
        print_step_table(step_rows(only))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks: the speed figures the README quotes. Never run as tests (no wall-clock asserts).

    python tools/bench.py                  # everything
    python tools/bench.py steps            # per-step reference vs oracle (tools/benchmarks/<id>.py)
    python tools/bench.py check            # verdict latency of `python tools/check.py <step>`
    python tools/bench.py first            # the first verdict after a fresh start, and cold
    python tools/bench.py steps s06 s07    # only some steps

A step benchmark is tools/benchmarks/<id>.py with ``bench() -> list[dict]``; each row has
step, task, data, ours_s, metric, ours and, where an oracle exists, sklearn_s and sklearn
(or ref_s / ref for another reference). Printed as a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import importlib
import os
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the README's benchmark tables.")
    parser.add_argument("what", nargs="?", choices=["all", "steps", "check", "first"],
                        default="all")
    parser.add_argument("steps", nargs="*", help="limit to these step ids")
    args = parser.parse_args(argv)
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

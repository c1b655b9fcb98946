"""What a lab notebook imports: the step's module, and a recorder for experiment runs.

    from tools.labkit import load_step, Run
    toolbox = load_step("s00_toolbox")           # exercises/ by default
    run = Run("s00_toolbox", config={"lr": 0.1}, seed=0)
    run.metric("val_loss", 0.42)
    run.figure(fig, "loss_curve")
    run.finish("Loss falls until step 300, then the validation curve turns up: overfitting.")

``ML2LLM_IMPL=solutions`` (or a path) makes labs run on the reference code; CI does that.
Each run is written to results/<step>/<time>-seed<seed>/ (git-ignored; ``ML2LLM_RESULTS``
moves it) with its configuration, seed, code commit, metrics, figures and interpretation, so
runs can be compared later, as the seeds ask of every experiment. A run exists only once it
is finished: until ``finish`` its figures wait in a hidden ``.incomplete-...`` folder beside
it, removed when the kernel exits, so a lab that fails leaves no empty or partial run behind.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import ModuleType

from tools.course import ROOT, find_step
from tools.loader import load_implementation


def load_step(step_id: str, impl: str | None = None) -> ModuleType:
    """The learner's module for `step_id` (or ML2LLM_IMPL / `impl`: solutions or a path)."""
    return load_implementation(find_step(step_id), impl or os.environ.get("ML2LLM_IMPL",
                                                                          "exercises"))


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


class Run:
    """One experiment's record: configuration, seed, commit, metrics, figures, interpretation."""

    def __init__(self, step_id: str, config: dict, seed: int):
        self.step = find_step(step_id).id
        self.record = {"step": self.step, "config": config, "seed": seed,
                       "commit": _commit(), "impl": os.environ.get("ML2LLM_IMPL", "exercises"),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "metrics": {},
                       "figures": [], "interpretation": ""}
        base = Path(os.environ.get("ML2LLM_RESULTS", ROOT / "results"))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.dir = base / self.step / f"{stamp}-seed{seed}"  # where the finished run goes
        n = 1
        while self.dir.exists():
            n += 1
            self.dir = base / self.step / f"{stamp}-seed{seed}-{n}"
        self._staging = self.dir.with_name(f".incomplete-{self.dir.name}")
        atexit.register(shutil.rmtree, self._staging, ignore_errors=True)

    def metric(self, name: str, value) -> None:
        self.record["metrics"][name] = float(value) if hasattr(value, "__float__") else value

    def figure(self, fig, name: str) -> Path:
        """Save `fig` for this run; it joins the run's folder when the run is finished."""
        self._staging.mkdir(parents=True, exist_ok=True)
        path = self._staging / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.record["figures"].append(path.name)
        return self.dir / path.name

    def finish(self, interpretation: str) -> Path:
        self.record["interpretation"] = interpretation
        self._staging.mkdir(parents=True, exist_ok=True)
        (self._staging / "record.json").write_text(json.dumps(self.record, indent=1))
        self._staging.rename(self.dir)
        path = self.dir / "record.json"
        print(f"run recorded in {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return path

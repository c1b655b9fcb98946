"""The learner's progress: derived from the files, never the only copy.

A pass is recorded with the sha256 of the exercise file that passed and of the step's grader
files (public, plus hidden where this copy has them). A record counts only while both hashes
still match, so editing a solved exercise or updating the graders makes the record stale and
the step is simply graded again. The state lives in ``.ml2llm/progress.json`` (git-ignored) and
is written atomically (a temporary file, then ``os.replace``); a corrupt or deleted file costs
nothing but a re-grade, done by tools/check.py.

    {"version": 1,
     "steps": {"s00_toolbox": {"passed": true, "points": 26.0, "max_points": 26.0,
                               "exercise_sha256": "...", "graders_sha256": "...",
                               "when": "2025-01-01T12:00:00"}},
     "hints_shown": {"s00_toolbox": 1},
     "finished": false}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from tools.course import ROOT, Step

STATE_DIR = ROOT / ".ml2llm"
STATE_FILE = STATE_DIR / "progress.json"
BACKUP_DIR = STATE_DIR / "backups"
VERSION = 1


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def graders_sha256(step: Step) -> str:
    """One hash over the step's grader files present here, names included."""
    h = hashlib.sha256()
    for path in step.grader_files():
        h.update(str(path.relative_to(ROOT)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


class Progress:
    """The state file, loaded leniently and saved atomically."""

    def __init__(self, path: Path = STATE_FILE):
        self.path = path
        self.problem: str | None = None  # why the file could not be used, if it could not
        self.data: dict = {"version": VERSION, "steps": {}, "hints_shown": {}, "finished": False}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.problem = "missing"
            return
        except (OSError, ValueError):
            self.problem = "unreadable"
            return
        if not isinstance(raw, dict) or raw.get("version") != VERSION \
                or not isinstance(raw.get("steps"), dict):
            self.problem = "unreadable"
            return
        self.data.update(raw)
        if not isinstance(self.data.get("hints_shown"), dict):
            self.data["hints_shown"] = {}

    # --- records ---------------------------------------------------------------------------

    def record(self, step: Step) -> dict | None:
        rec = self.data["steps"].get(step.id)
        return rec if isinstance(rec, dict) else None

    def is_current(self, step: Step, rec: dict | None = None) -> bool:
        """True when a record exists and was made with today's exercise file and graders."""
        rec = rec if rec is not None else self.record(step)
        return (rec is not None and rec.get("exercise_sha256") == file_sha256(step.exercise)
                and rec.get("graders_sha256") == graders_sha256(step))

    def is_done(self, step: Step) -> bool:
        rec = self.record(step)
        return rec is not None and rec.get("passed") is True and self.is_current(step, rec)

    def stale_pass(self, step: Step) -> bool:
        """A pass was recorded, but the exercise or the graders changed since."""
        rec = self.record(step)
        return rec is not None and rec.get("passed") is True and not self.is_current(step, rec)

    def score(self, step: Step) -> tuple[float, float] | None:
        """(points, max) of the last grading of today's file, if there is one."""
        rec = self.record(step)
        if rec is None or not self.is_current(step, rec):
            return None
        return float(rec.get("points", 0)), float(rec.get("max_points", 0))

    def set_result(self, step: Step, *, passed: bool, points: float, max_points: float,
                   exercise_sha256: str | None) -> None:
        """Remember a grading of the exercise whose hash (taken before grading) is given."""
        self.data["steps"][step.id] = {
            "passed": passed, "points": points, "max_points": max_points,
            "exercise_sha256": exercise_sha256, "graders_sha256": graders_sha256(step),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if not passed:
            self.data["finished"] = False

    # --- hints and the end of the course ---------------------------------------------------

    def hints_shown(self, step: Step) -> int:
        n = self.data["hints_shown"].get(step.id, 0)
        return n if isinstance(n, int) and n >= 0 else 0

    def set_hints_shown(self, step: Step, n: int) -> None:
        self.data["hints_shown"][step.id] = n

    @property
    def finished(self) -> bool:
        return self.data.get("finished") is True

    @finished.setter
    def finished(self, value: bool) -> None:
        self.data["finished"] = value

    # --- storage ---------------------------------------------------------------------------

    def save(self) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.problem = None


def backup(path: Path) -> Path:
    """Copy `path` into .ml2llm/backups/ under a time-stamped name; the copy's path."""
    BACKUP_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = BACKUP_DIR / f"{path.stem}.{stamp}{path.suffix}"
    n = 1
    while dest.exists():
        dest = BACKUP_DIR / f"{path.stem}.{stamp}-{n}{path.suffix}"
        n += 1
    dest.write_bytes(path.read_bytes())
    return dest

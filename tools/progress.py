"""The learner's progress: what can be derived from the files, kept apart from what cannot.

A grading is recorded with the sha256 of the exercise file, of the step's grader files
(public, plus hidden where this copy has them) and of the framework files that can change a
verdict (conftest.py and pytest's configuration, graders/ helpers, the grading code in tools/,
the manifest with its import allow-list). A record counts only while all three still match,
so editing a solved exercise, updating the graders or the grading code makes it stale and the
step is simply graded again; a pass graded while one of those files differs from the course's
own (``modified_framework_files``) is not recorded at all. That derived state
lives in ``.ml2llm/progress.json``; a corrupt or deleted file costs nothing but a re-grade.

What cannot be derived -- how many hints of each step were shown -- lives apart, in
``.ml2llm/hints.json``, so deleting the progress file loses no hint count. Both files are
git-ignored and written atomically (a temporary file, then ``os.replace``).

    progress.json  {"version": 1, "finished": false,
                    "steps": {"s00_toolbox": {"passed": true, "points": 26.0,
                              "max_points": 26.0, "exercise_sha256": "...",
                              "graders_sha256": "...", "framework_sha256": "...",
                              "when": "2025-01-01T12:00:00"}}}
    hints.json     {"version": 1, "hints_shown": {"s00_toolbox": 1}}
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tools.course import ROOT, Step

STATE_DIR = ROOT / ".ml2llm"
STATE_FILE = STATE_DIR / "progress.json"
HINTS_FILE = STATE_DIR / "hints.json"
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


# tools/ modules that cannot change a verdict (the CLI, authoring and instructor tools); every
# other file under tools/ (grading, loading, reporting, the warm server, ...) is in the key.
NOT_GRADING = {"check.py", "progress.py", "hints.py", "plan.py", "labs.py", "labkit.py",
               "stubgen.py", "bench.py", "release.py", "nbgrader_export.py", "contract.py",
               "fetch_data.py", "ci_grade.py", "__init__.py"}
# Folders of tools/ and graders/ that grading never reads: the CLI's rendering, the project's
# own tests and benchmarks, templates, hints, and the instructor's mutation material.
NOT_GRADING_DIRS = {("tools", "cli"), ("tools", "tests"), ("tools", "benchmarks"),
                    ("tools", "templates"), ("tools", "hintstore"), ("graders", "mutants"),
                    ("graders", "mutation"), ("graders", "coverage"),
                    ("graders", "alternatives")}
# Files pytest reads as its configuration when they sit at the root.
PYTEST_CONFIGS = ("conftest.py", "pyproject.toml", "pytest.ini", "tox.ini", "setup.cfg")


def framework_files(root: Path = ROOT) -> list[Path]:
    """Every file outside the step's own graders that can change a verdict: conftest.py and
    pytest's configuration, graders/ helpers, the grading code in tools/, the manifest (its
    [imports] allow-list decides integrity verdicts) and the edition's pristine stubs."""
    files = [root / name for name in PYTEST_CONFIGS]
    files += sorted(p for p in (root / "graders").rglob("*.py") if is_framework(p, root))
    files += sorted(p for p in (root / "tools").rglob("*.py") if is_framework(p, root))
    files.append(root / "tools" / "curriculum.toml")
    return [p for p in files if p.is_file()]


def is_framework(path: Path, root: Path = ROOT) -> bool:
    """True for a file under graders/ or tools/ that can change a verdict (step graders aside:
    they are keyed per step)."""
    parts = path.relative_to(root).parts
    if len(parts) < 2 or tuple(parts[:2]) in NOT_GRADING_DIRS or "__pycache__" in parts:
        return False
    if parts[0] == "graders":
        return path.suffix == ".py" and not path.name.startswith("test_")
    if parts[0] == "tools":
        return (path.suffix == ".py" and not (len(parts) == 2 and path.name in NOT_GRADING)) \
            or parts[1:] == ("curriculum.toml",)
    return False


@functools.lru_cache(maxsize=1)
def framework_sha256() -> str:
    h = hashlib.sha256()
    for path in framework_files():
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def modified_framework_files(step: Step | None = None) -> list[str]:
    """The files that can change `step`'s verdict and differ from what the course shipped.

    In a git clone: framework files (and `step`'s graders) that are modified, added or
    deleted since the last commit, new untracked ones included (a graders/conftest.py changes
    every verdict). In a student edition, also the whole trusted tree against the digest that
    tools/release.json recorded when the edition was built (tools/isolation.py), which catches
    an edit that was committed; that case is named ``tools/release.json``'s record."""
    changed = _git_changes(step)
    if (ROOT / "tools" / "release.json").is_file():
        from tools.isolation import framework_status  # noqa: PLC0415 (0.2 s; editions only)

        if framework_status(ROOT)["modified"] and not changed:
            changed = ["(files recorded in tools/release.json)"]
    return changed


def _git_changes(step: Step | None) -> list[str]:
    own = {str(p.relative_to(ROOT)) for p in step.grader_files()} if step else set()
    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--",
                               *PYTEST_CONFIGS, "graders", "tools"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []  # not a git clone: nothing to compare with
    found = []
    for line in proc.stdout.splitlines():
        rel = line[3:].strip().split(" -> ")[-1].strip('"')
        top = rel.split("/")[0]
        if rel in own or top in PYTEST_CONFIGS or (top in ("graders", "tools")
                                                    and is_framework(ROOT / rel)):
            found.append(rel)
    return found


class Progress:
    """The state file, loaded leniently and saved atomically."""

    def __init__(self, path: Path = STATE_FILE, hints_path: Path = HINTS_FILE):
        self.path, self.hints_path = path, hints_path
        self.problem: str | None = None  # why the file could not be used, if it could not
        self.data: dict = {"version": VERSION, "steps": {}, "finished": False}
        self.hints: dict = {"version": VERSION, "hints_shown": {}}
        hints = _load(hints_path)
        if isinstance(hints, dict) and isinstance(hints.get("hints_shown"), dict):
            self.hints["hints_shown"] = hints["hints_shown"]
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
        old_hints = raw.pop("hints_shown", None)  # where hint counts lived before hints.json
        if isinstance(old_hints, dict) and hints is None:
            self.hints["hints_shown"] = old_hints
        self.data.update(raw)

    # --- records ---------------------------------------------------------------------------

    def record(self, step: Step) -> dict | None:
        rec = self.data["steps"].get(step.id)
        return rec if isinstance(rec, dict) else None

    def is_current(self, step: Step, rec: dict | None = None) -> bool:
        """True when a record exists and was made with today's exercise file and graders."""
        rec = rec if rec is not None else self.record(step)
        return (rec is not None and rec.get("exercise_sha256") == file_sha256(step.exercise)
                and rec.get("graders_sha256") == graders_sha256(step)
                and rec.get("framework_sha256") == framework_sha256())

    def is_done(self, step: Step) -> bool:
        rec = self.record(step)
        return rec is not None and rec.get("passed") is True and self.is_current(step, rec)

    def stale_pass(self, step: Step) -> bool:
        """A pass was recorded, but the exercise or the graders changed since."""
        rec = self.record(step)
        return rec is not None and rec.get("passed") is True and not self.is_current(step, rec)

    def stale_reason(self, step: Step) -> str | None:
        """What changed since `step` passed, in words (None: no stale pass)."""
        if not self.stale_pass(step):
            return None
        rec = self.record(step) or {}
        if rec.get("exercise_sha256") != file_sha256(step.exercise):
            return f"your {step.exercise.name} changed since it passed"
        if rec.get("graders_sha256") != graders_sha256(step):
            return f"the graders of {step.id} changed since it passed"
        return f"the course's grading files changed since {step.id} passed"

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
            "framework_sha256": framework_sha256(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if not passed:
            self.data["finished"] = False

    # --- hints and the end of the course ---------------------------------------------------

    def hints_shown(self, step: Step) -> int:
        n = self.hints["hints_shown"].get(step.id, 0)
        return n if isinstance(n, int) and n >= 0 else 0

    def set_hints_shown(self, step: Step, n: int) -> None:
        self.hints["hints_shown"][step.id] = n

    @property
    def finished(self) -> bool:
        return self.data.get("finished") is True

    @finished.setter
    def finished(self, value: bool) -> None:
        self.data["finished"] = value

    # --- storage ---------------------------------------------------------------------------

    def save(self) -> None:
        _save(self.path, self.data)
        _save(self.hints_path, self.hints)
        self.problem = None


def _load(path: Path) -> dict | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _save(path: Path, data: dict) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

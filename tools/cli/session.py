"""Grading a step for one command and keeping progress in step with the result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools import warm
from tools.cli.output import Out, rel
from tools.course import Step
from tools.grading import StepRun, TestResult, child_env, run_step
from tools.progress import STATE_FILE, Progress, file_sha256, modified_framework_files


def is_pristine(step: Step) -> bool:
    """True when the exercise is still the untouched stub (so it cannot pass)."""
    from tools.stubgen import pristine_stub

    try:
        return step.exercise.read_text(encoding="utf-8") == pristine_stub(step)
    except (OSError, ValueError):
        return False


def start_warm_server() -> None:
    """Start the grading server in the background (Linux), so it preloads while we print."""
    if not warm.enabled() or warm.is_running(child_env()):
        return
    code = ("import sys; from tools import warm, grading; from pathlib import Path; "
            "warm.start(['--version'], Path.cwd(), grading.child_env(), Path('/dev/null'), "
            "grading.memory_cap_bytes())")
    try:
        subprocess.Popen([sys.executable, "-c", code], cwd=Path(warm.__file__).parent.parent,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        pass  # grading starts it itself, or grades cold


class Grader:
    """Grades steps for one command, keeping progress in step with the results."""

    def __init__(self, steps: list[Step], impl: str, out: Out):
        self.steps, self.impl, self.out = steps, impl, out
        self.learner = impl == "exercises"
        self.prog = Progress()
        self.runs: dict[str, StepRun] = {}  # gradings made by this command, by step id
        self.unrecorded: dict[str, list[str]] = {}  # step id -> modified framework files

    def impl_for(self, step: Step) -> str:
        if self.impl in ("exercises", "solutions"):
            return self.impl
        path = Path(self.impl).resolve()
        return str(path / f"{step.id}.py") if path.is_dir() else str(path)

    def grade(self, step: Step, live: bool = True) -> StepRun:
        """Grade `step` in a child process and record the result (learner's files only).

        A pass made while framework files (conftest.py, graders/helpers.py, the grading code)
        differ from the course's own is not recorded: `self.unrecorded` names those files.
        """
        before = file_sha256(step.exercise) if self.learner else None
        done = [0]

        def tick(_: TestResult) -> None:
            done[0] += 1
            self.out.status(f"grading {step.id} ... {done[0]} tests done")

        if live:
            self.out.status(f"grading {step.id} ..." if not self.out.tty
                            or warm.is_running(child_env()) else
                            f"grading {step.id} (starting the grading server first: a few "
                            "seconds, once) ...")
        try:
            run = run_step(step, self.impl_for(step), on_result=tick if live else None)
        finally:
            self.out.clear_status()
        self.runs[step.id] = run
        if self.learner and before is not None and before == file_sha256(step.exercise):
            modified = modified_framework_files(step) if run.passed else []
            if modified:
                self.unrecorded[step.id] = modified
            else:
                self.prog.set_result(step, passed=run.passed, points=run.points,
                                     max_points=run.max_points, exercise_sha256=before)
                self.save()
        return run

    def save(self) -> None:
        try:
            self.prog.save()
        except OSError as exc:
            self.out(f"(could not save progress to {rel(STATE_FILE)}: {exc}; it will be "
                     "rebuilt next time)")

    def current_index(self, rebuild: bool = True) -> int | None:
        """Index of the first step not passed (None: all passed).

        With `rebuild`, lost records are recovered by grading: a step with work in it and no
        valid pass (state file deleted or corrupt, exercise, graders or grading code changed
        since it passed) is graded again, in order, when learner work follows it or the
        progress file was lost. The step being worked on (a failing record, or no later work
        with an intact progress file) is left to the caller to grade.
        """
        reason = {"missing": "no progress file", "unreadable": "the progress file was "
                  "unreadable"}.get(self.prog.problem or "")
        # A progress file that was there and is gone (its folder remains) or broken: what
        # it knew is re-derived, the last step worked on included.
        lost = self.prog.problem == "unreadable" or (
            self.prog.problem == "missing" and self.prog.path.parent.is_dir())
        shown = False
        try:
            for i, step in enumerate(self.steps):
                if self.prog.is_done(step):
                    continue
                rec = self.prog.record(step)
                later_work = any(not is_pristine(s) for s in self.steps[i + 1:]
                                 if s.exercise.exists())
                if (not rebuild or not self.learner or step.missing_extras()
                        or (rec is not None and rec.get("passed") is not True)
                        or not step.exercise.exists() or is_pristine(step)
                        or not (later_work or lost)):
                    return i
                if not shown:
                    why = reason or self.prog.stale_reason(step) or ""
                    self.out(f"rebuilding progress{f' ({why})' if why else ''}:", end="")
                    shown = True
                run = self.runs.get(step.id) or self.grade(step, live=False)
                self.out(f" {step.id[:3]} " + (self.out.paint(self.out.ok, "green") if run.passed
                                                else self.out.paint(self.out.bad, "red")), end="")
                if not run.passed or step.id in self.unrecorded:
                    return i
            return None
        finally:
            if shown:
                self.out()
            if self.prog.problem and self.learner:
                self.save()

    def is_unlocked(self, step: Step) -> tuple[bool, Step | None]:
        """(unlocked?, the first step not passed before it)."""
        for s in self.steps:
            if s.id == step.id:
                return True, None
            if not self.prog.is_done(s):
                return False, s
        return True, None

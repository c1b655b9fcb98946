"""Grade one step in a child process and turn what happened into plain words.

The child runs pytest on the step's graders with the JSON-lines reporter, a per-test timeout
(pytest-timeout), a wall-clock budget for the whole step and a memory cap. Whatever learner
code does -- loop forever, call sys.exit or os._exit, abort, segfault, eat all memory -- the
parent survives and can say which test was running and what it means.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.course import ROOT, Step

PER_TEST_TIMEOUT = 30  # seconds; a test of a correct solution takes well under a second or two
MEMORY_CAP_BYTES = 6 * 2**30  # address space; torch alone maps ~2 GiB of virtual memory


@dataclass
class TestResult:
    nodeid: str
    outcome: str  # passed | failed | error | skipped | crashed | not run
    points: float = 1.0
    hidden: bool = False
    exc_type: str | None = None
    message: str | None = None
    where: str | None = None
    duration: float = 0.0

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass
class StepRun:
    """Everything one grading run of one step produced."""

    step: Step
    impl: str
    tests: list[TestResult] = field(default_factory=list)
    returncode: int | None = None
    timed_out: bool = False
    finished: bool = False  # pytest reached the end of the session
    collect_errors: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    seconds: float = 0.0

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests if t.passed)

    @property
    def max_points(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def passed(self) -> bool:
        return (self.finished and not self.collect_errors and bool(self.tests)
                and all(t.passed or t.outcome == "skipped" for t in self.tests)
                and any(t.passed for t in self.tests))

    @property
    def crash(self) -> str | None:
        """A plain-words account of the child dying early, or None if it finished."""
        if self.finished:
            return None
        running = next((t for t in self.tests if t.outcome == "crashed"), None)
        during = f" while running {running.name}" if running else ""
        rc = self.returncode
        if self.timed_out:
            return (f"Grading {self.step.id} was stopped after {self.step.budget} s{during}: "
                    "your code is in an infinite loop or far slower than it needs to be. Look "
                    "for a while-loop whose condition never changes, or a Python loop over "
                    "every element where one array operation would do.")
        if rc is not None and rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else -rc
            hint = {
                "SIGSEGV": "a segmentation fault, usually from a native library handed "
                           "invalid memory or a runaway recursion",
                "SIGABRT": "an abort (os.abort() or a failed check inside a native library)",
                "SIGKILL": "killed, most often for using more memory than the "
                           f"{MEMORY_CAP_BYTES // 2**30} GiB allowed: a huge array or a leak",
            }.get(sig, "a fatal signal")
            return (f"The grading process died with {sig}{during}: {hint}. Nothing of your "
                    "work is lost; fix the cause and run the check again.")
        if rc == 0 or rc is None:
            return (f"The grading process exited early{during} without an error (exit code "
                    f"{rc}). Does your code call sys.exit(), exit() or os._exit()? A module "
                    "must return values, never end the program.")
        return (f"The grading process stopped unexpectedly{during} (exit code {rc}). "
                f"Its last output was:\n{self.stderr_tail}")


def _limit_memory() -> None:  # runs in the child before exec
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))
    except (ValueError, OSError):
        pass  # some platforms (macOS) do not support RLIMIT_AS: grade without the cap


def pytest_command(files: list[Path], impl: str, report: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *map(str, files), f"--impl={impl}",
            f"--report-jsonl={report}", f"--timeout={PER_TEST_TIMEOUT}", "-q",
            "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header", "-rN", *extra]


def run_step(step: Step, impl: str = "exercises", *, files: list[Path] | None = None,
             extra_args: list[str] | None = None, budget: float | None = None) -> StepRun:
    """Grade `step` with `impl` in a child process; never raises for learner misbehaviour."""
    files = files if files is not None else step.grader_files()
    run = StepRun(step=step, impl=impl)
    budget = budget if budget is not None else step.budget
    with tempfile.TemporaryDirectory(prefix="ml2llm-") as tmp:
        report = Path(tmp) / "report.jsonl"
        report.touch()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
                   PYTHONFAULTHANDLER="1")
        env.pop("PYTEST_ADDOPTS", None)
        start = time.monotonic()
        proc = subprocess.Popen(
            pytest_command(files, impl, report, extra_args or []), cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace",
            preexec_fn=_limit_memory if os.name == "posix" else None,
            start_new_session=True,  # so a timeout can kill learner subprocesses too
        )
        try:
            output, _ = proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            run.timed_out = True
            _kill_group(proc)
            output, _ = proc.communicate()
        run.seconds = time.monotonic() - start
        run.returncode = proc.returncode
        run.stderr_tail = "\n".join((output or "").strip().splitlines()[-15:])
        _read_report(run, report)
    return run


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _read_report(run: StepRun, report: Path) -> None:
    results: dict[str, TestResult] = {}
    started: list[str] = []
    for line in report.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a dying process
        kind = ev.get("event")
        if kind == "start":
            started.append(ev["nodeid"])
        elif kind == "result":
            new = TestResult(**{k: ev.get(k) for k in (
                "nodeid", "outcome", "points", "hidden", "exc_type", "message", "where",
                "duration")})
            old = results.get(new.nodeid)
            if old is None or (old.passed and not new.passed):  # a failed teardown wins
                results[new.nodeid] = new
        elif kind == "collect_error":
            run.collect_errors.append(ev.get("message") or "")
        elif kind == "finish":
            run.finished = True
    for nodeid in started:  # started but never reported: the test that was running at death
        if nodeid not in results:
            results[nodeid] = TestResult(nodeid=nodeid, outcome="crashed",
                                         message="the grading process died during this test")
    run.tests = list(results.values())

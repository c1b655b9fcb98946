"""Grade one step in a child process and turn what happened into plain words.

The child runs pytest on the step's graders with the JSON-lines reporter, a per-test timeout
(pytest-timeout), a wall-clock budget for the whole step and a memory cap. Whatever learner
code does -- loop forever, call sys.exit or os._exit, abort, segfault, eat all memory -- the
parent survives and can say which test was running and what it means.

Start-up cost matters (a learner waits for every verdict). On Linux the child is forked from
a warm server that has already imported pytest, NumPy, scikit-learn and torch (tools/warm.py);
elsewhere, or when no server can be had, it is a cold ``python -m pytest`` process, with the
same arguments, environment, limits and verdicts. Either way the child loads only the pytest
plugins grading needs (pytest-timeout, hypothesis, our reporter) instead of every plugin
installed in the environment, and pytest draws no tracebacks nobody reads.

Environment overrides (the project's own tests use short limits):

    ML2LLM_TEST_TIMEOUT   seconds one test may take (default 30)
    ML2LLM_STEP_BUDGET    seconds the whole step may take (default: the step's budget)
    ML2LLM_MEMORY_CAP_GB  address-space cap of the grading process (default 6)
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools import warm
from tools.course import ROOT, Step

try:
    import resource
except ImportError:  # Windows: grade without the memory cap
    resource = None

PER_TEST_TIMEOUT = 30  # seconds; a test of a correct solution takes well under a second or two
MEMORY_CAP_BYTES = 6 * 2**30  # address space; torch alone maps ~2 GiB of virtual memory
# The plugins grading needs; everything else installed (xdist, benchmark, anyio, ...) stays off.
PLUGINS = ("pytest_timeout", "_hypothesis_pytestplugin")


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ[name])
    except (KeyError, ValueError):
        return default
    return value if value > 0 else default


def per_test_timeout() -> float:
    return _env_number("ML2LLM_TEST_TIMEOUT", PER_TEST_TIMEOUT)


def step_budget(step: Step) -> float:
    return _env_number("ML2LLM_STEP_BUDGET", step.budget)


def memory_cap_bytes() -> int:
    return int(_env_number("ML2LLM_MEMORY_CAP_GB", MEMORY_CAP_BYTES / 2**30) * 2**30)


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
    exitstatus: int | None = None  # pytest's own exit status, when the session finished
    budget: float = 0.0
    crash_where: str | None = None  # learner frame the fault handler saw when the process died

    @property
    def points(self) -> float:
        return float(sum(t.points for t in self.tests if t.passed))

    @property
    def max_points(self) -> float:
        """Points of the tests that ran; a test skipped for a missing extra counts for nothing."""
        return float(sum(t.points for t in self.tests if t.outcome != "skipped"))

    @property
    def passed(self) -> bool:
        return (self.finished and not self.collect_errors and bool(self.tests)
                and all(t.passed or t.outcome == "skipped" for t in self.tests)
                and any(t.passed for t in self.tests))

    @property
    def crash(self) -> str | None:
        """A plain-words account of the child dying early, or None if it finished."""
        if self.finished:
            if self.exitstatus == 2 and not self.collect_errors:
                return (f"Grading {self.step.id} was interrupted: something raised "
                        "KeyboardInterrupt (your code, or a library it called) and pytest "
                        "stopped. Let your functions return normally.")
            return None
        running = next((t for t in self.tests if t.outcome == "crashed"), None)
        during = f" while running {running.name}" if running else ""
        at = f" The last line of your code on the stack was {self.crash_where}." \
            if self.crash_where else ""
        rc = self.returncode
        if self.timed_out:
            return (f"Grading {self.step.id} was stopped after {self.budget:g} s{during}: "
                    "your code is in an infinite loop or far slower than it needs to be. Look "
                    "for a while-loop whose condition never changes, or a Python loop over "
                    "every element where one array operation would do." + at)
        if rc is not None and rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else -rc
            hint = {
                "SIGSEGV": "a segmentation fault, usually from a native library handed "
                           "invalid memory or a runaway recursion",
                "SIGABRT": "an abort (os.abort() or a failed check inside a native library)",
                "SIGKILL": "killed, most often for using more memory than the "
                           f"{memory_cap_bytes() / 2**30:g} GiB allowed: a huge array or a leak",
            }.get(sig, "a fatal signal")
            return (f"The grading process died with {sig}{during}: {hint}.{at} Nothing of "
                    "your work is lost; fix the cause and run the check again.")
        if rc == 0 or rc is None:
            return (f"The grading process exited early{during} without an error (exit code "
                    f"{rc}). Does your code call sys.exit(), exit() or os._exit()? A module "
                    f"must return values, never end the program.{at}")
        if not self.tests and not self.collect_errors:
            return (f"pytest could not start grading {self.step.id} (exit code {rc}). Its "
                    f"last output was:\n{self.stderr_tail}")
        return (f"The grading process ended early{during} with exit code {rc}, before pytest "
                f"finished. Does your code call os._exit({rc}) or end the process in some "
                f"other way? A module must return values, never end the program.{at}")


def _limit_memory() -> None:  # runs in the child before exec
    if resource is None:
        return
    cap = memory_cap_bytes()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):
        pass  # some platforms (macOS) do not support RLIMIT_AS: grade without the cap


def pytest_command(files: list[Path], impl: str, report: Path, extra: list[str]) -> list[str]:
    plugins = [arg for p in PLUGINS if importlib.util.find_spec(p) is not None
               for arg in ("-p", p)]
    timeout = [f"--timeout={per_test_timeout():g}"] if "pytest_timeout" in plugins else []
    return [sys.executable, "-m", "pytest", *map(str, files), f"--impl={impl}",
            f"--report-jsonl={report}", *plugins, *timeout, "-q", "--tb=no",
            "-p", "no:cacheprovider", "-p", "no:unraisableexception", "--no-header", "-rN",
            *extra]  # (unraisableexception runs gc.collect five times at exit: ~1 s here)


def child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               PYTHONFAULTHANDLER="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # as conftest.py does; the warm server imports NumPy first
    return env


def run_step(step: Step, impl: str = "exercises", *, files: list[Path] | None = None,
             extra_args: list[str] | None = None, budget: float | None = None,
             on_result: Callable[[TestResult], None] | None = None) -> StepRun:
    """Grade `step` with `impl` in a child process; never raises for learner misbehaviour.

    `on_result` is called with each test result as it arrives (for a live progress line).
    Ctrl-C (KeyboardInterrupt) kills the grading process and is re-raised.
    """
    files = files if files is not None else step.grader_files()
    budget = budget if budget is not None else step_budget(step)
    run = StepRun(step=step, impl=impl, budget=budget)
    with tempfile.TemporaryDirectory(prefix="ml2llm-") as tmp:
        report = Path(tmp) / "report.jsonl"
        report.touch()
        log = Path(tmp) / "output.txt"
        start = time.monotonic()
        command, env = pytest_command(files, impl, report, extra_args or []), child_env()
        with open(log, "wb") as out:
            # command[3:]: the arguments after `python -m pytest`, run in the forked child
            proc = warm.start(command[3:], ROOT, env, log, memory_cap_bytes()) or \
                subprocess.Popen(
                    command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_limit_memory if os.name == "posix" else None,
                    start_new_session=True,  # so a timeout can kill learner subprocesses too
                )
            try:
                run.timed_out = _wait(proc, report, start + budget, on_result)
            except BaseException:  # Ctrl-C in the parent: leave no grading process behind
                _kill_group(proc)
                proc.wait()
                raise
        run.seconds = time.monotonic() - start
        run.returncode = proc.returncode
        output = log.read_text(encoding="utf-8", errors="replace")
        run.stderr_tail = "\n".join(output.strip().splitlines()[-15:])
        _read_report(run, report)
        if not run.finished:
            run.crash_where = _fault_location(output, step, impl)
    return run


def _wait(proc: subprocess.Popen, report: Path, deadline: float,
          on_result: Callable[[TestResult], None] | None) -> bool:
    """Wait for the child until `deadline`; True if it had to be killed for running over."""
    seen = 0
    while True:
        try:
            proc.wait(timeout=0.05 if on_result else max(0.0, deadline - time.monotonic()))
            timed_out = False
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                _stop_overrunning(proc)
                timed_out = True
                break
        if on_result:
            seen = _feed(report, seen, on_result)
    if on_result:
        _feed(report, seen, on_result)
    return timed_out


def _feed(report: Path, seen: int, on_result: Callable[[TestResult], None]) -> int:
    """Pass the result lines after the first `seen` bytes to `on_result`; new offset."""
    with open(report, "rb") as f:
        f.seek(seen)
        chunk = f.read()
    complete = chunk[:chunk.rfind(b"\n") + 1]
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        if ev.get("event") == "result":
            on_result(_result(ev))
    return seen + len(complete)


def _stop_overrunning(proc: subprocess.Popen) -> None:
    """Ask the fault handler where the code is (SIGABRT dumps the stack), then kill all."""
    if hasattr(signal, "SIGABRT") and os.name == "posix":
        try:
            os.kill(proc.pid, signal.SIGABRT)
            proc.wait(timeout=1)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    _kill_group(proc)
    proc.wait()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        proc.kill()


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)', re.M)


def _fault_location(output: str, step: Step, impl: str) -> str | None:
    """file:line in func of the learner's innermost frame in a fault-handler dump, if any."""
    from tools.loader import implementation_path  # noqa: PLC0415 (only needed after a crash)

    target = implementation_path(step, impl).resolve()
    for m in _FRAME.finditer(output):  # faulthandler lists the most recent call first
        try:
            same = Path(m["file"]).resolve() == target
        except OSError:
            continue
        if same:
            shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target.name
            return f"{shown}:{m['line']} in {m['func']}"
    return None


def _result(ev: dict) -> TestResult:
    return TestResult(**{k: ev.get(k) for k in (
        "nodeid", "outcome", "points", "hidden", "exc_type", "message", "where", "duration")})


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
            new = _result(ev)
            old = results.get(new.nodeid)
            if old is None or (old.passed and not new.passed):  # a failed teardown wins
                results[new.nodeid] = new
        elif kind == "collect_error":
            run.collect_errors.append(ev.get("message") or "")
        elif kind == "finish":
            run.finished = True
            run.exitstatus = ev.get("exitstatus")
    for nodeid in started:  # started but never reported: the test that was running at death
        if nodeid not in results:
            results[nodeid] = TestResult(nodeid=nodeid, outcome="crashed",
                                         message="the grading process died during this test")
    run.tests = list(results.values())

"""Grade one step in a child process and turn what happened into plain words.

The child runs pytest on the step's graders with our reporter, a per-test timeout
(pytest-timeout), a wall-clock budget for the whole step, a memory cap and a file-size cap.
Whatever learner code does -- loop forever, call sys.exit or os._exit, abort, segfault, eat
all memory -- the parent survives and can say which test was running and what it means.

Grading integrity (learner code is untrusted; each layer has its own module):

1. before the child starts, the learner's file is read as a syntax tree against the step's
   import allow-list and refused names (tools/allowlist.py): a refusal is an integrity
   verdict and nothing runs;
2. the tests the step must report, with their points and hidden flags, come from a trusted
   collection that loads no learner code (tools/expected.py): a test missing, reported twice
   or unknown, or a pytest exit status other than 0/1, is "grading was interrupted", and the
   maximum is always the collected total;
3. results come back over a socket opened here before the child starts, stamped with a nonce
   and a sequence number (tools/pytest_report.py); nothing the child writes on disk is read
   as a verdict, and a record without the stamp is an integrity verdict;
4. inside the child an audit hook refuses what only a forger does (gc walks, grader frames,
   tracing, importing the grading machinery, ctypes, processes, signals, writes outside the
   step's scratch folder, reading the graders) and reports it (tools/sandbox.py);
5. nothing outlives the step: when it ends, its session is killed -- the process group and
   every process of the session found in /proc, which also works as root, where
   RLIMIT_NPROC does not bind -- the child exits with os._exit (no atexit handler, no wait
   for a thread learner code left running), and files are capped at ``ML2LLM_FILE_CAP_MB``.

Start-up cost matters (a learner waits for every verdict). On Linux the child is forked from
a warm server that has already imported pytest, NumPy, scikit-learn and torch (tools/warm.py);
elsewhere, or when no server can be had, it is a cold ``python -m tools.grading`` process,
with the same arguments, environment, limits and verdicts. Either way the child loads only
the pytest plugins grading needs (pytest-timeout, hypothesis, our reporter) instead of every
plugin installed in the environment, and pytest draws no tracebacks nobody reads.

Environment overrides (the project's own tests use short limits):

    ML2LLM_TEST_TIMEOUT   seconds one test may take (default 30)
    ML2LLM_STEP_BUDGET    seconds the whole step may take (default: the step's budget)
    ML2LLM_MEMORY_CAP_GB  address-space cap of the grading process (default 6)
    ML2LLM_FILE_CAP_MB    largest file the grading process may write (default 512)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools import allowlist, expected, warm
from tools.course import EXTRA_MODULES, ROOT, Step

try:
    import resource
except ImportError:  # Windows: grade without the memory cap
    resource = None

PER_TEST_TIMEOUT = 30  # seconds; a test of a correct solution takes well under a second or two
MEMORY_CAP_BYTES = 6 * 2**30  # address space; torch alone maps ~2 GiB of virtual memory
FILE_CAP_BYTES = 512 * 2**20  # no step writes more than a small checkpoint
STOP_EARLY = ("-x", "--exitfirst", "--maxfail")  # extra_args after which unrun tests are fine
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


def file_cap_bytes() -> int:
    return int(_env_number("ML2LLM_FILE_CAP_MB", FILE_CAP_BYTES / 2**20) * 2**20)


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
    def missing_extra(self) -> str | None:
        """The extra a skipped test needed ("torch", "mlx"), from its skip reason."""
        if self.outcome != "skipped":
            return None
        text = self.message or ""
        for extra, module in EXTRA_MODULES.items():
            if re.search(rf"\b{re.escape(module.partition('.')[0])}\b", text):
                return extra
        return None

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
    integrity: list[str] = field(default_factory=list)  # refusals: the step scores 0
    interrupted: str | None = None  # the report does not match the trusted expectations
    pid: int | None = None  # of the grading process (its session id too)

    @property
    def points(self) -> float:
        if self.integrity:
            return 0.0
        return float(sum(t.points for t in self.tests if t.passed))

    @property
    def max_points(self) -> float:
        """The trusted collection's total: a test skipped for a missing extra scores 0 of it."""
        return float(sum(t.points for t in self.tests))

    @property
    def missing_extras(self) -> list[str]:
        """Extras whose absence cost points here (their tests were skipped)."""
        return sorted({t.missing_extra for t in self.tests if t.missing_extra})

    @property
    def unavailable(self) -> str | None:
        """One line on the points skipped tests could not earn, naming the extras."""
        skipped = [t for t in self.tests if t.outcome == "skipped"]
        if not skipped:
            return None
        pts = sum(t.points for t in skipped)
        extras = ", ".join(self.missing_extras) or "an optional extra"
        return (f"{pts:g} point{'s' if pts != 1 else ''} of {len(skipped)} skipped "
                f"test{'s' if len(skipped) != 1 else ''} need{'s' if len(skipped) == 1 else ''} "
                f"{extras}, not installed here")

    @property
    def passed(self) -> bool:
        return (self.finished and not self.collect_errors and not self.integrity
                and self.interrupted is None and bool(self.tests)
                and all(t.passed or t.outcome == "skipped" for t in self.tests)
                and any(t.passed for t in self.tests))

    @property
    def crash(self) -> str | None:
        """A plain-words account of an integrity refusal, an interrupted grading or the child
        dying early; None when grading ran to its end."""
        if self.integrity:
            more = len(self.integrity) - 1
            return self.integrity[0] + (f" ({more} more refusal{'s' if more > 1 else ''} "
                                        "like it.)" if more else "")
        if self.interrupted:
            return self.interrupted
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
                "SIGXFSZ": f"a file larger than the {file_cap_bytes() / 2**20:g} MiB allowed",
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


def _limit_child() -> None:  # runs in the cold child before exec
    if resource is None:
        return
    for limit, cap in ((resource.RLIMIT_AS, memory_cap_bytes()),
                       (resource.RLIMIT_FSIZE, file_cap_bytes())):
        try:
            resource.setrlimit(limit, (cap, cap))
        except (ValueError, OSError):
            pass  # some platforms (macOS) do not support RLIMIT_AS: grade without the cap


def plugin_args() -> list[str]:
    plugins = [arg for p in PLUGINS if importlib.util.find_spec(p) is not None
               for arg in ("-p", p)]
    return [*plugins, "-p", "no:cacheprovider"]


def pytest_args(files: list[Path], impl: str, extra: list[str]) -> list[str]:
    plugins = plugin_args()
    timeout = [f"--timeout={per_test_timeout():g}"] if "pytest_timeout" in plugins else []
    return [*map(str, files), f"--impl={impl}", *plugins, *timeout, "-q", "--tb=no",
            "-p", "no:unraisableexception", "--no-header", "-rN", *extra]
    # (unraisableexception runs gc.collect five times at exit: ~1 s here)


def child_env(scratch: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               PYTHONFAULTHANDLER="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    for var in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "ML2LLM_REPORT_FD"):
        env.pop(var, None)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # as conftest.py does; the warm server imports NumPy first
    if scratch is not None:  # the one folder graded code may write to (tools/sandbox.py)
        env.update(TMPDIR=str(scratch), TEMP=str(scratch), TMP=str(scratch))
    return env


def run_step(step: Step, impl: str = "exercises", *, files: list[Path] | None = None,
             extra_args: list[str] | None = None, budget: float | None = None,
             on_result: Callable[[TestResult], None] | None = None) -> StepRun:
    """Grade `step` with `impl` in a child process; never raises for learner misbehaviour.

    `on_result` is called with each test result as it arrives (for a live progress line).
    Ctrl-C (KeyboardInterrupt) kills the grading process and is re-raised.
    """
    from tools.loader import implementation_path  # noqa: PLC0415 (loader imports stubgen)

    files = files if files is not None else step.grader_files()
    budget = budget if budget is not None else step_budget(step)
    run = StepRun(step=step, impl=impl, budget=budget)
    refused = allowlist.problems(step, implementation_path(step, impl))
    if refused:
        run.integrity = [f"Integrity: {refused[0]} This step scores 0 points until that "
                         "line is gone."] + refused[1:]
        return run
    extra = extra_args or []
    trusted = expected.collect(files, child_env(), plugin_args(), memory_cap_bytes())
    with tempfile.TemporaryDirectory(prefix="ml2llm-") as tmp:
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        log = Path(tmp) / "output.txt"
        args, env = pytest_args(files, impl, extra), child_env(scratch)
        for cold in (False, True):
            channel = Channel()
            start = time.monotonic()
            try:
                proc = _start_child(args, env, log, channel, cold=cold)
                try:
                    run.timed_out = _wait(proc, channel, start + budget, run, on_result)
                except BaseException:  # Ctrl-C in the parent: leave no grading process behind
                    _kill_group(proc)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=10)  # a warm server that never answers: go anyway
                    raise
                finally:
                    kill_session(proc.pid)  # nothing the step started outlives it
            finally:
                channel.close()
            # A warm child that died before it opened its log ran nothing of the step (its
            # server was stopped or killed under it): grade once more, cold, rather than
            # give a verdict about a grading that never started.
            if cold or log.exists() or channel.records or not isinstance(proc, warm.WarmProcess):
                break
        run.seconds = time.monotonic() - start
        run.returncode, run.pid = proc.returncode, proc.pid
        output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        run.stderr_tail = "\n".join(output.strip().splitlines()[-15:])
        _apply_records(run, channel)
        _apply_expectations(run, trusted, stop_early=any(a.startswith(STOP_EARLY) for a in extra))
        if not run.finished:
            run.crash_where = _fault_location(output, step, impl)
    return run


def _start_child(args: list[str], env: dict[str, str], log: Path, channel: Channel,
                 cold: bool = False):
    """The grading process: a warm child where a server can be had, else a cold one."""
    child_end = channel.child_end
    try:
        proc = None if cold else warm.start(args, ROOT, env, log, memory_cap_bytes(),
                                            file_cap_bytes(), report_fd=child_end.fileno())
        if proc is None:
            env = dict(env, ML2LLM_REPORT_FD=str(child_end.fileno()))
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tools.grading", *args], cwd=ROOT, env=env,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    pass_fds=(child_end.fileno(),),
                    preexec_fn=_limit_child if os.name == "posix" else None,
                    start_new_session=True)  # so the step's end kills learner subprocesses
    finally:
        child_end.close()  # the child holds its own copy; EOF here means it has gone
    return proc


class Channel:
    """The parent's end of the report socket: checks each record's nonce and sequence."""

    def __init__(self):
        self.parent_end, self.child_end = socket.socketpair()
        # 32 characters, pytest_report.NONCE_BYTES (os.urandom is what secrets uses,
        # without the import: a verdict's start-up counts)
        self.nonce = os.urandom(16).hex()
        self.parent_end.sendall(self.nonce.encode())
        self.buffer = b""
        self.seq = 0
        self.records: list[dict] = []
        self.tampered = False
        self.finished = False
        self.eof = False

    def read(self) -> list[dict]:
        """Records that arrived since the last call (non-blocking); [] at EOF."""
        try:
            chunk = self.parent_end.recv(1 << 16, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return []
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        new = []
        for line in lines:
            record = self._check(line)
            if record is not None:
                new.append(record)
        self.records.extend(new)
        return new

    def _check(self, line: bytes) -> dict | None:
        if self.tampered:
            return None
        try:
            record = json.loads(line)
            ok = (isinstance(record, dict) and record.pop("nonce", None) == self.nonce
                  and record.pop("seq", None) == self.seq and not self.finished)
        except ValueError:
            ok = False
        if not ok:
            self.tampered = True  # everything after a forged line is suspect
            return None
        self.seq += 1
        self.finished = record.get("event") == "finish"
        return record

    def close(self) -> None:
        self.parent_end.close()
        self.child_end.close()


def _wait(proc, channel: Channel, deadline: float, run: StepRun,
          on_result: Callable[[TestResult], None] | None) -> bool:
    """Read the channel until the child is done; True if it had to be killed for running over."""
    selector = selectors.DefaultSelector()
    selector.register(channel.parent_end, selectors.EVENT_READ)
    exited_at = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                _stop_overrunning(proc)
                return True
            if selector.select(timeout=min(0.05, deadline - now)):
                for record in channel.read():
                    if on_result and record.get("event") == "result":
                        on_result(_result(record))
            if proc.poll() is not None:
                exited_at = exited_at or time.monotonic()
            if channel.eof or (exited_at and time.monotonic() - exited_at > 0.5):
                break  # EOF: every holder of the channel is gone (or the child has been
                # dead long enough: something it left holds the socket open)
            if channel.finished and proc.poll() is None:
                _grace(proc)  # pytest is done; a thread learner code left may not end
        proc.wait()
        return False
    finally:
        selector.close()


def _grace(proc, seconds: float = 2.0) -> None:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        _kill_group(proc)


def _stop_overrunning(proc) -> None:
    """Ask the fault handler where the code is (SIGABRT dumps the stack), then kill all."""
    if hasattr(signal, "SIGABRT") and os.name == "posix":
        try:
            os.kill(proc.pid, signal.SIGABRT)
            proc.wait(timeout=1)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    _kill_group(proc)
    proc.wait()


def _kill_group(proc) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        proc.kill()


def kill_session(sid: int) -> int:
    """SIGKILL every process of session `sid` (the grading child made it); how many.

    The process group alone misses a process that changed its group; /proc lists the
    session of every process, root's included, where RLIMIT_NPROC would not bind."""
    killed = 0
    with_proc = Path("/proc")
    if not with_proc.is_dir():
        return 0
    for entry in with_proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            if int(fields[3]) == sid and int(entry.name) != os.getpid():
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError, IndexError):
            continue
    return killed


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


def _apply_records(run: StepRun, channel: Channel) -> None:
    results: dict[str, TestResult] = {}
    started: list[str] = []
    duplicated = None
    for ev in channel.records:
        kind = ev.get("event")
        if kind == "start":
            started.append(ev.get("nodeid"))
        elif kind == "result":
            new = _result(ev)
            if new.nodeid in results:
                duplicated = new.nodeid
            results.setdefault(new.nodeid, new)
        elif kind == "collect_error":
            run.collect_errors.append(ev.get("message") or "")
        elif kind == "integrity":
            run.integrity.append(str(ev.get("message")))
        elif kind == "finish":
            run.finished = True
            run.exitstatus = ev.get("exitstatus")
    for nodeid in started:  # started but never reported: the test that was running at death
        if nodeid not in results:
            results[nodeid] = TestResult(nodeid=nodeid, outcome="crashed",
                                         message="the grading process died during this test")
    run.tests = list(results.values())
    if channel.tampered:
        run.integrity.append(
            f"Integrity: something in the grading process of {run.step.id} wrote to its "
            "report channel in place of the grader (a record without the grader's stamp), "
            "so this step scores 0 points. Graded code may only compute its answers.")
    elif duplicated:
        run.interrupted = _interrupted(run, f"the test {duplicated.split('::')[-1]} was "
                                            "reported twice")


def _interrupted(run: StepRun, what: str) -> str:
    return (f"Grading {run.step.id} was interrupted: {what}, so the step cannot pass and what "
            "was not reported scores 0 points. If your code does not stop or steer the "
            "tests, run the check again.")


def _apply_expectations(run: StepRun, trusted: dict[str, expected.Expected] | None,
                        stop_early: bool) -> None:
    """Hold the child's report to the trusted collection (points and hidden flags included)."""
    if trusted is None:
        return  # the graders do not collect: the child's collection errors say why
    reported = {t.nodeid: t for t in run.tests}
    unknown = [n for n in reported if n not in trusted]
    tests = []
    for nodeid, exp in trusted.items():
        t = reported.get(nodeid) or TestResult(nodeid=nodeid, outcome="not run")
        t.points, t.hidden = exp.points, exp.hidden
        tests.append(t)
    run.tests = tests
    missing = sum(t.outcome == "not run" for t in tests)
    if run.interrupted or run.integrity or run.collect_errors:
        return
    if unknown:
        run.interrupted = _interrupted(run, f"a test the graders do not have "
                                            f"({unknown[0].split('::')[-1]}) was reported")
    elif run.finished and run.exitstatus not in (0, 1, 2):
        run.interrupted = _interrupted(run, f"pytest ended with status {run.exitstatus} "
                                            "instead of finishing its tests")
    elif run.finished and missing and not stop_early:
        run.interrupted = _interrupted(run, f"{missing} of its {len(tests)} tests were never "
                                            "reported")


def main(argv: list[str]) -> int:
    """The cold grading process: pytest with `argv`, then an immediate exit."""
    import pytest  # noqa: PLC0415

    code = 70
    try:
        code = int(pytest.main(argv))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no atexit handler, no waiting for threads learner code left


if __name__ == "__main__":
    main(sys.argv[1:])

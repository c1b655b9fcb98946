"""The grading reporter: one record per event, sent to the parent over a channel learner code
cannot write.

Threat model. The learner's module runs inside this pytest process, so anything on disk that
the process can write (a report file, a log) can be forged by it: fake "passed" lines followed
by ``os._exit(0)`` once scored a step this way. Here the verdicts travel instead over a Unix
socket the parent (tools/grading.py) opened before this process started and handed down as an
inherited file descriptor (``ML2LLM_REPORT_FD``; on the warm path the server passes it on with
SCM_RIGHTS). The parent first writes a random nonce into the socket; this plugin reads it and
drops the variable at start-up, before any learner code is imported, and stamps every record
with the nonce and a sequence number. Learner code that guesses the descriptor and writes to
it cannot know the nonce (reading our memory takes gc, frames or ``/proc/self`` — all refused
by the audit hook, tools/sandbox.py), so the parent sees a broken sequence and gives an
integrity verdict. Only the parent writes report files.

What leaves this process is bounded too: a hidden test's failure message is cut to one line of
``HIDDEN_MESSAGE_CHARS`` characters (plus a fixed note), every message to ``MAX_MESSAGE_LINES``
lines, and any line of a hidden grader file found in a message is replaced, so no report can
carry hidden grader source (the attack packed all hidden graders into one public message).

    {"event": "start", "nodeid": ...}
    {"event": "result", "nodeid": ..., "outcome": "passed|failed|error|skipped", "points": 2,
     "hidden": false, "step": "s00_toolbox", "exc_type": "AssertionError", "message": ...,
     "where": "exercises/s00_toolbox.py:42 in set_seed", "duration": 0.01}
    {"event": "collect_error", "nodeid": ..., "message": ...}
    {"event": "integrity", "message": ...}          (from the audit hook)
    {"event": "finish", "exitstatus": 0}

``--report-jsonl PATH`` still writes the same records to a file, for running pytest by hand.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_FRAMEWORK = (ROOT / "graders", ROOT / "tools", ROOT / "conftest.py")
MAX_MESSAGE_LINES = 20
MAX_MESSAGE_CHARS = 4000
HIDDEN_MESSAGE_CHARS = 160  # one line: enough for "expected 3, got 4", too short for source
HIDDEN_NOTE = " [hidden test: message shortened]"
SOURCE_REDACTED = "[a line of a hidden grader was removed from this message]"
FD_ENV, NONCE_BYTES = "ML2LLM_REPORT_FD", 32


def pytest_addoption(parser):
    parser.addoption("--report-jsonl", default=None, help="write grading events as JSON lines")
    parser.addoption("--expected-out", default=None,
                     help="write the collected tests' points and hidden flags as JSON "
                          "(the trusted collection, tools/expected.py)")


@pytest.hookimpl(trylast=True)  # after conftest.py's: our import guard must come first
def pytest_configure(config):
    path = config.getoption("--report-jsonl")
    channel = _open_channel()
    if path or channel:
        reporter = Reporter(path, channel)
        config.pluginmanager.register(reporter, "ml2llm-report")
        if channel is not None:  # graded by tools/grading.py: learner code is watched
            from tools import sandbox  # noqa: PLC0415

            sandbox.install(on_violation=reporter.integrity)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    path = config.getoption("--expected-out")
    if path:
        Path(path).write_text(json.dumps({item.nodeid: _meta(item) for item in items}))


def _meta(item) -> dict:
    points = item.get_closest_marker("points")
    step = item.get_closest_marker("step")
    return {"points": float(points.args[0]) if points and points.args else 1.0,
            "hidden": item.get_closest_marker("hidden") is not None,
            "step": step.args[0] if step and step.args else None}


def _open_channel() -> tuple[socket.socket, str] | None:
    """The parent's socket and the nonce it sent, or None when pytest runs by hand."""
    fd = os.environ.pop(FD_ENV, None)
    if fd is None:
        return None
    sock = socket.socket(fileno=int(fd))
    sock.setblocking(True)
    nonce = b""
    while len(nonce) < NONCE_BYTES:
        chunk = sock.recv(NONCE_BYTES - len(nonce))
        if not chunk:
            break
        nonce += chunk
    return sock, nonce.decode("ascii", errors="replace")


def _learner_location(excinfo) -> str | None:
    """file:line in function of the deepest frame that is not framework or library code."""
    for entry in reversed(excinfo.traceback):
        path = Path(str(entry.path))
        if "site-packages" in path.parts or path.suffix != ".py" or not path.exists():
            continue
        if any(path == f or f in path.parents for f in _FRAMEWORK):
            continue
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        return f"{shown}:{entry.lineno + 1} in {entry.name}"
    return None


def _leaf(exc: BaseException) -> tuple[BaseException, int]:
    """The first real failure inside (nested) exception groups, and how many there were."""
    count = 1
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        count = max(count, len(exc.exceptions))
        exc = exc.exceptions[0]
    return exc, count


def _falsifying(exc: BaseException) -> str | None:
    """Hypothesis' 'Falsifying example: test(x=...)' note, on one line."""
    for note in getattr(exc, "__notes__", ()):
        if note.startswith("Falsifying example"):
            body = " ".join(part.strip() for part in note.split(":", 1)[1].splitlines())
            return body.strip().replace("( ", "(").replace(", )", ")")
    return None


def _message(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    if len(lines) > MAX_MESSAGE_LINES:
        lines = lines[:MAX_MESSAGE_LINES] + ["..."]
    return "\n".join(lines)[:MAX_MESSAGE_CHARS]


def _expected_raise(excinfo, leaf: BaseException) -> str | None:
    """pytest's bare "DID NOT RAISE <class 'ValueError'>" as a sentence naming the call.

    The call is the first statement inside the grader's ``with pytest.raises(...)`` block; in
    a hidden grader it is not quoted (hidden tests are not described)."""
    m = re.match(r"DID NOT RAISE (?:<class '(?:[\w.]+\.)?(\w+)'>|(\w+))", str(leaf))
    if m is None:
        return None
    exc = m.group(1) or m.group(2)
    call = None
    for entry in reversed(excinfo.traceback):
        path = Path(str(entry.path))
        if path.suffix == ".py" and (ROOT / "graders") in path.parents:
            if path.parent.name != "hidden":
                call = _with_body(path, entry.lineno + 1)
            break
    what = f"`{call}`" if call else "a call in this test"
    return (f"{what} should have raised {exc}, but it returned normally: the input is one "
            f"your code must refuse with `raise {exc}(...)` (see the docstring).")


def _with_body(path: Path, line: int) -> str | None:
    """The first statement of the `with` block that starts on (or spans) `line`, on one line."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and node.lineno <= line < node.body[0].lineno:
            segment = ast.get_source_segment(text, node.body[0]) or ""
            segment = " ".join(segment.split())
            return segment if len(segment) <= 120 else segment[:117] + "..."
    return None


def describe(excinfo) -> dict:
    """exc_type, message and learner location of a failure; Hypothesis' groups in plain words."""
    leaf, count = _leaf(excinfo.value)
    message = _expected_raise(excinfo, leaf) or _message(leaf)
    example = _falsifying(leaf)
    if example:
        message += f"\n(the first input that fails: {example})"
    if count > 1:
        message += (f"\n({count} different inputs fail in different ways; this is the first. "
                    "Fix it and check again.)")
    where = _learner_location(excinfo)
    if leaf is not excinfo.value and leaf.__traceback__ is not None:
        where = _learner_location(type(excinfo).from_exception(leaf)) or where
    return {"exc_type": type(leaf).__name__, "message": message, "where": where}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and report.failed:
        report.ml2llm = describe(call.excinfo)


def _hidden_source_lines(items) -> set[str]:
    """Lines of the hidden grader files being run that are long enough to be telling."""
    lines: set[str] = set()
    for path in {Path(str(item.fspath)) for item in items}:
        if path.parent.name == "hidden":
            text = path.read_text(encoding="utf-8", errors="replace")
            lines.update(s for s in (line.strip() for line in text.splitlines()) if len(s) >= 24)
    return lines


class Reporter:
    """Sends the events of one pytest session; one result per test, at the test's end."""

    def __init__(self, path: str | None, channel: tuple[socket.socket, str] | None = None):
        self.file = open(path, "a", buffering=1, encoding="utf-8") if path else None  # noqa: SIM115
        self.sock, self.nonce = channel if channel else (None, "")
        self.seq = 0
        self.meta: dict[str, dict] = {}  # nodeid -> points, hidden, step (reports lack markers)
        self.pending: dict[str, dict] = {}  # nodeid -> its result so far
        self.hidden_lines: set[str] = set()

    def write(self, **record) -> None:
        if self.sock is not None:
            stamped = json.dumps({"seq": self.seq, "nonce": self.nonce, **record}) + "\n"
            self.seq += 1
            try:
                self.sock.sendall(stamped.encode())
            except OSError:
                self.sock = None  # the parent is gone; nothing left to tell
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def integrity(self, message: str) -> None:
        self.write(event="integrity", message=message)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        self.meta = {item.nodeid: _meta(item) for item in items}
        self.hidden_lines = _hidden_source_lines(items)

    def pytest_runtest_logstart(self, nodeid, location):
        self.write(event="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report):
        # One result per test: the call phase, or setup when setup failed or skipped the test,
        # and a failed teardown over a passed call.
        if report.when == "call":
            outcome = report.outcome
        elif report.when == "setup" and not report.passed:
            outcome = "skipped" if report.skipped else "error"
        elif report.when == "teardown" and report.failed:
            outcome = "error"
        else:
            return
        old = self.pending.get(report.nodeid)
        if old is not None and not (old["outcome"] == "passed" and outcome != "passed"):
            return
        extra = dict(getattr(report, "ml2llm", {}))
        if report.skipped and isinstance(report.longrepr, tuple):
            extra["message"] = str(report.longrepr[2])
        meta = self.meta.get(report.nodeid, {"points": 1.0, "hidden": False, "step": None})
        self.pending[report.nodeid] = dict(
            nodeid=report.nodeid, outcome=outcome, **meta, duration=round(report.duration, 4),
            exc_type=extra.get("exc_type"), message=self._shown(extra.get("message"), meta),
            where=extra.get("where"))

    def pytest_runtest_logfinish(self, nodeid, location):
        result = self.pending.pop(nodeid, None)
        if result is not None:
            self.write(event="result", **result)

    def _shown(self, message: str | None, meta: dict) -> str | None:
        if not message:
            return message
        lines = [SOURCE_REDACTED if any(src in line for src in self.hidden_lines) else line
                 for line in message.splitlines()]
        if meta.get("hidden"):
            first = lines[0] if lines else ""
            return first[:HIDDEN_MESSAGE_CHARS] + HIDDEN_NOTE
        return "\n".join(lines)

    def pytest_collectreport(self, report):
        if report.failed:
            message = str(report.longrepr)[-3000:]
            if "hidden" in Path(str(report.nodeid)).parts:
                message = message.strip().splitlines()[-1][:HIDDEN_MESSAGE_CHARS] + HIDDEN_NOTE
            self.write(event="collect_error", nodeid=report.nodeid, message=message)

    def pytest_sessionfinish(self, exitstatus):
        self.write(event="finish", exitstatus=int(exitstatus))
        if self.file is not None:
            self.file.close()
            self.file = None

"""A pytest plugin that writes one JSON line per event to ``--report-jsonl PATH``.

The grading runner (tools/grading.py) reads it instead of pytest's console output. Lines are
flushed as they happen, so when learner code hangs, segfaults or calls ``os._exit`` the file
still says which test was running when the process died.

    {"event": "start", "nodeid": ...}
    {"event": "result", "nodeid": ..., "outcome": "passed|failed|error|skipped", "points": 2,
     "hidden": false, "step": "s00_toolbox", "exc_type": "AssertionError", "message": ...,
     "where": "exercises/s00_toolbox.py:42 in set_seed", "duration": 0.01}
    {"event": "collect_error", "nodeid": ..., "message": ...}
    {"event": "finish", "exitstatus": 0}
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_FRAMEWORK = (ROOT / "graders", ROOT / "tools", ROOT / "conftest.py")
MAX_MESSAGE_LINES = 20


def pytest_addoption(parser):
    parser.addoption("--report-jsonl", default=None, help="write grading events as JSON lines")


def pytest_configure(config):
    path = config.getoption("--report-jsonl")
    if path:
        config.pluginmanager.register(Reporter(path), "ml2llm-report")


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


def _message(excinfo) -> str:
    lines = str(excinfo.value).strip().splitlines()
    if len(lines) > MAX_MESSAGE_LINES:
        lines = lines[:MAX_MESSAGE_LINES] + ["..."]
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and report.failed:
        report.ml2llm = {
            "exc_type": call.excinfo.typename,
            "message": _message(call.excinfo),
            "where": _learner_location(call.excinfo),
        }


class Reporter:
    """Writes the events of one pytest session; lines are flushed as they happen."""

    def __init__(self, path: str):
        self.file = open(path, "a", buffering=1, encoding="utf-8")
        self.meta: dict[str, dict] = {}  # nodeid -> points, hidden, step (reports lack markers)

    def write(self, **record) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            points = item.get_closest_marker("points")
            step = item.get_closest_marker("step")
            self.meta[item.nodeid] = {
                "points": float(points.args[0]) if points and points.args else 1.0,
                "hidden": item.get_closest_marker("hidden") is not None,
                "step": step.args[0] if step and step.args else None,
            }

    def pytest_runtest_setup(self, item):
        self.write(event="start", nodeid=item.nodeid)

    def pytest_runtest_logreport(self, report):
        # One result per test: the call phase, or setup when setup failed or skipped the test,
        # and teardown only when it failed.
        if report.when == "call":
            outcome = report.outcome
        elif report.when == "setup" and not report.passed:
            outcome = "skipped" if report.skipped else "error"
        elif report.when == "teardown" and report.failed:
            outcome = "error"
        else:
            return
        extra = dict(getattr(report, "ml2llm", {}))
        if report.skipped and isinstance(report.longrepr, tuple):
            extra["message"] = str(report.longrepr[2])
        meta = self.meta.get(report.nodeid, {"points": 1.0, "hidden": False, "step": None})
        self.write(event="result", nodeid=report.nodeid, outcome=outcome, **meta,
                   duration=round(report.duration, 4), exc_type=extra.get("exc_type"),
                   message=extra.get("message"), where=extra.get("where"))

    def pytest_collectreport(self, report):
        if report.failed:
            self.write(event="collect_error", nodeid=report.nodeid,
                       message=str(report.longrepr)[-3000:])

    def pytest_sessionfinish(self, exitstatus):
        self.write(event="finish", exitstatus=int(exitstatus))
        self.file.close()

"""A pytest plugin that does, from inside the grading process, what a forger who reached
pytest's session would do (tools/tests/test_integrity_attacks.py loads it with ``-p``).

The audit hook refuses the ways learner code could get there (gc, frames); this plugin stands
in for a way nobody has found yet, so the tests prove that the trusted expectations alone
still catch the forged session. ``ML2LLM_TEST_FORGE`` picks the forgery.
"""

from __future__ import annotations

import os


def _forgery() -> str:
    return os.environ.get("ML2LLM_TEST_FORGE", "")


def pytest_collection_modifyitems(items):
    if _forgery() == "truncate":
        del items[1:]  # keep one test: "passed: 1/1 points" before the expectations


def pytest_runtest_teardown(item, nextitem):
    if _forgery() == "shouldfail":
        item.session.shouldfail = "stopped by the forger"


def pytest_runtest_logfinish(nodeid, location):
    if _forgery() == "internal":
        raise SystemError("an internal error raised in a hook")  # pytest exits with 3

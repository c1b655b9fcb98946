"""The learner's command line, tools/check.py, driven as a learner would: as a subprocess.

Every test works on a temporary copy of the course reduced to two steps -- the real s00
toolbox and a tiny fake step s01_fake written here (two functions, two public graders and one
hidden) -- so these tests never depend on the steps being written in the main tree. Limits are
shortened through ML2LLM_TEST_TIMEOUT / ML2LLM_STEP_BUDGET so misbehaving code costs seconds.
s00 is graded as few times as possible (once solved, the course is copied); grading uses the warm
server when it can, and `ML2LLM_WARM=0 python -m pytest tools/tests/test_check_cli.py` runs the
whole file on the cold path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_SOLUTION = '''\
"""s01 · Fake: a two-function step used by the framework's own tests."""

from __future__ import annotations

import numpy as np


def scale(x: np.ndarray, a: float) -> np.ndarray:
    """Return a * x as a float array of the same shape."""
    # BEGIN SOLUTION: multiply x by a
    return a * np.asarray(x, dtype=float)
    # END SOLUTION


def normalize(x: np.ndarray) -> np.ndarray:
    """Divide x by its sum, so the result sums to 1."""
    # BEGIN SOLUTION: divide x by its sum
    x = np.asarray(x, dtype=float)
    return x / x.sum()
    # END SOLUTION
'''

FAKE_PUBLIC = '''\
"""Public graders of the fake step."""

import numpy as np
import pytest

from graders.helpers import assert_close, check_shape


@pytest.mark.points(2)
def test_scale_multiplies_every_element(impl):
    x = np.arange(6.0).reshape(2, 3)
    out = impl.scale(x, 3.0)
    check_shape(out, (2, 3), "scale(x, 3.0)")
    assert_close(out, 3.0 * x, "scale(x, 3.0)")


@pytest.mark.points(1)
def test_normalize_sums_to_one(impl):
    out = impl.normalize(np.array([1.0, 2.0, 5.0]))
    assert_close(out, [0.125, 0.25, 0.625], "normalize([1, 2, 5])")
'''

FAKE_HIDDEN = '''\
"""Hidden graders of the fake step."""

import numpy as np
import pytest

from graders.helpers import assert_close


@pytest.mark.points(1)
def test_scale_accepts_lists(impl):
    assert_close(impl.scale([1, 2], 2.0), np.array([2.0, 4.0]), "scale of a Python list")
'''

FAKE_PLAN = '''\
[[phase]]
number = 0
name = "Toolbox"

[[phase]]
number = 1
name = "Fakes"

[[step]]
number = 0
name = "toolbox"
phase = 0
builds = "seeds, splits, batches and a scaler"
graded = "determinism and no leakage"

[[step]]
number = 1
name = "fake"
phase = 1
builds = "two array functions, scale and normalize"
graded = "values"

[[step]]
number = 2
name = "later_fake"
phase = 1
builds = "something planned"
graded = "something"
'''
FAKE_HINTS = ["First fake hint: multiply.", "Second fake hint: divide by the sum."]
MANIFEST = '''\
[[step]]
id = "s00_toolbox"
title = "Toolbox: seeds, splits, mini-batches and a leak-free scaler"
phase = 0
requires = []
budget = 60
hints_file = "hintstore/s00_toolbox.txt"

[[step]]
id = "s01_fake"
title = "Fake: scale and normalize"
phase = 1
requires = []
budget = 60
hints_file = "hintstore/s01_fake.txt"
'''


def make_course(dest: Path, extra_steps: str = "") -> Path:
    """A runnable copy of the course with the real s00 and the fake s01 only."""
    for name in ("tools", "conftest.py", "pyproject.toml", "graders/helpers.py",
                 "graders/__init__.py", "graders/hidden/__init__.py", "exercises/__init__.py",
                 "solutions/__init__.py", "solutions/s00_toolbox.py", "exercises/s00_toolbox.py",
                 "exercises/s00_toolbox.ipynb", "graders/test_s00_toolbox.py",
                 "graders/hidden/test_s00_toolbox.py"):
        src, dst = REPO / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        elif src.exists():
            shutil.copy2(src, dst)
    (dest / "tools" / "curriculum.toml").write_text(MANIFEST + extra_steps)
    (dest / "tools" / "plan.toml").write_text(FAKE_PLAN)
    (dest / "solutions" / "s01_fake.py").write_text(FAKE_SOLUTION)
    (dest / "graders" / "test_s01_fake.py").write_text(FAKE_PUBLIC)
    (dest / "graders" / "hidden" / "test_s01_fake.py").write_text(FAKE_HIDDEN)
    sys.path.insert(0, str(REPO))
    try:
        from tools.hints import encode
        from tools.stubgen import make_stub
    finally:
        sys.path.remove(str(REPO))
    (dest / "exercises" / "s01_fake.py").write_text(make_stub(FAKE_SOLUTION, "s01_fake"))
    (dest / "tools" / "hintstore" / "s01_fake.txt").write_text(encode("s01_fake", FAKE_HINTS))
    return dest


# --- running the tool as a learner does ---------------------------------------------------------

# Short limits for the fake step: a misbehaving `scale` costs a second or two, not 30 s.
FAST = {"ML2LLM_TEST_TIMEOUT": "2", "ML2LLM_STEP_BUDGET": "20"}
# s00's graders import torch, which alone can take several seconds on a loaded machine: runs
# that grade s00 keep generous limits so that only learner code can hit them.
S00 = {"ML2LLM_TEST_TIMEOUT": "60", "ML2LLM_STEP_BUDGET": "180"}
# Grading forks from a warm server (tools/warm.py) when it can; COLD forces the plain child
# process, the path of every other platform. A server these tests start idles out soon.
COLD = {"ML2LLM_WARM": "0"}

CHECK = ("tools/check.py",)
TRACEBACK = "Traceback (most recent call last)"


def child_env(limits: dict[str, str]) -> dict[str, str]:
    """The environment of a learner's shell, plus the short limits; nothing of this pytest run.

    ML2LLM_WARM is passed through, so `ML2LLM_WARM=0 pytest ...` runs the whole file cold.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "ML2LLM_")) and k not in ("PYTHONPATH", "COLUMNS")
           or k == "ML2LLM_WARM"}
    env.update(limits, NO_COLOR="1", PYTHONIOENCODING="utf-8", COLUMNS="100",
               ML2LLM_WARM_IDLE="60")
    return env


def run_check(course: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 240) -> tuple[int, str]:
    """`python tools/check.py ARGS` in `course`: (exit code, stdout and stderr together)."""
    proc = subprocess.run([sys.executable, *CHECK, *args], cwd=course, env=child_env(env or FAST),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, encoding="utf-8",
                          errors="replace")
    return proc.returncode, proc.stdout


def flat(text: str) -> str:
    """Output with its line wrapping undone, so assertions do not depend on the width."""
    return " ".join(text.split())


def progress(course: Path) -> dict:
    return json.loads((course / ".ml2llm" / "progress.json").read_text(encoding="utf-8"))


def write_exercise(course: Path, step_id: str, source: str) -> Path:
    path = course / "exercises" / f"{step_id}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


GOOD_NORMALIZE = '''
def normalize(x):
    x = np.asarray(x, dtype=float)
    return x / x.sum()
'''


def fake_exercise(scale_body: str, header: str = "") -> str:
    """exercises/s01_fake.py with a correct `normalize` and the given body of `scale`."""
    return (f"import numpy as np\n{textwrap.dedent(header)}\n\ndef scale(x, a):\n"
            + textwrap.indent(textwrap.dedent(scale_body).strip(), "    ") + "\n"
            + GOOD_NORMALIZE)


# --- courses --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The course as a learner clones it: every exercise an untouched stub (never modified)."""
    return make_course(tmp_path_factory.mktemp("pristine"))


@pytest.fixture(scope="module")
def solved_s00(pristine, tmp_path_factory) -> tuple[Path, int, str]:
    """(course, exit code, output) after copying s00's solution in and running check.py once.

    Grading s00 costs seconds, so it is done once; tests that need s00 passed work on a copy.
    """
    course = tmp_path_factory.mktemp("solved") / "course"
    shutil.copytree(pristine, course)
    shutil.copy2(course / "solutions" / "s00_toolbox.py", course / "exercises" / "s00_toolbox.py")
    code, out = run_check(course, env=S00)
    return course, code, out


@pytest.fixture
def fresh(pristine, tmp_path) -> Path:
    """A private copy of the untouched course."""
    return Path(shutil.copytree(pristine, tmp_path / "fresh"))


@pytest.fixture
def solved(solved_s00, tmp_path) -> Path:
    """A private copy of the course with s00 passed and recorded, s01 the current step."""
    course, code, out = solved_s00
    assert code == 0, out
    return Path(shutil.copytree(course, tmp_path / "solved"))


# --- 1-3: the loop on a new course -----------------------------------------------------------

def test_untouched_stub_fails_listing_what_to_implement_and_the_hint_command(fresh):
    code, out = run_check(fresh, env=S00)
    text = flat(out)
    assert code == 1, out
    assert "✗ s00 · Toolbox" in out
    assert "Still to implement in exercises/s00_toolbox.py" in text
    assert "raises NotImplementedError" in text
    for func in ("set_seed", "train_val_test_split", "iterate_minibatches", "Standardizer.fit"):
        assert f"({func}, line " in text, func
    # each to-do in the stub's full words, not a hidden test's shortened copy of them
    assert "message shortened" not in text, out
    assert ("shuffle with the seeded rng, cut test / val / train (per class if stratify)  "
            "(train_val_test_split, line ") in out, out
    assert "Score: 0/" in text
    assert "Stuck? python tools/check.py hint" in text
    assert TRACEBACK not in out
    assert progress(fresh)["steps"]["s00_toolbox"]["passed"] is False


def test_solving_s00_records_the_pass_and_announces_s01(solved_s00):
    course, code, out = solved_s00
    text = flat(out)
    assert code == 0, out
    assert "✓ s00 · Toolbox" in out
    assert "passed:" in text and "points" in text
    assert "Next: s01 · Fake: scale and normalize" in text
    assert "code: exercises/s01_fake.py" in text
    assert "you build: two array functions, scale and normalize" in text
    assert "First fake hint" not in text and "hint 1/" not in text  # never a hint unasked
    assert "compare with the reference solution: solutions/s00_toolbox.py" in text
    assert TRACEBACK not in out
    state = progress(course)
    rec = state["steps"]["s00_toolbox"]
    assert rec["passed"] is True and rec["points"] == rec["max_points"] > 0
    assert rec["exercise_sha256"] == hashlib.sha256(
        (course / "exercises" / "s00_toolbox.py").read_bytes()).hexdigest()
    assert "hints_shown" not in state  # hint counts live apart, in hints.json
    hints = course / ".ml2llm" / "hints.json"
    assert not hints.exists() or "s01_fake" not in json.loads(hints.read_text())["hints_shown"]


@pytest.mark.parametrize("query", ["s01", "1"])
def test_locked_step_refuses_naming_the_step_that_comes_first(fresh, query):
    start = time.monotonic()
    code, out = run_check(fresh, query)
    assert code == 1, out
    assert ("s01_fake is locked: s00_toolbox (Toolbox: seeds, splits, mini-batches and a "
            "leak-free scaler) comes first") in flat(out)
    assert "Score" not in out and "✗" not in out and "✓" not in out  # nothing was graded
    assert progress(fresh)["steps"] == {}
    assert time.monotonic() - start < 15  # no pytest child was started


# --- 4: learner code misbehaving in exercises/s01_fake.py --------------------------------------

LOOP = "while True:\n    pass"
MISBEHAVIOUR = {
    # id: (exercise source, limits, words the verdict must contain)
    "infinite-loop-per-test-timeout": (
        fake_exercise(LOOP), FAST,
        ["took longer than 2 s and was stopped", "infinite loop", "exercises/s01_fake.py:"]),
    "infinite-loop-step-budget": (
        # 8 s: a cold child on a loaded machine must first import pytest, NumPy, hypothesis
        fake_exercise(LOOP), {"ML2LLM_TEST_TIMEOUT": "60", "ML2LLM_STEP_BUDGET": "8"},
        ["Grading s01_fake was stopped after 8 s", "infinite loop",
         "exercises/s01_fake.py:"]),
    "sys-exit-at-import": (
        fake_exercise("return a * np.asarray(x, dtype=float)", header="import sys\nsys.exit(0)"),
        FAST, ["called sys.exit(0)", "while the module was being imported", "remove that call"]),
    "sys-exit-in-function": (
        fake_exercise("import sys\nsys.exit(0)"), FAST,
        ["called sys.exit(0)", "remove that call", "in scale"]),
    "os-abort": (
        fake_exercise("import os\nos.abort()"), FAST,
        ["died with SIGABRT", "abort", "in scale", "Nothing of your work is lost"]),
    "segfault": (
        # a runaway recursion through C (max calls its key): ctypes would be refused
        fake_exercise("import functools\nimport sys\nsys.setrecursionlimit(10**8)\n"
                      "return max([x], key=functools.partial(scale, a=a))"), FAST,
        ["died with SIGSEGV", "segmentation fault", "in scale"]),
    "wrong-shape": (
        fake_exercise("return (a * np.asarray(x, dtype=float)).T"), FAST,
        ["test_scale_multiplies_every_element", "expected shape (2, 3), got (3, 2)",
         "transpose"]),
    "nan": (
        fake_exercise("return np.full(np.shape(x), np.nan)"), FAST,
        ["not finite", "NaN", "division by zero"]),
}


# Misbehaviour that ends or stalls the whole grading process, checked on both launch paths.
PROCESS_LEVEL = ("infinite-loop-step-budget", "sys-exit-at-import", "sys-exit-in-function",
                 "os-abort", "segfault")


@pytest.mark.slow
@pytest.mark.parametrize("case,launch", [
    *((case, "default") for case in MISBEHAVIOUR),
    *((case, "cold") for case in PROCESS_LEVEL),
], ids=lambda v: v)
def test_misbehaving_code_gets_a_plain_verdict_and_never_breaks_the_tool(solved, case, launch):
    source, limits, words = MISBEHAVIOUR[case]
    write_exercise(solved, "s01_fake", source)
    start = time.monotonic()
    code, out = run_check(solved, env={**limits, **(COLD if launch == "cold" else {})})
    elapsed = time.monotonic() - start
    text = flat(out)
    assert code == 1, out  # a regular "failed", not a signal or an internal error
    assert TRACEBACK not in out
    assert "✗ s01 · Fake" in out
    for word in words:
        assert word in text, f"{word!r} not in the verdict:\n{out}"
    assert "Stuck? python tools/check.py hint" in text
    assert elapsed < 25, f"{case} took {elapsed:.1f} s"
    assert progress(solved)["steps"]["s01_fake"]["passed"] is False
    assert progress(solved)["steps"]["s00_toolbox"]["passed"] is True


# --- 5: list, hint, reset, reports ---------------------------------------------------------------

def test_list_shows_every_step_with_its_status_and_score(fresh, solved):
    code, out = run_check(fresh, "list")
    assert code == 0, out
    assert re.search(r"▶ s00_toolbox\s+current\s+-\s+Toolbox", out), out
    assert re.search(r"· s01_fake\s+locked\s+-\s+Fake: scale and normalize", out), out
    assert "0 of 2 steps done. Current: s00_toolbox" in out
    assert "Not shipped yet (1 planned step, in the README's course table): s02 later fake." \
        in flat(out)

    code, out = run_check(solved, "list")
    assert code == 0, out
    assert re.search(r"✓ s00_toolbox\s+done\s+(\d+)/\1\s+Toolbox", out), out
    assert re.search(r"▶ s01_fake\s+current\s+-\s+Fake", out), out
    assert "1 of 2 steps done. Current: s01_fake" in out


def test_hint_prints_the_hints_one_at_a_time_in_order(fresh):
    code, out = run_check(fresh, "hint", "s01", "--shown")
    assert code == 0 and "No hint of s01_fake has been shown yet" in out, out
    first = flat(run_check(fresh, "hint", "s01")[1])
    assert "Hint 1/2 for s01_fake: First fake hint: multiply." in first
    # every follow-up repeats the step asked for; "so far" and "reveal the rest" differ
    assert "next hint (1 left): python tools/check.py hint s01" in first
    assert "the 1 shown so far, again: python tools/check.py hint s01 --shown" in first
    assert "reveal all 1 remaining at once: python tools/check.py hint s01 --all" in first
    code, out = run_check(fresh, "hint", "s01", "--shown")
    assert "1. First fake hint" in out and "Second fake hint" not in out, out
    second = flat(run_check(fresh, "hint", "s01")[1])
    assert "Hint 2/2 for s01_fake: Second fake hint: divide by the sum." in second
    assert "That was the last hint for s01_fake" in second
    third = flat(run_check(fresh, "hint", "s01")[1])
    assert "All 2 hints for s01_fake have been shown" in third
    assert "hint s01 --shown" in third
    code, out = run_check(fresh, "hint", "s01", "--all")
    assert code == 0, out
    assert out.index("1. First fake hint") < out.index("2. Second fake hint")
    code, out = run_check(fresh, "hint")  # no step: the current one, s00
    assert code == 0 and "Hint 1/3 for s00_toolbox:" in out, out
    assert "python tools/check.py hint s00 --shown" in out, out


def test_hint_all_reveals_the_rest_and_counts_them(fresh):
    run_check(fresh, "hint", "s01")
    code, out = run_check(fresh, "hint", "s01", "--all")
    assert code == 0 and "Every hint for s01 · Fake" in out and "close to the answer" in out
    hints = json.loads((fresh / ".ml2llm" / "hints.json").read_text())
    assert hints["hints_shown"]["s01_fake"] == 2


def test_reset_restores_the_stub_and_keeps_a_backup_of_the_learner_file(fresh):
    exercise = fresh / "exercises" / "s01_fake.py"
    stub = exercise.read_text(encoding="utf-8")
    mine = fake_exercise("return a * np.asarray(x, dtype=float)")
    exercise.write_text(mine, encoding="utf-8")

    code, out = run_check(fresh, "reset", "s01")
    assert code == 0, out
    assert exercise.read_text(encoding="utf-8") == stub
    backups = list((fresh / ".ml2llm" / "backups").glob("s01_fake.*.py"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == mine
    assert f"Your version is saved as .ml2llm/backups/{backups[0].name}" in flat(out)

    code, out = run_check(fresh, "reset", "s01")
    assert code == 0 and "already the original stub" in out, out
    code, out = run_check(fresh, "reset")
    assert code == 2 and "Name the step to reset" in out, out
    code, out = run_check(fresh, "reset", "s99")
    assert code == 2 and "no step called 's99'" in out and TRACEBACK not in out, out


@pytest.mark.slow
def test_all_ignores_locks_and_writes_valid_junit_json_and_markdown(fresh):
    shutil.copy2(fresh / "solutions" / "s01_fake.py", fresh / "exercises" / "s01_fake.py")
    code, out = run_check(fresh, "--all", "--junit", "reports/junit.xml", "--json",
                          "reports/grades.json", "--markdown", "reports/summary.md", env=S00)
    assert code == 1, out  # s00 is still a stub
    assert "1 of 2 steps pass" in out

    suites = {s.get("name"): s for s in ET.parse(fresh / "reports" / "junit.xml").getroot()}
    assert list(suites) == ["s00_toolbox", "s01_fake"]
    assert int(suites["s00_toolbox"].get("failures")) > 0
    assert (suites["s01_fake"].get("tests"), suites["s01_fake"].get("failures"),
            suites["s01_fake"].get("errors")) == ("3", "0", "0")
    failure = suites["s00_toolbox"].find("testcase/failure")
    assert failure is not None and failure.get("type") == "NotImplementedError"

    report = json.loads((fresh / "reports" / "grades.json").read_text(encoding="utf-8"))
    status = {s["id"]: s["status"] for s in report["steps"]}
    assert status == {"s00_toolbox": "failed", "s01_fake": "passed"}
    assert report["passed"] is False
    s01 = report["steps"][1]
    assert s01["points"] == s01["max_points"] == 4 and len(s01["tests"]) == 3

    summary = (fresh / "reports" / "summary.md").read_text(encoding="utf-8")
    assert "**1 of 2 steps pass" in summary
    assert re.search(r"\| `s01_fake` Fake \| 4 / 4 \| ✅ passed \|", summary), summary
    assert re.search(r"\| `s00_toolbox` Toolbox \| 0 / \d+ \| ❌ failed \|", summary), summary


# --- 6: progress is derived from the files ------------------------------------------------------

@pytest.mark.slow
def test_deleted_progress_file_costs_only_a_regrade(solved):
    (solved / ".ml2llm" / "progress.json").unlink()
    code, out = run_check(solved, env=S00)
    assert code == 1, out  # s00's pass is re-derived, then the current step s01 is graded
    assert TRACEBACK not in out
    assert "rebuilding progress (no progress file): s00 ✓" in out and "✗ s01 · Fake" in out
    assert progress(solved)["steps"]["s00_toolbox"]["passed"] is True


@pytest.mark.slow
def test_deleted_progress_file_keeps_hint_counts_and_list_regrades_the_last_step(solved):
    run_check(solved, "hint", "s01")
    (solved / ".ml2llm" / "progress.json").unlink()
    code, out = run_check(solved, "list", env=S00)  # s00 passed, nothing after it: regraded
    assert code == 0, out
    assert "rebuilding progress (no progress file): s00 ✓" in out
    assert re.search(r"✓ s00_toolbox\s+done\s+(\d+)/\1", out), out
    assert re.search(r"▶ s01_fake\s+current", out), out
    hints = json.loads((solved / ".ml2llm" / "hints.json").read_text())
    assert hints["hints_shown"] == {"s01_fake": 1}  # what cannot be derived was kept


@pytest.mark.slow
def test_corrupt_progress_file_is_rebuilt_by_grading(solved):
    (solved / ".ml2llm" / "progress.json").write_bytes(b'{"version": 1, "steps": \xff garbage')
    write_exercise(solved, "s01_fake", fake_exercise("return (a * np.asarray(x, dtype=float)).T"))
    code, out = run_check(solved, env=S00)
    assert code == 1, out  # s01 is graded (and wrong) once s00's pass is recovered
    assert TRACEBACK not in out
    assert "rebuilding progress (the progress file was unreadable): s00 ✓" in out
    assert "✗ s01 · Fake" in out and "expected shape (2, 3), got (3, 2)" in flat(out)
    steps = progress(solved)["steps"]
    assert steps["s00_toolbox"]["passed"] is True and steps["s01_fake"]["passed"] is False


def test_editing_a_passed_exercise_invalidates_its_pass(solved):
    exercise = solved / "exercises" / "s00_toolbox.py"
    original = exercise.read_bytes()
    exercise.write_bytes(original + b"\n# an edit after the pass\n")

    code, out = run_check(solved, "list")
    assert code == 0, out
    assert re.search(r"▶ s00_toolbox\s+current\s+-\s", out), out
    assert re.search(r"s01_fake\s+locked", out), out
    code, out = run_check(solved, "s01")
    assert code == 1 and "s01_fake is locked: s00_toolbox" in out, out

    exercise.write_bytes(original)  # the very file that passed: the record counts again
    os.utime(exercise)  # a new mtime: the key is the content, not the time stamp
    code, out = run_check(solved, "list")
    assert re.search(r"✓ s00_toolbox\s+done", out), out


# --- 7: only the learner's own code scores ------------------------------------------------------

CHEATS = {  # id: (exercise source, words of the verdict, its score line)
    # refused by the audit hook at import: an integrity verdict, nothing is graded
    "import-from-solutions": ("from solutions.s01_fake import scale, normalize\n",
                              "the reference solutions cannot be imported", "Score: 0 points"),
    "load-solution-by-path": (textwrap.dedent('''\
        import importlib.util

        _spec = importlib.util.spec_from_file_location("ref", "solutions/s01_fake.py")
        _ref = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_ref)
        scale, normalize = _ref.scale, _ref.normalize
        '''), "not from your file", "Score: 0/4 points"),
}


@pytest.mark.parametrize("cheat", CHEATS, ids=list(CHEATS))
def test_functions_not_written_in_the_learners_file_do_not_score(solved, cheat):
    source, words, score = CHEATS[cheat]
    write_exercise(solved, "s01_fake", source)
    code, out = run_check(solved)
    assert code == 1, out
    assert "✗ s01 · Fake" in out and "✓ s01" not in out
    assert words in flat(out)
    assert score in out, out
    assert progress(solved)["steps"]["s01_fake"]["passed"] is False


# --- 8: watch ------------------------------------------------------------------------------------

class Watch:
    """`check.py watch` running in the background, its output collected line by line.

    Used as a context manager: on the way out a watch still running is interrupted (Ctrl-C),
    then killed, so a failing test never leaves it behind.
    """

    def __init__(self, course: Path, env: dict[str, str] = FAST, preexec_fn=None):
        self.proc = subprocess.Popen(
            [sys.executable, *CHECK, "watch"], cwd=course, env=child_env(env),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            encoding="utf-8", errors="replace", preexec_fn=preexec_fn)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        """Until `text` has been printed `count` times; fails with the output so far."""
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            if time.monotonic() > deadline or not self.reader.is_alive():
                raise AssertionError(f"{text!r} x{count} never came:\n{self.output}")
            time.sleep(0.05)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def exit_code(self, timeout: float = 30) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # say where it is stuck (check.py dumps its stacks)
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            raise AssertionError(f"check.py watch did not exit within {timeout} s; its output "
                                 f"and stacks:\n{self.output}") from None
        self.reader.join(timeout=5)
        return code

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.reader.join(timeout=5)


WAITING = "-- waiting for you to save exercises/s01_fake.py"


@pytest.mark.slow
def test_watch_regrades_on_enter_and_on_save_and_quits_on_q(solved):
    with Watch(solved) as watch:
        watch.wait_for(WAITING)
        assert "Watching exercises/s01_fake.py" in watch.output
        assert "Still to implement in exercises/s01_fake.py" in watch.output
        watch.send("\n")  # the manual fallback: Enter re-runs
        watch.wait_for(WAITING, 2)
        assert watch.output.count("✗ s01 · Fake") == 2
        write_exercise(solved, "s01_fake",
                       fake_exercise("return (a * np.asarray(x, dtype=float)).T"))
        watch.wait_for(WAITING, 3)  # saving re-runs, by polling
        assert "expected shape (2, 3), got (3, 2)" in flat(watch.output)
        watch.send("q\n")
        code = watch.exit_code()
    assert code == 0, watch.output
    assert watch.output.rstrip().endswith("Stopped watching.")
    assert TRACEBACK not in watch.output


@pytest.mark.slow
def test_watch_points_at_the_reference_once_the_step_passes(solved):
    with Watch(solved, env=S00) as watch:
        watch.wait_for(WAITING)
        shutil.copy2(solved / "solutions" / "s01_fake.py", solved / "exercises" / "s01_fake.py")
        watch.wait_for("Course finished", timeout=120)
        code = watch.exit_code()
    assert code == 0, watch.output
    assert "Now compare with the reference solution: solutions/s01_fake.py" in watch.output


@pytest.mark.slow
def test_watch_keeps_polling_without_stdin_and_stops_cleanly_on_ctrl_c(solved):
    with Watch(solved) as watch:
        watch.proc.stdin.close()  # no keyboard at all (started from a script, say)
        watch.wait_for(WAITING)
        write_exercise(solved, "s01_fake", fake_exercise("import sys\nsys.exit(0)"))
        watch.wait_for(WAITING, 2)
        assert "called sys.exit(0)" in flat(watch.output)
        watch.proc.send_signal(signal.SIGINT)
        code = watch.exit_code()
    assert code == 0, watch.output
    assert watch.output.rstrip().endswith("Stopped watching.")
    assert TRACEBACK not in watch.output


def _sigint_ignored_and_blocked() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_watch_stops_on_ctrl_c_even_if_started_with_sigint_ignored_and_blocked(solved):
    # A background job (or a test runner's worker) starts check.py with SIGINT ignored, its
    # mask inherited: "Quit with Ctrl-C" must still be true (it hung here once, in CI).
    with Watch(solved, preexec_fn=_sigint_ignored_and_blocked) as watch:
        watch.wait_for(WAITING)
        watch.proc.send_signal(signal.SIGINT)
        code = watch.exit_code()
    assert code == 0, watch.output
    assert watch.output.rstrip().endswith("Stopped watching.")


# --- 9: what the learner reads around a verdict ---------------------------------------------------

def test_install_line_is_one_editable_command_that_takes_the_cpu_wheel_on_linux():
    sys.path.insert(0, str(REPO))
    try:
        from tools.cli.install import install_command, install_note
    finally:
        sys.path.remove(str(REPO))
    if sys.platform != "linux":
        pytest.skip("the CPU index is added on Linux only")
    assert install_command(["torch"]) == (
        'pip install -e ".[torch]" --extra-index-url https://download.pytorch.org/whl/cpu')
    assert install_command(["text"]) == 'pip install -e ".[text]"'
    assert "with an NVIDIA GPU, leave out --extra-index-url" in install_note(["torch"])


HIDE_TORCH = '''\
import importlib.util
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: (
    None if name.split(".")[0] == "torch" else _find(name, *a))
'''
TORCH_STEPS = "".join(f'''
[[step]]
id = "s0{n}_fake_torch"
title = "Fake torch step {n}"
phase = 1
requires = ["torch"]
budget = 60
hints = ["a hint"]
''' for n in (2, 3))


def test_list_prints_the_install_command_once_for_all_steps_that_need_it(tmp_path):
    course = make_course(tmp_path / "course", TORCH_STEPS)
    (tmp_path / "hide").mkdir()
    (tmp_path / "hide" / "sitecustomize.py").write_text(HIDE_TORCH)
    code, out = run_check(course, "list", env={**FAST, "PYTHONPATH": str(tmp_path / "hide")})
    assert code == 0, out
    assert re.search(r"s02_fake_torch\s+locked\s+-\s+Fake torch step 2\s+\(needs torch\)", out)
    assert out.count("pip install") == 1, out
    if sys.platform == "linux":
        assert "To install torch, run this one line from the course folder (the CPU build; " \
            "with an NVIDIA GPU, leave out --extra-index-url and its URL):" in flat(out), out
        # whole on a line of its own however narrow the terminal: pasting a wrapped command
        # would run `pip install -e ".[torch]"` alone, PyPI's CUDA build
        assert re.search(r'^ +pip install -e "\.\[torch\]" --extra-index-url '
                         r"https://download\.pytorch\.org/whl/cpu$", out, re.M), out
        _, narrow = run_check(course, "list", env={**FAST, "COLUMNS": "40",
                                                   "PYTHONPATH": str(tmp_path / "hide")})
        assert re.search(r"^ +pip install -e \S+ --extra-index-url \S+$", narrow, re.M), narrow


@pytest.mark.parametrize("launch", ["warm", "cold"])
@pytest.mark.parametrize("lines", [0, 1])
def test_output_to_a_closed_pipe_ends_quietly(fresh, launch, lines):
    env = {**FAST, **(COLD if launch == "cold" else {})}
    proc = subprocess.Popen([sys.executable, *CHECK, "list"], cwd=fresh, env=child_env(env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    for _ in range(lines):  # `check.py list | head -1`: one line read, then the reader goes
        assert proc.stdout.readline().strip().startswith(b"step")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == "", err  # no BrokenPipeError, no "Exception ignored" at exit


def test_failures_from_one_line_of_learner_code_are_shown_once(solved):
    write_exercise(solved, "s01_fake", fake_exercise(
        'raise ValueError(f"cannot scale an array of shape {np.shape(x)}")'))
    code, out = run_check(solved)
    text = flat(out)
    assert code == 1, out
    assert ("2 tests fail from one cause (3 points): test_scale_multiplies_every_element, "
            "hidden: test_scale_accepts_lists") in text, out
    assert text.count("cannot scale an array of shape") == 1, out
    assert "at exercises/s01_fake.py:5 in scale" in text
    assert "fix this one first" in text


def test_failures_that_differ_in_numbers_or_by_a_hidden_cut_are_one_cause():
    """One wrong line fails test[0.01] and test[0.5] with the same sentence about other
    values, and a hidden test with the first 160 characters of it: one cause, shown once."""
    sys.path.insert(0, str(REPO))
    try:
        from tools.cli.verdict import HIDDEN_NOTE, group_by_cause
        from tools.grading import TestResult
        from tools.pytest_report import HIDDEN_NOTE as REPORTED_NOTE
    finally:
        sys.path.remove(str(REPO))
    assert HIDDEN_NOTE == REPORTED_NOTE  # the CLI's copy of the reporter's words
    said = ("AdamW(weight_decay={wd}): the worst at index (0, 0) is {got} where {want} was "
            "expected; AdamW puts eps INSIDE the square root, torch adds it AFTER.")
    a = TestResult("g.py::test_adamw[0.01]", "failed", exc_type="AssertionError",
                   message=said.format(wd=0.01, got=0.135717645, want=0.1357176473))
    b = TestResult("g.py::test_adamw[0.5]", "failed", exc_type="AssertionError",
                   message=said.format(wd=0.5, got=0.1351015669, want=0.1351015692))
    cut = said.format(wd=0.25, got=0.13, want=0.14)[:40] + HIDDEN_NOTE
    c = TestResult("hidden/g.py::test_adamw_random", "failed", hidden=True,
                   exc_type="AssertionError", message=cut)
    other = TestResult("g.py::test_sgd", "failed", exc_type="AssertionError",
                       message="SGD: the worst at index (0, 0) is 1.5 where 2.5 was expected")
    groups = group_by_cause([a, b, c, other])
    assert [[t.nodeid for t in g] for g in groups] == [
        ["g.py::test_adamw[0.01]", "g.py::test_adamw[0.5]", "hidden/g.py::test_adamw_random"],
        ["g.py::test_sgd"]]


def test_skipped_tests_name_the_missing_extra_and_the_maximum_with_it(fresh):
    graders = fresh / "graders" / "test_s01_fake.py"
    graders.write_text(graders.read_text() + textwrap.dedent('''

        @pytest.mark.points(2)
        @pytest.mark.skipif(True, reason="mlx is not installed")
        def test_needs_mlx(impl):
            pass
        '''))
    code, out = run_check(fresh, "s01", "--impl", "solutions")
    assert code == 0, out
    assert ("1 test (2 points) skipped because mlx is not installed: those points cannot be "
            "earned here (the step has 6 in all).") in flat(out), out
    assert 'pip install -e ".[mlx]"' in flat(out)


@pytest.mark.slow
def test_all_prints_the_first_failure_of_each_step_in_full(solved):
    write_exercise(solved, "s01_fake", fake_exercise("return (a * np.asarray(x, dtype=float)).T"))
    _, single = run_check(solved, "s01")
    code, out = run_check(solved, "--all", env=S00)
    assert code == 1, out
    assert re.search(r"✗ s01_fake\s+\d+/4\s+[\d.]+s\s+failed", out), out
    tail = flat(out.split("The first problem of each failing step:")[1])
    whole = ("scale(x, 3.0): expected shape (2, 3), got (3, 2): the same sizes in another "
             "order; did you transpose or swap axes?")
    assert whole in flat(single) and f"s01: test_scale_multiplies_every_element: {whole}" in tail


@pytest.mark.slow
def test_a_locked_score_after_reset_is_explained(solved):
    shutil.copy2(solved / "solutions" / "s01_fake.py", solved / "exercises" / "s01_fake.py")
    code, out = run_check(solved, env=S00)
    assert code == 0 and "Course finished" in out, out
    run_check(solved, "reset", "s00")
    code, out = run_check(solved, "list")
    assert re.search(r"s01_fake\s+locked\s+4/4\*", out), out
    assert ("* a locked step's score is from its last grading: it passed before, but a step "
            "before it (s00) no longer does. It counts again, without re-doing it, once the "
            "steps before it pass.") in flat(out)


def _git(course: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=course,
                   check=True, capture_output=True)


def test_a_pass_under_modified_framework_files_is_not_recorded(solved):
    _git(solved, "init", "-q")
    _git(solved, "add", "-A")
    _git(solved, "commit", "-qm", "course")
    helpers = solved / "graders" / "helpers.py"
    helpers.write_text(helpers.read_text() + "\n# a local edit\n")
    shutil.copy2(solved / "solutions" / "s01_fake.py", solved / "exercises" / "s01_fake.py")
    code, out = run_check(solved, env=S00)
    text = flat(out)
    assert code == 1, out
    # the edit makes s00's record stale: s00 is graded again and passes, but does not count
    assert "rebuilding progress (the course's grading files changed since s00_toolbox passed)" \
        in text, out
    assert "✓ s00 · Toolbox" in out
    assert ("This pass is not recorded and s00 stays current, because it was graded under "
            "modified course files (graders/helpers.py): restore it with git checkout -- "
            "graders/helpers.py and run python tools/check.py again.") in text, out
    assert progress(solved)["steps"]["s00_toolbox"]["framework_sha256"] != ""
    assert "s01_fake" not in progress(solved)["steps"]
    assert "Next:" not in text and "Course finished" not in text
    code, out = run_check(solved, "list")
    assert re.search(r"▶ s00_toolbox\s+current", out), out


def test_editing_conftest_makes_a_recorded_pass_stale(solved):
    conftest = solved / "conftest.py"
    conftest.write_text(conftest.read_text() + "\n# an edit after the pass\n")
    code, out = run_check(solved, "list")
    assert code == 0 and re.search(r"▶ s00_toolbox\s+current\s+-\s", out), out


@pytest.mark.parametrize("changed", ["graders/conftest.py", "tools/curriculum.toml"])
def test_a_new_grader_conftest_or_an_edited_manifest_is_a_modified_framework(solved, changed):
    """A new graders/conftest.py changes every verdict; the manifest holds the import
    allow-list. Either one, changed, keeps a pass from being recorded."""
    _git(solved, "init", "-q")
    _git(solved, "add", "-A")
    _git(solved, "commit", "-qm", "course")
    path = solved / changed
    path.write_text((path.read_text() if path.exists() else "") + "\n# a local change\n")
    shutil.copy2(solved / "solutions" / "s01_fake.py", solved / "exercises" / "s01_fake.py")
    code, out = run_check(solved, env=S00)
    assert code == 1, out
    assert (f"This pass is not recorded and s00 stays current, because it was graded under "
            f"modified course files ({changed})") in flat(out), out
    assert "s01_fake" not in progress(solved)["steps"]


@pytest.mark.parametrize("record", ["released", "other"])
def test_a_student_edition_records_a_pass_only_under_its_released_files(solved, record):
    """No git (a downloaded edition) or the edit committed: tools/release.json's digest of the
    trusted tree (tools/isolation.py) is what the files are compared with."""
    sys.path.insert(0, str(REPO))
    try:
        from tools.isolation import tree_digest
    finally:
        sys.path.remove(str(REPO))
    digest = tree_digest(solved) if record == "released" else "0" * 64
    (solved / "tools" / "release.json").write_text(json.dumps({"trusted_sha256": digest}))
    shutil.copy2(solved / "solutions" / "s01_fake.py", solved / "exercises" / "s01_fake.py")
    code, out = run_check(solved, env=S00)
    if record == "released":
        assert code == 0 and "Course finished" in out, out
        assert progress(solved)["steps"]["s01_fake"]["passed"] is True
        return
    assert code == 1, out
    assert ("This pass is not recorded and s01 stays current, because it was graded under "
            "modified course files ((files recorded in tools/release.json)): restore them "
            "from the course as you received it") in flat(out), out
    assert "s01_fake" not in progress(solved)["steps"]


INTEGRITY_CASES = {
    # id: (exercise source, the line it refuses, what it did, the rule)
    "refused-before-grading": (
        fake_exercise("return a * np.asarray(x, dtype=float)", header="N = eval('2')"),
        "N = eval('2')", "what s01 may import and call"),
    "refused-while-grading": (
        fake_exercise("open('graders/test_s01_fake.py').read()\n"
                      "return a * np.asarray(x, dtype=float)"),
        "open('graders/test_s01_fake.py').read()", "graded code may only compute its answers"),
}


@pytest.mark.parametrize("case", INTEGRITY_CASES)
def test_an_integrity_verdict_names_the_line_and_the_rule_and_scores_0(solved, case):
    source, line_text, rule = INTEGRITY_CASES[case]
    path = write_exercise(solved, "s01_fake", source)
    lineno = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if line_text in ln)
    code, out = run_check(solved)
    text = flat(out)
    assert code == 1, out
    assert (f"Integrity verdict (not a test failure): exercises/s01_fake.py, line {lineno} "
            "breaks a grading rule, so s01 scores 0 points whatever the tests say.") in text, out
    assert re.search(rf"exercises/s01_fake\.py, line {lineno}: +{re.escape(line_text)}", out)
    assert f"the rule: {rule}" in text, out
    assert "Score: 0 points (integrity verdict: 1 refusal)." in text, out
    assert "grading did not finish" not in text and "fail from one cause" not in text, out
    assert TRACEBACK not in out
    rec = progress(solved)["steps"]["s01_fake"]
    assert rec["passed"] is False and rec["points"] == 0


def test_a_call_that_should_raise_and_does_not_is_named(fresh):
    graders = fresh / "graders" / "test_s01_fake.py"
    graders.write_text(graders.read_text() + textwrap.dedent('''

        @pytest.mark.points(1)
        def test_normalize_refuses_a_sum_of_zero(impl):
            with pytest.raises(ZeroDivisionError):
                impl.normalize(np.array([1.0,
                                         -1.0]))
        '''))
    code, out = run_check(fresh, "s01", "--impl", "solutions")
    text = flat(out)
    assert code == 1, out
    assert ("`impl.normalize(np.array([1.0, -1.0]))` should have raised ZeroDivisionError, but "
            "it returned normally") in text, out
    assert "DID NOT RAISE" not in text, out

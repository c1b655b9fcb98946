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

MANIFEST = '''\
[[step]]
id = "s00_toolbox"
title = "Toolbox: seeds, splits, mini-batches and a leak-free scaler"
phase = 0
requires = []
budget = 60
hints = {s00_hints}

[[step]]
id = "s01_fake"
title = "Fake: scale and normalize"
phase = 1
requires = []
budget = 60
hints = ["First fake hint: multiply.", "Second fake hint: divide by the sum."]
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
    import tomllib

    s00 = next(s for s in tomllib.loads((REPO / "tools" / "curriculum.toml").read_text())["step"]
               if s["id"] == "s00_toolbox")
    (dest / "tools" / "curriculum.toml").write_text(
        MANIFEST.format(s00_hints=json.dumps(s00["hints"])) + extra_steps)
    (dest / "solutions" / "s01_fake.py").write_text(FAKE_SOLUTION)
    (dest / "graders" / "test_s01_fake.py").write_text(FAKE_PUBLIC)
    (dest / "graders" / "hidden" / "test_s01_fake.py").write_text(FAKE_HIDDEN)
    sys.path.insert(0, str(REPO))
    try:
        from tools.stubgen import make_stub
    finally:
        sys.path.remove(str(REPO))
    (dest / "exercises" / "s01_fake.py").write_text(make_stub(FAKE_SOLUTION, "s01_fake"))
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
    assert "hint 1/2: First fake hint: multiply." in text
    assert "compare with the reference solution: solutions/s00_toolbox.py" in text
    assert TRACEBACK not in out
    state = progress(course)
    rec = state["steps"]["s00_toolbox"]
    assert rec["passed"] is True and rec["points"] == rec["max_points"] > 0
    assert rec["exercise_sha256"] == hashlib.sha256(
        (course / "exercises" / "s00_toolbox.py").read_bytes()).hexdigest()
    assert state["hints_shown"]["s01_fake"] == 1  # the announced first hint counts as shown


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

    code, out = run_check(solved, "list")
    assert code == 0, out
    assert re.search(r"✓ s00_toolbox\s+done\s+(\d+)/\1\s+Toolbox", out), out
    assert re.search(r"▶ s01_fake\s+current\s+-\s+Fake", out), out
    assert "1 of 2 steps done. Current: s01_fake" in out


def test_hint_prints_the_hints_one_at_a_time_in_order(fresh):
    outs = [flat(run_check(fresh, "hint", "s01")[1]) for _ in range(3)]
    assert "Hint 1/2 for s01_fake: First fake hint: multiply." in outs[0]
    assert "Hint 2/2 for s01_fake: Second fake hint: divide by the sum." in outs[1]
    assert "That was the last hint" in outs[1]
    assert "All 2 hints for s01_fake have been shown" in outs[2]
    code, out = run_check(fresh, "hint", "s01", "--all")
    assert code == 0, out
    assert out.index("1. First fake hint") < out.index("2. Second fake hint")
    code, out = run_check(fresh, "hint")  # no step: the current one, s00
    assert code == 0 and "Hint 1/3 for s00_toolbox:" in out, out


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
    assert code == 0, out
    assert TRACEBACK not in out
    assert "✓ s00 · Toolbox" in out and "Next: s01 · Fake" in out
    assert progress(solved)["steps"]["s00_toolbox"]["passed"] is True


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

    def __init__(self, course: Path, env: dict[str, str] = FAST):
        self.proc = subprocess.Popen(
            [sys.executable, *CHECK, "watch"], cwd=course, env=child_env(env),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            encoding="utf-8", errors="replace")
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
        code = self.proc.wait(timeout=timeout)
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

"""A learner's walk through the real course: each step solved in turn unlocks the next.

A copy of the course as a learner clones it (every exercise an untouched stub) is walked from
s00 to the last step by copying in one solution at a time and running `python tools/check.py`,
exactly as a learner would after finishing a step. Every run must pass the step just solved
and announce the next one; a later step asked for early is refused as locked; the last pass
re-checks the whole course and declares it finished.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.course import ROOT, load_steps
from tools.release import source_files

STEPS = load_steps()


def _course_copy(dest: Path) -> Path:
    for rel in source_files():
        src = ROOT / rel
        if not rel.startswith(("tools/tests/", ".git")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _check(course: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ML2LLM_"))}
    env.update(NO_COLOR="1", COLUMNS="100", ML2LLM_WARM=os.environ.get("ML2LLM_WARM", "1"))
    proc = subprocess.run([sys.executable, "tools/check.py", *args], cwd=course, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


@pytest.mark.slow
@pytest.mark.skipif(any(s.missing_extras() for s in STEPS), reason="needs every extra (dev)")
def test_solving_each_step_unlocks_the_next_through_the_whole_course(tmp_path):
    course = _course_copy(tmp_path / "course")
    last = STEPS[-1]
    code, out = _check(course, last.id[:3])
    assert code != 0 and "is locked" in out and STEPS[0].id in out, out
    for i, step in enumerate(STEPS):
        shutil.copy2(course / "solutions" / step.solution.name,
                     course / "exercises" / step.solution.name)
        code, out = _check(course)
        assert code == 0, f"{step.id} solved, but check.py said:\n{out}"
        assert f"✓ {step.id[:3]}" in out or f"ok {step.id[:3]}" in out, out
        if i + 1 < len(STEPS):
            nxt = STEPS[i + 1]
            assert f"Next: {nxt.id[:3]} · {nxt.title}" in out, out
            assert f"exercises/{nxt.id}.py" in out, out
        else:
            assert "Course finished" in out, out

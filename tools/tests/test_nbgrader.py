"""The nbgrader course, for real: export, `nbgrader generate_assignment`, `nbgrader autograde`.

For a representative set of steps (NumPy, gradcheck, torch; a step whose solution has not
landed yet is skipped), the solution scores full marks, the untouched release scores 0, a mutant
(graders/mutants/<id>/) scores strictly between -- exactly what the pytest track gives it -- and
no hidden test reaches the released notebook.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.contract import apply_mutant
from tools.course import find_step
from tools.grading import run_step
from tools.nbgrader_export import (
    build_notebook,
    fill_notebook,
    module_segments,
    notebook_points,
    read_graders,
    write_course,
)
from tools.stubgen import make_stub, solution_regions

# A NumPy step, a gradcheck step (the first of these that has landed), a torch step.
STEPS = ["s00_toolbox", "s01_linear_regression|s11_mlp_backprop", "s24_attention"]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nbgrader") is None,
                                reason="nbgrader comes with the notebooks extra")


def _step_or_skip(choices: str):
    """The first step of `a|b|...` whose solution and graders exist (skip if none has)."""
    for step_id in choices.split("|"):
        step = find_step(step_id)
        if step.solution.exists() and step.public_graders.exists():
            break
    else:
        pytest.skip(f"{choices} has not landed yet (no solution or public graders)")
    if step.missing_extras():
        pytest.skip(f"{step_id} needs {', '.join(step.missing_extras())}")
    return step


def nbgrader(course: Path, *args: str, timeout: int = 600) -> str:
    """Run nbgrader from the course root AND with the root and database given explicitly:
    run from anywhere else, nbgrader silently grades an empty gradebook."""
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(course / ".jupyter-config"),
               PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}",
           f"--CourseDirectory.db_url=sqlite:///{course}/gradebook.db"]
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def _region_bodies(source: str) -> list[str]:
    lines = source.splitlines()
    return ["\n".join(ln.strip() for ln in lines[b + 1:e] if ln.strip())
            for b, e, _, _ in solution_regions(source)]


def _squash(text: str) -> str:
    return "\n".join(ln.strip() for ln in text.splitlines() if ln.strip())


# --- the notebook's structure (no nbgrader needed) ----------------------------------------

def test_source_notebook_structure():
    step = _step_or_skip("s00_toolbox")
    nb = build_notebook(step)
    cells = nb["cells"]
    meta = [c["metadata"].get("nbgrader", {}) for c in cells]
    solution = [c for c, m in zip(cells, meta, strict=True) if m.get("solution")]
    grade = [c for c, m in zip(cells, meta, strict=True) if m.get("grade")]
    locked = [c for c, m in zip(cells, meta, strict=True) if m.get("locked")]
    source = step.solution.read_text()
    # every marked region becomes nbgrader's markers in a solution cell, body intact
    text = "\n".join("".join(c["source"]) for c in solution)
    assert text.count("### BEGIN SOLUTION") == len(solution_regions(source))
    assert text.count("### END SOLUTION") == len(solution_regions(source))
    for body in _region_bodies(source):
        assert body in _squash(text)
    # given code is locked; nothing else in the notebook carries a solution marker
    assert locked and all("SOLUTION" not in "".join(c["source"]) for c in locked)
    # one grade cell per public and hidden test, with the graders' points
    _, public = read_graders(step.public_graders)
    _, hidden = read_graders(step.hidden_graders)
    assert len(grade) == len(public) + len(hidden)
    assert notebook_points(nb) == sum(t.points for t in public + hidden)
    hidden_cells = [c for c in grade if "hidden" in c["metadata"]["nbgrader"]["grade_id"]]
    assert len(hidden_cells) == len(hidden)
    for cell, t in zip(hidden_cells, hidden, strict=True):
        src = "".join(cell["source"])
        head, region = src.split("### BEGIN HIDDEN TESTS\n")
        assert t.name not in head and "### END HIDDEN TESTS" in region and t.name in region
    # the lab is there, served by the harness instead of tools.labkit
    lab = "".join("".join(c["source"]) for c in cells if c["id"].startswith("s00-lab-"))
    assert "from ml2llm_nbgrader import Run, load_step" in lab and "tools." not in lab


def test_fill_puts_a_module_into_the_solution_cells():
    step = _step_or_skip("s00_toolbox")
    nb = build_notebook(step)
    stub = make_stub(step.solution.read_text(), step.id)
    filled = fill_notebook(nb, stub)
    text = "\n".join("".join(c["source"]) for c in filled["cells"]
                     if c["metadata"].get("nbgrader", {}).get("solution"))
    assert "### BEGIN SOLUTION" not in text and 'raise NotImplementedError("s00 toolbox' in text
    _, segments = module_segments(stub)
    assert len([s for s in segments if s.kind == "given"]) >= 1  # a stub has no markers


@pytest.mark.slow
def test_source_notebook_runs_top_to_bottom_in_jupyter(tmp_path):
    """The instructor's source notebook is the solution: every test cell passes and the lab
    runs on the notebook's own functions (load_step / Run served by the harness)."""
    from tools.labs import execute

    step = _step_or_skip("s00_toolbox")
    write_course(tmp_path / "course", [step])
    nb = execute(tmp_path / "course" / "source" / step.id / f"{step.id}.ipynb",
                 results_dir=tmp_path / "results")
    outputs = {c.id: "".join(o.get("text", "") for o in c.outputs) for c in nb.cells
               if c.cell_type == "code"}
    errors = [c.id for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"cells failed: {errors}"
    tests = [i for i in outputs if i.startswith("s00-test_") or "-hidden-" in i]
    assert tests and all("passed" in outputs[i] for i in tests)
    assert list((tmp_path / "results" / step.id).glob("*/record.json")), "the lab ran no Run"


# --- the real thing -----------------------------------------------------------------------

def _scores(course: Path, assignment: str) -> dict[str, tuple[float, float, dict]]:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        for sub in gb.assignment_submissions(assignment):
            cells = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
            out[sub.student.id] = (float(sub.score), float(sub.max_score), cells)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("step_id", STEPS)
def test_nbgrader_generate_and_autograde(step_id, tmp_path):
    step = _step_or_skip(step_id)
    mutants = step.mutants()
    if not mutants:
        pytest.skip(f"{step_id} has no mutants yet")
    course = tmp_path / "course"
    t0 = time.monotonic()
    write_course(course, [step])
    nbgrader(course, "generate_assignment", step.id, "--force")
    release = course / "release" / step.id / f"{step.id}.ipynb"
    released = json.loads(release.read_text())
    released_text = release.read_text()

    # hidden tests never reach the release: no name, no body line, no helper of theirs
    _, hidden = read_graders(step.hidden_graders)
    assert "BEGIN HIDDEN TESTS" not in released_text
    for t in hidden:
        assert t.name not in released_text, f"hidden test {t.name} leaked into the release"
    # no solution region body survives in the release either (as whole lines of code)
    lines = _squash("\n".join("".join(c["source"]) for c in released["cells"])).splitlines()
    for body in _region_bodies(step.solution.read_text()):
        needle = body.splitlines()
        assert len(body) < 12 or not any(lines[i:i + len(needle)] == needle
                                         for i in range(len(lines))), (
            f"a solution region leaked into the release:\n{body}")
    stubs = ["".join(c["source"]) for c in released["cells"]
             if c["metadata"].get("nbgrader", {}).get("solution")]
    assert stubs and all("raise NotImplementedError()" in s for s in stubs)

    # three learners: the reference code, nothing written, a plausible mistake
    solution = step.solution.read_text()
    mutant_source, mutant_what = apply_mutant(solution, mutants[0])
    submissions = {"solution": fill_notebook(released, solution),
                   "untouched": released,
                   "mutant": fill_notebook(released, mutant_source)}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / step.id
        folder.mkdir(parents=True)
        (folder / release.name).write_text(json.dumps(nb))
        for extra in release.parent.rglob("*.py"):  # the files a learner fetched with it
            dest = folder / extra.relative_to(release.parent)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(extra, dest)
    # edited copies of the files beside the notebook must not matter: nbgrader restores them
    # from source/ (a broken harness would zero the solution; lenient helpers would let the
    # mutant through)
    (course / "submitted" / "solution" / step.id / "ml2llm_nbgrader.py").write_text(
        "raise SystemExit('tampered')\n")
    (course / "submitted" / "mutant" / step.id / "graders" / "helpers.py").write_text(
        "def __getattr__(name):\n    return lambda *args, **kwargs: None\n")
    t1 = time.monotonic()
    nbgrader(course, "autograde", step.id, "--force")
    t2 = time.monotonic()

    scores = _scores(course, step.id)
    assert set(scores) == set(submissions), f"the gradebook holds {sorted(scores)}"
    full = notebook_points(build_notebook(step))
    sol_score, max_score, sol_cells = scores["solution"]
    assert max_score == full
    assert sol_score == full, f"the solution scored {sol_score} / {full}: {sol_cells}"
    autograded = json.loads((course / "autograded" / "solution" / step.id
                             / release.name).read_text())
    lab_outputs = ["".join("".join(o.get("text", "")) for o in c["outputs"])
                   for c in autograded["cells"]
                   if c["id"].startswith(f"{step.id[:3]}-lab-") and c["cell_type"] == "code"]
    assert lab_outputs and all("skipped while autograding" in o for o in lab_outputs), (
        f"lab cells should be skipped while autograding: {lab_outputs[:2]}")
    hidden_ids = [g for g in sol_cells if "-hidden-" in g]
    assert len(hidden_ids) == len(hidden) and all(sol_cells[g] > 0 for g in hidden_ids), (
        "hidden tests were not restored and run at autograde")
    assert scores["untouched"][0] == 0, f"the untouched release scored {scores['untouched']}"
    mut_score = scores["mutant"][0]
    assert 0 < mut_score < full, f"mutant {mutants[0].stem} ({mutant_what}) scored {mut_score}"

    # the notebook track agrees with the pytest track, point for point
    mutant_file = tmp_path / "mutant" / f"{step.id}.py"
    mutant_file.parent.mkdir()
    mutant_file.write_text(mutant_source)
    graded = run_step(step, str(mutant_file))
    assert graded.max_points == full
    expected = sum(t.points for t in graded.tests if t.outcome in ("passed", "skipped"))
    assert mut_score == expected, (
        f"nbgrader gave the mutant {mut_score}, pytest {expected}: "
        + ", ".join(f"{t.name}={t.outcome}" for t in graded.tests))
    print(f"{step.id}: export+generate {t1 - t0:.1f}s, autograde x3 {t2 - t1:.1f}s; "
          f"solution {sol_score:g}/{full:g}, untouched 0, mutant {mut_score:g}")

"""Every lab notebook runs headless, top to bottom, on the reference solutions."""

import importlib.util

import pytest

from tools.course import load_steps
from tools.labs import execute

STEPS = load_steps()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nbclient") is None, reason="notebooks extra")
@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_lab_runs_on_the_solution(step, tmp_path):
    if step.missing_extras():
        pytest.skip(f"{step.id} needs {', '.join(step.missing_extras())}")
    nb = execute(step.lab, impl="solutions", results_dir=tmp_path)
    records = list(tmp_path.glob(f"{step.id}/*/record.json"))
    assert records, "the lab must record its run with tools.labkit.Run(...).finish(...)"
    figures = list(tmp_path.glob(f"{step.id}/*/*.png"))
    assert figures, "the lab must draw and record at least one figure"
    assert any(c.cell_type == "code" for c in nb.cells)

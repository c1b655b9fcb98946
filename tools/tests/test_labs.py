"""Every lab notebook runs headless, top to bottom, on the reference solutions."""

import importlib.util
import json

import pytest

from tools.course import ROOT, find_step, load_steps
from tools.labs import LabError, execute, notebook_text

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


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nbclient") is None, reason="notebooks extra")
def test_a_failing_lab_names_the_learners_error_first_and_records_no_run(tmp_path):
    course = tmp_path / "course"
    (course / "exercises").mkdir(parents=True)
    (course / "exercises" / "s98_demo.py").write_text(
        "def fit(X):\n    return X.shape[1] / 0\n")
    cells = [
        ("code", f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nsys.path.insert(0, "
                 f"{str(course / 'exercises')!r})\nfrom tools.labkit import Run\n"
                 "import numpy as np\nimport matplotlib.pyplot as plt\nimport s98_demo"),
        ("code", "run = Run('s00', config={}, seed=0)\nfig = plt.figure()\n"
                 "run.figure(fig, 'before_the_error')"),
        ("code", "# the learner's mistake is in their module\ns98_demo.fit(np.zeros((2, 3)))"),
        ("code", "run.finish('never reached')"),
    ]
    nb = json.loads(notebook_text("", find_step("s00")))
    nb["cells"] = [{"cell_type": k, "id": f"c{i}", "metadata": {}, "execution_count": None,
                    "outputs": [], "source": t} for i, (k, t) in enumerate(cells)]
    path = course / "exercises" / "s98_demo.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(LabError) as caught:
        execute(path, impl="exercises", results_dir=tmp_path / "results")
    message = str(caught.value)
    assert message.startswith("The lab s98_demo.ipynb stopped at code cell 3 (it starts "
                              "`s98_demo.fit(np.zeros((2, 3)))`) with ZeroDivisionError: "
                              "division by zero."), message
    assert "The last line of your code it ran: exercises/s98_demo.py, line 2, in fit." in message
    assert message.index("division by zero") < message.index("Details")
    runs = tmp_path / "results" / "s00_toolbox"
    assert not runs.exists() or list(runs.glob("*")) == [], list(runs.glob("*"))


def test_the_ridge_path_names_each_of_its_lines():
    """s01's ridge coefficient path draws one line per diabetes feature: each is labelled and
    the panel has a legend (it once showed 10 unnamed lines). The lab itself runs in
    test_lab_runs_on_the_solution[s01_linear_regression]."""
    source = (ROOT / "solutions" / "labs" / "s01_linear_regression.py").read_text()
    cell = next(c for c in source.split("# %%") if '"ridge_path"' in c)
    assert "load_diabetes().feature_names" in cell and "label=name" in cell, cell
    assert "a1.legend(" in cell, cell

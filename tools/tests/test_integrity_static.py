"""The static check of a learner's file (tools/allowlist.py): oracles and reaching-in refused
with the line and the reason; every solution, stub and mutant of the course accepted."""

from __future__ import annotations

import textwrap

import pytest

from tools import allowlist
from tools.contract import apply_mutant
from tools.course import find_step, load_steps
from tools.grading import run_step
from tools.stubgen import make_stub

STEPS = load_steps()


def problems(step_id: str, source: str, tmp_path) -> list[str]:
    step = find_step(step_id)
    path = tmp_path / f"{step.id}.py"
    path.write_text(textwrap.dedent(source))
    return allowlist.problems(step, path)


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.id)
def test_honest_code_never_trips_it(step, tmp_path):
    """The solution, its stub and every mutant (plausible wrong answers) pass the check."""
    solution = step.solution.read_text()
    sources = {"solution": solution, "stub": make_stub(solution, step.id)}
    for mutant in step.mutants():
        sources[mutant.stem] = apply_mutant(solution, mutant)[0]
    for name, source in sources.items():
        path = tmp_path / name / f"{step.id}.py"
        path.parent.mkdir()
        path.write_text(source)
        assert allowlist.problems(step, path) == [], name


ORACLES = {
    # (step, source, words the refusal must contain)
    "sdpa": ("s24", "import torch.nn.functional as F\n\ndef f(q, k, v):\n"
                    "    return F.scaled_dot_product_attention(q, k, v)\n",
             "line 4: `torch.nn.functional.scaled_dot_product_attention`: s24 rebuilds attention"),
    "sdpa_from_import": ("s24", "from torch.nn.functional import scaled_dot_product_attention "
                                "as attend\n", "line 1: `torch.nn.functional.scaled_dot"),
    "sdpa_alias": ("s24", "import torch\nfn = torch.nn.functional\n"
                          "out = fn.scaled_dot_product_attention\n",
                   "line 3: `torch.nn.functional.scaled_dot_product_attention`"),
    "sdpa_through_an_object": ("s24", "def f(lib):\n    return lib.scaled_dot_product_attention\n",
                               "line 2: `torch.nn.functional.scaled_dot_product_attention`"),
    "multihead": ("s24", "from torch import nn\nlayer = nn.MultiheadAttention(8, 2)\n",
                  "line 2: `torch.nn.MultiheadAttention`: s24 rebuilds attention"),
    "aten": ("s24", "import torch\nop = torch.ops.aten\n", "line 2: `torch.ops"),
    "sklearn": ("s01", "from sklearn.linear_model import Ridge\n",
                "line 1: `sklearn.linear_model.Ridge`: scikit-learn is the reference"),
    "sklearn_anywhere": ("s24", "def f():\n    import sklearn\n", "line 2: `sklearn`"),
    "optim": ("s13", "import torch.optim\n", "line 1: `torch.optim`: s13 rebuilds the optimizers"),
    "conv2d": ("s15", "from torch.nn.functional import conv2d\n", "s15 rebuilds convolution"),
    "layernorm": ("s14", "import torch.nn as nn\n", "s14 rebuilds dropout"),
    "autograd": ("s12", "import torch\n", "s12 rebuilds autograd"),
    "torch_in_numpy_step": ("s11", "import torch\n",
                            "line 1: `import torch` is not allowed in s11"),
    "scipy": ("s02", "from scipy.special import expit\n",
              "`import scipy.special` is not allowed in s02"),
    # Phase 3: the NumPy steps may not use torch, the torch steps not torch's own layers
    "torch_in_text_basics": ("s17", "import torch\n", "line 1: `torch`: this step is written "
                                                       "with NumPy"),
    "torch_in_numpy_rnn": ("s21", "from torch import nn\n", "this step is written with NumPy"),
    "lstm_layer": ("s22", "from torch import nn\nlayer = nn.LSTM(4, 8)\n",
                   "line 2: `torch.nn.LSTM`: s22 rebuilds the LSTM"),
    "gru_cell_in_s22": ("s22", "import torch\ncell = torch.nn.GRUCell(4, 8)\n",
                        "line 2: `torch.nn.GRUCell`: s22 rebuilds the GRU"),
    "gru_layer_in_s23": ("s23", "from torch import nn\nencoder = nn.GRU(4, 8)\n",
                         "line 2: `torch.nn.GRU`: s23 writes the encoder's loop"),
    "attention_in_s23": ("s23", "import torch.nn.functional as F\n"
                                "out = F.scaled_dot_product_attention\n",
                         "line 2: `torch.nn.functional.scaled_dot_product_attention`: s23 "
                         "rebuilds attention"),
    "multihead_in_s23": ("s23", "from torch import nn\nlayer = nn.MultiheadAttention(8, 2)\n",
                         "s23 rebuilds attention"),
}
REACHING_IN = {
    "import_sys": ("import sys\n", "`import sys` is not allowed"),
    "import_gc_outside_s12": ("import gc\n", "`import gc` is not allowed"),
    "relative_import": ("from . import helpers\n", "relative import"),
    "eval": ("x = eval('1')\n", "line 1: `eval`"),
    "dunder_import": ("m = __import__('os')\n", "`__import__`"),
    "globals": ("def f(g):\n    return g.__globals__\n", "line 2: `.__globals__`"),
    "subclasses": ("x = ().__class__.__base__.__subclasses__()\n", "`.__subclasses__`"),
    "frames": ("def f(tb):\n    return tb.tb_frame.f_back\n", "`.f_back`"),
    "sys_modules_through_numpy": ("import numpy as np\nm = np.sys\n", "line 2: `numpy.sys`"),
    "private_module": ("import numpy as np\nm = np._core\n", "`numpy._core` reaches"),
    "computed_getattr": ("import numpy as np\nf = getattr(np, 'sy' + 's')\n",
                         "`getattr` with a computed name"),
    "getattr_banned": ("def f(x):\n    return getattr(x, '__dict__')\n", "'__dict__'"),
    "modules_attribute": ("def f(m):\n    return m.modules\n", "line 2: `.modules`"),
    "modules_subscript": ("def f(m):\n    return m.modules['numpy']\n", "`.modules`"),
    "modules_called_with_arguments": ("def f(m):\n    return m.modules(1)\n", "`.modules`"),
}


@pytest.mark.parametrize("case", ORACLES)
def test_the_steps_oracle_is_refused_with_its_reason(case, tmp_path):
    step_id, source, words = ORACLES[case]
    found = problems(step_id, source, tmp_path)
    assert any(words in p for p in found), found


@pytest.mark.parametrize("case", REACHING_IN)
def test_reaching_into_other_code_is_refused(case, tmp_path):
    source, words = REACHING_IN[case]
    found = problems("s01", source, tmp_path)
    assert any(words in p for p in found), found


def test_setattr_with_a_computed_name_is_fine_on_self(tmp_path):
    source = ("class A:\n    def f(self, name):\n        setattr(self, name, 1)\n"
              "        return getattr(self, name)\n")
    assert problems("s06", source, tmp_path) == []


def test_torchs_submodule_iterator_is_fine(tmp_path):
    # `model.modules()` walks an nn.Module's layers; only `sys.modules`-style access (an
    # attribute read, never a call without arguments) is refused.
    source = ("import torch\n\ndef count(model):\n"
              "    return sum(1 for m in model.modules() if isinstance(m, torch.nn.Linear))\n")
    assert problems("s16", source, tmp_path) == []


def test_a_refused_file_scores_nothing_and_never_runs(tmp_path):
    step = find_step("s24")
    solved = step.solution.read_text().replace(
        "import torch\n",
        "import torch\nfrom torch.nn.functional import scaled_dot_product_attention\n", 1)
    path = tmp_path / f"{step.id}.py"
    path.write_text(solved)
    run = run_step(step, str(path))
    assert run.points == 0 and not run.passed and run.pid is None  # no grading process
    assert run.crash.startswith("Integrity: ")
    assert "s24 rebuilds attention: using torch's own attention as the answer is not allowed" \
        in run.crash


def test_a_manifest_without_imports_checks_names_only(tmp_path):
    manifest = tmp_path / "curriculum.toml"
    manifest.write_text("")
    rules = allowlist.rules_for(find_step("s01"), manifest)
    path = tmp_path / "m.py"
    path.write_text("import os\nx = eval('1')\n")
    found = allowlist.problems(find_step("s01"), path, rules)
    assert len(found) == 1 and "`eval`" in found[0]

"""Shared pytest set-up for the graders (graders/) and the project's own tests (tools/tests/).

- ``--impl=exercises|solutions|PATH`` picks what the graders grade (default: the learner's
  exercises/); the ``impl`` fixture loads it for the step named by the test file.
- markers: ``points(n)``, ``hidden`` (set for graders/hidden/), ``step(id)`` (from the file name).
- every test starts from the same seeds; BLAS/torch run on one thread, so results do not
  depend on the machine and two grading processes can share a 2-core machine.
"""

from __future__ import annotations

import os
import random
import sys
import zlib
from pathlib import Path

# Before NumPy / torch are imported by any test module: one thread each.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tools.course import ROOT, find_step  # noqa: E402
from tools.loader import BlockSolutions, ImplementationError, load_implementation  # noqa: E402

pytest_plugins = ["tools.pytest_report"]

try:  # hypothesis' "explain" phase re-runs a failing property many times: slow, and a
    # learner only needs the shrunk counterexample, so graders use the other phases.
    from hypothesis import Phase
    from hypothesis import settings as hypothesis_settings

    hypothesis_settings.register_profile(
        "ml2llm", phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        database=None, derandomize=True)  # the same examples on every run: a fair grade
    hypothesis_settings.load_profile("ml2llm")
except ImportError:  # hypothesis is a core dependency; tolerate its absence all the same
    pass
GRADERS = ROOT / "graders"


def pytest_addoption(parser):
    parser.addoption("--impl", default="exercises",
                     help="what to grade: exercises (default), solutions, or a path to a module")


def pytest_configure(config):
    if config.getoption("--impl") != "solutions":
        sys.meta_path.insert(0, BlockSolutions())


def _step_id(path: Path) -> str | None:
    if path.is_relative_to(GRADERS) and path.name.startswith("test_s"):
        return path.stem.removeprefix("test_")
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        step_id = _step_id(Path(item.fspath))
        if step_id is None:
            continue
        item.add_marker(pytest.mark.step(step_id))
        if Path(item.fspath).parent.name == "hidden":
            item.add_marker(pytest.mark.hidden)


@pytest.fixture(scope="module")
def impl(request):
    """The module under grading for this test file's step."""
    step_id = _step_id(Path(request.module.__file__))
    if step_id is None:
        raise RuntimeError("the impl fixture is for graders/test_<step>.py files")
    try:
        return load_implementation(find_step(step_id), request.config.getoption("--impl"))
    except ImplementationError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(1)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A NumPy Generator seeded from the test's name: stable across runs and machines."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))

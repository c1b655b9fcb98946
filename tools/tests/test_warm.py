"""The warm grading server (tools/warm.py) must grade exactly as a cold process does.

Each case grades s00 once warm and once cold (ML2LLM_WARM=0) and compares what a learner
would be told: the same tests, outcomes and points, and the same plain-words account of a
process that died.
"""

from __future__ import annotations

import sys

import pytest

from tools import warm
from tools.course import find_step
from tools.grading import child_env, run_step

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the warm server is Linux only")

BEHAVIOURS = {
    "abort": ("import os\nos.abort()\n", "SIGABRT"),
    "segfault": ("import ctypes\nctypes.string_at(0)\n", "SIGSEGV"),
    "os_exit": ("import os\nos._exit(3)\n", "exit code 3"),
    "sys_exit": ("import sys\nsys.exit(0)\n", None),
}


def grade(impl: str, warm_on: bool, monkeypatch, **kwargs):
    monkeypatch.setenv("ML2LLM_WARM", "1" if warm_on else "0")
    return run_step(find_step("s00_toolbox"), impl, **kwargs)


def outcomes(run):
    return sorted((t.nodeid, t.outcome, t.exc_type, t.points) for t in run.tests)


def test_warm_and_cold_agree_on_the_solution_and_the_stub(monkeypatch, tmp_path):
    from tools.stubgen import make_stub

    step = find_step("s00_toolbox")
    stub = tmp_path / "s00_toolbox.py"
    stub.write_text(make_stub(step.solution.read_text(), step.id))
    for impl in ("solutions", str(stub)):
        hot, cold = grade(impl, True, monkeypatch), grade(impl, False, monkeypatch)
        assert outcomes(hot) == outcomes(cold) and outcomes(hot)
        assert hot.passed == cold.passed == (impl == "solutions")


def test_the_server_is_reused(monkeypatch):
    grade("solutions", True, monkeypatch, files=[find_step("s00").public_graders])
    sockets = set(warm.socket_dir().glob("warm-*.sock"))
    assert warm.is_running(child_env())  # a probe that sends nothing leaves the server serving
    grade("solutions", True, monkeypatch, files=[find_step("s00").public_graders])
    assert set(warm.socket_dir().glob("warm-*.sock")) == sockets and sockets
    monkeypatch.setenv("ML2LLM_WARM", "0")
    assert not warm.is_running(child_env())


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_a_dying_learner_module_is_explained_the_same_way(behaviour, monkeypatch, tmp_path):
    source, words = BEHAVIOURS[behaviour]
    module = tmp_path / "s00_toolbox.py"
    module.write_text(source)
    hot, cold = grade(str(module), True, monkeypatch), grade(str(module), False, monkeypatch)
    assert not hot.passed and not cold.passed
    assert (hot.crash is None) == (cold.crash is None)
    assert hot.returncode == cold.returncode, (hot.returncode, cold.returncode)
    if words:
        assert words in hot.crash and words in cold.crash, (hot.crash, cold.crash)
    assert outcomes(hot) == outcomes(cold)


def test_an_endless_loop_is_stopped_in_both_modes(monkeypatch, tmp_path):
    module = tmp_path / "s00_toolbox.py"
    module.write_text("while True:\n    pass\n")
    for warm_on, budget in ((True, 4), (False, 15)):  # cold: the imports alone take seconds
        run = grade(str(module), warm_on, monkeypatch, budget=budget)
        assert run.timed_out and f"stopped after {budget} s" in run.crash, run.crash
        assert run.crash_where and run.crash_where.startswith(str(module.name) + ":") \
            and run.crash_where.endswith("in <module>"), run.crash_where  # line 1 or 2


def test_the_memory_cap_holds_in_the_warm_child(monkeypatch, tmp_path):
    module = tmp_path / "s00_toolbox.py"
    module.write_text("import numpy as np\nblock = np.ones(2**31)\n")  # 16 GiB
    monkeypatch.setenv("ML2LLM_MEMORY_CAP_GB", "3")
    run = grade(str(module), True, monkeypatch)
    assert not run.passed
    assert any(t.exc_type == "MemoryError" or "memory" in (t.message or "").lower()
               for t in run.tests) or "memory" in (run.crash or ""), (run.crash, run.tests)

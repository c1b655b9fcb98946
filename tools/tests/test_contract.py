"""The grading contract for every step in the manifest: stub fails, solution passes, mutants die."""

import pytest

from tools.contract import check_step
from tools.course import load_steps

STEPS = load_steps()


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_grading_contract(step):
    if step.missing_extras():
        pytest.skip(f"{step.id} needs {', '.join(step.missing_extras())}")
    result = check_step(step, jobs=1)
    broken = [f"{v.check}: {v.detail}" for v in result.verdicts if not v.ok]
    assert not broken, f"{step.id} breaks the grading contract:\n" + "\n".join(broken)


def test_a_rejected_alternative_is_reported():
    from tools.contract import _judge_alternative
    from tools.course import find_step
    from tools.grading import StepRun, TestResult

    run = StepRun(step=find_step("s00"), impl="alt", finished=True, exitstatus=1,
                  tests=[TestResult("g::test_a", "passed"),
                         TestResult("g::test_b", "failed", exc_type="AssertionError",
                                    message="sizes differ")])
    ok, detail = _judge_alternative(run)
    assert not ok and detail.startswith("REJECTED, though it is correct") and "test_b" in detail

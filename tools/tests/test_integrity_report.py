"""The parent's side of the report: the channel's stamp, the trusted expectations, and what a
failure message may carry. Fast unit tests; the end-to-end attacks are in
test_integrity_attacks.py."""

from __future__ import annotations

import json

import pytest
from _pytest._code import ExceptionInfo

from tools import expected, grading
from tools.course import find_step
from tools.grading import Channel, StepRun
from tools.grading import TestResult as Result
from tools.pytest_report import describe
from tools.tests.points import step_points

STEP = find_step("s00_toolbox")


def send(channel: Channel, *records: dict, nonce: str | None = None, start: int = 0) -> None:
    lines = [json.dumps({"seq": start + i, "nonce": nonce or channel.nonce, **r})
             for i, r in enumerate(records)]
    channel.child_end.sendall(("\n".join(lines) + "\n").encode())
    while channel.read():
        pass


def graded(channel: Channel, trusted=None, stop_early: bool = False) -> StepRun:
    run = StepRun(step=STEP, impl="exercises")
    grading._apply_records(run, channel)
    grading._apply_expectations(run, trusted, stop_early)
    return run


def result(nodeid: str, outcome: str = "passed", points: float = 1.0) -> dict:
    return {"event": "result", "nodeid": nodeid, "outcome": outcome, "points": points,
            "hidden": False}


TRUSTED = {"g::a": expected.Expected(2.0, False), "g::b": expected.Expected(3.0, True)}
FINISH = {"event": "finish", "exitstatus": 0}


@pytest.fixture
def channel():
    ch = Channel()
    ch.child_end.recv(64)  # the nonce, as the reporter reads it
    yield ch
    ch.close()


def test_a_stamped_report_is_read_and_points_come_from_the_trusted_collection(channel):
    send(channel, result("g::a", points=99), result("g::b", points=99), FINISH)
    run = graded(channel, TRUSTED)
    assert run.passed and run.crash is None
    assert run.points == run.max_points == 5.0  # not the 99 the child claimed
    assert [t.hidden for t in run.tests] == [False, True]


def test_a_record_without_the_nonce_is_an_integrity_verdict(channel):
    send(channel, result("g::a"), result("g::b"), FINISH, nonce="0" * 32)
    run = graded(channel, TRUSTED)
    assert not run.passed and run.points == 0 and "report channel" in run.crash


def test_a_record_out_of_sequence_is_an_integrity_verdict(channel):
    send(channel, result("g::a"))
    send(channel, result("g::b"), FINISH, start=5)
    assert "report channel" in graded(channel, TRUSTED).crash


def test_a_record_after_the_finish_is_an_integrity_verdict(channel):
    send(channel, result("g::a"), result("g::b"), FINISH, result("g::a"))
    assert "report channel" in graded(channel, TRUSTED).crash


@pytest.mark.parametrize("records,words", [
    ([result("g::a"), FINISH], "1 of its 2 tests were never reported"),
    ([result("g::a"), result("g::a"), result("g::b"), FINISH], "reported twice"),
    ([result("g::a"), result("g::b"), result("g::c"), FINISH], "the graders do not have (c)"),
    ([result("g::a"), result("g::b"), {"event": "finish", "exitstatus": 3}], "status 3"),
    ([result("g::a"), result("g::b"), {"event": "finish", "exitstatus": 5}], "status 5"),
], ids=["missing", "duplicated", "unknown", "internal-error", "no-tests"])
def test_a_report_that_does_not_match_the_expectations_is_interrupted(channel, records, words):
    send(channel, *records)
    run = graded(channel, TRUSTED)
    assert not run.passed and "was interrupted" in run.crash and words in run.crash, run.crash
    assert run.max_points == 5.0


def test_tests_left_out_by_an_early_stop_are_not_run_not_interrupted(channel):
    send(channel, result("g::a", "failed"), {"event": "finish", "exitstatus": 1})
    run = graded(channel, TRUSTED, stop_early=True)
    assert run.interrupted is None and not run.passed
    assert [t.outcome for t in run.tests] == ["failed", "not run"]


def test_a_skipped_test_keeps_its_points_in_the_maximum_and_names_the_extra(channel):
    skipped = dict(result("g::b", "skipped"), message="mlx is not installed")
    send(channel, result("g::a"), skipped, FINISH)
    run = graded(channel, TRUSTED)
    assert run.passed and run.points == 2.0 and run.max_points == 5.0
    assert run.missing_extras == ["mlx"]
    assert run.unavailable == "3 points of 1 skipped test needs mlx, not installed here"


def test_the_trusted_collection_loads_no_learner_code_and_is_cached(monkeypatch):
    files = STEP.grader_files()
    args = (grading.child_env(), grading.plugin_args(), grading.memory_cap_bytes())
    found = expected.collect(files, *args)  # --impl points at no file: nothing to load
    assert found and all(nodeid.startswith("graders/") for nodeid in found)
    assert sum(e.points for e in found.values()) == step_points(STEP.id)
    assert any(e.hidden for e in found.values())
    monkeypatch.setattr(expected, "_collect", lambda *a: pytest.fail("collected again"))
    assert expected.collect(files, *args) == found


def test_a_hypothesis_group_reads_as_its_first_failing_input():
    first = AssertionError("expected 3 rows, got 2")
    first.add_note("Falsifying example: test_split(\n    impl=...,\n    n=7,\n)")
    group = ExceptionGroup("Hypothesis found 3 distinct failures.",
                           [first, ValueError("b"), KeyError("c")])
    try:
        raise group
    except ExceptionGroup:
        info = ExceptionInfo.from_current()
    shown = describe(info)
    assert shown["exc_type"] == "AssertionError"
    assert shown["message"].startswith("expected 3 rows, got 2")
    assert "the first input that fails: test_split(impl=..., n=7)" in shown["message"]
    assert "3 different inputs fail" in shown["message"]
    assert "ExceptionGroup" not in shown["message"] and "sub-exception" not in shown["message"]


def test_missing_extra_is_read_from_the_skip_reason():
    assert Result("x", "skipped", message="could not import 'torch': No module named "
                                              "'torch'").missing_extra == "torch"
    assert Result("x", "skipped", message="mlx is not installed").missing_extra == "mlx"
    assert Result("x", "failed", message="mlx is not installed").missing_extra is None

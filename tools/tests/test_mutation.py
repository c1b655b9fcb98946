"""Automated mutation testing (tools/mutation.py): the machinery, and every step's report.

The report check is what the README's test command runs: every step's
graders/mutation/<id>.toml is current for today's solution and graders, explains every
survivor, kills >= 95 % of the non-equivalent mutants, and a seeded sample of the mutants it
says were killed is graded again and must still be killed.
"""

import pytest

from tools import mutation
from tools.course import find_step, load_steps

# Steps whose report has not landed yet. Each helper deletes its own line once its reports
# are committed; the lines are kept apart so that two deletions merge without a conflict.
PENDING: set[str] = set({  # set(): with every line gone, {} would be a dict
    # s00-s04 (graders-a): none left
    # -
    # s05-s10 (graders-b)
    # -
    # s11-s16, s24 (graders-c): none left
    # -
    # s30: none left
    # s31: none left
    # -
})

STEPS = load_steps()
CHECKED = [s for s in STEPS if s.id not in PENDING]


def test_pending_names_real_steps():
    unknown = PENDING - {s.id for s in STEPS}
    assert not unknown, f"PENDING names steps the manifest does not have: {sorted(unknown)}"


@pytest.mark.slow
@pytest.mark.skipif(not CHECKED, reason="no step has a mutation report yet")
def test_mutation_reports_hold():
    problems = mutation.check(CHECKED)
    assert not problems, "mutation reports:\n" + "\n".join(problems)


SOURCE = '''\
def f(x):
    y = x + 1
    # BEGIN SOLUTION: compute
    z = x * 2
    if z > 3:
        return z - 1
    # END SOLUTION
    return y + 2
'''


def test_only_solution_regions_are_mutated():
    mutants = mutation.enumerate_mutants(SOURCE)
    assert mutants and {m.line for m in mutants} <= {4, 5, 6}
    assert any(m.operator.endswith("Mul_Add") for m in mutants)
    assert not any(m.operator.endswith("_BitXor") for m in mutants), "bitwise swaps are left out"


def test_mutant_ids_survive_edits_elsewhere():
    before = {m.id for m in mutation.enumerate_mutants(SOURCE)}
    moved = "import math\n\n\n" + SOURCE.replace("return y + 2", "return y + 2 + math.pi")
    after = {m.id for m in mutation.enumerate_mutants(moved)}
    assert before == after, "ids must not depend on line numbers or on code outside regions"
    assert len(before) == len(mutation.enumerate_mutants(SOURCE)), "ids must be unique"


def test_mutate_builds_one_edit():
    m = next(m for m in mutation.enumerate_mutants(SOURCE) if m.operator.endswith("Gt_GtE"))
    mutated = mutation.mutate(SOURCE, m)
    assert mutated == SOURCE.replace("z > 3", "z >= 3")
    assert mutation.diff_line(SOURCE, mutated) == "- if z > 3:\n+ if z >= 3:"


def test_report_round_trips_and_judges(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "REPORTS", tmp_path)
    step = find_step("s00")
    survivors = [{"id": "A #0 | x", "diff": "- x\n+ y", "equivalent": "no input differs"},
                 {"id": "B #0 | \"q\"", "diff": "- q\n+ r"}]
    report = mutation.build_report(step, [f"id{i}" for i in range(40)] + ["bad"], ["bad"],
                                   survivors)
    mutation.write_report(step, report)
    loaded = mutation.load_report(step)
    assert loaded["summary"] == {"generated": 40, "killed": 38, "equivalent": 1,
                                 "not_killed": 0, "unexplained": 1, "kill_rate": 0.9744}
    assert loaded["survivor"] == survivors and loaded["not_valid"] == ["bad"]
    problems = mutation.report_problems(step, loaded)
    assert len(problems) == 1 and "without a test that kills them" in problems[0]
    loaded["survivor"][1]["not_killed"] = "left on purpose"
    loaded["summary"]["kill_rate"] = 0.9
    assert any("below 95%" in p for p in mutation.report_problems(step, loaded))
    loaded["hashes"]["solution_code"] = "0" * 64
    assert any("stale (solution_code changed" in p
               for p in mutation.report_problems(step, loaded))
    assert "no mutation report" in mutation.report_problems(step, None)[0]


def test_a_reworded_docstring_keeps_the_report_and_a_code_change_stales_it(tmp_path):
    source = (tmp_path / "before.py")
    source.write_text('"""Module."""\n\ndef f(x):\n    """Twice x."""\n    return 2 * x  # why\n')
    reworded = tmp_path / "reworded.py"
    reworded.write_text('"""A module, said\nat length."""\n\ndef f(x):\n    """Doubles."""\n'
                        '    # a new comment\n    return 2 * x\n')
    changed = tmp_path / "changed.py"
    changed.write_text('"""Module."""\n\ndef f(x):\n    """Twice x."""\n    return x + x\n')
    assert mutation.code_sha256(source) == mutation.code_sha256(reworded)
    assert mutation.code_sha256(source) != mutation.code_sha256(changed)


def test_a_report_from_before_code_hashing_is_checked_on_the_whole_file():
    step = find_step("s00")
    recorded = {"solution": mutation.sha256(step.solution),
                "public_graders": mutation.sha256(step.public_graders),
                "hidden_graders": mutation.sha256(step.hidden_graders)}
    assert mutation.stale_hashes(step, recorded) == []
    assert mutation.stale_hashes(step, {**recorded, "solution": "0" * 64}) == ["solution"]


def test_explain_keeps_a_reason_and_recounts(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "REPORTS", tmp_path)
    step = find_step("s00")
    survivors = [{"id": "A #0 | x < n", "diff": "- x < n\n+ x != n"}]
    mutation.write_report(step, mutation.build_report(step, ["a", "b", "A"], [], survivors))
    mutation.explain(step, "x < n", "equivalent", "x never exceeds n")
    report = mutation.load_report(step)
    assert report["survivor"][0]["equivalent"] == "x never exceeds n"
    assert report["summary"]["unexplained"] == 0 and report["summary"]["kill_rate"] == 1.0

"""The student edition: no solutions in it, and the learner's loop works there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tools import isolation
from tools.ci_grade import graders_digest
from tools.course import find_step, load_steps
from tools.release import ReleaseError, build, find_leaks, region_bodies, releasable
from tools.stubgen import make_stub

READY, _ = releasable(load_steps())


def _env() -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run(cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The edition of every step that has a solution and graders, and its hidden bundle."""
    out = tmp_path_factory.mktemp("edition") / "ml-to-llm"
    hidden = tmp_path_factory.mktemp("hidden")
    record = build(out, READY, hidden_out=hidden)
    return out, record, hidden


def _small(tmp_path: Path, *ids: str) -> Path:
    out = tmp_path / "small"
    build(out, [find_step(i) for i in ids])
    return out


def test_edition_holds_no_solutions(edition):
    out, record, _ = edition
    for rel in ("solutions", "graders/hidden", "graders/mutants", "tools/tests",
                "tools/contract.py", "tools/nbgrader_export.py", "tools/release.py"):
        assert not (out / rel).exists(), f"{rel} must not be in the student edition"
    assert find_leaks(out) == []
    for step in READY:
        stub = make_stub(step.solution.read_text(), step.id)
        assert (out / "exercises" / f"{step.id}.py").read_text() == stub
        assert (out / "tools" / "pristine" / f"{step.id}.py").read_text() == stub
        assert (out / "graders" / f"test_{step.id}.py").exists()
    # no `solutions` package resolves from the edition, as a module or through pytest's rootdir
    probe = run(out, "-c", "import importlib.util as u; print(u.find_spec('solutions'))")
    assert probe.stdout.strip() == "None", probe.stdout + probe.stderr
    probe = run(out, "-c", "import solutions.s00_toolbox")
    assert "ModuleNotFoundError" in probe.stderr


def test_leak_scan_is_not_vacuous(tmp_path):
    """Plant each kind of leak in a fresh edition: the scan reports every one."""
    out = _small(tmp_path, "s00_toolbox")
    step = find_step("s00_toolbox")
    assert find_leaks(out) == []
    shutil.copy2(step.solution, out / "exercises" / "s00_toolbox.py")
    body = next(b for b in region_bodies(step.solution.read_text()) if "\n" in b)
    with open(out / "README.md", "a") as f:
        f.write("\n```python\n" + body + "\n```\n")
    (out / "graders" / "hidden").mkdir()
    shutil.copy2(step.hidden_graders, out / "graders" / "hidden" / step.hidden_graders.name)
    leaks = "\n".join(find_leaks(out))
    assert "exercises/s00_toolbox.py holds its own solution" in leaks
    assert "README.md holds a solution region of s00_toolbox" in leaks
    assert "graders/hidden/ is present" in leaks
    assert "hidden test test_" in leaks
    with pytest.raises(ReleaseError):  # and the builder refuses an edition inside the repo
        build(step.solution.parent.parent / "tmp-edition", [step])


def test_edition_files_for_learners_and_ci(edition):
    out, record, hidden = edition
    ids = [s.id for s in READY]
    with open(out / "tools" / "curriculum.toml", "rb") as f:
        assert [s["id"] for s in tomllib.load(f)["step"]] == ids
    with open(out / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["tool"]["pytest"]["ini_options"]["testpaths"] == ["graders"]
    readme = (out / "README.md").read_text()
    assert "Never open a pull request with your solutions" in readme
    assert all(f"`{i}`" in readme for i in ids)
    assert (out / ".github" / "workflows" / "grade.yml").exists()
    assert (out / "tools" / "check.py").exists() and (out / "tools" / "ci_grade.py").exists()
    assert record["steps"] == ids
    assert json.loads((out / "tools" / "release.json").read_text()) == record
    assert record["public_graders_sha256"] == graders_digest(out, include_hidden=False)
    shipped = sorted(p.name for p in (hidden / "graders" / "hidden").glob("test_*.py"))
    assert shipped == sorted(s.hidden_graders.name for s in READY if s.hidden_graders.exists())
    # the digest CI compares with the released tree on every run
    assert record["trusted_sha256"] == isolation.tree_digest(out)
    assert (out / "tools" / "isolation.py").exists()
    assert not (out / "tools" / "gradebook.py").exists()  # an instructor tool


def test_grading_reports_never_land_in_a_learners_commit(tmp_path):
    """`git add -A` in the edition skips what ci_grade.py and the gradebook write."""
    out = _small(tmp_path, "s00_toolbox")
    for rel in ("grade-report/score.json", "grade-report/summary.md", "gradebook/grades.csv",
                "grades.csv"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("report\n")
    subprocess.run(["git", "init", "-q"], cwd=out, check=True)
    subprocess.run(["git", "add", "-A"], cwd=out, check=True)
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=out, check=True,
                            capture_output=True, text=True).stdout.split()
    assert "exercises/s00_toolbox.py" in staged
    assert not [f for f in staged if f.startswith(("grade-report/", "gradebook/"))
                or f == "grades.csv"], staged


@pytest.mark.slow
def test_public_graders_fail_on_the_stubs_with_not_implemented_error(edition, tmp_path):
    out, _, _ = edition
    report = tmp_path / "report.jsonl"
    files = [f"graders/test_{s.id}.py" for s in READY if not s.missing_extras()]
    proc = run(out, "-m", "pytest", *files, f"--report-jsonl={report}", "-q",
               "-p", "no:cacheprovider", "-p", "no:randomly", "--timeout=60")
    events = [json.loads(line) for line in report.read_text().splitlines()]
    assert not [e for e in events if e["event"] == "collect_error"], proc.stdout[-3000:]
    results = [e for e in events if e["event"] == "result" and e["outcome"] != "skipped"]
    assert {e["step"] for e in results} == {s.id for s in READY if not s.missing_extras()}
    wrong = [(e["nodeid"], e["outcome"], e["exc_type"]) for e in results
             if e["outcome"] not in ("failed", "error") or e["exc_type"] != "NotImplementedError"]
    assert not wrong, f"on the stubs every grader must fail with NotImplementedError: {wrong[:5]}"


@pytest.mark.slow
def test_learner_loop_in_the_edition(tmp_path):
    out = _small(tmp_path, "s00_toolbox", "s01_linear_regression")
    # the graders start red, with NotImplementedError
    proc = run(out, "-m", "pytest", "graders/test_s00_toolbox.py", "-q", "-p",
               "no:cacheprovider")
    assert proc.returncode == 1 and "NotImplementedError" in proc.stdout
    if not (out / "tools" / "check.py").exists():
        pytest.skip("tools/check.py has not landed yet")
    proc = run(out, "tools/check.py")
    assert proc.returncode != 0
    assert "s00" in proc.stdout and "NotImplementedError" in proc.stdout, proc.stdout
    # a learner who writes the answers passes step 00 (the provenance check works from
    # tools/pristine/, without solutions/) and is sent on to step 01
    shutil.copy2(find_step("s00_toolbox").solution, out / "exercises" / "s00_toolbox.py")
    proc = run(out, "tools/check.py")
    assert "s01" in proc.stdout and "s00_toolbox" in (out / ".ml2llm" / "progress.json")\
        .read_text(), proc.stdout
    progress = json.loads((out / ".ml2llm" / "progress.json").read_text())
    assert progress["steps"]["s00_toolbox"]["passed"] is True
    # reset brings back the pristine stub, even though the edition has no solutions
    proc = run(out, "tools/check.py", "reset", "s00")
    assert (out / "exercises" / "s00_toolbox.py").read_text() == \
        (out / "tools" / "pristine" / "s00_toolbox.py").read_text(), proc.stdout


def test_framework_status_tells_an_edited_framework_from_the_release(tmp_path):
    """The interface the local loop needs to refuse recording a pass graded under modified
    graders, conftest.py or tools (issue 10, item 7)."""
    out = _small(tmp_path, "s00")
    status = isolation.framework_status(out)
    assert status["modified"] is False and status["released"] == status["digest"]
    (out / "exercises" / "s00_toolbox.py").write_text("# my work\n")  # not a framework file
    assert isolation.framework_status(out)["modified"] is False
    for rel in ("conftest.py", "graders/helpers.py", "tools/pytest_report.py"):
        original = (out / rel).read_bytes()
        (out / rel).write_bytes(original + b"\n# edited\n")
        assert isolation.framework_status(out)["modified"] is True, rel
        (out / rel).write_bytes(original)
    assert isolation.framework_status(out)["modified"] is False
    assert isolation.framework_status(isolation.Path(__file__).resolve().parents[2])[
        "modified"] is None  # the instructor's checkout has no release record


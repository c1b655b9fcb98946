"""GitHub Actions grading of forks, simulated locally: tools/ci_grade.py and the workflow.

A student edition is committed as the release; a "fork" is a clone in which the learner
edits the tests to always pass (and adds a conftest.py). The naive grader in the fork is fooled;
ci_grade.py, which grades with the released graders, is not. As the workflow does, the tests run
the *released* copy of ci_grade.py, never the fork's. Hostile exercise files (tools/tests/
fake_class.py) try to forge verdicts, outlive the grading and leak the hidden graders.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tools.ci_grade import default_out, graders_digest
from tools.contract import apply_mutant
from tools.course import find_step
from tools.release import TEMPLATES, build
from tools.tests import fake_class
from tools.tests.points import grader_points

STEPS = ("s00_toolbox", "s01_linear_regression")
FORGED = '''import pytest


@pytest.mark.points(100)
def test_everything_passes(impl):
    assert True
'''
FORGED_CONFTEST = '''
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        report.outcome = "passed"  # every failure becomes a pass
'''


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def ci_grade(repo: Path, out: Path, *args: str, env: dict | None = None,
             script: Path | None = None):
    """Run the released tools/ci_grade.py on `repo` as the workflow does; (code, score, stdout).

    The released copy is the upstream edition's own (the workflow extracts the released
    commit into a folder of its own and runs that copy).
    """
    full = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", ML2LLM_TEST_TIMEOUT="20",
                **(env or {}))
    full.pop("ML2LLM_RELEASE_REF", None)
    full.pop("ML2LLM_UPSTREAM", None)
    if "GITHUB_STEP_SUMMARY" not in (env or {}):
        full.pop("GITHUB_STEP_SUMMARY", None)
    script = script or RELEASED_SCRIPT[0]
    proc = subprocess.run([sys.executable, str(script), "--repo", str(repo), "--out", str(out),
                           "--jobs", "2", *args],
                          cwd=repo, env=full, capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode, json.loads((out / "score.json").read_text()), proc.stdout


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The released course: a student edition of two steps, committed and tagged."""
    root = tmp_path_factory.mktemp("ci")
    upstream = root / "course"
    hidden = root / "hidden"
    record = build(upstream, [find_step(s) for s in STEPS], hidden_out=hidden)
    sh(upstream, "git", "init", "-q", "-b", "main")
    sh(upstream, "git", "add", "-A")
    sh(upstream, "git", "commit", "-qm", "release 1")
    sh(upstream, "git", "tag", "v1")
    RELEASED_SCRIPT[:] = [upstream / "tools" / "ci_grade.py"]
    return upstream, hidden, record


RELEASED_SCRIPT: list[Path] = []


@pytest.fixture
def fork(release, tmp_path):
    upstream, _, _ = release
    repo = tmp_path / "fork"
    sh(tmp_path, "git", "clone", "-q", str(upstream), str(repo))
    return repo


def _forge(repo: Path) -> None:
    (repo / "graders" / "test_s00_toolbox.py").write_text(FORGED)
    with open(repo / "conftest.py", "a") as f:
        f.write(FORGED_CONFTEST)
    (repo / "graders" / "conftest.py").write_text(FORGED_CONFTEST)


@pytest.mark.slow
def test_edited_graders_in_a_fork_do_not_change_the_grade(release, fork, tmp_path):
    _, _, record = release
    _forge(fork)
    sh(fork, "git", "add", "-A")
    sh(fork, "git", "commit", "-qm", "make every test pass")
    # the naive grader, run in the fork, is fooled by the edited tests
    naive = sh(fork, sys.executable, "tools/check.py", "--all", "--json", "naive.json",
               check=False)
    steps = {s["id"]: s for s in json.loads((fork / "naive.json").read_text())["steps"]}
    assert steps["s00_toolbox"]["status"] == "passed", naive.stdout
    assert steps["s01_linear_regression"]["status"] == "passed", naive.stdout
    # ci_grade.py restores the released graders: the untouched stub still fails, with
    # NotImplementedError, and scores nothing
    summary = tmp_path / "step-summary.md"
    code, score, stdout = ci_grade(fork, tmp_path / "out",
                                   env={"GITHUB_STEP_SUMMARY": str(summary)})
    # with the default policy a learner who has not started a step is not failed for it
    assert code == 0, stdout
    s00 = next(s for s in score["steps"] if s["id"] == "s00_toolbox")
    assert s00["points"] == 0 and s00["status"] == "not started" and s00["tests"]
    assert all(t["outcome"] == "failed" and t["exc_type"] == "NotImplementedError"
               for t in s00["tests"]), s00["tests"]
    public = grader_points(release[0], Path("graders/test_s00_toolbox.py"))
    assert public > 0 and s00["max_points"] == public and score["points"] == 0
    assert score["public_graders_sha256"] == record["public_graders_sha256"]
    assert {"graders/test_s00_toolbox.py", "conftest.py", "graders/conftest.py"} <= \
        set(score["modified_framework_files"])
    assert score["workflow_matches_release"] and "ci_grade_matches_release" not in score
    assert score["official"] is False and score["matches_release_record"] is True
    job_summary = summary.read_text()
    assert f"| `s00_toolbox` | 0 / {public:g} |" in job_summary  # the job summary
    assert "feedback, not an official grade" in job_summary
    assert "instructor's gradebook" in job_summary


@pytest.mark.slow
def test_solved_step_with_hidden_graders_and_reports(release, fork, tmp_path):
    upstream, hidden, _ = release
    step = find_step("s00_toolbox")
    shutil.copy2(step.solution, fork / "exercises" / "s00_toolbox.py")
    mutant, _ = apply_mutant(find_step("s01_linear_regression").solution.read_text(),
                             find_step("s01_linear_regression").mutants()[0])
    (fork / "exercises" / "s01_linear_regression.py").write_text(mutant)
    out = tmp_path / "out"
    code, score, stdout = ci_grade(fork, out, "--hidden", str(hidden))
    by_id = {s["id"]: s for s in score["steps"]}
    s00, s01 = by_id["s00_toolbox"], by_id["s01_linear_regression"]
    full = grader_points(upstream, Path("graders/test_s00_toolbox.py"),
                           hidden / "graders" / "hidden" / "test_s00_toolbox.py")
    assert s00["status"] == "passed" and s00["points"] == s00["max_points"] == full
    assert s01["started"] and s01["status"] == "failed" and 0 <= s01["points"] < s01["max_points"]
    assert code == 1, "a started step that fails must fail the job"
    assert score["hidden_graders"] == ["test_s00_toolbox.py", "test_s01_linear_regression.py"]
    assert score["graders_sha256"] != score["public_graders_sha256"]
    # hidden tests are counted, never named or explained
    hidden_names = [line.split("(")[0].removeprefix("def ")
                    for f in (hidden / "graders" / "hidden").glob("*.py")
                    for line in f.read_text().splitlines() if line.startswith("def test_")]
    for report in ("score.json", "summary.md", "junit.xml"):
        text = (out / report).read_text()
        assert not [n for n in hidden_names if n in text], f"{report} names a hidden test"
    assert "hidden test 1" in (out / "junit.xml").read_text()
    # JUnit XML: a suite per step, a case per test, failures where the JSON has them
    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot()
              .iter("testsuite")}
    assert set(suites) == set(STEPS)
    for sid, suite in suites.items():
        tests = by_id[sid]["tests"]
        assert int(suite.get("tests")) == len(tests) == len(suite.findall("testcase"))
        failed = sum(t["outcome"] in ("failed", "error") for t in tests)
        assert int(suite.get("failures")) + int(suite.get("errors")) == failed
    # Markdown: the table of step, points, status
    md = (out / "summary.md").read_text()
    assert "| step | points | status |" in md
    assert f"| `s00_toolbox` | {full:g} / {full:g} | ✅ passed |" in md
    assert f"| `s01_linear_regression` | {s01['points']:g} / {s01['max_points']:g} | ❌ failed" \
        in md


@pytest.mark.slow
def test_pinned_upstream_release_survives_a_rewritten_history(release, tmp_path):
    """A learner who rewrites history (a new first commit holding forged graders) cannot
    move the release when the workflow pins the course repository and its tag."""
    upstream, _, record = release
    repo = tmp_path / "rewritten"
    shutil.copytree(upstream, repo, ignore=shutil.ignore_patterns(".git"))
    _forge(repo)
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "a history of my own")
    code, score, _ = ci_grade(repo, tmp_path / "out", "--upstream", str(upstream),
                              "--release-ref", "v1")
    s00 = next(s for s in score["steps"] if s["id"] == "s00_toolbox")
    public = grader_points(upstream, Path("graders/test_s00_toolbox.py"))
    assert s00["points"] == 0 and s00["max_points"] == public
    assert score["release_commit"] == sh(upstream, "git", "rev-parse", "v1").stdout.strip()
    assert score["public_graders_sha256"] == record["public_graders_sha256"]


FORGING_CI_GRADE = """import json, pathlib, sys
out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "score.json").write_text(json.dumps({"points": 44, "max_points": 44, "score": 1.0,
                                             "ci_grade_matches_release": True}))
"""


@pytest.mark.slow
def test_hostile_exercise_files_cannot_forge_outlive_or_leak(release, fork, tmp_path):
    """s00 (solved) rewrites the grading tree's reporter and conftest.py at import -- in one
    shared tree that made every later step pass -- and leaves a detached process rewriting
    the reports; s01 (a mutant) packs the hidden graders into its failure messages; the
    fork's own ci_grade.py is edited to report full marks about itself."""
    with fake_class.drop_dir() as drop:  # the grading uid may write its pid here
        _hostile_fork(release, fork, tmp_path, drop / "detached.pid")


def _hostile_fork(release, fork: Path, tmp_path: Path, pidfile: Path) -> None:
    upstream, hidden, _ = release
    out = tmp_path / "out"
    s00 = fake_class.detached(pidfile, [out], base=fake_class.rewrite_tools())
    (fork / "exercises" / "s00_toolbox.py").write_text(s00)
    s01 = fake_class.pack_hidden("s01_linear_regression", "mae",
                                 base=fake_class.mutant("s01_linear_regression"))
    (fork / "exercises" / "s01_linear_regression.py").write_text(s01)
    (fork / "tools" / "ci_grade.py").write_text(FORGING_CI_GRADE)
    sh(fork, "git", "commit", "-qam", "my work")
    # the fork's own script says whatever it likes about itself: why the workflow never runs it
    forged = tmp_path / "forged"
    _, forged_score, _ = ci_grade(fork, forged, script=fork / "tools" / "ci_grade.py")
    assert forged_score["points"] == forged_score["max_points"] == 44
    summary = tmp_path / "step-summary.md"
    code, score, stdout = ci_grade(fork, out, "--hidden", str(hidden),
                                   env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 1, stdout
    by_id = {s["id"]: s for s in score["steps"]}
    s00, s01 = by_id["s00_toolbox"], by_id["s01_linear_regression"]
    if score["isolation"] == "hash check per step":  # root without a usable grading uid
        assert s00["status"] == "integrity" and s00["points"] == 0, s00
        assert "changed while s00_toolbox was graded" in s00["integrity"]
    else:  # an unprivileged uid cannot write the tree: the honest verdict of a solution
        assert s00["status"] in ("passed", "integrity"), s00
    # no forged verdict: the other step keeps its honest (failing) verdict
    assert s01["status"] in ("failed", "integrity") and s01["points"] < s01["max_points"]
    assert "tools/ci_grade.py" in score["modified_framework_files"]
    # nothing survives the grading, and the reports are the parent's
    assert not fake_class.pid_alive(pidfile)
    reports = {name: (out / name).read_text() for name in ("score.json", "summary.md",
                                                         "junit.xml")}
    reports["job summary"] = summary.read_text()
    time.sleep(0.3)
    for name, text in reports.items():
        assert fake_class.FORGED not in text, name
        for step in STEPS:
            assert fake_class.leaks(text, step) == [], f"{name} carries hidden {step} source"
        if name != "job summary":
            assert (out / name).read_text() == text, f"{name} changed after grading"
    messages = [t["message"] for s in score["steps"] for t in s["tests"] if t["message"]]
    assert all(len(m) <= 700 for m in messages)


# --- the workflow file ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def workflow(release):
    upstream, _, _ = release
    return upstream / ".github" / "workflows" / "grade.yml"


def test_workflow_is_valid_per_the_github_workflow_schema(workflow):
    """Offline lint with check-jsonschema's vendored GitHub-workflow schema."""
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (dev extra)")
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(workflow)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    template = (TEMPLATES / "grade.yml").read_text()
    assert "@@RELEASE_REF@@" in template and "@@RELEASE_REF@@" not in workflow.read_text()


def test_workflow_triggers_permissions_and_secrets(workflow):
    yaml = pytest.importorskip("yaml")
    text = workflow.read_text()
    wf = yaml.safe_load(text)
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"}
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    assert "pull_request_target" not in code and "workflow_run" not in code
    assert wf["permissions"] == {"contents": "read"}
    job = wf["jobs"]["grade"]
    assert "permissions" not in job
    steps = job["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["cache"] == "pip"
    runs = "\n".join(s.get("run", "") for s in steps)
    assert ("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
            in runs)
    grade = next(s for s in steps if "ci_grade.py" in s.get("run", ""))
    # the released copy of the script grades, from a folder of its own, as root (to drop to
    # an unprivileged uid per step), never the fork's tools/ci_grade.py
    assert "$RUNNER_TEMP/release/tools/ci_grade.py" in grade["run"]
    assert "sudo" in grade["run"] and " tools/ci_grade.py" not in grade["run"]
    extract = next(s for s in steps if "git archive" in s.get("run", ""))
    assert steps.index(extract) < steps.index(grade)
    assert "feedback" in grade["name"].lower() and "not an official grade" in text
    # the step that runs learner code sees no secret, nor does the job's environment
    assert "secrets." not in json.dumps(grade) and "secrets." not in json.dumps(wf["env"])
    secret_steps = [s for s in steps if "secrets." in json.dumps(s)]
    assert len(secret_steps) == 1 and "hidden" in secret_steps[0]["name"].lower()
    # no untrusted event text spliced into a shell script
    assert "github.event" not in runs and "github.head_ref" not in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"


def test_reports_default_to_a_folder_outside_the_repository(fork):
    out = default_out(fork)
    assert fork.resolve() not in out.resolve().parents


def test_graders_digest_ignores_caches(tmp_path):
    (tmp_path / "graders" / "__pycache__").mkdir(parents=True)
    (tmp_path / "graders" / "test_x.py").write_text("x = 1\n")
    (tmp_path / "conftest.py").write_text("")
    before = graders_digest(tmp_path)
    (tmp_path / "graders" / "__pycache__" / "test_x.cpython-311.pyc").write_bytes(b"junk")
    assert graders_digest(tmp_path) == before
    (tmp_path / "graders" / "hidden").mkdir()
    (tmp_path / "graders" / "hidden" / "test_x.py").write_text("y = 2\n")
    assert graders_digest(tmp_path) != before
    assert graders_digest(tmp_path, include_hidden=False) == before

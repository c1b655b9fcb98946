"""The instructor's gradebook (tools/gradebook.py) on a small class of fake learners.

The class: a solved s00 (behind a git URL), an untouched stub (a plain folder), a mutant, and
hostile exercise files (tools/tests/fake_class.py) -- one that rewrites the grading tree's
reporter and conftest.py at import, one that leaves a detached process rewriting the
gradebook, one that packs the hidden graders into its failure messages -- plus a learner whose
solved commit came after the deadline. Graded in two shards and merged; then a GitHub
Classroom assignment listed by a fake API on loopback. Only s00 is graded (a cheap step).
"""

from __future__ import annotations

import csv
import http.server
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tools import gradebook, isolation
from tools.course import ROOT
from tools.tests import fake_class
from tools.tests.points import step_points

STEP = "s00_toolbox"
DEADLINE = "2026-01-01T00:00:00Z"
BEFORE, AFTER = "2025-12-01T12:00:00+00:00", "2026-02-01T12:00:00+00:00"


def run_gradebook(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", ML2LLM_TEST_TIMEOUT="20", **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / "tools" / "gradebook.py"), *args],
                          cwd=ROOT, env=full, capture_output=True, text=True, timeout=900)


def nbgrader_columns() -> list[str]:
    """The columns of `nbgrader export`'s CSV, read from the installed nbgrader."""
    if importlib.util.find_spec("nbgrader") is None:
        pytest.skip("nbgrader is not installed (notebooks extra)")
    from nbgrader.plugins import export  # noqa: PLC0415

    source = inspect.getsource(export.CsvExportPlugin)
    keys = re.search(r"keys = \[(.*?)\]", source, re.S).group(1)
    return re.findall(r'"(\w+)"', keys)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    with fake_class.drop_dir() as drop:  # an unprivileged grading uid may leave its pid here
        yield _grade_the_class(root, drop)


def _grade_the_class(root: Path, drop: Path) -> dict:
    outs = [root / "shard1", root / "shard2", root / "merged"]
    pidfile = drop / "frank.pid"
    mutant = fake_class.mutant(STEP)
    learners = {
        "alice": fake_class.solved(STEP), "carol": mutant,
        "dave": mutant + fake_class.REWRITE_TOOLS,
        # packs the hidden graders into its messages, and leaves a process rewriting reports
        "frank": fake_class.pack_hidden(base=fake_class.detached(
            pidfile, outs + [o / "learners" for o in outs])),
    }
    for who, text in learners.items():
        fake_class.learner_repo(root / "src" / who, {STEP: text}, date=BEFORE,
                                bare=root / "git" / f"{who}.git")
    bob = root / "src" / "bob" / "exercises"  # a plain folder, no git
    bob.mkdir(parents=True)
    (bob / f"{STEP}.py").write_text(fake_class.stub(STEP))
    grace = fake_class.learner_repo(root / "src" / "grace", {STEP: fake_class.stub(STEP)},
                                    date=BEFORE)
    (grace / "exercises" / f"{STEP}.py").write_text(fake_class.solved(STEP))
    fake_class.git(grace, "add", "-A")
    fake_class.commit(grace, "solved, after the deadline", AFTER)
    roster = root / "roster.csv"
    rows = ["student_id,source,first_name,last_name,email",
            f"alice,file://{root / 'git' / 'alice.git'},Alice,Liddell,alice@example.org",
            f"bob,{root / 'src' / 'bob'}", f"carol,{root / 'src' / 'carol'}",
            f"dave,{root / 'git' / 'dave.git'}", f"frank,{root / 'src' / 'frank'}",
            f"grace,{root / 'src' / 'grace'}"]
    roster.write_text("\n".join(rows) + "\n")
    timings = {}
    for i, out in enumerate(outs[:2], start=1):
        start = time.monotonic()
        proc = run_gradebook("grade", "--roster", str(roster), "--steps", STEP, "--deadline",
                             DEADLINE, "--jobs", "2", "--shard", f"{i}/2", "--out", str(out))
        timings[f"shard {i}"] = time.monotonic() - start
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_gradebook("merge", str(outs[0]), str(outs[1]), "--out", str(outs[2]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"root": root, "outs": outs, "pidfile": pidfile, "timings": timings,
            "merged": outs[2]}


def _rows(folder: Path) -> dict[str, dict]:
    with open(folder / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_grades_csv_has_nbgrader_columns_and_honest_scores(klass):
    merged = klass["merged"]
    header = (merged / "grades.csv").read_text().splitlines()[0].split(",")
    assert header == nbgrader_columns()
    rows = _rows(merged)
    assert sorted(rows) == ["alice", "bob", "carol", "dave", "frank", "grace"]
    full = step_points(STEP)
    assert all(r["assignment"] == STEP and float(r["max_score"]) == full for r in rows.values())
    assert float(rows["alice"]["score"]) == full and rows["alice"]["first_name"] == "Alice"
    assert rows["alice"]["email"] == "alice@example.org" and rows["alice"]["duedate"] == DEADLINE
    assert rows["bob"]["score"] == "0" and rows["bob"]["timestamp"] == ""  # a folder
    carol = float(rows["carol"]["score"])
    assert 0 < carol < full
    # 0 forged verdicts: tampering never scores above the honest work behind it
    assert float(rows["dave"]["score"]) <= carol
    assert float(rows["frank"]["score"]) < full
    assert rows["grace"]["score"] == "0", "work committed after the deadline was graded"
    assert rows["grace"]["timestamp"].startswith("2025-12-01")
    records = {p.stem: json.loads(p.read_text())
               for p in (merged / "learners").glob("*.json")}
    dave = records["dave"]["steps"][0]
    if records["dave"]["steps"][0]["status"] != "failed":  # hash mode: the change is seen
        assert dave["status"] == "integrity" and "changed while" in dave["verdict"]
    assert records["bob"]["steps"][0]["status"] == "not started"
    assert records["grace"]["steps"][0]["status"] == "not started"


@pytest.mark.slow
def test_no_process_outlives_grading_and_no_report_is_forged_or_leaks(klass):
    assert not fake_class.pid_alive(klass["pidfile"])
    time.sleep(0.3)
    texts = {p: p.read_text(errors="replace") for out in klass["outs"]
             for p in out.rglob("*") if p.suffix in (".csv", ".md", ".json")}
    assert len(texts) >= 3 * 3
    for path, text in texts.items():
        assert fake_class.FORGED not in text, path
        assert fake_class.leaks(text) == [], f"{path} carries hidden grader source"
    frank = json.loads((klass["merged"] / "learners" / "frank.json").read_text())["steps"][0]
    assert all(t["message"] is None or len(t["message"]) <= 700 for t in frank["tests"])


@pytest.mark.slow
def test_summary_plots_shards_and_merge(klass):
    merged = klass["merged"]
    summary = (merged / "summary.md").read_text()
    assert "6 learners" in summary and "## Integrity verdicts to review" in summary
    assert "## Tests failed most often" in summary
    context = json.loads((merged / "manifest.json").read_text())["context"]
    if context["isolation"] == "hash check per step":
        assert "Isolated by hash checks only" in summary
    for name in ("score_distribution.png", "most_failed.png", "integrity.png"):
        data = (merged / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 2000, name
    for who in ("alice", "dave"):
        assert (merged / "learners" / f"{who}.md").read_text().startswith(f"# {who}: ")
    shards = [json.loads((o / "manifest.json").read_text()) for o in klass["outs"][:2]]
    assert sorted(shards[0]["learners"] + shards[1]["learners"]) == sorted(_rows(merged))
    assert not set(shards[0]["learners"]) & set(shards[1]["learners"])
    assert shards[0]["context"]["trusted_sha256"] == shards[1]["context"]["trusted_sha256"]
    print("gradebook timings (s, noisy shared machine):", klass["timings"])


@pytest.mark.slow
def test_merge_refuses_a_tampered_shard(klass, tmp_path):
    shard = tmp_path / "shard"
    shutil.copytree(klass["outs"][0], shard)
    record = next((shard / "learners").glob("*.json"))
    data = json.loads(record.read_text())
    data["points"] = data["max_points"]
    record.write_text(json.dumps(data))
    proc = run_gradebook("merge", str(shard), str(klass["outs"][1]), "--out",
                         str(tmp_path / "m"))
    assert proc.returncode == 2 and "does not match the shard's manifest" in proc.stderr
    proc = run_gradebook("merge", str(klass["outs"][0]), str(klass["outs"][0]), "--out",
                         str(tmp_path / "m2"))
    assert proc.returncode == 2 and "more than one shard" in proc.stderr


# --- GitHub Classroom, through a fake REST API on loopback -----------------------------------

class FakeClassroom(http.server.BaseHTTPRequestHandler):
    token = "ghs_test_token_123"
    pages: dict[int, list] = {}
    seen: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        FakeClassroom.seen.append({"path": self.path,
                                   **{k.lower(): v for k, v in self.headers.items()}})
        m = re.fullmatch(r"/assignments/42/accepted_assignments\?per_page=100&page=(\d+)",
                         self.path)
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(401, {"message": "Bad credentials"})
        if not m:
            return self._send(404, {"message": "Not Found"})
        return self._send(200, self.pages.get(int(m[1]), []))

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def accepted(i: int, login: str, name: str | None = None) -> dict:
    """One item of GET /assignments/{id}/accepted_assignments, as GitHub documents it."""
    return {"id": i, "submitted": True, "passing": False, "commit_count": 1, "grade": None,
            "students": [{"id": 1000 + i, "login": login, "name": name,
                          "html_url": f"https://github.com/{login}"}],
            "repository": {"id": 2000 + i, "full_name": f"course-org/s00-{login}",
                           "html_url": f"https://github.com/course-org/s00-{login}",
                           "private": True, "default_branch": "main"},
            "assignment": {"id": 42, "title": "ml-to-llm", "slug": "ml-to-llm"}}


@pytest.fixture
def api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeClassroom)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeClassroom.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_classroom_listing_pages_and_authenticates(api):
    FakeClassroom.pages = {1: [accepted(i, f"user{i}") for i in range(100)],
                           2: [accepted(100, "last-one", "Ada Lovelace")]}
    learners = gradebook.classroom_learners("42", FakeClassroom.token, api, "https://git.test")
    assert len(learners) == 101 and learners[-1].id == "last-one"
    assert learners[-1].first_name == "Ada Lovelace"
    assert learners[0].source == "https://git.test/course-org/s00-user0.git"
    assert [s["path"].rsplit("=", 1)[1] for s in FakeClassroom.seen] == ["1", "2"]
    first = FakeClassroom.seen[0]
    assert first["accept"] == "application/vnd.github+json"
    assert first["x-github-api-version"] == gradebook.API_VERSION
    with pytest.raises(gradebook.GradebookError, match="did not list"):
        gradebook.classroom_learners("42", "wrong-token", api, "https://git.test")


@pytest.mark.slow
def test_grading_a_classroom_assignment(api, tmp_path):
    FakeClassroom.pages = {1: [accepted(1, "alice"), accepted(2, "bob")]}
    org = tmp_path / "git" / "course-org"
    org.mkdir(parents=True)
    fake_class.learner_repo(tmp_path / "alice", {STEP: fake_class.solved(STEP)},
                            bare=org / "s00-alice.git")
    fake_class.learner_repo(tmp_path / "bob", {STEP: fake_class.stub(STEP)},
                            bare=org / "s00-bob.git")
    out = tmp_path / "out"
    proc = run_gradebook("grade", "--classroom", "42", "--api-url", api, "--git-base",
                         f"file://{tmp_path / 'git'}", "--steps", STEP, "--jobs", "2",
                         "--out", str(out), env={"GITHUB_TOKEN": FakeClassroom.token})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(out)
    assert float(rows["alice"]["score"]) == step_points(STEP) and rows["bob"]["score"] == "0"
    for path in out.rglob("*"):
        if path.is_file():
            assert FakeClassroom.token.encode() not in path.read_bytes(), path
    proc = run_gradebook("grade", "--classroom", "42", "--api-url", api, "--out",
                         str(tmp_path / "none"), env={"GITHUB_TOKEN": ""})
    assert proc.returncode == 2 and "needs a token" in proc.stderr


# --- the pieces --------------------------------------------------------------------------------

def test_shards_partition_the_class_and_refuse_nonsense():
    people = [gradebook.Learner(f"l{i:02d}", f"/x/{i}") for i in range(7)]
    parts = [gradebook.shard(people, f"{i}/3") for i in (1, 2, 3)]
    assert sorted(ln.id for p in parts for ln in p) == [p.id for p in people]
    assert [len(p) for p in parts] == [3, 2, 2]
    for bad in ("0/3", "4/3", "a/b", "3"):
        with pytest.raises(gradebook.GradebookError):
            gradebook.shard(people, bad)
    with pytest.raises(gradebook.GradebookError, match="more than once"):
        gradebook.shard(people + people[:1], None)
    with pytest.raises(gradebook.GradebookError, match="letters, digits"):
        gradebook.shard([gradebook.Learner("../escape", "/x")], None)


def test_roster_reads_ids_sources_and_names(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("student_id,source,first_name,last_name,email\n"
                      "# a comment\nada,https://example.org/ada.git,Ada,Lovelace,a@x.org\n"
                      "/srv/work/bob\n")
    ada, bob = gradebook.read_roster(roster)
    assert (ada.id, ada.source, ada.last_name, ada.email) == \
        ("ada", "https://example.org/ada.git", "Lovelace", "a@x.org")
    assert (bob.id, bob.source) == ("bob", "/srv/work/bob")


def test_gradebook_workflow_template_is_valid_and_shards(tmp_path):
    workflow = ROOT / "tools" / "templates" / "gradebook.yml"
    if importlib.util.find_spec("check_jsonschema") is not None:
        proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                               "vendor.github-workflows", str(workflow)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load(workflow.read_text())
    triggers = wf.get("on", wf.get(True))
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    assert wf["permissions"] == {"contents": "read"}
    grade, merge = wf["jobs"]["grade"], wf["jobs"]["merge"]
    shards = grade["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(wf["env"]["SHARDS"]) + 1))
    assert merge["needs"] == "grade"
    run = next(s for s in grade["steps"] if "gradebook.py grade" in s.get("run", ""))
    assert "--shard" in run["run"] and "sudo" in run["run"] and "--classroom" in run["run"]
    secret_steps = [s for j in wf["jobs"].values() for s in j["steps"]
                    if "secrets." in json.dumps(s)]
    assert secret_steps == [run]
    merge_run = "\n".join(s.get("run", "") for s in merge["steps"])
    assert "gradebook.py merge" in merge_run


# --- as root, with an interpreter an unprivileged uid can run -----------------------------------

@pytest.fixture(scope="module")
def uid_python():
    """An interpreter the grading uid can run, on machines where ours is not (e.g. under a
    0700 /root): a venv of the system's Python of the same minor version that sees our
    site-packages. Skips unless root on Linux with such a Python."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("dropping to an unprivileged uid needs root on Linux")
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    if not system.exists():
        pytest.skip(f"no {system} to build an interpreter the grading uid can run")
    base = Path(tempfile.mkdtemp(prefix="ml2llm-uid-python-"))  # not under pytest's 0700 tmp
    base.chmod(0o755)
    venv = base / "venv"
    subprocess.run([str(system), "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (venv / "lib" / minor / "site-packages" / "course.pth").write_text(f"{site}\n")
    python = venv / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import numpy, pytest"], user=61099,
                           group=61099, extra_groups=[], cwd="/", capture_output=True)
    if probe.returncode != 0:
        shutil.rmtree(base)
        pytest.skip(f"the grading uid cannot run {python}: {probe.stderr[-300:]}")
    yield python
    shutil.rmtree(base)


@pytest.mark.slow
def test_as_root_every_step_runs_as_an_unprivileged_uid(uid_python, tmp_path):
    """The grading uid cannot write the tree (the rewrite fails, the mutant keeps its honest
    score), cannot write the gradebook, and nothing of it is left running."""
    with fake_class.drop_dir() as drop:
        _uid_class(uid_python, tmp_path, drop)


def _uid_class(uid_python: Path, tmp_path: Path, drop: Path) -> None:
    out, pidfile = tmp_path / "out", drop / "frank.pid"
    mutant = fake_class.mutant(STEP)
    sources = []
    for who, text in {"dave": mutant + fake_class.REWRITE_TOOLS,
                      "frank": fake_class.pack_hidden(base=fake_class.detached(
                          pidfile, [out, out / "learners"]))}.items():
        sources.append(str(fake_class.learner_repo(tmp_path / who, {STEP: text})))
    proc = subprocess.run([str(uid_python), str(ROOT / "tools" / "gradebook.py"), "grade",
                           *sources, "--steps", STEP, "--jobs", "2", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, ML2LLM_TEST_TIMEOUT="20"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    context = json.loads((out / "manifest.json").read_text())["context"]
    assert context["isolation"] == "unprivileged uid per step"
    rows = _rows(out)
    records = {p.stem: json.loads(p.read_text()) for p in (out / "learners").glob("*.json")}
    honest = records["dave"]["steps"][0]
    assert honest["status"] == "failed" and 0 < float(rows["dave"]["score"]) < step_points(STEP), \
        honest["verdict"]
    assert 0 < float(rows["frank"]["score"]) < step_points(STEP)
    assert pidfile.exists(), "the detached process never ran: the test proves nothing"
    assert not fake_class.pid_alive(pidfile)
    uids = range(isolation.UID_BASE, isolation.UID_BASE + 8)
    assert not [p for u in uids for p in isolation.processes_of_uid(u)]
    for path in out.rglob("*"):
        if path.suffix in (".csv", ".md", ".json"):
            text = path.read_text()
            assert fake_class.FORGED not in text and fake_class.leaks(text) == [], path

"""tools/isolation.py: the trusted tree, its hashes, the report filter and process clean-up.

The end-to-end attacks (a hostile exercise per attack) are in test_ci_grade.py and
test_gradebook.py; these are the pieces, fast.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from tools import isolation
from tools.course import ROOT, find_step
from tools.stubgen import make_stub

HIDDEN = find_step("s00_toolbox").hidden_graders.read_text()


@pytest.fixture(scope="module")
def trusted(tmp_path_factory):
    step = find_step("s00_toolbox")
    dest = tmp_path_factory.mktemp("trusted") / "tree"
    t = isolation.snapshot(ROOT, dest, stubs={step.id: make_stub(step.solution.read_text(),
                                                                 step.id)})
    yield t
    isolation.remove_tree(dest)


def test_snapshot_holds_the_trusted_files_read_only_and_hashed(trusted):
    rels = set(trusted.hashes)
    assert {"conftest.py", "pyproject.toml", "tools/grading.py", "tools/pytest_report.py",
            "graders/test_s00_toolbox.py", "graders/hidden/test_s00_toolbox.py",
            "tools/pristine/s00_toolbox.py"} <= rels
    assert not [r for r in rels if r.startswith(("solutions/", "graders/mutants/",
                                                  "tools/tests/", "datasets/cache/"))]
    assert not [r for r in rels if "__pycache__" in r or r.endswith(".pyc")]
    for rel in ("tools/grading.py", "conftest.py"):
        assert (trusted.root / rel).stat().st_mode & 0o222 == 0
    assert trusted.digest == isolation.tree_digest(trusted.root)


def test_a_step_copy_holds_no_other_step_graders(trusted):
    files = trusted.step_files("s00_toolbox")
    assert "graders/hidden/test_s00_toolbox.py" in files and "graders/helpers.py" in files
    assert not [f for f in files if "s01_" in f and f.startswith("graders/")]


def test_tree_digest_changes_with_any_grading_file_but_not_release_json(tmp_path):
    for rel in ("tools/grading.py", "conftest.py", "graders/test_s00_x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    before = isolation.tree_digest(tmp_path)
    (tmp_path / "tools" / "release.json").write_text("{}")
    (tmp_path / "tools" / "__pycache__").mkdir()
    (tmp_path / "tools" / "__pycache__" / "grading.cpython-311.pyc").write_bytes(b"junk")
    assert isolation.tree_digest(tmp_path) == before
    (tmp_path / "tools" / "pytest_report.py").write_text("# added\n")
    assert isolation.tree_digest(tmp_path) != before


def test_changes_names_an_added_a_modified_and_a_removed_file(tmp_path):
    (tmp_path / "a.py").write_text("a")
    (tmp_path / "b.py").write_text("b")
    expected = {"a.py": isolation.sha256(tmp_path / "a.py"),
                "b.py": isolation.sha256(tmp_path / "b.py")}
    assert isolation._changes(tmp_path, expected) is None
    (tmp_path / "a.py").write_text("a, edited")
    assert isolation._changes(tmp_path, expected) == "a.py was modified"
    (tmp_path / "a.py").write_text("a")
    (tmp_path / "sitecustomize.py").write_text("")
    assert isolation._changes(tmp_path, expected) == "sitecustomize.py was added"
    (tmp_path / "sitecustomize.py").unlink()
    (tmp_path / "b.py").unlink()
    assert isolation._changes(tmp_path, expected) == "b.py was removed"


@pytest.mark.parametrize("encode", [
    lambda s: s,
    lambda s: base64.b64encode(s.encode()).decode(),
    lambda s: base64.b64encode(zlib.compress(s.encode())).decode(),
    lambda s: base64.urlsafe_b64encode(zlib.compress(s.encode())).decode().rstrip("="),
    lambda s: binascii.hexlify(s.encode()).decode(),
], ids=["verbatim", "base64", "zlib+base64", "urlsafe", "hex"])
def test_secret_scan_finds_hidden_grader_text_however_packed(encode):
    scan = isolation.SecretScan([HIDDEN], [find_step("s00_toolbox").public_graders.read_text()])
    assert scan.holds("ValueError: " + encode(HIDDEN[:2000]))
    assert not scan.holds("expected shape (3,), got (2,): look at how you stack the batch")


def test_report_safe_numbers_hidden_tests_and_caps_public_messages():
    scan = isolation.SecretScan([HIDDEN])
    verdict = {"id": "s00_toolbox", "status": "failed", "points": 1.0, "max_points": 3.0,
               "verdict": "test_secret: learner text", "integrity": None, "tests": [
                   {"nodeid": "graders/hidden/test_s00_toolbox.py::test_secret",
                    "outcome": "failed", "points": 1.0, "hidden": True, "exc_type": "X" * 500,
                    "message": "learner-controlled " * 50, "where": "exercises/s00.py:3"},
                   {"nodeid": "graders/test_s00_toolbox.py::test_long", "outcome": "failed",
                    "points": 1.0, "hidden": False, "exc_type": "ValueError",
                    "message": "y" * 5000, "where": None},
                   {"nodeid": "graders/test_s00_toolbox.py::test_leak", "outcome": "failed",
                    "points": 1.0, "hidden": False, "exc_type": "ValueError",
                    "message": HIDDEN, "where": None}]}
    safe = isolation.report_safe(verdict, scan)
    hidden, long, leak = safe["tests"]
    assert hidden == {"name": "hidden test 1", "outcome": "failed", "points": 1.0,
                      "hidden": True, "exc_type": None, "message": isolation.HIDDEN_MESSAGE,
                      "where": None}
    assert "test_secret" not in str(safe) and "learner-controlled" not in str(safe)
    assert len(long["message"]) <= isolation.MESSAGE_CAP + 20
    assert "withheld" in leak["message"] and safe["hidden_failed"] == 1
    assert safe["verdict"] == isolation.HIDDEN_MESSAGE


def _as_uid(uid: int, script: str) -> subprocess.Popen:
    return subprocess.Popen(["/bin/sh", "-c", script], user=uid, group=uid, extra_groups=[],
                            cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0,
                    reason="switching uids needs root on Linux")
def test_kill_uid_leaves_no_process_of_the_grading_uid():
    """Daemons in sessions of their own, re-parented to init: kill(-1) as the uid gets all."""
    uid = isolation.UID_BASE + 90
    _as_uid(uid, "setsid sleep 300 & setsid sh -c 'sleep 300 & sleep 300' & exit 0").wait()
    deadline = time.monotonic() + 10
    while len(isolation.processes_of_uid(uid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(isolation.processes_of_uid(uid)) >= 3
    assert isolation.kill_uid(uid) == []
    assert isolation.processes_of_uid(uid) == []


@pytest.mark.skipif(sys.platform != "linux", reason="a child subreaper is a Linux feature")
def test_subreaper_kills_double_forked_descendants(tmp_path):
    """What the driver does without root: orphans come back to it, and it kills them."""
    pidfile = tmp_path / "pid"
    code = f"""
import os, sys, time
sys.path.insert(0, {str(ROOT)!r})
from tools import isolation
assert isolation.become_subreaper()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
while not os.path.exists({str(pidfile)!r}):
    time.sleep(0.02)
time.sleep(0.1)
isolation.kill_descendants(os.getpid())
"""
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)
    pid = int(pidfile.read_text())
    time.sleep(0.1)
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() \
        else "gone"
    assert state in ("gone", "Z")


KILLS_ITS_DRIVER = '''
import os, signal, time
if os.fork() == 0:  # a daemon first, then kill the process that grades us
    os.setsid()
    if os.fork() == 0:
        open(@@PIDFILE@@, "w").write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
time.sleep(0.3)
os.kill(os.getppid(), signal.SIGKILL)
'''


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="subreapers and /proc are Linux")
def test_an_exercise_that_kills_its_driver_gets_no_verdict_and_leaves_nothing(trusted):
    """Without a verdict on the pipe the step is "interrupted" (0 points), and the daemon it
    left, re-parented to us, is swept."""
    from tools.tests import fake_class  # noqa: PLC0415

    step = next(s for s in trusted.steps if s.id == "s00_toolbox")
    slots = isolation.Slots(1)
    with fake_class.drop_dir() as drop, slots.take() as uid:
        pidfile = drop / "daemon.pid"
        code = fake_class.solved(step.id) + KILLS_ITS_DRIVER.replace(
            "@@PIDFILE@@", repr(str(pidfile)))
        verdict = isolation.grade_step(trusted, step, code.encode(),
                                       Path(isolation.tempfile.mkdtemp()) / "w", uid=uid)
        assert verdict["status"] in ("interrupted", "integrity"), verdict
        assert verdict["points"] == 0
        if verdict["status"] == "interrupted":  # (an integrity verdict: fork was refused)
            assert pidfile.exists() and "interrupted" in verdict["verdict"], verdict
        time.sleep(0.2)
        assert not fake_class.pid_alive(pidfile)
    slots.close()

"""The warm grading server (tools/warm.py) must grade exactly as a cold process does.

Each case grades s00 once warm and once cold (ML2LLM_WARM=0) and compares what a learner
would be told: the same tests, outcomes and points, and the same plain-words account of a
process that died.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tools import grading, warm
from tools.course import ROOT, find_step
from tools.grading import child_env, run_step

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the warm server is Linux only")

BEHAVIOURS = {
    "abort": ("import os\nos.abort()\n", "SIGABRT"),
    # (ctypes would be refused as an integrity breach: a runaway C recursion segfaults too;
    # it must go through C, here max(), since Python-to-Python calls use no C stack in 3.11)
    "segfault": ("import sys\nsys.setrecursionlimit(10**8)\n"
                 "def down(n):\n    return max([n + 1], key=down)\ndown(0)\n", "SIGSEGV"),
    "os_exit": ("import os\nos._exit(3)\n", "exit code 3"),
    "sys_exit": ("import sys\nsys.exit(0)\n", None),
}


def grade(impl: str, warm_on: bool, monkeypatch, **kwargs):
    monkeypatch.setenv("ML2LLM_WARM", "1" if warm_on else "0")
    # these modules misbehave on purpose with `import os` and the like, which the static
    # check would refuse before they run (tested in test_integrity_static.py)
    monkeypatch.setattr(grading.allowlist, "problems", lambda step, path: [])
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


def _serve(path, env) -> subprocess.Popen:
    """A server on `path`, ready (its socket accepts) when this returns."""
    proc = subprocess.Popen([sys.executable, "-m", "tools.warm", "serve", str(path)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not warm._live(path):
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return proc


def _listener(path: Path) -> socket.socket:
    """Something listening on `path`, as a running server does (enough to be counted)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen(4)
    return sock


def _ends(proc: subprocess.Popen) -> bool:
    try:
        proc.wait(timeout=30)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        return False


def test_a_new_key_retires_the_old_server_and_stop_counts_real_servers(monkeypatch):
    """Installing torch changes the key: the old server goes, there is never a second one;
    a server removes its socket file when it ends; `stop` counts servers that were running,
    not socket files, and cleans stale files."""
    folder = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))  # short: AF_UNIX paths are short
    monkeypatch.setattr(warm, "socket_dir", lambda: folder)
    env = dict(child_env(), ML2LLM_WARM_IDLE="120")
    old_path = folder / f"warm-{warm.family()}-0000000000000000.sock"
    new_path = warm.socket_path(env)
    stale = folder / f"warm-{warm.family()}-1111111111111111.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(stale))
    dead.close()  # a socket file nobody listens on, as a killed server leaves
    old = _serve(old_path, env)
    new = None
    try:
        assert warm.retire_others(new_path) == 1  # the old one; the stale file is not counted
        assert _ends(old) and not old_path.exists() and not stale.exists()
        new = _serve(new_path, env)
        new.terminate()  # SIGTERM: the server still removes its socket file
        assert _ends(new) and not new_path.exists()
        listeners = [_listener(new_path), _listener(folder / "warm-00000000-22.sock")]
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(str(stale))
        dead.close()
        assert warm.stop_all(warm.family()) == 1  # this family's one live server
        assert warm.stop_all() == 1 and warm.stop_all() == 0  # then the other family's
        assert not list(folder.glob("*.sock"))
        for listener in listeners:
            listener.close()
    finally:
        for proc in (old, new):
            if proc is not None and proc.poll() is None:
                proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_warm_child_that_never_started_is_graded_again_cold(monkeypatch):
    """A server stopped or killed under a grading (another checkout's `warm stop`, the OOM
    killer) leaves a child that died before it opened its log and ran nothing: the step is
    graded once more, cold, instead of crashing on the missing log or giving a verdict about
    a grading that never happened."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that is no process any more
    started = []

    def dead_child(args, cwd, env, log, *rest, **kwargs):
        started.append(log)
        ours, theirs = socket.socketpair()
        theirs.sendall(b'{"returncode": -9}\n')
        theirs.close()
        return warm.WarmProcess(ours, gone.pid)

    monkeypatch.setattr(grading.warm, "start", dead_child)
    run = grade("solutions", True, monkeypatch)
    assert len(started) == 1, "the warm path is tried once, then the cold one"
    assert run.passed and run.crash is None, run.crash


def test_stale_lock_and_log_files_are_swept(tmp_path):
    old = time.time() - 2 * 3600
    names = ["warm-a-1.lock", "warm-a-1.log", "warm-b-2.lock", "warm-b-2.log", "warm-c-3.log",
             "warm-d-4.lock"]
    for name in names:
        (tmp_path / name).write_text("crash trace" if name == "warm-c-3.log" else "")
    (tmp_path / "warm-b-2.sock").write_text("")  # b is alive: its files stay
    for name in names[:-1]:
        os.utime(tmp_path / name, (old, old))  # d's lock is fresh: a client is waiting on it
    removed = warm.sweep_stale(tmp_path, keep=tmp_path / "warm-z-9.sock")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert removed == 2 and left == ["warm-b-2.lock", "warm-b-2.log", "warm-b-2.sock",
                                     "warm-c-3.log", "warm-d-4.lock"], left

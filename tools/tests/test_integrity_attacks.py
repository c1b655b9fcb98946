"""Every forgery tried against grading, as a learner's file would try it, warm and cold.

Each attack is a solved s00 file with a few hostile lines added (so a missed defence would
show as a pass). The audit-hook attacks switch the static check off in the parent, so they
prove the hook on its own; the static check has its own tests (test_integrity_static.py).
A regression turns a refusal into a pass, a forged score or a process left running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools import grading
from tools.course import ROOT, find_step
from tools.grading import run_step
from tools.pytest_report import HIDDEN_MESSAGE_CHARS, HIDDEN_NOTE, MAX_MESSAGE_CHARS
from tools.tests.points import step_points

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process control is Linux's")

STEP = find_step("s00_toolbox")
MODES = [pytest.param(True, id="warm"), pytest.param(False, id="cold")]

# name -> hostile lines; "# ATTACK" marks the line the verdict must name
HOOK_ATTACKS = {
    "gc_objects": "import gc\n"
                  "found = [o for o in gc.get_objects() if type(o).__name__ == 'Config']  # ATTACK",
    "gc_referrers": "import gc\nimport numpy\ngc.get_referrers(numpy)  # ATTACK",
    "getframe": "import sys\ngrader = sys._getframe(1)  # ATTACK",
    "inspect_stack": "import inspect\nframes = inspect.stack()  # ATTACK",
    "traceback_frame": "try:\n    raise ValueError\nexcept ValueError as e:\n"
                       "    f = e.__traceback__.tb_frame  # ATTACK",
    "settrace": "import sys\nsys.settrace(lambda *a: None)  # ATTACK",
    "setprofile": "import sys\nsys.setprofile(lambda *a: None)  # ATTACK",
    "import_tools": "import importlib\nimportlib.import_module('tools.release')  # ATTACK",
    "import_statement": "def sneak():\n    import tools.release  # ATTACK\nsneak()",
    "dunder_import": "__import__('graders.mutants')  # ATTACK",
    "import_solutions": "import importlib\n"
                        "importlib.import_module('solutions.s01_linear_regression')  # ATTACK",
    "ctypes": "import ctypes\nctypes.string_at(id(0), 8)  # ATTACK",
    "subprocess": "import subprocess\nsubprocess.Popen(['sleep', '600'])  # ATTACK",
    "os_system": "import os\nos.system('sleep 600 &')  # ATTACK",
    "fork": "import os\nif os.fork() == 0:  # ATTACK\n    import time\n    time.sleep(600)",
    "kill": "import os\nimport signal\nos.kill(os.getpid(), signal.SIGTERM)  # ATTACK",
    "read_hidden": "source = open('graders/hidden/test_s00_toolbox.py').read()  # ATTACK",
    "read_via_numpy": "import numpy\nnumpy.loadtxt('graders/test_s00_toolbox.py', dtype=str, "
                      "delimiter='\\x01')  # ATTACK",
    "write_framework": "open('tools/pytest_report.py', 'a')  # ATTACK",
    "write_outside_scratch": "open('/tmp/ml2llm-integrity-attack.txt', 'w')  # ATTACK",
    "proc_environ": "open('/proc/self/environ', 'rb').read()  # ATTACK",
    "exec": "exec('x = 1')  # ATTACK",
    "socket": "import socket\nsocket.socket(socket.AF_UNIX)  # ATTACK",
    "setrlimit": "import resource\nlimit = resource.getrlimit(resource.RLIMIT_FSIZE)\n"
                 "resource.setrlimit(resource.RLIMIT_FSIZE, limit)  # ATTACK",
    "replace_code": "def f():\n    pass\nf.__code__ = (lambda: 1).__code__  # ATTACK",
    # a link in the scratch folder would hide a grader file behind a harmless name
    "link_in_scratch": "import os\nimport tempfile\n"
                       "os.symlink(os.path.abspath('graders'), "
                       "os.path.join(tempfile.gettempdir(), 'g'))  # ATTACK",
    # a relative path after a chdir names no graders/ folder
    "chdir_then_relative_read": "import os\nos.chdir('graders')\n"
                                "open('hidden/test_s00_toolbox.py').read()  # ATTACK",
    "caught_and_ignored": "import gc\ntry:\n    gc.get_objects()  # ATTACK\n"
                          "except BaseException:\n    pass",
}
FORGE_CHANNEL = textwrap.dedent("""\
    import json
    import os
    line = json.dumps({"seq": 0, "nonce": "0" * 32, "event": "result", "outcome": "passed",
                       "nodeid": "graders/test_s00_toolbox.py::x", "points": 675})
    for fd in range(3, 64):
        try:
            os.write(fd, (line + "\\n").encode())
        except OSError:
            pass
""")


def solved_with(tmp_path: Path, extra: str) -> tuple[Path, int | None]:
    """A solved s00 file with `extra` appended; the line number of its # ATTACK line."""
    solution = STEP.solution.read_text()
    path = tmp_path / "s00_toolbox.py"
    path.write_text(solution + "\n" + extra + "\n")
    marks = [i for i, line in enumerate(path.read_text().splitlines(), 1) if "# ATTACK" in line]
    return path, (marks[0] if marks else None)


def grade(path: Path, warm_on: bool, monkeypatch, *, static: bool = False, **kwargs):
    monkeypatch.setenv("ML2LLM_WARM", "1" if warm_on else "0")
    if not static:  # prove the audit hook on its own
        monkeypatch.setattr(grading.allowlist, "problems", lambda step, path: [])
    return run_step(STEP, str(path), files=[STEP.public_graders, STEP.hidden_graders], **kwargs)


def session_alive(sid: int) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                alive.append(int(entry.name))
    return alive


@pytest.mark.parametrize("warm_on", MODES)
@pytest.mark.parametrize("attack", HOOK_ATTACKS)
def test_reaching_into_the_grader_is_an_integrity_verdict(attack, warm_on, monkeypatch,
                                                         tmp_path):
    path, line = solved_with(tmp_path, HOOK_ATTACKS[attack])
    run = grade(path, warm_on, monkeypatch)
    assert run.integrity, (attack, run.crash, [(t.name, t.outcome, t.message) for t in run.tests])
    assert not run.passed and run.points == 0
    assert run.crash.startswith("Integrity: ") and f"s00_toolbox.py, line {line}," in run.crash
    assert not session_alive(run.pid), "a process of the step outlived it"


@pytest.mark.parametrize("warm_on", MODES)
def test_the_solution_passes_with_the_hook_on(warm_on, monkeypatch, tmp_path):
    path, _ = solved_with(tmp_path, "")
    run = grade(path, warm_on, monkeypatch, static=True)
    assert run.passed and not run.integrity and run.points == run.max_points > 0, run.crash


@pytest.mark.parametrize("warm_on", MODES)
def test_writing_to_the_report_channel_is_caught(warm_on, monkeypatch, tmp_path):
    for tail in ("", "os._exit(0)\n"):  # and the old trick: forge lines, then leave at once
        path, _ = solved_with(tmp_path, FORGE_CHANNEL + tail)
        run = grade(path, warm_on, monkeypatch)
        assert not run.passed and run.points == 0
        assert run.crash and "report channel" in run.crash, run.crash


@pytest.mark.parametrize("warm_on", MODES)
@pytest.mark.parametrize("forgery", ["truncate", "shouldfail", "internal"])
def test_a_forged_session_is_interrupted(forgery, warm_on, monkeypatch, tmp_path):
    """What a forger who reached pytest's session does, caught by the trusted expectations."""
    path, _ = solved_with(tmp_path, "")
    monkeypatch.setenv("ML2LLM_TEST_FORGE", forgery)
    run = grade(path, warm_on, monkeypatch, static=True,
                extra_args=["-p", "tools.tests.integrity_forgers"])
    assert not run.passed and "was interrupted" in run.crash, (run.crash, run.exitstatus)
    assert run.max_points == sum(t.points for t in run.tests) == step_points(STEP.id)
    assert run.points < run.max_points


@pytest.mark.parametrize("warm_on", MODES)
def test_hidden_messages_are_capped_and_carry_no_grader_source(warm_on, monkeypatch, tmp_path):
    hidden_line = next(line.strip() for line in STEP.hidden_graders.read_text().splitlines()
                       if len(line.strip()) > 40)
    payload = f"{hidden_line}\n" + "A" * 20000 + "\nmore"
    extra = (f"def train_val_test_split(*args, **kwargs):\n"
             f"    raise ValueError({payload!r})\n")
    path, _ = solved_with(tmp_path, extra)
    run = grade(path, warm_on, monkeypatch)
    failed = [t for t in run.tests if t.outcome == "failed"]
    assert any(t.hidden for t in failed) and any(not t.hidden for t in failed)
    for t in failed:
        assert hidden_line not in (t.message or "")
        if t.hidden:
            assert len(t.message) <= HIDDEN_MESSAGE_CHARS + len(HIDDEN_NOTE)
            assert "\n" not in t.message
        else:
            assert len(t.message) <= MAX_MESSAGE_CHARS


@pytest.mark.parametrize("warm_on", MODES)
def test_nothing_outlives_the_step(warm_on, monkeypatch, tmp_path):
    """A never-ending non-daemon thread and an atexit handler: the verdict comes at once, the
    process is gone and the handler never ran."""
    extra = ("import atexit\nimport threading\nimport time\n"
             "atexit.register(print, 'ATEXIT' + ' RAN')\n"
             "threading.Thread(target=time.sleep, args=(600,)).start()\n")
    path, _ = solved_with(tmp_path, extra)
    run = grade(path, warm_on, monkeypatch, budget=60)
    assert run.passed and not run.timed_out, run.crash
    assert "ATEXIT RAN" not in run.stderr_tail
    assert not session_alive(run.pid)


def test_kill_session_reaches_orphans_the_process_group_missed():
    proc = subprocess.Popen(
        [sys.executable, "-c", "import os, subprocess; subprocess.Popen(['sleep', '600'], "
                               "preexec_fn=lambda: os.setpgid(0, 0))"],
        start_new_session=True)
    proc.wait()  # its child, in a group of its own, is an orphan of the session now
    assert session_alive(proc.pid)
    assert grading.kill_session(proc.pid) >= 1
    assert not [p for p in session_alive(proc.pid) if Path(f"/proc/{p}/stat").exists()
                and " Z " not in Path(f"/proc/{p}/stat").read_text()]


@pytest.mark.parametrize("warm_on", MODES)
def test_the_file_size_cap_holds(warm_on, monkeypatch, tmp_path):
    monkeypatch.setenv("ML2LLM_FILE_CAP_MB", "1")
    extra = ("import tempfile\n"
             "with open(tempfile.gettempdir() + '/big.bin', 'wb') as f:\n"
             "    f.write(b'0' * (3 * 2**20))\n")
    path, _ = solved_with(tmp_path, extra)
    run = grade(path, warm_on, monkeypatch)
    assert not run.passed and not run.integrity
    assert any("File too large" in (t.message or "") for t in run.tests), run.tests[:1]


def test_killing_the_parent_still_leaves_a_verdict(tmp_path):
    """Cold, the grading child's parent is the learner's check.py: the kill is refused."""
    path, line = solved_with(tmp_path, "import os\nimport signal\n"
                                       "os.kill(os.getppid(), signal.SIGKILL)  # ATTACK")
    script = textwrap.dedent(f"""\
        import json
        from tools import grading
        from tools.course import find_step
        grading.allowlist.problems = lambda step, path: []
        run = grading.run_step(find_step("s00"), {str(path)!r})
        print(json.dumps({{"crash": run.crash, "points": run.points}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ, ML2LLM_WARM="0"), timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    verdict = json.loads(out.stdout.strip().splitlines()[-1])
    assert verdict["points"] == 0 and f"line {line}," in verdict["crash"], verdict

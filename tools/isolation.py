"""Grade one step in its own fresh, read-only copy of the trusted course tree, as nobody.

Used by CI (tools/ci_grade.py) and the instructor's gradebook (tools/gradebook.py), where the
learner's exercise files are untrusted and a forged verdict must be impossible:

1. ``snapshot()`` copies the trusted tree once -- graders (hidden ones included), conftest.py,
   tools/, pyproject.toml -- from the released commit (CI) or the instructor's checkout
   (gradebook) and hashes every file *before* anything is graded.
2. ``grade_step()`` gives every step a fresh copy of that snapshot holding only that step's
   graders and only that step's exercise file, checks its hashes, and makes it read-only. The
   grading runs in a driver process (``python -m tools.isolation drive STEP`` in the copy) that
   calls ``tools.grading.run_step`` and prints the result on a pipe.
3. Running as root (CI runs the grading under sudo; containers usually are root), the driver
   runs as a dedicated unprivileged uid per parallel slot: it cannot write the tree, the
   reports or another slot's files, and when the step ends every process of that uid is
   killed (``kill(-1)`` as that uid), so nothing the exercise started -- a daemon, a
   double-forked process in its own session -- outlives the step. Not root, the driver is a
   child subreaper that kills every descendant, and the parent kills what is left.
4. After the step the copy is hashed again: any change (a rewritten ``tools/pytest_report.py``,
   a hook appended to ``conftest.py``, an added file) voids the verdict with a plain
   integrity message. The verdict is checked against a calibration run of the untouched stub
   (the test ids and points the graders define); a missing or extra test is "interrupted".
5. ``report_safe()`` is what reports may show: hidden tests by number only, messages of
   public tests capped and withheld when they carry text of the hidden graders.

The driver makes itself non-dumpable, so code running as the same uid can neither trace it
nor write into its output pipe through /proc. Reports are written by the caller after every
child is dead, into a folder the grading uid cannot write.

What this does not cover: in-process tampering inside the grading child (the audit hook and
the report pipe of tools/grading.py), and -- without root -- a concurrently graded step
changing another step's copy and restoring it before the end (grade as root for official
grades; the hash check still catches a change that stays).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

TRUSTED_TOP = ("graders", "tools", "conftest.py", "pyproject.toml", "datasets")
# Not needed to grade, and big or mutable: instructor tests, mutants and the other folders
# that quote solution code (mutation and coverage reports, alternative answers), data caches.
SKIPPED = {("tools", "tests"), ("tools", "benchmarks"), ("graders", "mutants"),
           ("graders", "mutation"), ("graders", "coverage"), ("graders", "alternatives"),
           ("datasets", "cache")}
NOT_HASHED = {"tools/release.json"}  # it records the digest itself
STEP_TEST = re.compile(r"^graders/(hidden/)?test_(s\d\d_\w+)\.py$")
UID_BASE = 61000  # unprivileged uids for grading: UID_BASE + slot (ML2LLM_GRADING_UID)
MAX_EXERCISE_BYTES = 1 << 20
FILE_SIZE_CAP = 512 << 20  # bytes one grading process may write to one file
PROCESS_CAP = 512  # processes and threads of one grading uid
MESSAGE_CAP = 600  # characters of a public test's message in a report
HIDDEN_MESSAGE = "a hidden test failed (hidden tests are not described)"
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "ML2LLM_TEST_TIMEOUT", "ML2LLM_STEP_BUDGET",
            "ML2LLM_MEMORY_CAP_GB", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class IsolationError(RuntimeError):
    """The trusted tree cannot be prepared; the message says why."""


# --- the trusted tree -----------------------------------------------------------------------

def trusted_files(root: Path) -> list[str]:
    """Paths (relative, posix) of the files that decide a verdict."""
    found = []
    for top in TRUSTED_TOP:
        base = root / top
        if base.is_file() and not base.is_symlink():
            found.append(top)
            continue
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            rel = path.relative_to(root)
            if (path.is_symlink() or not path.is_file() or "__pycache__" in rel.parts
                    or path.suffix == ".pyc" or tuple(rel.parts[:2]) in SKIPPED):
                continue
            found.append(rel.as_posix())
    return sorted(found)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest_of(hashes: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(hashes):
        if rel not in NOT_HASHED:
            h.update(rel.encode() + b"\0" + bytes.fromhex(hashes[rel]))
    return h.hexdigest()


def tree_digest(root: Path) -> str:
    """sha256 over every trusted file of a course tree (tools/release.json aside)."""
    return digest_of({rel: sha256(root / rel) for rel in trusted_files(root)})


def framework_status(root: Path) -> dict:
    """Whether the files that decide a verdict are the released ones, for the local loop.

    ``{"digest": ..., "released": ... or None, "modified": bool or None}``: ``released`` is
    the ``trusted_sha256`` that tools/release.json recorded when the edition was built (None
    in a checkout that is no edition, e.g. the instructor's; then ``modified`` is None too).
    A pass graded with ``modified`` True was graded by edited graders, conftest.py or tools:
    it is not a pass of the released course."""
    digest = tree_digest(root)
    try:
        released = json.loads((root / "tools" / "release.json").read_text()).get(
            "trusted_sha256")
    except (OSError, ValueError, AttributeError):
        released = None
    return {"digest": digest, "released": released,
            "modified": None if released is None else digest != released}


@dataclass
class Trusted:
    """A read-only snapshot of the trusted tree, hashed before any grading."""

    root: Path
    hashes: dict[str, str]
    steps: list = field(default_factory=list)  # tools.course.Step of the snapshot's manifest

    @property
    def digest(self) -> str:
        return digest_of(self.hashes)

    def step_files(self, step_id: str) -> list[str]:
        """The snapshot's files a copy for `step_id` holds: no other step's graders."""
        def keep(rel: str) -> bool:
            m = STEP_TEST.match(rel)
            return m is None or m.group(2) == step_id
        return [rel for rel in self.hashes if keep(rel)]

    def hidden_sources(self) -> list[str]:
        return [(self.root / rel).read_text(encoding="utf-8", errors="replace")
                for rel in self.hashes if rel.startswith("graders/hidden/test_")]


def snapshot(source: Path, dest: Path, *, hidden: Path | None = None,
             stubs: dict[str, str] | None = None) -> Trusted:
    """Copy the trusted files of `source` (+ hidden graders, + pristine stubs) into `dest`."""
    from tools.course import load_steps  # noqa: PLC0415 (the snapshot's manifest, below)

    dest.mkdir(parents=True, exist_ok=True)
    for rel in trusted_files(source):
        _copy(source / rel, dest / rel)
    if hidden is not None and hidden.is_dir():
        src = hidden / "graders" / "hidden" if (hidden / "graders" / "hidden").is_dir() \
            else hidden
        for path in sorted(src.glob("test_s*.py")):
            _copy(path, dest / "graders" / "hidden" / path.name)
        if any((dest / "graders" / "hidden").glob("test_*.py")):
            (dest / "graders" / "hidden" / "__init__.py").touch()
    for step_id, text in (stubs or {}).items():
        stub = dest / "tools" / "pristine" / f"{step_id}.py"
        if not stub.exists():
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(text, encoding="utf-8")
    if not (dest / "tools" / "grading.py").is_file():
        raise IsolationError(f"{source} has no tools/grading.py: is it the course?")
    steps = load_steps(dest / "tools" / "curriculum.toml")
    ids = {s.id for s in steps}
    for rel in list(trusted_files(dest)):
        m = STEP_TEST.match(rel)
        if m and m.group(2) not in ids:  # hidden graders of steps not released
            (dest / rel).unlink()
    hashes = {rel: sha256(dest / rel) for rel in trusted_files(dest)}
    _read_only(dest)
    return Trusted(root=dest, hashes=hashes, steps=steps)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def _read_only(root: Path) -> None:
    """Files 0444, folders 0555: readable (and traversable) by the grading uid, not writable."""
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        os.chmod(path, 0o555 if path.is_dir() else 0o444, follow_symlinks=False)
    os.chmod(root, 0o555)


def remove_tree(root: Path) -> None:
    """rmtree a read-only tree (or one the grading uid left behind)."""
    def fix(func, path, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
        with contextlib.suppress(OSError):
            func(path)
    if root.exists():
        with contextlib.suppress(OSError):
            os.chmod(root, 0o700)
        shutil.rmtree(root, onerror=fix)


# --- privileges and processes ---------------------------------------------------------------

_probe_lock = threading.Lock()
_can_drop: bool | None = None


def can_drop_privileges() -> bool:
    """Root on Linux, and the interpreter runs as an unprivileged uid (probed once)."""
    global _can_drop
    with _probe_lock:
        if _can_drop is None:
            _can_drop = False
            if sys.platform == "linux" and os.geteuid() == 0 \
                    and os.environ.get("ML2LLM_DROP_PRIVILEGES", "1") != "0":
                try:
                    uid = UID_BASE
                    proc = subprocess.run([sys.executable, "-c", "import numpy, pytest"],
                                          user=uid, group=uid, extra_groups=[],
                                          capture_output=True, timeout=120, cwd="/")
                    _can_drop = proc.returncode == 0
                except (OSError, subprocess.SubprocessError):
                    _can_drop = False
    return _can_drop


class Slots:
    """Parallel grading slots, each with its own uid (root) held under a machine-wide lock."""

    def __init__(self, n: int):
        self.n = max(1, n)
        self._free: list[int] = []
        self._cond = threading.Condition()
        self._locks: dict[int, object] = {}
        self.drop = can_drop_privileges()
        if not self.drop:
            become_subreaper()  # orphans of a killed driver come back to us, to be swept
        base = int(os.environ.get("ML2LLM_GRADING_UID", UID_BASE))
        lock_dir = Path(tempfile.gettempdir()) / "ml2llm-grading-uids"
        uid = base
        while len(self._free) < self.n:
            if not self.drop:
                self._free.append(-1 - len(self._free))
                continue
            if not _uid_in_use(uid):
                lock_dir.mkdir(mode=0o700, exist_ok=True)
                f = open(lock_dir / f"{uid}.lock", "w")  # noqa: SIM115 (held until close)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._locks[uid] = f
                    kill_uid(uid)  # a previous run's leftovers, if any
                    self._free.append(uid)
                except OSError:
                    f.close()  # another grading run on this machine holds it
            uid += 1

    @contextlib.contextmanager
    def take(self):
        with self._cond:
            while not self._free:
                self._cond.wait()
            slot = self._free.pop()
        try:
            yield slot if slot >= 0 else None
        finally:
            with self._cond:
                self._free.append(slot)
                self._cond.notify()

    def close(self) -> None:
        for f in self._locks.values():
            f.close()


def _uid_in_use(uid: int) -> bool:
    import pwd  # noqa: PLC0415 (POSIX only)

    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, real uid, state) of every process (Linux /proc)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        try:
            table[int(entry)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]),
                                 fields["State"].strip()[:1])
        except (KeyError, ValueError, IndexError):
            continue
    return table


def processes_of_uid(uid: int) -> list[int]:
    """Live (not zombie) processes whose real uid is `uid`."""
    return [pid for pid, (_, u, state) in _proc_table().items() if u == uid and state != "Z"]


def kill_uid(uid: int) -> list[int]:
    """Kill every process of `uid`: kill(-1) sent as that uid reaches all of them at once."""
    left = processes_of_uid(uid)
    for _ in range(10):
        if not left:
            return []
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, group=uid,
                           extra_groups=[], env={}, cwd="/", timeout=30, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.05)
        left = processes_of_uid(uid)
    return left


def descendants(pid: int, table: dict | None = None) -> list[int]:
    table = _proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for p, (ppid, _, state) in table.items():
        if state != "Z":
            children.setdefault(ppid, []).append(p)
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def kill_descendants(pid: int) -> None:
    """SIGKILL every descendant of `pid` (and reap those that are our own children)."""
    for _ in range(20):
        found = descendants(pid)
        if not found:
            return
        for p in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.02)
        _reap_children(set())


_active_lock = threading.Lock()
_active: set[int] = set()  # drivers running now (for the non-root orphan sweep)


def _reap_children(keep: set[int]) -> None:
    """Reap our zombie children other than `keep` (never waitpid(-1): Popen owns its own)."""
    me = os.getpid()
    for pid, (ppid, _, state) in _proc_table().items():
        if ppid == me and state == "Z" and pid not in keep:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)


def sweep_orphans() -> None:
    """Without root: kill processes re-parented to us (a subreaper) that are no driver."""
    if sys.platform != "linux":
        return
    me = os.getpid()
    with _active_lock:
        table = _proc_table()
        for pid, (ppid, _, state) in table.items():
            if ppid == me and pid not in _active and state != "Z":
                for p in [*descendants(pid, table), pid]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(p, signal.SIGKILL)
        active = set(_active)
    time.sleep(0.02)
    _reap_children(active)


def _prctl(option: int, value: int) -> bool:
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36


def become_subreaper() -> bool:
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


# --- one step -------------------------------------------------------------------------------

def grade_step(trusted: Trusted, step, exercise: bytes | None, work: Path, *,
               uid: int | None = None, calibration: dict | None = None) -> dict:
    """Grade `exercise` (the bytes of exercises/<id>.py) for `step` in a fresh copy.

    Returns the verdict record (see ``_verdict``); never raises for learner misbehaviour.
    """
    start = time.monotonic()
    full = calibration["max_points"] if calibration else None
    if exercise is None:
        return _verdict(step, "not submitted", f"exercises/{step.id}.py is not in the work",
                        max_points=full)
    if len(exercise) > MAX_EXERCISE_BYTES:
        return _verdict(step, "integrity", f"exercises/{step.id}.py is {len(exercise)} bytes, "
                        f"more than the {MAX_EXERCISE_BYTES} allowed", max_points=full)
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o711)  # the grading uid may traverse, not list
    tree, scratch = work / "tree", work / "scratch"
    try:
        expected = _build_step_tree(trusted, step.id, exercise, tree)
        scratch.mkdir()
        if uid is not None:
            os.chown(scratch, uid, uid)
        os.chmod(scratch, 0o700)
        changed = _changes(tree, expected)
        if changed:  # cannot happen unless the snapshot itself was touched
            return _verdict(step, "integrity", f"the copy of the graders for {step.id} does "
                            f"not match the trusted tree before grading ({changed})",
                            max_points=full)
        raw, problem = _run_driver(tree, scratch, step, uid)
        if uid is not None:  # nothing the step started survives it, before the re-hash
            kill_uid(uid)
        else:
            sweep_orphans()
        changed = _changes(tree, expected)
    finally:
        if uid is not None:
            kill_uid(uid)
        remove_tree(work)
    seconds = round(time.monotonic() - start, 2)
    if changed:
        return _verdict(step, "integrity", f"the grading tree changed while {step.id} was "
                        f"graded ({changed}): the verdict of this step is void. An exercise "
                        "module may not write course files.", seconds=seconds, max_points=full)
    if raw is None:
        return _verdict(step, "interrupted", f"grading {step.id} was interrupted: {problem}",
                        seconds=seconds, max_points=full)
    return _checked(step, raw, calibration, seconds)


def _build_step_tree(trusted: Trusted, step_id: str, exercise: bytes, tree: Path) -> dict:
    files = trusted.step_files(step_id)
    for rel in files:
        _copy(trusted.root / rel, tree / rel)
    target = tree / "exercises" / f"{step_id}.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(exercise)
    expected = {rel: trusted.hashes[rel] for rel in files}
    expected[f"exercises/{step_id}.py"] = hashlib.sha256(exercise).hexdigest()
    _read_only(tree)
    return expected


def _changes(tree: Path, expected: dict[str, str]) -> str | None:
    """The first file added, removed or changed in `tree`, or None."""
    found = {p.relative_to(tree).as_posix(): p for p in tree.rglob("*")
             if not p.is_dir() or p.is_symlink()}
    for rel in sorted(set(found) | set(expected)):
        if rel not in expected:
            return f"{rel} was added"
        if rel not in found:
            return f"{rel} was removed"
        path = found[rel]
        if path.is_symlink() or not path.is_file() or sha256(path) != expected[rel]:
            return f"{rel} was modified"
    return None


def _driver_env(scratch: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env.update(HOME=str(scratch), TMPDIR=str(scratch), PYTHONDONTWRITEBYTECODE="1",
               PYTHONNOUSERSITE="1", ML2LLM_WARM="0", ML2LLM_ISOLATED="1", MPLBACKEND="Agg",
               MPLCONFIGDIR=str(scratch), HYPOTHESIS_STORAGE_DIRECTORY=str(scratch / ".hyp"))
    return env


def _run_driver(tree: Path, scratch: Path, step, uid: int | None) -> tuple[dict | None, str]:
    """Run the driver in `tree`; (its result, or None and why)."""
    from tools.course import Step  # noqa: F401,PLC0415 (type of `step`)

    budget = float(os.environ.get("ML2LLM_STEP_BUDGET") or step.budget)
    creds = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
    with tempfile.TemporaryFile() as err:
        with _active_lock:  # (a sweep never sees a driver it does not know)
            proc = subprocess.Popen(
                [sys.executable, "-E", "-s", "-B", "-m", "tools.isolation", "drive", step.id],
                cwd=tree, env=_driver_env(scratch), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=err, start_new_session=True, **creds)
            _active.add(proc.pid)
        try:
            out, _ = proc.communicate(timeout=budget + 60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            out, _ = proc.communicate()
            return None, f"the grading did not end within {budget + 60:g} s"
        finally:
            with _active_lock:
                _active.discard(proc.pid)
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith('{"ml2llm_driver"'):
            try:
                return json.loads(line), ""
            except json.JSONDecodeError:
                break
    return None, (f"the grading process ended (exit code {proc.returncode}) without a "
                  "verdict" + (": " + tail.strip().splitlines()[-1][:200] if tail.strip()
                               else ""))


def _verdict(step, status: str, message: str, *, seconds: float = 0.0,
             points: float = 0.0, max_points: float | None = None,
             tests: list | None = None) -> dict:
    return {"id": step.id, "title": step.title, "status": status, "points": points,
            "max_points": max_points, "seconds": seconds, "verdict": message,
            "integrity": message if status == "integrity" else None, "tests": tests or []}


def _checked(step, raw: dict, calibration: dict | None, seconds: float) -> dict:
    """The driver's result, held to the test ids and points of the calibration run."""
    tests = raw.get("tests", [])
    full = calibration["max_points"] if calibration else None
    for key in ("integrity", "interrupted"):  # the grading process's own checks: 0 points
        if raw.get(key):
            return _verdict(step, key, str(raw[key])[:500], seconds=seconds, max_points=full,
                            tests=_trusted_flags(tests, calibration))
    ids = [t["nodeid"] for t in tests]
    if calibration is not None:
        want = {t["nodeid"]: t for t in calibration["tests"]}
        missing, extra = set(want) - set(ids), set(ids) - set(want)
        if missing or extra or len(ids) != len(set(ids)):
            return _verdict(step, "interrupted", f"grading {step.id} was interrupted: "
                            f"{len(missing)} of its {len(want)} tests were not reported and "
                            f"{len(extra) + len(ids) - len(set(ids))} were unexpected",
                            seconds=seconds, max_points=full)
        tests = _trusted_flags(tests, calibration)
    points = float(sum(t["points"] for t in tests if t["outcome"] == "passed"))
    max_points = _max(tests, calibration)
    passed = bool(raw.get("passed")) and raw.get("finished") and bool(tests) and \
        all(t["outcome"] in ("passed", "skipped") for t in tests)
    status = "passed" if passed else ("crashed" if raw.get("crash") else "failed")
    bad = next((t for t in tests if t["outcome"] not in ("passed", "skipped")), None)
    message = raw.get("crash") or (None if passed else (
        f"{bad['nodeid'].split('::')[-1]}: {(bad.get('message') or bad['outcome'])}"
        if bad else "no test passed"))
    return _verdict(step, status, message or "", seconds=seconds, points=points,
                    max_points=max_points, tests=tests) | {
        "collect_errors": len(raw.get("collect_errors") or [])}


def _trusted_flags(tests: list, calibration: dict | None) -> list:
    """Points and hidden flags from the trusted run; tests it does not know are dropped."""
    if calibration is None:
        return tests
    want = {t["nodeid"]: t for t in calibration["tests"]}
    return [dict(t, points=want[t["nodeid"]]["points"], hidden=want[t["nodeid"]]["hidden"])
            for t in tests if t["nodeid"] in want]


def _max(tests: list, calibration: dict | None) -> float:
    if calibration is not None:
        return calibration["max_points"]
    return float(sum(t["points"] for t in tests if t["outcome"] != "skipped"))


def calibrate(trusted: Trusted, step, stub: bytes, work: Path, *, uid: int | None) -> dict:
    """Grade the untouched stub: the test ids, points and hidden flags the graders define."""
    v = grade_step(trusted, step, stub, work, uid=uid)
    tests = [{"nodeid": t["nodeid"], "points": float(t["points"]), "hidden": bool(t["hidden"]),
              "outcome": t["outcome"]} for t in v["tests"]]
    return {"tests": tests, "verdict": v,
            "max_points": float(sum(t["points"] for t in tests if t["outcome"] != "skipped"))}


# --- what reports may show ------------------------------------------------------------------

_LINE_MIN = 24  # characters: shorter lines (imports, `return x`) occur in any code


class SecretScan:
    """Finds text of the hidden graders in a message: verbatim, base64, hex or zlib'd."""

    def __init__(self, hidden_sources: list[str], public_sources: list[str] = ()):
        public = {ln.strip() for src in public_sources for ln in src.splitlines()}
        self.lines = {ln.strip() for src in hidden_sources for ln in src.splitlines()
                      if len(ln.strip()) >= _LINE_MIN and ln.strip() not in public}

    def holds(self, text: str | None) -> bool:
        if not text or not self.lines:
            return False
        for candidate in [text, *_decodings(text)]:
            squashed = " ".join(candidate.split())
            if any(" ".join(ln.split()) in squashed for ln in self.lines):
                return True
        return False


def _decodings(text: str) -> list[str]:
    """Long base64 / hex tokens of `text`, decoded (and inflated when zlib'd)."""
    out = []
    for token in re.findall(r"[A-Za-z0-9+/=_-]{32,}", text):
        padded = token.rstrip("=") + "=" * (-len(token.rstrip("=")) % 4)
        for decode, arg in ((base64.b64decode, padded), (base64.urlsafe_b64decode, padded),
                            (binascii.unhexlify, token)):
            try:
                data = decode(arg)
            except (ValueError, binascii.Error):
                continue
            with contextlib.suppress(zlib.error):
                data = zlib.decompress(data)
            out.append(data.decode("utf-8", errors="replace"))
    return out


def cap(text: str | None, limit: int = MESSAGE_CAP) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[:limit] + " [... cut]"


def report_safe(verdict: dict, scan: SecretScan) -> dict:
    """A copy of `verdict` fit for any report: hidden tests numbered, texts capped and scanned."""
    safe = {k: v for k, v in verdict.items() if k != "tests"}
    tests, n_hidden = [], 0
    for t in verdict.get("tests", []):
        if t.get("hidden"):
            n_hidden += 1
            tests.append({"name": f"hidden test {n_hidden}", "outcome": t["outcome"],
                          "points": t["points"], "hidden": True, "exc_type": None,
                          "message": HIDDEN_MESSAGE if t["outcome"] not in
                          ("passed", "skipped") else None, "where": None})
            continue
        message = cap(t.get("message"))
        if scan.holds(t.get("message")):
            message = "(message withheld: it carries text of the hidden graders)"
        tests.append({"name": str(t["nodeid"]).split("::")[-1][:120],
                      "outcome": t["outcome"], "points": t["points"], "hidden": False,
                      "exc_type": cap(t.get("exc_type"), 80), "message": message,
                      "where": cap(t.get("where"), 200)})
    safe["tests"] = tests
    first_bad = next((t for t in verdict.get("tests", []) if t["outcome"] not in
                      ("passed", "skipped")), None)
    text = safe.get("verdict") or ""
    if first_bad is not None and first_bad.get("hidden") and safe["status"] == "failed":
        text = HIDDEN_MESSAGE
    safe["verdict"] = ("(withheld: it carries text of the hidden graders)" if scan.holds(text)
                       else cap(text))
    if safe.get("integrity"):
        safe["integrity"] = safe["verdict"]
    safe["hidden_failed"] = sum(t["hidden"] and t["outcome"] not in ("passed", "skipped")
                                for t in tests)
    return safe


# --- the driver (runs in the step's copy, as the grading uid) -------------------------------

def drive(step_id: str) -> int:
    """Grade one step with tools.grading.run_step; print the result as one JSON line."""
    _prctl(PR_SET_DUMPABLE, 0)  # same-uid code can neither trace us nor open our fds
    sys.dont_write_bytecode = True
    subreaper = become_subreaper()
    _limit(getattr(__import__("resource"), "RLIMIT_FSIZE", None), FILE_SIZE_CAP)
    _limit(getattr(__import__("resource"), "RLIMIT_NPROC", None), PROCESS_CAP)
    _limit(getattr(__import__("resource"), "RLIMIT_CORE", None), 0)
    out = os.fdopen(os.dup(1), "w")  # keep our pipe; nothing else of ours writes to it
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    from tools.course import find_step  # noqa: PLC0415 (from the copy: cwd is the tree)
    from tools.grading import run_step  # noqa: PLC0415

    step = find_step(step_id)
    run = run_step(step, "exercises")
    if subreaper:
        kill_descendants(os.getpid())
    tests = [{"nodeid": t.nodeid, "outcome": t.outcome, "points": float(t.points or 0),
              "hidden": bool(t.hidden), "exc_type": t.exc_type,
              "message": cap(t.message, 4000), "where": t.where} for t in run.tests]
    record = {"ml2llm_driver": 1, "tests": tests, "passed": bool(run.passed),
              "finished": bool(run.finished), "crash": cap(run.crash, 2000),
              "integrity": _text(getattr(run, "integrity", None)),
              "interrupted": _text(getattr(run, "interrupted", None)),
              "collect_errors": [cap(e, 500) for e in run.collect_errors],
              "seconds": round(run.seconds, 2)}
    out.write(json.dumps(record) + "\n")
    out.flush()
    return 0


def _text(value) -> str | None:
    """A refusal or interruption of tools/grading.py (a string or a list of them), capped."""
    if not value:
        return None
    return cap("; ".join(map(str, value)) if isinstance(value, list | tuple) else str(value),
               1000)


def _limit(kind, value: int) -> None:
    import resource  # noqa: PLC0415 (POSIX only; the driver runs there)

    if kind is None:
        return
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(kind)
        new = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (new, new))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "drive":
        sys.path.insert(0, os.getcwd())
        sys.exit(drive(sys.argv[2]))
    print("python -m tools.isolation drive STEP  (run by tools/isolation.py, not by people)")
    sys.exit(2)


# --- many steps, many learners --------------------------------------------------------------

class Session:
    """Grades (key, step, exercise bytes) items in parallel slots against one snapshot.

    Each step is first calibrated on its untouched stub (``stubs``); an exercise identical
    to the stub gets that verdict as "not started" without being graded again.
    """

    def __init__(self, trusted: Trusted, stubs: dict[str, bytes], work: Path, jobs: int = 1):
        self.trusted, self.stubs, self.work = trusted, stubs, work
        self.jobs = max(1, jobs)
        self.slots = Slots(self.jobs)
        self.calibration: dict[str, dict] = {}
        self.scan = SecretScan(trusted.hidden_sources(), [
            (trusted.root / rel).read_text(errors="replace") for rel in trusted.hashes
            if rel.startswith("graders/") and not rel.startswith("graders/hidden/")])
        self._n = 0
        self._lock = threading.Lock()

    @property
    def isolation(self) -> str:
        return "unprivileged uid per step" if self.slots.drop else "hash check per step"

    def _workdir(self) -> Path:
        with self._lock:
            self._n += 1
            return self.work / f"step-{self._n}"

    def _map(self, fn, items: list) -> list:
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            return list(pool.map(fn, items))

    def calibrate(self, steps: list) -> None:
        def one(step):
            if step.id in self.calibration or step.missing_extras():
                return
            with self.slots.take() as uid:
                cal = calibrate(self.trusted, step, self.stubs[step.id], self._workdir(),
                                uid=uid)
            if not cal["tests"]:
                raise IsolationError(f"the untouched stub of {step.id} could not be graded, "
                                     f"so its tests are unknown: {cal['verdict']['verdict']}")
            self.calibration[step.id] = cal
        self._map(one, steps)

    def grade(self, items: list[tuple[object, object, bytes | None]]) -> dict:
        """{key: (step id -> verdict)}; every verdict already fit for a report."""
        self.calibrate(sorted({step.id: step for _, step, _ in items}.values(),
                              key=lambda s: s.id))

        def one(item):
            key, step, exercise = item
            missing = step.missing_extras()
            if missing:
                v = _verdict(step, f"needs {', '.join(missing)}", "this machine cannot grade "
                             f"{step.id}: install the {', '.join(missing)} extra")
            elif exercise is not None and exercise == self.stubs.get(step.id):
                v = dict(self.calibration[step.id]["verdict"], status="not started",
                         verdict="the exercise is the untouched stub")
            else:
                with self.slots.take() as uid:
                    v = grade_step(self.trusted, step, exercise, self._workdir(), uid=uid,
                                   calibration=self.calibration.get(step.id))
            return key, step.id, report_safe(v, self.scan)

        results: dict = {}
        for key, sid, v in self._map(one, items):
            results.setdefault(key, {})[sid] = v
        return results

    def close(self) -> None:
        if not self.slots.drop:
            sweep_orphans()
        self.slots.close()

"""A warm grading server: pay for the imports once, fork a fresh grader for every verdict.

Cold, every grading starts a Python process that imports pytest, NumPy, SciPy, scikit-learn,
hypothesis and torch before its first test runs: 2-5 s of each verdict on a 2-core machine,
most of a learner's wait. The server imports those third-party libraries once and forks a
child per grading. The child becomes its own session, takes the memory cap, redirects its
output to the caller's log and runs pytest in-process with the same arguments and environment
the cold command would get, then exits with pytest's status. Course code is never imported by
the server (this module imports nothing from the course), so learner files, graders,
conftest.py and tools/ are loaded fresh in every child and nothing goes stale.

One server serves every checkout of the course for one user and one interpreter: its Unix
socket lives in a private per-user folder, named ``warm-<family>-<key>.sock``: the family is
the interpreter and this file, the key adds the installed versions of what it preloads.
Upgrading a library (installing torch) changes the key: the new server retires
the family's older ones (a retired server finishes the gradings it runs, then exits), so
there is never a second server beside the first. Socket files left by a server that died are
removed. A server exits after ``ML2LLM_WARM_IDLE`` seconds (default 1800) without a grading,
or on SIGTERM, and removes its socket file either way. Linux only:
forking a process that has imported these libraries is safe there while it runs one thread
(BLAS pools are pinned to one thread); elsewhere, or with ``ML2LLM_WARM=0``, grading starts
a cold process as before (tools/grading.py).

Protocol, one connection per grading: the client sends one JSON line
``{"args": [...], "cwd": str, "env": {...}, "log": path, "memory_cap": bytes,
"file_cap": bytes}``, with the grading's report socket attached (SCM_RIGHTS) when it has one:
the child gets it as ``ML2LLM_REPORT_FD`` (tools/pytest_report.py), the server closes its own
copy at once. The server answers ``{"pid": n}`` once the child runs and ``{"returncode": rc}``
when it has been reaped (negative: killed by that signal, as subprocess reports it).

    python -m tools.warm stop             stop this user's servers (CI does, at the end);
                                          prints how many were running
    python -m tools.warm serve SOCKET     (started by the client; not for people)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import hashlib
import importlib
import importlib.util
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Third-party modules the graders import, heaviest first; a missing one is skipped.
PRELOAD = (
    "torch", "torch.nn", "torch.nn.functional", "torch.utils.data", "torch.optim",
    "torch._dynamo",  # imported by the first optimizer step: 2.5 s of sympy and friends
    "sklearn", "sklearn.base", "sklearn.calibration", "sklearn.cluster", "sklearn.datasets",
    "sklearn.decomposition", "sklearn.ensemble", "sklearn.linear_model", "sklearn.metrics",
    "sklearn.model_selection", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.svm",
    "sklearn.tree", "scipy", "scipy.special", "numpy", "hypothesis", "hypothesis.strategies",
    "hypothesis.extra.numpy", "pytest", "faulthandler", "resource",
)  # (not the pytest plugins themselves: pytest warns when a plugin was imported before it)
# What the key watches: a reinstall rewrites these packages' __init__ files.
KEY_PACKAGES = ("torch", "sklearn", "scipy", "numpy", "hypothesis", "pytest", "pytest_timeout")
# Read by libraries when they are imported, so they must match between server and client.
IMPORT_TIME_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MPLBACKEND")
IDLE_SECONDS = 1800.0  # a learner often codes for many minutes between two checks
START_SECONDS = 120.0  # the preload takes ~5 s here; far longer means something is wrong


def enabled() -> bool:
    return sys.platform == "linux" and os.environ.get("ML2LLM_WARM", "1") != "0"


def socket_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"ml2llm-{os.getuid()}"


def family() -> str:
    """The interpreter and this file: servers of one family replace each other."""
    h = hashlib.sha256(f"{sys.executable}\0".encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:8]


def socket_path(env: dict[str, str]) -> Path:
    return socket_dir() / f"warm-{family()}-{server_key(env)}.sock"


def server_key(env: dict[str, str]) -> str:
    """Changes whenever a server started now would differ from one started earlier."""
    h = hashlib.sha256()
    h.update(f"{sys.executable}\0{sys.version}\0".encode())
    h.update(Path(__file__).read_bytes())
    for name in KEY_PACKAGES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec and spec.origin else ""
        stamp = os.stat(origin).st_mtime_ns if origin else 0
        h.update(f"{name}={origin}@{stamp}\0".encode())
    for name in IMPORT_TIME_ENV:
        h.update(f"{name}={env.get(name, '')}\0".encode())
    return h.hexdigest()[:16]


# --- client ----------------------------------------------------------------------------------

def is_running(env: dict[str, str]) -> bool:
    """True when a server for `env` is up, so the next grading skips the preload."""
    if not enabled():
        return False
    conn = _connect(socket_path(env))
    if conn is not None:
        conn.close()  # the server reads no request from it and goes on serving
    return conn is not None


class WarmProcess:
    """A grading child of the server, driven like a subprocess.Popen (pid, wait, returncode)."""

    def __init__(self, conn: socket.socket, pid: int, received: bytes = b""):
        self.conn, self.pid = conn, pid
        self.returncode: int | None = None
        self._buffer = received

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.conn.settimeout(left)  # 0: a non-blocking look
            try:
                chunk = self.conn.recv(4096)
            except (TimeoutError, BlockingIOError):
                raise subprocess.TimeoutExpired("warm grading", timeout) from None
            if not chunk:  # the server died: treat the child as killed
                self._finish(-9)
                return self.returncode
            self._buffer += chunk
        self._finish(int(json.loads(self._buffer.split(b"\n", 1)[0])["returncode"]))
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, 9)

    def _finish(self, returncode: int) -> None:
        self.returncode = returncode
        self.conn.close()


def start(args: list[str], cwd: Path, env: dict[str, str], log: Path, memory_cap: int,
          file_cap: int = 0, report_fd: int | None = None) -> WarmProcess | None:
    """Run `pytest args` in a warm child; None when no server can be had (grade cold then).

    `report_fd` (a socket) is handed to the child as its grading report channel."""
    if not enabled():
        return None
    sock_dir = socket_dir()
    try:
        sock_dir.mkdir(mode=0o700, exist_ok=True)
        if sock_dir.stat().st_uid != os.getuid() or sock_dir.stat().st_mode & 0o077:
            return None  # someone else's folder: never hand our code to their server
        path = socket_path(env)
        conn = _connect(path) or _spawn_and_connect(path, env)
        if conn is None:
            return None
        request = json.dumps({"args": args, "cwd": str(cwd), "env": env, "log": str(log),
                              "memory_cap": memory_cap, "file_cap": file_cap}).encode() + b"\n"
        if report_fd is None:
            conn.sendall(request)
        else:
            sent = socket.send_fds(conn, [request], [report_fd])
            conn.sendall(request[sent:])
        conn.settimeout(30)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return None
            reply += chunk
        first, _, rest = reply.partition(b"\n")  # rest: the returncode line, if already sent
        return WarmProcess(conn, int(json.loads(first)["pid"]), rest)
    except (OSError, ValueError, KeyError):
        return None  # any trouble with the server: the cold path still grades


def _connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
        return conn
    except OSError:
        conn.close()
        return None


def _spawn_and_connect(path: Path, env: dict[str, str]) -> socket.socket | None:
    """Start a server for `path` (one at a time, under a lock) and connect to it."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = _connect(path)  # another client may have started it while we waited
        if conn is not None:
            return conn
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead server's socket
        retire_others(path)
        sweep_stale(path.parent, keep=path)
        server_env = {k: v for k, v in env.items() if not k.startswith("PYTEST_")}
        log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115 (kept by the child)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.warm", "serve", str(path)],
            cwd=Path(__file__).resolve().parent.parent, env=server_env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            conn = _connect(path)
            if conn is not None:
                return conn
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        return None


# --- server ----------------------------------------------------------------------------------

def serve(path: Path) -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (a library that fails to import is just not warm)
            pass
    gc.freeze()  # children's collections skip the preloaded heap (and leave its pages shared)
    signal.signal(signal.SIGTERM, _terminate)  # so `finally` removes the socket file
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # only after the preload: a connect means "ready"
    bound = os.stat(path).st_ino  # the file's own inode (fstat on the socket gives another)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    last_active = time.monotonic()
    idle = float(os.environ.get("ML2LLM_WARM_IDLE", IDLE_SECONDS))
    accepting = True
    try:
        while children or (accepting and time.monotonic() - last_active < idle):
            if accepting and selector.select(timeout=0.05):
                conn, _ = listener.accept()
                pid = _fork_child(conn, listener, children)
                if pid:
                    children[pid] = conn
                last_active = time.monotonic()
            elif not accepting:
                time.sleep(0.05)
            for pid, returncode in _reaped():
                conn = children.pop(pid, None)
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.sendall(json.dumps({"returncode": returncode}).encode() + b"\n")
                    conn.close()
                last_active = time.monotonic()
            if accepting and not _owns(path, bound):  # retired: finish, then stop
                accepting = False
                selector.unregister(listener)
    finally:
        with contextlib.suppress(OSError):
            if _owns(path, bound):
                path.unlink()
        listener.close()


def _owns(path: Path, inode: int) -> bool:
    """Whether `path` is still the socket file this server bound (not removed or replaced)."""
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _terminate(signum, frame) -> None:
    raise SystemExit(0)


def _reaped() -> list[tuple[int, int]]:
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        done.append((pid, code))


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    conn.settimeout(10)
    data, fds = b"", []
    while not data.endswith(b"\n"):
        chunk, more, _flags, _addr = socket.recv_fds(conn, 65536, 4)
        fds.extend(more)
        if not chunk:
            raise ValueError("connection closed before the request")
        data += chunk
    conn.settimeout(None)
    return json.loads(data), fds


def _fork_child(conn: socket.socket, listener: socket.socket,
                children: dict[int, socket.socket]) -> int | None:
    fds: list[int] = []
    try:
        request, fds = _read_request(conn)
    except (OSError, ValueError):
        conn.close()
        for fd in fds:
            os.close(fd)
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        listener.close()
        for other in children.values():
            other.close()
        _run_child(request, conn, fds[0] if fds else None)
    for fd in fds:
        os.close(fd)  # the child's report channel: only the child may hold it
    try:
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    except OSError:
        os.kill(pid, 9)
    return pid


def _run_child(request: dict, conn: socket.socket, report_fd: int | None) -> None:
    code = 70
    try:
        conn.close()
        os.setsid()  # its own session, so the step's end kills whatever learner code spawned
        import faulthandler
        import resource

        out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for limit, key in ((resource.RLIMIT_AS, "memory_cap"), (resource.RLIMIT_FSIZE, "file_cap")):
            with contextlib.suppress(ValueError, OSError, KeyError):
                cap = int(request[key])
                if cap > 0:
                    resource.setrlimit(limit, (cap, cap))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if report_fd is not None:
            os.environ["ML2LLM_REPORT_FD"] = str(report_fd)
        tempfile.tempdir = None  # TMPDIR is the step's scratch folder now
        # Exactly what `python -m pytest` in cwd would see: cwd first on the path and no
        # course module cached (this server imported tools.warm from its own checkout).
        sys.path[0] = request["cwd"]
        for name in [m for m in sys.modules if m == "tools" or m.startswith("tools.")]:
            del sys.modules[name]
        sys.argv = ["pytest", *request["args"]]
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        faulthandler.enable()
        import pytest

        code = int(pytest.main(request["args"]))
    except SystemExit as exc:  # a sys.exit that escaped pytest: exit with its code
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 (report and exit; never return into the server)
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # no atexit handler, no waiting for threads learner code left


def _sockets(family_id: str | None = None) -> list[Path]:
    pattern = f"warm-{family_id}-*.sock" if family_id else "warm-*.sock"
    return sorted(socket_dir().glob(pattern))


def _live(path: Path) -> bool:
    conn = _connect(path)
    if conn is not None:
        conn.close()
    return conn is not None


def retire_others(path: Path) -> int:
    """Retire this family's servers of other keys (e.g. from before torch was installed)."""
    retired = 0
    for other in _sockets(family()):
        if other != path:
            retired += _live(other)
            with contextlib.suppress(FileNotFoundError):
                other.unlink()  # a live server sees its name gone; a stale file just goes
    return retired


def sweep_stale(folder: Path, keep: Path, max_age: float = 3600.0) -> int:
    """Remove the .lock and .log files of servers long gone (their socket file is gone and the
    file is older than max_age seconds; a log with text is kept a week, for debugging).
    Returns how many files went. A client waiting on a lock has just opened it: never old."""
    removed, now = 0, time.time()
    for leftover in [*folder.glob("warm-*.lock"), *folder.glob("warm-*.log")]:
        if leftover.with_suffix(".sock") == keep or leftover.with_suffix(".sock").exists():
            continue
        with contextlib.suppress(OSError):
            info = leftover.stat()
            age = max_age if leftover.suffix == ".lock" or not info.st_size else 7 * 86400
            if now - info.st_mtime > age:
                leftover.unlink()
                removed += 1
    return removed


def stop_all(family_id: str | None = None) -> int:
    """Stop this user's servers (or one family's): each exits once its socket file is gone
    (within 50 ms, or when its running gradings end). Returns how many were running; socket
    files of servers that had died are removed without being counted."""
    stopped = 0
    for path in _sockets(family_id):
        stopped += _live(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stopped


def main(argv: list[str]) -> int:
    if argv == ["stop"]:
        print(f"stopped {stop_all()} warm grading server(s)")
        return 0
    if len(argv) != 2 or argv[0] != "serve":
        print(__doc__)
        return 2
    try:
        serve(Path(argv[1]))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

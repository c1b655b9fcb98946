"""An audit hook (PEP 578) that refuses what only a forger's code would do while it is graded.

Threat model. The learner's module is imported into the grading pytest process, so it could
reach into the grader: find pytest's Config or our Reporter with ``gc``, walk up to a grader's
frame, trace the grader, import pytest / tools / graders to patch them, read the hidden graders,
load native code with ctypes, start processes that outlive the verdict, kill the parent, or
write files a later step would read. ``install()`` adds, before any learner code is imported
(tools/pytest_report.py does it at configure time), an audit hook that cannot be removed.
Each event it watches is attributed to a frame; when that frame is learner code (any Python
file outside the standard library, site-packages and the course's trusted tree: graders/,
tools/, conftest.py), the hook reports an **integrity verdict** through the grading channel
(the parent gives the step 0 points with this sentence) and raises, so the operation does
not happen. Learner code that catches the exception changes nothing: the verdict has left.

Two ways to attribute an event, chosen per event:
- *caller*: the nearest frame after skipping the few standard modules that exist to hand that
  capability on (inspect and traceback for frames, ctypes for ctypes). Libraries that use the
  capability themselves (namedtuple and typing call sys._getframe, torch loads libraries with
  ctypes) are not learner code, so honest code never trips these.
- *anywhere*: any learner frame on the stack. For what no honest step does even through a
  library: processes, signals, sockets, writes outside the scratch directory, reading grader
  files or our own process' memory and environment.

Covered: CPython 3.11 raises these events (each was checked for real). Those marked * are
attacked in tools/tests/test_integrity_attacks.py, warm and cold, and must give the verdict:
    gc.get_objects*, gc.get_referrers*, gc.get_referents                    anywhere
    sys._getframe*, sys._current_frames, inspect.stack()*; tb_frame*,
        gi_frame, cr_frame, ag_frame (object.__getattr__)                    caller
    sys.settrace*, sys.setprofile*                                           anywhere
    import of pytest, _pytest, pluggy, tools*, graders*, conftest,
        solutions*: the "import" event fires for import statements and
        __import__ only; a meta-path finder catches importlib.import_module* anywhere
    ctypes.* (string_at*, dlopen, cdata, call_function, ...)                 caller
    subprocess.Popen*, os.system*, os.fork*, os.kill*, os.exec, os.spawn,
        os.posix_spawn, os.forkpty, os.killpg, signal.pthread_kill           anywhere
    socket.__new__*, resource.setrlimit*, resource.prlimit, sys.addaudithook anywhere
    open() for writing outside the scratch folder (the step's TMPDIR)*,
        of a file under graders/* (also through numpy*), or of
        /proc/self/{environ*, mem, fd, task, map_files}; os.remove, rename,
        rmdir, truncate, chmod, chown, utime, mkdir, shutil.rmtree outside
        the scratch folder; os.symlink and os.link anywhere                 anywhere
    exec*, eval, compile, code.__new__, function.__new__, and replacing a
        function's __code__* (a forged file name would pass for grader code) caller
Reads by linecache (a library formatting a traceback, as torch does when it defers CUDA
seeding) are let through: they serve tracebacks, and learner code cannot import linecache.

Not covered, because CPython raises no audit event for them (the static check in
tools/allowlist.py refuses the imports and names that lead there, and the parent's trusted
expectations and channel stamp catch a report that comes up short or forged):
    reading ``sys.modules`` (and patching a module's globals through it), ``signal.signal``
    (e.g. disarming pytest-timeout's alarm; the parent's step budget still holds),
    ``os.write`` to a guessed descriptor (the nonce catches it), ``os._exit`` (reported as an
    early exit), ``os.setsid``, ``_posixsubprocess.fork_exec`` (no event; the session sweep in
    tools/grading.py still kills what it starts), ``frame.f_back`` / ``f_globals`` on a
    frame already held, ``__subclasses__`` / ``__globals__`` walks, ``threading.settrace``
    (it traces only threads started later, from threading's own frames).
A determined attacker with full Python in-process can still find gaps; official grades also
rely on per-step isolation (a fresh trusted tree per step, tools/ci_grade.py).
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRUSTED = (str(ROOT / "graders") + os.sep, str(ROOT / "tools") + os.sep,
           str(ROOT / "conftest.py"))
GRADERS = str(ROOT / "graders") + os.sep
# Library code: the interpreter's own folders, and every site-packages folder on the path
# (an interpreter may see another environment's packages through a .pth file, as the
# gradebook's unprivileged-uid interpreter does).
LIBRARY = tuple(sorted({p.rstrip(os.sep) + os.sep for p in (
    *(sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")),
    *(p for p in sys.path if os.path.basename(p.rstrip(os.sep)) in ("site-packages",
                                                                     "dist-packages")))
    if p}))
FORBIDDEN_IMPORTS = frozenset({"pytest", "_pytest", "pluggy", "tools", "graders", "conftest",
                               "solutions"})
FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
WRAPPERS = {  # standard modules that only hand a capability on to their caller
    "frames": ("inspect.py", "traceback.py"),
    "ctypes": (os.path.join("ctypes", "__init__.py"), os.path.join("ctypes", "_endian.py")),
    "none": (),
}
# event -> (how to attribute it, wrapper set, what it is in a learner's words)
RULES: dict[str, tuple[str, str, str]] = {
    "gc.get_objects": ("anywhere", "none", "walks the garbage collector's objects"),
    "gc.get_referrers": ("anywhere", "none", "walks the garbage collector's referrers"),
    "gc.get_referents": ("anywhere", "none", "walks the garbage collector's referents"),
    "sys._getframe": ("caller", "frames", "inspects the call stack (sys._getframe)"),
    "sys._current_frames": ("caller", "frames", "inspects the call stack"),
    "object.__getattr__": ("caller", "frames", "reaches a stack frame"),
    "object.__setattr__": ("caller", "none", "replaces a function's code"),
    "sys.settrace": ("anywhere", "none", "installs a tracer (sys.settrace)"),
    "sys.setprofile": ("anywhere", "none", "installs a profiler (sys.setprofile)"),
    "import": ("anywhere", "none", "imports the grading machinery"),
    "subprocess.Popen": ("anywhere", "none", "starts a subprocess"),
    "os.system": ("anywhere", "none", "runs a shell command (os.system)"),
    "os.exec": ("anywhere", "none", "replaces the process (os.exec*)"),
    "os.spawn": ("anywhere", "none", "starts a process (os.spawn*)"),
    "os.posix_spawn": ("anywhere", "none", "starts a process (os.posix_spawn)"),
    "os.fork": ("anywhere", "none", "forks the process"),
    "os.forkpty": ("anywhere", "none", "forks the process"),
    "os.kill": ("anywhere", "none", "sends a signal (os.kill)"),
    "os.killpg": ("anywhere", "none", "sends a signal (os.killpg)"),
    "signal.pthread_kill": ("anywhere", "none", "sends a signal"),
    "socket.__new__": ("anywhere", "none", "opens a socket"),
    "sys.addaudithook": ("anywhere", "none", "adds an audit hook"),
    "resource.setrlimit": ("anywhere", "none", "changes the process' limits"),
    "resource.prlimit": ("anywhere", "none", "changes the process' limits"),
    "open": ("anywhere", "none", "opens a file"),
    "exec": ("caller", "none", "runs code from a string (exec/eval)"),
    "compile": ("caller", "none", "compiles code from a string"),
    "code.__new__": ("caller", "none", "builds a code object"),
    "function.__new__": ("caller", "none", "builds a function from a code object"),
}
FILE_EVENTS = {"os.remove": 0, "os.rename": 0, "os.rmdir": 0, "os.truncate": 0,
               "os.chmod": 0, "os.chown": 0, "os.utime": 0, "os.symlink": 1, "os.link": 1,
               "os.mkdir": 0, "shutil.rmtree": 0}  # event -> index of the path changed
for _event in ("dlopen", "dlsym", "dlsym/handle", "string_at", "wstring_at", "cdata",
               "cdata/buffer", "addressof", "call_function", "create_string_buffer",
               "create_unicode_buffer", "PyObj_FromPtr", "set_errno", "get_errno"):
    RULES[f"ctypes.{_event}"] = ("caller", "ctypes", "uses ctypes (raw memory and native code)")
for _event in FILE_EVENTS:
    RULES[_event] = ("anywhere", "none", "changes a file outside the scratch directory")
LINK_EVENTS = frozenset({"os.symlink", "os.link"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class IntegrityError(RuntimeError):
    """Raised in learner code in place of an operation grading does not allow."""


class _Hook:
    def __init__(self, on_violation: Callable[[str], None], scratch: str):
        self.on_violation, self.scratch = on_violation, scratch
        self.local = threading.local()  # re-entry guard: the hook itself calls sys._getframe
        self.pid = os.getpid()

    def __call__(self, event: str, args: tuple, depth: int = 1) -> None:
        """`depth`: frames between this call and the code that raised the event."""
        rule = RULES.get(event)
        if rule is None or getattr(self.local, "busy", False) or not self._relevant(event, args):
            return
        self.local.busy = True
        try:
            caller = sys._getframe(depth)
            culprit = None if event == "open" and self._for_traceback(caller) else \
                self._culprit(rule, caller)
        finally:
            self.local.busy = False
        if culprit is not None:
            self._refuse(event, args, rule[2], culprit)

    @staticmethod
    def _for_traceback(frame) -> bool:
        """linecache reading source for a traceback a library formats (torch records one
        when it defers CUDA seeding), not learner code reading a file."""
        for _ in range(3):
            if frame is None:
                return False
            if frame.f_code.co_filename.endswith(("linecache.py", "tokenize.py")):
                return True
            frame = frame.f_back
        return False

    def _relevant(self, event: str, args: tuple) -> bool:
        """Cheap argument tests first: most events are harmless by their arguments alone."""
        if event == "import":
            return str(args[0]).partition(".")[0] in FORBIDDEN_IMPORTS
        if event == "object.__getattr__":
            return args[1] in FRAME_ATTRS
        if event == "object.__setattr__":
            return args[1] == "__code__"
        if event == "open":
            return self._bad_open(*args[:3])
        if event in LINK_EVENTS:
            return True  # a link (even in scratch) would hide a grader file behind its name
        if event in FILE_EVENTS:
            return not self._in_scratch(args[FILE_EVENTS[event]])
        return True

    def _bad_open(self, path, mode, flags) -> bool:
        if isinstance(path, int):
            return False  # os.fdopen of a descriptor already held
        text = os.fsdecode(path)
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & WRITE_FLAGS)
        if not writing and text.startswith("/") and "graders" not in text \
                and "proc" not in text:
            # The common case (imports read hundreds of files by absolute path), without
            # the syscalls of realpath: graded code cannot make a link (refused above) and
            # a fresh tree holds none, so an absolute path that names neither graders/ nor
            # /proc cannot reach them (a relative one might, after a chdir: full check).
            return False
        full = os.path.realpath(text)
        if full.startswith(GRADERS):
            return True
        if full.startswith("/proc/"):
            parts = full.split("/")
            if len(parts) > 3 and parts[2] in ("self", "thread-self", str(self.pid)) \
                    and parts[3] in ("environ", "mem", "fd", "task", "map_files"):
                return True
        return bool(writing) and not self._in_scratch(text)

    def _in_scratch(self, path) -> bool:
        if isinstance(path, int):
            return True
        full = os.path.realpath(os.fsdecode(path))
        return full == os.devnull or full.startswith(self.scratch)

    @staticmethod
    def _culprit(rule: tuple[str, str, str], frame):
        """The learner frame responsible for the event, or None if it is not learner code."""
        how, wrappers = rule[0], WRAPPERS[rule[1]]
        if how == "caller":
            while frame is not None and frame.f_code.co_filename.endswith(wrappers):
                frame = frame.f_back
            return frame if frame is not None and is_learner_file(frame.f_code.co_filename) \
                else None
        while frame is not None:
            if is_learner_file(frame.f_code.co_filename):
                return frame
            frame = frame.f_back
        return None

    def _refuse(self, event: str, args: tuple, what: str, frame) -> None:
        where = _shown(frame.f_code.co_filename)
        detail = ""
        if event == "import" and str(args[0]).partition(".")[0] == "solutions":
            what = (f"imports `{args[0]}`: the reference solutions cannot be imported while "
                    "your work is graded")
        elif event == "import":
            detail = f" `{args[0]}`"
        elif event == "open" or event in FILE_EVENTS:
            detail = f" ({_shown(os.fsdecode(args[FILE_EVENTS.get(event, 0)]))})"
        message = (f"Integrity: {where}, line {frame.f_lineno}, {what}{detail}. Graded code "
                   "may only compute its answers, so this step scores 0 points; remove "
                   "that line.")
        self.on_violation(message)
        raise IntegrityError(message)


class _ImportGuard:
    """A meta-path finder for the imports that raise no audit event (importlib.import_module
    runs the import system in Python, past the C code that raises "import")."""

    def __init__(self, hook: _Hook):
        self.hook = hook

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in FORBIDDEN_IMPORTS:
            frame = _Hook._culprit(RULES["import"], sys._getframe(1))
            if frame is not None:
                self.hook._refuse("import", (fullname,), RULES["import"][2], frame)
        return None


def _warm_server_files() -> tuple[str, ...]:
    """The warm server's own tools/warm.py when this process is its grading child.

    One server serves every checkout of the course whose warm.py has the same bytes (see
    tools/warm.py), so its frames at the bottom of the stack may come from another copy of
    the course than the one graded: they are the server's code, not the learner's."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is None or spec.name != "tools.warm" or not spec.origin:
        return ()
    return tuple({spec.origin, os.path.realpath(spec.origin)})


def is_learner_file(name: str) -> bool:
    """A real Python file that is neither library code nor the course's trusted tree."""
    return not (name.startswith("<") or name.startswith(LIBRARY) or name.startswith(TRUSTED)
                or name in SERVER_FILES)


def _shown(path: str) -> str:
    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_absolute() and p.is_relative_to(ROOT) else p.name


_installed: list[_Hook] = []
SERVER_FILES: tuple[str, ...] = _warm_server_files()


def _prefiltered(hook: _Hook) -> Callable[[str, tuple], None]:
    """The hook behind a plain function that drops, in as few bytecodes as possible, the
    events it never acts on: a grading raises tens of thousands of them (builtins.id,
    attribute reads of frames' harmless fields), each a call into Python."""
    watched, frame_attrs = frozenset(RULES), FRAME_ATTRS

    def audit(event: str, args: tuple) -> None:
        if event in watched and (event != "object.__getattr__" or args[1] in frame_attrs):
            hook(event, args, 2)  # (skip this frame too)
    return audit


def install(on_violation: Callable[[str], None]) -> None:
    """Add the hook once per process; it stays until the process ends (PEP 578)."""
    if _installed:
        return
    hook = _Hook(on_violation, os.path.realpath(tempfile.gettempdir()) + os.sep)
    _installed.append(hook)
    sys.addaudithook(_prefiltered(hook))
    sys.meta_path.insert(0, _ImportGuard(hook))

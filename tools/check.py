"""The learner's loop: grade the current step, unlock the next, hint, watch, reset.

    python tools/check.py                 grade the current step (the first one not passed yet)
    python tools/check.py s03             grade one step (s03, 3, s03_softmax_regression, ...)
    python tools/check.py list            every step with its status, score and title
    python tools/check.py hint [STEP]     the next hint (--all: every hint)
    python tools/check.py watch           re-grade the current step each time you save it
    python tools/check.py reset STEP      restore the original stub (your file is backed up)
    python tools/check.py --all           grade every step, locks ignored (instructors, CI),
        [--junit PATH] [--json PATH] [--markdown PATH]   ... and write reports
    --impl exercises|solutions|PATH       what to grade (default: your exercises/)

Each step is graded in a child process (tools/grading.py), so nothing your code does -- loop,
crash, exit -- can take this tool down. Progress (.ml2llm/progress.json) is derived from your
files: delete it and it is rebuilt by grading again.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import sys
import textwrap
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import warm
from tools.course import ROOT, Step, find_step, load_steps
from tools.grading import (
    StepRun,
    TestResult,
    child_env,
    memory_cap_bytes,
    per_test_timeout,
    run_step,
)
from tools.progress import STATE_FILE, Progress, backup, file_sha256

CMD = "python tools/check.py"
COMMANDS = ("list", "hint", "watch", "reset")
POLL_SECONDS = 1.0


# --- output ------------------------------------------------------------------------------------

class Out:
    """Marks and colours that degrade to ASCII / plain text where the terminal cannot show them."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.color = self.tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        try:
            "✓✗▶·•—".encode(self.stream.encoding or "ascii")
            self.ok, self.bad, self.cur, self.dot, self.bullet = "✓", "✗", "▶", "·", "•"
        except (LookupError, UnicodeEncodeError):
            self.ok, self.bad, self.cur, self.dot, self.bullet = "ok", "x", ">", "-", "*"
        self.width = min(100, shutil.get_terminal_size((100, 24)).columns) - 2

    def paint(self, text: str, color: str) -> str:
        codes = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}
        return f"\033[{codes[color]}m{text}\033[0m" if self.color else text

    def __call__(self, text: str = "", end: str = "\n") -> None:
        self.stream.write(text + end)
        self.stream.flush()

    def para(self, text: str, indent: str = "") -> None:
        """A paragraph wrapped to the terminal; explicit line breaks are kept."""
        for line in text.splitlines() or [""]:
            self(textwrap.fill(line, self.width, initial_indent=indent,
                               subsequent_indent=indent + "  ") if line.strip() else "")

    def status(self, text: str) -> None:
        """A transient line (terminals only), overwritten by the next output."""
        if self.tty:
            self.stream.write("\r\033[K" + text[: self.width])
            self.stream.flush()

    def clear_status(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def rel(path: Path) -> str:
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def label(step: Step) -> str:
    return f"{step.id[:3]} · {step.title}"


TORCH_CPU = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"


def install_line(step: Step) -> str:
    extras = step.missing_extras()
    line = f"{step.id[:3]} needs {', '.join(extras)}: pip install '.[{','.join(extras)}]'"
    if "torch" in extras and sys.platform == "linux":  # PyPI's Linux torch is a CUDA build
        line += f" (no NVIDIA GPU? first: {TORCH_CPU}, a far smaller download)"
    return line


# --- plain words for what went wrong ------------------------------------------------------------

def clean_message(message: str | None) -> str:
    """The grader's words without pytest's assertion-rewriting explanation after them."""
    lines = (message or "").strip().splitlines()
    for i, line in enumerate(lines):
        if i > 0 and re.match(r"\s*assert ", line):
            lines = lines[:i]
            break
    if lines and re.match(r"\s*assert ", lines[0]):
        lines = lines[:4]
    return "\n".join(lines).strip()


def explain(t: TestResult) -> str:
    """One paragraph saying what a failure means, in a learner's words."""
    exc, msg = t.exc_type or "", clean_message(t.message)
    if exc == "SystemExit":
        when = " while the module was being imported" if (t.where or "").endswith(
            "<module>") else ""
        return (f"Your code called sys.exit({msg or ''}) (or exit() / quit()){when}. A module "
                "must return its results, never end the program: remove that call.")
    if exc == "Failed" and msg.startswith("Timeout"):
        return (f"This test took longer than {per_test_timeout():g} s and was stopped: an "
                "infinite loop (a while-loop whose condition never changes?) or code far "
                "slower than it needs to be (a Python loop over every element where one array "
                "operation would do).")
    if exc == "RecursionError":
        return ("Infinite recursion: a function keeps calling itself (or two functions call "
                "each other) without ever reaching a base case.")
    if exc == "MemoryError":
        return (f"Out of memory (grading may use {memory_cap_bytes() / 2**30:g} GiB): an array "
                "far bigger than intended? Check the shapes you allocate; an (n, n) matrix "
                "where (n,) was meant grows fast.")
    if exc == "ValueError" and re.search(r"broadcast|matmul|not aligned|core dimension", msg):
        return (f"Array shapes do not fit together: {msg}. Print the shapes on that line; a "
                "missing transpose, reshape or keepdims=True is the usual cause.")
    if exc == "TypeError" and "NoneType" in msg:
        return f"TypeError: {msg}. A function returned None: did you forget a `return`?"
    if exc == "ZeroDivisionError":
        return f"Division by zero ({msg}): guard the denominator, a count or a std can be 0."
    if exc in ("AssertionError", "Failed", ""):
        return msg or "the test failed without a message"
    return f"{exc}: {msg}" if msg else exc


def stub_todos(path: Path) -> dict[int, tuple[str, str]]:
    """{line: (function, message)} of every `raise NotImplementedError("...")` left in a file."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    todos: dict[int, tuple[str, str]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(child):
                    exc = getattr(sub, "exc", None) if isinstance(sub, ast.Raise) else None
                    if (isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name)
                            and exc.func.id == "NotImplementedError" and exc.args
                            and isinstance(exc.args[0], ast.Constant)):
                        todos[sub.lineno] = (f"{prefix}{child.name}", str(exc.args[0].value))

    visit(tree, "")
    return todos


def _line_of(where: str | None) -> int:
    m = re.search(r":(\d+)", where or "")
    return int(m.group(1)) if m else 10**9


def render_failure(run: StepRun, out: Out) -> None:
    """What is left to do and what is wrong, grouped so identical failures read once."""
    if run.crash:
        out()
        out.para(run.crash, "  ")
    if run.collect_errors:
        out()
        out.para(f"The graders of {run.step.id} could not be loaded, so nothing was graded. "
                 "This is a problem with the course files or a package they import; the "
                 "end of the error was:", "  ")
        for line in run.collect_errors[0].strip().splitlines()[-6:]:
            out(f"      {line}")
    failing = [t for t in run.tests if t.outcome in ("failed", "error")]
    todos: dict[tuple[str, str], list[TestResult]] = {}
    problems: dict[tuple[str, str, str], list[TestResult]] = {}
    for t in failing:
        if t.exc_type == "NotImplementedError":
            todos.setdefault((t.message or "", t.where or ""), []).append(t)
        else:
            problems.setdefault((t.exc_type or "", t.message or "", t.where or ""), []).append(t)
    graded = run.step.exercise if run.impl == "exercises" else Path(run.impl)
    remaining = {line: (func, msg, 0) for line, (func, msg) in stub_todos(graded).items()}
    for (message, where), tests in todos.items():
        line = _line_of(where)
        func = remaining.get(line, (where.rsplit(" in ", 1)[-1] if where else "?",))[0]
        remaining[line] = (func, message, len(tests))
    if remaining:
        out()
        out(f"Still to implement in {rel(graded)} (each of these raises NotImplementedError):")
        for line, (func, message, n) in sorted(remaining.items()):
            where = f"{func}, line {line}" if line < 10**9 else func
            blocked = f"; {n} test{'s' if n > 1 else ''}" if n else ""
            out(f"  {out.bullet} {message or 'NotImplementedError'}  "
                + out.paint(f"({where}{blocked})", "dim"))
    for (_exc, _msg, where), tests in problems.items():
        out()
        pts = sum(t.points for t in tests)
        names = [("hidden: " if t.hidden else "") + t.name for t in tests]
        if len(tests) == 1:
            head = f"{names[0]} ({pts:g} point{'s' if pts != 1 else ''})"
        else:
            head = f"{len(tests)} tests fail the same way ({pts:g} points): " + ", ".join(names)
        out(out.paint(f"{out.bad} ", "red") + head)
        out.para(explain(tests[0]), "    ")
        if where:
            out(f"    at {where}")


def render_run(run: StepRun, prog: Progress | None, out: Out) -> None:
    step = run.step
    skipped = [t for t in run.tests if t.outcome == "skipped"]
    note = f"; {len(skipped)} skipped (optional extras missing)" if skipped else ""
    if run.passed:
        out(out.paint(f"{out.ok} {label(step)}", "green"))
        out(f"  passed: {run.points:g}/{run.max_points:g} points, "
            f"{sum(t.passed for t in run.tests)} tests in {run.seconds:.1f} s{note}")
        return
    out(out.paint(f"{out.bad} {label(step)}", "red"))
    render_failure(run, out)
    out()
    ran = [t for t in run.tests if t.outcome != "skipped"]
    if run.crash is None and not ran:
        out("Score: 0 points; nothing was graded.")
    elif run.crash is None:
        out(f"Score: {run.points:g}/{run.max_points:g} points "
            f"({sum(t.passed for t in ran)} of {len(ran)} tests pass{note}).")
    else:
        out(f"Score: {run.points:g} points so far; grading did not finish, so the step "
            "cannot pass yet.")
    if step.hints and prog is not None:
        shown = prog.hints_shown(step)
        left = len(step.hints) - shown
        more = f"{left} of {len(step.hints)} hints left" if left > 0 else "all hints shown; " \
            "--all repeats them"
        out(f"Stuck? {CMD} hint{'' if run.impl == 'exercises' else ' ' + step.id[:3]}  ({more})")


# --- progress: derived, rebuilt by grading ------------------------------------------------------

def is_pristine(step: Step) -> bool:
    """True when the exercise is still the untouched stub (so it cannot pass)."""
    from tools.stubgen import pristine_stub

    try:
        return step.exercise.read_text(encoding="utf-8") == pristine_stub(step)
    except (OSError, ValueError):
        return False


class Grader:
    """Grades steps for one command, keeping progress in step with the results."""

    def __init__(self, steps: list[Step], impl: str, out: Out):
        self.steps, self.impl, self.out = steps, impl, out
        self.learner = impl == "exercises"
        self.prog = Progress()
        self.runs: dict[str, StepRun] = {}  # gradings made by this command, by step id

    def impl_for(self, step: Step) -> str:
        if self.impl in ("exercises", "solutions"):
            return self.impl
        path = Path(self.impl).resolve()
        return str(path / f"{step.id}.py") if path.is_dir() else str(path)

    def grade(self, step: Step, live: bool = True) -> StepRun:
        """Grade `step` in a child process and record the result (learner's files only)."""
        before = file_sha256(step.exercise) if self.learner else None
        done = [0]

        def tick(_: TestResult) -> None:
            done[0] += 1
            self.out.status(f"grading {step.id} ... {done[0]} tests done")

        if live:
            self.out.status(f"grading {step.id} ..." if not self.out.tty
                            or warm.is_running(child_env()) else
                            f"grading {step.id} (starting the grading server first: a few "
                            "seconds, once) ...")
        try:
            run = run_step(step, self.impl_for(step), on_result=tick if live else None)
        finally:
            self.out.clear_status()
        self.runs[step.id] = run
        if self.learner and before is not None and before == file_sha256(step.exercise):
            self.prog.set_result(step, passed=run.passed, points=run.points,
                                 max_points=run.max_points, exercise_sha256=before)
            self.save()
        return run

    def save(self) -> None:
        try:
            self.prog.save()
        except OSError as exc:
            self.out(f"(could not save progress to {rel(STATE_FILE)}: {exc}; it will be "
                     "rebuilt next time)")

    def current_index(self, rebuild: bool = True) -> int | None:
        """Index of the first step not passed (None: all passed).

        With `rebuild`, lost records are recovered by grading: a step with work in it, no
        valid pass (state file deleted or corrupt, exercise or graders changed since it
        passed) and learner work in a later step is graded again, in order. The step being
        worked on (a failing record, or no later work) is left to the caller to grade.
        """
        reason = {"missing": "no progress file", "unreadable": "the progress file was "
                  "unreadable"}.get(self.prog.problem or "")
        shown = False
        try:
            for i, step in enumerate(self.steps):
                if self.prog.is_done(step):
                    continue
                rec = self.prog.record(step)
                if (not rebuild or not self.learner or step.missing_extras()
                        or (rec is not None and rec.get("passed") is not True)
                        or not step.exercise.exists() or is_pristine(step)
                        or not any(not is_pristine(s) for s in self.steps[i + 1:]
                                   if s.exercise.exists())):
                    return i
                if not shown:
                    why = reason or (f"{step.id} changed since it passed"
                                     if self.prog.stale_pass(step) else "")
                    self.out(f"rebuilding progress{f' ({why})' if why else ''}:", end="")
                    shown = True
                run = self.grade(step, live=False)
                self.out(f" {step.id[:3]} " + (self.out.paint(self.out.ok, "green") if run.passed
                                                else self.out.paint(self.out.bad, "red")), end="")
                if not run.passed:
                    return i
            return None
        finally:
            if shown:
                self.out()
            if self.prog.problem and self.learner:
                self.save()

    def is_unlocked(self, step: Step) -> tuple[bool, Step | None]:
        """(unlocked?, the first step not passed before it)."""
        for s in self.steps:
            if s.id == step.id:
                return True, None
            if not self.prog.is_done(s):
                return False, s
        return True, None


# --- commands -----------------------------------------------------------------------------------

def announce_next(g: Grader, step: Step) -> None:
    out = g.out
    out()
    out(out.paint(f"Next: {label(step)}", "bold"))
    out(f"  code: {rel(step.exercise)}")
    if step.lab.exists():
        out(f"  lab:  {rel(step.lab)}")
    if step.missing_extras():
        out(f"  {install_line(step)}")
    if step.hints:
        out.para(f"hint 1/{len(step.hints)}: {step.hints[0]}", "  ")
        g.prog.set_hints_shown(step, max(1, g.prog.hints_shown(step)))
        g.save()
    out(f"Run {CMD} when you are ready, or {CMD} watch to re-grade on every save.")


def finish_course(g: Grader) -> int:
    """Re-check every step before declaring the course finished (rustlings does the same)."""
    out = g.out
    out()
    out("That was the last step. Re-checking every step before declaring the course finished:",
        end="")
    failed = None
    for step in g.steps:
        run = g.runs.get(step.id)  # graded moments ago by this command: no need to repeat
        if run is None:
            if step.missing_extras():
                out(f"\n  {install_line(step)}")
                failed = failed or step
                continue
            run = g.grade(step, live=False)
        mark = out.paint(out.ok, "green") if run.passed else out.paint(out.bad, "red")
        out(f" {step.id[:3]} {mark}", end="")
        if not run.passed and failed is None:
            failed = step
    out()
    if failed is not None:
        out(f"{failed.id} no longer passes, so the course is not finished yet: "
            f"run {CMD} {failed.id[:3]} to see why.")
        return 1
    g.prog.finished = True
    g.save()
    out()
    out(out.paint(f"{out.ok} Course finished: all {len(g.steps)} steps pass. Well done!", "green"))
    return 0


def after_pass(g: Grader, step: Step) -> int:
    """A step just passed: announce the next step, or finish the course."""
    if not g.learner:
        return 0
    if step.solution.exists():  # learners ask for it once a step is done (absent in releases)
        g.out(f"  Now compare with the reference solution: {rel(step.solution)}")
    nxt = g.current_index(rebuild=False)
    if nxt is None:
        if g.prog.finished:
            g.out(f"\nEvery step passes; the course is finished. {CMD} list shows your scores.")
            return 0
        return finish_course(g)
    following = g.steps[nxt]
    if g.steps.index(following) > g.steps.index(step):
        announce_next(g, following)
    else:
        g.out(f"\nYour current step is still {label(following)}: {CMD}")
    return 0


def grade_one(g: Grader, step: Step, *, reuse: bool = False) -> int:
    if step.missing_extras():
        g.out(install_line(step))
        return 1
    if g.learner and not step.exercise.exists():
        g.out(f"{rel(step.exercise)} is missing: restore the stub with {CMD} reset "
              f"{step.id[:3]}")
        return 1
    run = g.runs.get(step.id) if reuse else None
    run = run or g.grade(step)
    render_run(run, g.prog if g.learner else None, g.out)
    return after_pass(g, step) if run.passed else 1


def cmd_check(g: Grader, query: str | None) -> int:
    if query is None:
        idx = g.current_index()
        if idx is None:
            if g.learner and not g.prog.finished:
                return finish_course(g)
            g.out(f"{g.out.ok} Every step passes; the course is finished. "
                  f"{CMD} list shows your scores.")
            return 0
        return grade_one(g, g.steps[idx], reuse=True)
    step = find_step(query, g.steps)
    if g.learner:
        g.current_index()  # rebuild progress first if it was lost
        unlocked, first = g.is_unlocked(step)
        if not unlocked:
            g.out(f"{step.id} is locked: {first.id} ({first.title}) comes first. Run {CMD} "
                  "to work on it.")
            return 1
    return grade_one(g, step, reuse=True)


def cmd_list(g: Grader) -> int:
    out = g.out
    idx = g.current_index()
    width = max(len(s.id) for s in g.steps)
    out(f"  {'step':{width}}  {'status':8}  {'score':>7}  title")
    for i, step in enumerate(g.steps):
        if idx is None or i < idx:
            status, mark = "done", out.paint(out.ok, "green")
        elif i == idx:
            status, mark = "current", out.paint(out.cur, "yellow")
        else:
            status, mark = "locked", out.dot
        score = g.prog.score(step)
        shown = f"{score[0]:g}/{score[1]:g}" if score else "-"
        extra = f"  ({install_line(step)})" if step.missing_extras() else ""
        out(f"{mark} {step.id:{width}}  {status:8}  {shown:>7}  {step.title}{extra}")
    done = len(g.steps) if idx is None else idx
    out()
    if idx is None:
        out(f"All {len(g.steps)} steps done.")
    else:
        out(f"{done} of {len(g.steps)} steps done. Current: {g.steps[idx].id} ({CMD})")
    return 0


def cmd_hint(g: Grader, query: str | None, show_all: bool) -> int:
    out = g.out
    if query:
        step = find_step(query, g.steps)
    else:
        idx = g.current_index(rebuild=False)
        if idx is None:
            out("Every step passes: no hint needed. Name a step for its hints, e.g. "
                f"{CMD} hint s00.")
            return 0
        step = g.steps[idx]
    hints = step.hints
    if not hints:
        out(f"{step.id} has no hints yet.")
        return 0
    shown = g.prog.hints_shown(step)
    if show_all:
        out(f"Hints for {label(step)}:")
        for i, h in enumerate(hints, 1):
            out.para(f"{i}. {h}", "  ")
        g.prog.set_hints_shown(step, len(hints))
    elif shown < len(hints):
        out.para(f"Hint {shown + 1}/{len(hints)} for {step.id}: {hints[shown]}")
        g.prog.set_hints_shown(step, shown + 1)
        if shown + 1 < len(hints):
            out(f"(the next one: {CMD} hint; all so far: {CMD} hint --all)")
        else:
            out(f"That was the last hint. All of them again: {CMD} hint --all")
    else:
        out.para(f"All {len(hints)} hints for {step.id} have been shown; the last one was: "
                 f"{hints[-1]}")
        out(f"All of them again: {CMD} hint {step.id[:3]} --all")
    g.save()
    return 0


def cmd_reset(g: Grader, query: str | None) -> int:
    out = g.out
    if not query:
        out(f"Name the step to reset, e.g. {CMD} reset s00")
        return 2
    step = find_step(query, g.steps)
    from tools.stubgen import pristine_stub

    try:
        stub = pristine_stub(step)
    except FileNotFoundError as exc:
        out(f"Cannot reset {step.id}: {exc}")
        return 1
    path = step.exercise
    if path.exists() and path.read_text(encoding="utf-8") == stub:
        out(f"{rel(path)} is already the original stub; nothing to reset.")
        return 0
    saved = backup(path) if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stub, encoding="utf-8")
    out(f"{rel(path)} is the original stub again.")
    if saved is not None:
        out(f"Your version is saved as {rel(saved)} (copy it back to undo).")
    out(f"Run {CMD} {step.id[:3]} to see what is left to implement.")
    return 0


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Keyboard:
    """Lines typed on stdin, read by a background thread (works where select() does not)."""

    def __init__(self):
        self.lines: queue.Queue = queue.Queue()
        self.open = True
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in sys.stdin:
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        self.lines.put(None)  # end of input: no manual re-runs from here on

    def wait_line(self, seconds: float) -> str | None:
        """A typed line, or None after `seconds` without one."""
        if not self.open:
            time.sleep(seconds)
            return None
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return None
        if line is None:
            self.open = False
        return line


def wait_for_change(path: Path, since: tuple[int, int] | None, keys: Keyboard) -> str:
    """'changed' when `path` is saved, 'rerun' on Enter, 'quit' on q; polls every second."""
    while True:
        line = keys.wait_line(POLL_SECONDS)
        if line is not None:
            return "quit" if line.strip().lower() in ("q", "quit", "exit") else "rerun"
        if _signature(path) != since:
            time.sleep(0.2)  # let the editor finish writing
            return "changed"


def cmd_watch(g: Grader) -> int:
    out = g.out
    keys = Keyboard()
    try:
        idx = g.current_index()
        while idx is not None:
            step = g.steps[idx]
            if step.missing_extras():
                out(install_line(step))
                return 1
            out(out.paint(f"Watching {rel(step.exercise)}", "bold")
                + ": every save re-runs the check.")
            out("If saving does not start a run (WSL2, network drives), press Enter to re-run. "
                "Quit with q + Enter or Ctrl-C.")
            while True:
                since = _signature(step.exercise)
                out()
                run = g.grade(step)
                render_run(run, g.prog, out)
                if run.passed:
                    break
                out(out.paint(f"-- waiting for you to save {rel(step.exercise)} (Enter re-runs, "
                              "q quits) --", "dim"))
                if wait_for_change(step.exercise, since, keys) == "quit":
                    out("Stopped watching.")
                    return 0
            idx = g.current_index(rebuild=False)
            if idx is None:
                return finish_course(g)
            announce_next(g, g.steps[idx])
            out()
        out(f"{out.ok} Every step passes; the course is finished.")
        return 0
    except KeyboardInterrupt:
        out.clear_status()
        out("\nStopped watching.")
        return 0


def cmd_all(g: Grader) -> tuple[int, list[tuple[Step, StepRun | None, str]]]:
    """Grade every step, locks ignored; (exit code, [(step, run, status)])."""
    out = g.out
    results = []
    for step in g.steps:
        if step.missing_extras():
            results.append((step, None, f"needs {', '.join(step.missing_extras())}"))
            out(f"{out.bad} {step.id:28} {'-':>9}  {install_line(step)}")
            continue
        run = g.grade(step)
        status = "passed" if run.passed else ("crashed" if run.crash else "failed")
        results.append((step, run, status))
        mark = out.paint(out.ok, "green") if run.passed else out.paint(out.bad, "red")
        first = "" if run.passed else "  " + _first_problem(run)
        out(f"{mark} {step.id:28} {run.points:>4g}/{run.max_points:<4g} {run.seconds:5.1f}s{first}")
    total = sum(r.points for _, r, _ in results if r)
    total_max = sum(r.max_points for _, r, _ in results if r)
    n_pass = sum(status == "passed" for _, _, status in results)
    out()
    out(f"{n_pass} of {len(results)} steps pass; {total:g}/{total_max:g} points.")
    return (0 if n_pass == len(results) else 1), results


def _first_problem(run: StepRun) -> str:
    if run.crash:
        return run.crash.split(":")[0]
    if run.collect_errors:
        return "graders could not be loaded"
    bad = [t for t in run.tests if t.outcome in ("failed", "error")]
    if bad and all(t.exc_type == "NotImplementedError" for t in bad):
        return "not started (NotImplementedError)"
    if bad:
        return f"{bad[0].name}: {explain(bad[0]).splitlines()[0][:80]}"
    return "no test passed"


# --- reports ------------------------------------------------------------------------------------

def write_reports(results: list[tuple[Step, StepRun | None, str]], impl: str, *,
                  junit: Path | None, json_path: Path | None, markdown: Path | None) -> None:
    if junit:
        _write(junit, junit_xml(results))
    if json_path:
        _write(json_path, json.dumps(json_report(results, impl), indent=1))
    if markdown:
        _write(markdown, markdown_report(results))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def json_report(results, impl: str) -> dict:
    steps = []
    for step, run, status in results:
        entry = {"id": step.id, "title": step.title, "status": status,
                 "points": run.points if run else 0.0,
                 "max_points": run.max_points if run else 0.0,
                 "seconds": round(run.seconds, 2) if run else 0.0,
                 "verdict": (run.crash or (None if run.passed else _first_problem(run))
                             if run else install_line(step)), "tests": []}
        for t in run.tests if run else []:
            entry["tests"].append({
                "name": t.name, "nodeid": t.nodeid, "outcome": t.outcome, "points": t.points,
                "hidden": t.hidden, "exc_type": t.exc_type,
                "message": explain(t) if t.outcome in ("failed", "error") else t.message,
                "where": t.where, "duration": t.duration})
        steps.append(entry)
    return {"impl": impl, "passed": all(s["status"] == "passed" for s in steps),
            "points": sum(s["points"] for s in steps),
            "max_points": sum(s["max_points"] for s in steps), "steps": steps}


def junit_xml(results) -> str:
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="ml-to-llm")
    for step, run, status in results:
        suite = ET.SubElement(suites, "testsuite", name=step.id)
        cases = []
        if run is None:
            case = ET.Element("testcase", classname=step.id, name="grading", time="0")
            ET.SubElement(case, "skipped", message=status)
            cases.append(case)
        else:
            for t in run.tests:
                case = ET.Element("testcase", classname=step.id, name=t.name,
                                  time=f"{t.duration or 0:.3f}")
                props = ET.SubElement(case, "properties")
                ET.SubElement(props, "property", name="points", value=f"{t.points:g}")
                ET.SubElement(props, "property", name="hidden", value=str(t.hidden).lower())
                if t.outcome == "skipped":
                    ET.SubElement(case, "skipped", message=t.message or "")
                elif t.outcome in ("failed", "error", "crashed"):
                    text = explain(t) + (f"\nat {t.where}" if t.where else "")
                    kind = "failure" if t.outcome == "failed" else "error"
                    el = ET.SubElement(case, kind, message=text.splitlines()[0][:300],
                                       type=t.exc_type or t.outcome)
                    el.text = text
                cases.append(case)
            problem = run.crash or (run.collect_errors[0][-2000:] if run.collect_errors else None)
            if problem:
                case = ET.Element("testcase", classname=step.id, name="grading",
                                  time=f"{run.seconds:.3f}")
                el = ET.SubElement(case, "error", message=problem.splitlines()[0][:300],
                                   type=status)
                el.text = problem
                cases.append(case)
        suite.extend(cases)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
        suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
        suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
        suite.set("time", f"{run.seconds:.3f}" if run else "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def markdown_report(results) -> str:
    rows = ["| step | points | status |", "|---|---:|---|"]
    total = total_max = 0.0
    for step, run, status in results:
        pts = f"{run.points:g} / {run.max_points:g}" if run else "-"
        total += run.points if run else 0
        total_max += run.max_points if run else 0
        icon = "✅" if status == "passed" else ("⚠️" if run is None else "❌")
        rows.append(f"| `{step.id}` {step.title.split(':')[0]} | {pts} | {icon} {status} |")
    n_pass = sum(status == "passed" for _, _, status in results)
    return (f"## ml-to-llm grading\n\n**{n_pass} of {len(results)} steps pass, "
            f"{total:g} / {total_max:g} points.**\n\n" + "\n".join(rows) + "\n")


# --- entry point --------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=CMD, description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n\n")[1].splitlines()))
    parser.add_argument("command", nargs="?",
                        help="a step (s03, 3, softmax_regression), list, hint, watch or reset")
    parser.add_argument("target", nargs="?", help="the step for hint and reset")
    parser.add_argument("--all", action="store_true",
                        help="grade every step, locks ignored (with hint: show every hint)")
    parser.add_argument("--impl", default="exercises",
                        help="exercises (default), solutions, or a path (a module, or a folder "
                             "of <step id>.py files)")
    parser.add_argument("--junit", type=Path, help="write a JUnit XML report")
    parser.add_argument("--json", type=Path, help="write a JSON report")
    parser.add_argument("--markdown", type=Path, help="write a Markdown summary")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Out()
    try:
        steps = load_steps()
    except (OSError, ValueError, KeyError) as exc:
        out(f"Cannot read the course manifest tools/curriculum.toml: {exc}")
        return 2
    if args.impl not in ("exercises", "solutions") and not Path(args.impl).exists():
        out(f"--impl {args.impl}: no such file or folder")
        return 2
    if Path(args.impl).is_file() and (args.all or args.command in COMMANDS or not args.command):
        out(f"--impl {args.impl} is one module: name the step it implements, e.g. "
            f"{CMD} s03 --impl {args.impl}")
        return 2
    g = Grader(steps, args.impl, out)
    reports = {"junit": args.junit, "json_path": args.json, "markdown": args.markdown}
    cmd = args.command
    try:
        if cmd in COMMANDS and cmd not in ("hint", "reset") and args.target:
            out(f"{cmd} takes no step; see {CMD} --help")
            return 2
        if cmd not in COMMANDS and cmd is not None and args.target:
            out(f"unexpected argument {args.target!r}; see {CMD} --help")
            return 2
        if cmd == "hint":
            return cmd_hint(g, args.target, args.all)
        if cmd == "list":
            return cmd_list(g)
        if cmd == "reset":
            return cmd_reset(g, args.target)
        if cmd == "watch":
            return cmd_watch(g)
        if args.all:
            if cmd is not None:
                out(f"--all grades every step; leave out {cmd!r}")
                return 2
            code, results = cmd_all(g)
            write_reports(results, args.impl, **reports)
            return code
        code = cmd_check(g, cmd)
        if any(reports.values()):
            graded = [(s, r, "passed" if r.passed else ("crashed" if r.crash else "failed"))
                      for s in steps if (r := g.runs.get(s.id))]
            write_reports(graded, args.impl, **reports)
        return code
    except KeyError as exc:  # an unknown step name
        out(exc.args[0] if exc.args else str(exc))
        return 2
    except KeyboardInterrupt:
        out.clear_status()
        out("\nInterrupted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())

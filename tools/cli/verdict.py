"""A grading run in plain words: what is left to implement, what is wrong, and the score."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

from tools.cli.install import install_note
from tools.cli.output import Out, plural, rel
from tools.course import EXTRA_MODULES, ROOT, Step
from tools.grading import StepRun, TestResult, memory_cap_bytes, per_test_timeout

# tools/pytest_report.py's note on a shortened hidden message (not imported: it imports pytest)
HIDDEN_NOTE = " [hidden test: message shortened]"


def label(step: Step) -> str:
    return f"{step.id[:3]} · {step.title}"


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


def cause_key(t: TestResult) -> tuple[str, str]:
    """Failures with the same key share a cause and are shown once.

    An error raised from a line of the learner's code is one cause whatever each test's values
    made its message say; an assertion the graders make is one cause when its words are, the
    numbers aside (one wrong line fails `test_adamw[0.01]` and `test_adamw[0.5]` with the same
    sentence about different values).
    """
    if t.where and t.exc_type not in ("AssertionError", "Failed", None):
        return (t.exc_type or "", t.where)
    return (t.exc_type or "", _NUMBER.sub("#", clean_message(t.message)))


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


MAX_NAMES_SHOWN = 6  # test names under one cause; the rest are counted


def group_by_cause(failing: list[TestResult]) -> list[list[TestResult]]:
    """Failures grouped by `cause_key`, a hidden test's shortened message joining the public
    failure whose message it begins (the same cause, cut at the hidden tests' length)."""
    groups: dict[tuple[str, str], list[TestResult]] = {}
    for t in failing:
        groups.setdefault(cause_key(t), []).append(t)
    for (exc, msg) in [k for k in groups if k[1].endswith(HIDDEN_NOTE.strip())]:
        prefix = unshortened(msg).rsplit(" ", 1)[0]  # its last word may be cut short
        into = next((k for k in groups if k[0] == exc and k[1] != msg and prefix
                     and k[1].startswith(prefix)), None)
        if into is not None:
            groups[into] += groups.pop((exc, msg))
    return list(groups.values())


def _todo_lines(failing: list[TestResult], graded: Path) -> dict[int, tuple]:
    remaining = {line: (func, msg, 0) for line, (func, msg) in stub_todos(graded).items()}
    for t in failing:
        line = _line_of(t.where)
        func, stub_message, blocked = remaining.get(
            line, (t.where.rsplit(" in ", 1)[-1] if t.where else "?", None, 0))
        # the stub's own words, in full: a hidden test's copy of them is shortened
        remaining[line] = (func, stub_message or unshortened(t.message), blocked + 1)
    return remaining


def unshortened(message: str | None) -> str:
    """A message without the note tools/pytest_report.py adds to a shortened hidden one."""
    return (message or "").removesuffix(HIDDEN_NOTE).rstrip()


def render_failure(run: StepRun, out: Out) -> None:
    """What is left to do and what is wrong, with failures that share a cause shown once."""
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
    todo = [t for t in failing if t.exc_type == "NotImplementedError"]
    graded = run.step.exercise if run.impl == "exercises" else Path(run.impl)
    remaining = _todo_lines(todo, graded)
    if remaining:
        out()
        out(f"Still to implement in {rel(graded)} (each of these raises NotImplementedError):")
        for line, (func, message, n) in sorted(remaining.items()):
            where = f"{func}, line {line}" if line < 10**9 else func
            blocked = f"; {plural(n, 'test')}" if n else ""
            out(f"  {out.bullet} {message or 'NotImplementedError'}  "
                + out.paint(f"({where}{blocked})", "dim"))
    for tests in group_by_cause([t for t in failing if t.exc_type != "NotImplementedError"]):
        out()
        pts = sum(t.points for t in tests)
        names = [("hidden: " if t.hidden else "") + t.name for t in tests]
        if len(names) > MAX_NAMES_SHOWN:
            names = names[:MAX_NAMES_SHOWN] + [f"and {len(names) - MAX_NAMES_SHOWN} more"]
        if len(tests) == 1:
            head = f"{names[0]} ({plural(pts, 'point')})"
        else:
            head = (f"{len(tests)} tests fail from one cause ({plural(pts, 'point')}): "
                    + ", ".join(names))
        first, *rest = textwrap.wrap(head, out.width - 2, subsequent_indent="    ",
                                     break_on_hyphens=False, break_long_words=False)
        out(out.paint(f"{out.bad} ", "red") + first)
        for line in rest:
            out(line)
        out.para(explain(tests[0]), "    ")
        if tests[0].where:
            out(f"    at {tests[0].where}")
        if len(tests) > 1:
            out("    (fix this one first: the other tests above fail the same way)")


def skipped_extras(run: StepRun) -> tuple[list[str], float, int]:
    """(extras named by the skipped tests, their points, how many tests were skipped)."""
    skipped = [t for t in run.tests if t.outcome == "skipped"]
    names: list[str] = []
    for t in skipped:
        msg = (t.message or "").lower()
        for extra, module in EXTRA_MODULES.items():
            if re.search(rf"\b({extra}|{re.escape(module)})\b", msg) and extra not in names:
                names.append(extra)
    return names, sum(t.points for t in skipped), len(skipped)


def skip_note(run: StepRun) -> str:
    """Why some points cannot be earned here, in words, or '' when nothing was skipped."""
    extras, pts, n = skipped_extras(run)
    if not n:
        return ""
    why = f"{' and '.join(extras)} {'is' if len(extras) == 1 else 'are'} not installed" \
        if extras else "this machine lacks what they need"
    total = sum(t.points for t in run.tests)
    return (f"{plural(n, 'test')} ({plural(pts, 'point')}) skipped because {why}: those "
            f"points cannot be earned here (the step has {total:g} in all)."
            + (f" {install_note(extras)}" if extras else ""))


# How tools/allowlist.py (before grading) and tools/sandbox.py (while grading) word a refusal.
_REFUSAL = re.compile(r"^Integrity: (?P<file>.+?\.py), line (?P<line>\d+)[:,] (?P<what>.*)$", re.S)
_STATIC_TAIL = " This step scores 0 points until that line is gone."
_RUNTIME_TAIL = (". Graded code may only compute its answers, so this step scores 0 points; "
                 "remove that line.")
MAX_REFUSALS_SHOWN = 5


def refusal(message: str, step: Step) -> tuple[str | None, int | None, str, str]:
    """(file, line, rule broken, what the line did) of one integrity refusal.

    A refusal the parser cannot place (a forged report record, a changed grading tree) keeps
    its own words, with no file or line."""
    m = _REFUSAL.match(message.strip())
    if m is None:
        text = message.strip().removeprefix("Integrity: ")
        return None, None, "the grading report is written by the grader alone", text
    what = m.group("what").strip()
    if what.endswith(_STATIC_TAIL):
        what = what[: -len(_STATIC_TAIL)].rstrip()
        rule = (f"what {step.id[:3]} may import and call (its allow-list in "
                "tools/curriculum.toml, [imports]; checked before your code runs)")
    elif what.endswith(_RUNTIME_TAIL):
        what = what[: -len(_RUNTIME_TAIL)].rstrip()
        rule = ("graded code may only compute its answers: no reading the graders, writing "
                "files, starting processes or reaching into the grader (checked while it runs)")
    else:
        rule = "graded code may only compute its answers"
    if what and what[-1] not in ".!?":
        what += "."
    return m.group("file"), int(m.group("line")), rule, what


def source_line(file: str, line: int) -> str | None:
    """The text of `line` in `file` (relative to the course root), stripped, if readable."""
    path = Path(file) if Path(file).is_absolute() else ROOT / file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


def render_integrity(run: StepRun, out: Out) -> None:
    """An integrity verdict: which line broke which rule, and that the step scores 0."""
    out(out.paint(f"{out.bad} {label(run.step)}", "red"))
    out()
    places = list(dict.fromkeys(refusal(m, run.step) for m in run.integrity))  # the module
    # is imported once per grader file, so one line is often refused twice
    first = places[0]
    where = f"{first[0]}, line {first[1]}" if first[0] else "your code"
    out.para(f"Integrity verdict (not a test failure): {where} breaks a grading rule, so "
             f"{run.step.id[:3]} scores 0 points whatever the tests say.", "  ")
    for file, line, rule, what in places[:MAX_REFUSALS_SHOWN]:
        out()
        if file:
            code = source_line(file, line)
            out(f"    {file}, line {line}" + (f":  {code}" if code else ""))
        out.para(f"what it does: {what}", "    ")
        out.para(f"the rule: {rule}", "    ")
    if len(places) > MAX_REFUSALS_SHOWN:
        out(f"    (and {len(places) - MAX_REFUSALS_SHOWN} more like these)")
    out()
    rules = (" INTEGRITY.md lists the rules and why they exist."
             if (ROOT / "INTEGRITY.md").is_file() else "")  # (not in a student edition)
    fix = (f"Remove {'that line' if len(places) == 1 else 'those lines'} (compute the answer "
           "with the step's own tools)" if first[0] else "Let your code only compute its "
           "answers")
    out.para(f"{fix} and run the check again.{rules}")
    out()
    out(f"Score: 0 points (integrity verdict: {plural(len(places), 'refusal')}).")


def render_run(run: StepRun, out: Out, hint_line: str | None = None) -> None:
    """The verdict of one run: a pass in two lines, a failure with its causes and the score."""
    step = run.step
    if run.integrity:
        render_integrity(run, out)
        return
    note = skip_note(run)
    if run.passed:
        out(out.paint(f"{out.ok} {label(step)}", "green"))
        out(f"  passed: {run.points:g}/{run.max_points:g} points, "
            f"{sum(t.passed for t in run.tests)} tests in {run.seconds:.1f} s")
        if note:
            out.para(note, "  ")
        return
    out(out.paint(f"{out.bad} {label(step)}", "red"))
    render_failure(run, out)
    out()
    ran = [t for t in run.tests if t.outcome != "skipped"]
    if run.crash is None and not ran:
        out("Score: 0 points; nothing was graded.")
    elif run.crash is None:
        out(f"Score: {run.points:g}/{run.max_points:g} points "
            f"({sum(t.passed for t in ran)} of {len(ran)} tests pass).")
    else:
        out(f"Score: {run.points:g} points so far; grading did not finish, so the step "
            "cannot pass yet.")
    if note:
        out.para(note)
    if hint_line:
        out(hint_line)


def first_problem(run: StepRun) -> str:
    """The first thing wrong with a failing run, in full."""
    if run.integrity:
        file, line, _, what = refusal(run.integrity[0], run.step)
        at = f"{file}, line {line}: " if file else ""
        return f"integrity verdict, 0 points: {at}{what}"
    if run.crash:
        return run.crash
    if run.collect_errors:
        return "the graders could not be loaded"
    bad = [t for t in run.tests if t.outcome in ("failed", "error")]
    if bad and all(t.exc_type == "NotImplementedError" for t in bad):
        return "not started (NotImplementedError)"
    if bad:
        return f"{bad[0].name}: {explain(bad[0])}"
    return "no test passed"


def run_status(run: StepRun) -> str:
    if run.integrity:
        return "integrity"
    return "passed" if run.passed else ("crashed" if run.crash else "failed")

"""Generate everything in exercises/ from solutions/: the single-source rule.

A solution marks what the learner writes with nbgrader's convention, inside a function body:

    def softmax(x):
        \"\"\"Docstring stays.\"\"\"
        # BEGIN SOLUTION: subtract the row max, exponentiate, normalise
        z = x - x.max(axis=-1, keepdims=True)
        ...
        # END SOLUTION

and the stub keeps everything outside the markers, replacing the region by

        raise NotImplementedError("s03 softmax regression: subtract the row max, exponentiate, ...")

(the text after ``BEGIN SOLUTION:`` is optional; the default names the enclosing function).
Lab notebooks are built from ``solutions/labs/<id>.py`` (``# %%`` cells) by tools/labs.py.

    python tools/stubgen.py --check     # CI: fail if exercises/ is not what the generator makes
    python tools/stubgen.py --write     # regenerate; never overwrites a learner's edits ...
    python tools/stubgen.py --write --force   # ... unless told to (a backup is kept)
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import labs
from tools.course import PRISTINE_DIR, ROOT, Step, load_steps

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<todo>.*\S))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
DEF = re.compile(r"^(?P<indent>\s*)(?:async\s+)?def\s+(?P<name>\w+)")


class StubError(ValueError):
    """A solution file whose markers cannot be turned into a stub."""


def solution_regions(source: str) -> list[tuple[int, int, str, str]]:
    """(begin line, end line, indent, todo text) of every marked region, 0-based lines."""
    lines = source.splitlines()
    regions, open_at = [], None
    for i, line in enumerate(lines):
        m = BEGIN.match(line)
        if m:
            if open_at is not None:
                raise StubError(f"line {i + 1}: BEGIN SOLUTION inside another region")
            if not m["indent"]:
                raise StubError(f"line {i + 1}: a region must sit inside a function body")
            open_at, indent, todo = i, m["indent"], m["todo"]
        elif END.match(line):
            if open_at is None:
                raise StubError(f"line {i + 1}: END SOLUTION without BEGIN")
            regions.append((open_at, i, indent, todo or _default_todo(lines, open_at)))
            open_at = None
    if open_at is not None:
        raise StubError(f"line {open_at + 1}: BEGIN SOLUTION is never closed")
    return regions


def _default_todo(lines: list[str], at: int) -> str:
    indent = len(lines[at]) - len(lines[at].lstrip())
    for line in reversed(lines[:at]):
        m = DEF.match(line)
        if m and len(m["indent"]) < indent:
            return f"implement {m['name']}"
    return "implement this part"


def make_stub(source: str, step_id: str) -> str:
    """The learner's stub for a solution's source text."""
    regions = solution_regions(source)
    if not regions:
        raise StubError(f"{step_id}: no BEGIN SOLUTION regions, so the learner has nothing to do")
    label = step_id.replace("_", " ", 1).replace("_", " ")  # "s24_attention" -> "s24 attention"
    lines = source.splitlines()
    out, cursor = [], 0
    for begin, end, indent, todo in regions:
        out.extend(lines[cursor:begin])
        message = f"{label}: {todo}".replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'{indent}raise NotImplementedError("{message}")')
        cursor = end + 1
    out.extend(lines[cursor:])
    stub = "\n".join(out) + "\n"
    ast.parse(stub)  # a stub that does not parse would fail with SyntaxError, not the TODO
    return stub


def pristine_stub(step: Step) -> str:
    """The untouched stub: generated from the solution, or shipped in the student edition."""
    if step.solution.exists():
        return make_stub(step.solution.read_text(), step.id)
    shipped = PRISTINE_DIR / f"{step.id}.py"
    if shipped.exists():
        return shipped.read_text()
    raise FileNotFoundError(f"no solution and no pristine copy of {step.id}")


def api_names(step: Step) -> list[str]:
    """Top-level functions and classes the learner's module must define itself."""
    tree = ast.parse(pristine_stub(step))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n.name for n in tree.body if isinstance(n, kinds) and not n.name.startswith("_")]


def expected_files(step: Step) -> dict[Path, str]:
    """Every generated file of a step and the text it must hold."""
    files = {step.exercise: make_stub(step.solution.read_text(), step.id)}
    if step.lab_source.exists():
        files[step.lab] = labs.notebook_text(step.lab_source.read_text(), step)
    return files


def _looks_pristine(path: Path, new_text: str) -> bool:
    """No learner work in `path`: every TODO still raises, or a lab was never run."""
    old = path.read_text()
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(old)["cells"]
        except (ValueError, KeyError):
            return False
        return all(not c.get("outputs") and c.get("execution_count") is None
                   for c in cells if c.get("cell_type") == "code")
    todo = re.compile(r'^\s*raise NotImplementedError\("s\d\d ', re.M)
    return len(todo.findall(old)) >= len(todo.findall(new_text))


def _unchanged_in_git(path: Path) -> bool:
    """True when git tracks `path` and it has no local edits (so regenerating loses nothing)."""
    rel = str(path.relative_to(ROOT))
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=ROOT,
                             capture_output=True).returncode == 0
    clean = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", rel], cwd=ROOT,
                           capture_output=True).returncode == 0
    return tracked and clean


def write(steps: list[Step], force: bool = False) -> int:
    refused = 0
    for step in steps:
        for path, text in expected_files(step).items():
            if path.exists() and path.read_text() == text:
                continue
            if (path.exists() and not force and not _looks_pristine(path, text)
                    and not _unchanged_in_git(path)):
                print(f"refusing to overwrite {path.relative_to(ROOT)}: it has edits git does "
                      "not know (a learner's work?). Re-run with --force to replace it; a "
                      "backup is kept in .ml2llm/backups/.")
                refused += 1
                continue
            if path.exists():
                backup = ROOT / ".ml2llm" / "backups" / f"{path.name}.{int(time.time())}"
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, backup)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if refused else 0


def check(steps: list[Step]) -> list[str]:
    """Paths whose content is not exactly what the generator makes."""
    stale = []
    for step in steps:
        for path, text in expected_files(step).items():
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail if exercises/ is out of date")
    mode.add_argument("--write", action="store_true", help="regenerate exercises/")
    parser.add_argument("--force", action="store_true", help="overwrite edited files (backed up)")
    parser.add_argument("steps", nargs="*", help="step ids (default: all)")
    args = parser.parse_args(argv)
    steps = [s for s in load_steps() if not args.steps or s.id in args.steps]
    steps = [s for s in steps if s.solution.exists()]
    if args.write:
        return write(steps, force=args.force)
    stale = check(steps)
    for path in stale:
        print(f"out of date: {path} (run: python tools/stubgen.py --write)")
    if not stale:
        print(f"exercises/ matches the generator for {len(steps)} steps")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate an nbgrader course from the course's single source of truth.

For every step of the manifest that has a solution, this writes an nbgrader *source* notebook,
``COURSE/source/<id>/<id>.ipynb``, and the files it needs beside it; plus one course-wide
``COURSE/nbgrader_config.py``. Nothing here is edited by hand: re-run the export after any
change to a solution, a grader or a lab.

The notebook of a step, top to bottom:

- the step's title and the solution module's docstring (the teaching text);
- the module's code, one cell per top-level function or class: **solution cells** where the
  solution has ``# BEGIN SOLUTION`` regions (turned into nbgrader's ``### BEGIN SOLUTION`` /
  ``### END SOLUTION``, the TODO text kept as a comment), **read-only cells** for given code;
- a read-only grading set-up cell: the notebook's functions become ``impl``, as if they were the
  module ``exercises/<id>.py``, and the public grader module's imports and helpers are loaded;
- one **grade cell per public test** (points from ``@pytest.mark.points``), its source the
  pytest function itself, run on ``impl`` with the same seeded ``rng`` pytest would give it;
- one grade cell per hidden test, the test inside ``### BEGIN HIDDEN TESTS`` /
  ``### END HIDDEN TESTS`` (nbgrader strips it from the release and restores it to grade);
- the step's lab cells (from ``solutions/labs/<id>.py``), run on the notebook's functions.

    python tools/nbgrader_export.py export COURSE_DIR            # every step with a solution
    python tools/nbgrader_export.py export COURSE_DIR s00 s24    # some steps
    python tools/nbgrader_export.py fill NOTEBOOK MODULE OUT     # a module's code -> notebook

``fill`` puts the code of a module (a learner's ``exercises/<id>.py``, a solution, a mutant)
into the solution cells of a released notebook: module-track work graded by nbgrader.
Then, from COURSE_DIR (see the README, "For instructors"):

    nbgrader generate_assignment s00_toolbox
    nbgrader autograde s00_toolbox
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import inspect
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import labs
from tools.course import ROOT, Step, find_step, load_steps
from tools.stubgen import BEGIN, END, api_names, solution_regions

TEMPLATES = Path(__file__).resolve().parent / "templates"
HARNESS = TEMPLATES / "ml2llm_nbgrader.py"
CONFIG_TEMPLATE = TEMPLATES / "nbgrader_config.py"
SUPPORTED_FIXTURES = {"impl", "rng", "tmp_path", "monkeypatch", "capsys"}
LAB_MARK = "# Lab cell (not graded)"  # the harness skips these while nbgrader autogrades
# nbgrader acts on these strings wherever they appear, so only our own markers may hold them.
NBGRADER_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS",
                       "END HIDDEN TESTS", "BEGIN MARK SCHEME", "END MARK SCHEME")
KERNEL_SETUP = """\
# Set-up (read-only): one BLAS thread, as the graders use, so results match on every machine.
import os

os.environ.update({v: os.environ.get(v, "1")
                   for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})"""


class ExportError(ValueError):
    """A step that cannot be turned into an nbgrader notebook; the message says why."""


# --- splitting a module into cells ---------------------------------------------------------

@dataclass
class Segment:
    kind: str  # "given" | "solution"
    name: str | None  # the function or class a solution cell defines
    text: str
    start: int  # 0-based first line in the module
    end: int  # 0-based line after the last


def _strip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _node_end(node: ast.stmt, lines: list[str]) -> int:
    """The line after `node`, counting comments indented into its body (a trailing
    ``# END SOLUTION`` comes after the last statement the AST knows about)."""
    end = j = node.end_lineno
    while j < len(lines):
        line = lines[j]
        if line.strip() and not (line.lstrip().startswith("#")
                                 and len(line) - len(line.lstrip()) > node.col_offset):
            break
        j += 1
        if line.strip():
            end = j
    return end


def module_segments(source: str) -> tuple[str | None, list[Segment]]:
    """(module docstring, code segments): one segment per top-level def/class, the statements
    between them grouped; a segment holding a BEGIN SOLUTION region is a solution segment."""
    tree = ast.parse(source)
    lines = source.splitlines()
    body = list(tree.body)
    doc = ast.get_docstring(tree, clean=True)
    cursor = 0
    if doc is not None:
        cursor = body.pop(0).end_lineno
    region_starts = [r[0] for r in solution_regions(source)]
    segments: list[Segment] = []
    for node in body:
        end = _node_end(node, lines)
        is_def = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        marked = any(cursor <= b < end for b in region_starts)
        text = "\n".join(_strip_blank(lines[cursor:end]))
        prev = segments[-1] if segments else None
        if (not is_def and not marked and prev is not None and prev.kind == "given"
                and prev.name is None):
            prev.text = "\n".join(_strip_blank(lines[prev.start:end]))
            prev.end = end
        else:
            segments.append(Segment("solution" if marked else "given",
                                    node.name if is_def else None, text, cursor, end))
        cursor = end
    return doc, [s for s in segments if s.text.strip()]


def nbgrader_markers(segment: Segment, source: str) -> str:
    """The segment's text with our markers turned into nbgrader's, the TODO kept as a comment."""
    todos = {b: todo for b, _, _, todo in solution_regions(source)}
    lines = source.splitlines()[segment.start:segment.end]
    out = []
    for offset, line in enumerate(lines):
        m = BEGIN.match(line)
        if m:
            out.append(f"{m['indent']}# TODO: {todos[segment.start + offset]}")
            out.append(f"{m['indent']}### BEGIN SOLUTION")
        elif END.match(line):
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f"{indent}### END SOLUTION")
        else:
            out.append(line)
    return "\n".join(_strip_blank(out))


def without_markers(text: str) -> str:
    """A segment as a learner would have written it: the marker lines dropped."""
    return "\n".join(ln for ln in text.splitlines() if not (BEGIN.match(ln) or END.match(ln)))


# --- reading the graders ----------------------------------------------------------------

@dataclass
class GraderTest:
    name: str
    source: str
    points: float  # for the whole test: points of one case times the number of cases
    cases: int


def _import_grader(path: Path):
    """The grader module, imported under a private name (to read marks and signatures)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    name = f"_nbexport_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def _mark_list(obj) -> list:
    marks = getattr(obj, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return [getattr(m, "mark", m) for m in marks]


def read_graders(path: Path, step: Step | None = None) -> tuple[str, list[GraderTest]]:
    """(the module's set-up code: imports, helpers, fixtures; its test functions).

    Grader code may import graders.helpers and, in a hidden grader, the step's public grader
    module (the notebook serves both); anything else of the course is not in a notebook."""
    allowed = {"graders.helpers"}
    if step is not None and path == step.hidden_graders:
        allowed.add(f"graders.test_{step.id}")
    source = path.read_text()
    for delim in NBGRADER_DELIMITERS:
        if delim in source:
            raise ExportError(f"{path.relative_to(ROOT)} contains {delim!r}, which nbgrader "
                              "would act on; reword it")
    tree = ast.parse(source)
    lines = source.splitlines()
    body = list(tree.body)
    cursor = 0
    if ast.get_docstring(tree) is not None:
        cursor = body.pop(0).end_lineno
    setup, tests = [], []
    setup_start = None  # first line of the run of set-up statements being collected
    for node in body:
        end = _node_end(node, lines)
        text = "\n".join(_strip_blank(lines[cursor:end]))
        start, cursor = cursor, end
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            raise ExportError(f"{path.name}: test class {node.name} is not supported; write "
                              "plain test_ functions")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                node.name.startswith("test"):
            tests.append((node.name, text))
            setup_start = None
        elif setup_start is None:
            setup.append(text)
            setup_start = start
        else:  # keep a run of set-up statements as written, blank lines and all
            setup[-1] = "\n".join(_strip_blank(lines[setup_start:end]))
        for sub in ast.walk(node):
            mod = (sub.module if isinstance(sub, ast.ImportFrom)
                   else sub.names[0].name if isinstance(sub, ast.Import) else None)
            if mod and mod not in allowed and mod.split(".")[0] in (
                    "tools", "solutions", "exercises", "graders"):
                raise ExportError(f"{path.name} imports {mod}, which a notebook does not have")
    module = _import_grader(path)
    fixtures = {n for n, v in vars(module).items()
                if getattr(v, "_fixture_function_marker", None) is not None
                or getattr(v, "_pytestfixturefunction", None) is not None}
    out = []
    for name, text in tests:
        fn = getattr(module, name)
        marks = _mark_list(fn) + _mark_list(module)
        points = next((float(m.args[0]) for m in marks if m.name == "points" and m.args), 1.0)
        cases, argnames = 1, set()
        for m in marks:
            if m.name == "parametrize":
                names = m.args[0]
                names = [a.strip() for a in names.split(",")] if isinstance(names, str) else names
                argnames |= set(names)
                cases *= len(list(m.args[1]))
        unknown = [p for p in inspect.signature(fn).parameters
                   if p not in argnames and p not in SUPPORTED_FIXTURES and p not in fixtures]
        if unknown:
            raise ExportError(f"{path.name}::{name} uses fixture(s) {', '.join(unknown)}; a "
                              f"notebook provides {', '.join(sorted(SUPPORTED_FIXTURES))} and "
                              "fixtures defined in the grader file")
        out.append(GraderTest(name, text, points * cases, cases))
    return "\n\n".join(setup), out


# --- building the notebook -----------------------------------------------------------------

def _cell(kind: str, source: str, cell_id: str, nbgrader: dict | None = None) -> dict:
    cell = {"cell_type": kind, "id": cell_id[:64], "metadata": {},
            "source": source.splitlines(keepends=True)}
    if nbgrader is not None:
        cell["metadata"]["nbgrader"] = {"grade": False, "locked": False, "solution": False,
                                        "task": False, "schema_version": 3, **nbgrader,
                                        "grade_id": cell_id}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _points(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:60]


def docstring_markdown(doc: str | None, step: Step) -> str:
    """The module docstring as Markdown: headed sections, formulas kept in text blocks."""
    out = [f"# {step.id[:3]} · {step.title}", ""]
    if not doc:
        return "\n".join(out)
    lines = doc.splitlines()
    out += [f"**{lines[0].strip()}**", ""]
    block: list[str] = []

    def flush():
        if _strip_blank(block):
            body = inspect.cleandoc("\n".join(_strip_blank(block)))
            out.extend(["```text", body, "```", ""])
        block.clear()

    for line in lines[1:]:
        if line.strip() and not line.startswith((" ", "\t")):
            flush()
            out += [f"### {line.strip()}", ""]
        else:
            block.append(line)
    flush()
    return "\n".join(out).rstrip() + "\n"


INTRO = """\
## How this notebook works

Write your code in the cells marked `# YOUR CODE HERE` (replace the `raise
NotImplementedError()` line; keep the function and class names). Read-only cells hold given
code. Run the cells from the top, then run the **test cells** under *Tests*: each one runs a
grader on your functions and prints its points, or shows what is wrong. Hidden tests run when
your notebook is graded. Every test starts red with `NotImplementedError`."""


def lab_cells(step: Step) -> list[tuple[str, str]]:
    """The lab's cells, with `tools.labkit` served by the notebook's grading harness."""
    if not step.lab_source.exists():
        return []
    cells = []
    for kind, text in labs.parse_cells(step.lab_source.read_text()):
        if kind == "code":
            text = re.sub(r"^from tools\.labkit import", "from ml2llm_nbgrader import", text,
                          flags=re.M)
            bad = re.findall(r"^\s*(?:from|import) (tools|solutions|exercises)\b", text, re.M)
            if bad:
                raise ExportError(f"{step.lab_source.name} imports {bad[0]}.*, which the "
                                  "notebook does not have (only tools.labkit is provided)")
        for delim in NBGRADER_DELIMITERS:
            if delim in text:
                raise ExportError(f"{step.lab_source.name} contains {delim!r}")
        cells.append((kind, text))
    return cells


def build_notebook(step: Step, with_lab: bool = True) -> dict:
    """The nbgrader source notebook of a step, as nbformat JSON."""
    source = step.solution.read_text()
    for delim in NBGRADER_DELIMITERS:
        if delim in re.sub(r"^\s*# (BEGIN|END) SOLUTION.*$", "", source, flags=re.M):
            raise ExportError(f"{step.solution.name} mentions {delim!r} outside its markers")
    sid = step.id[:3]
    doc, segments = module_segments(source)
    cells = [_cell("markdown", docstring_markdown(doc, step), f"{sid}-intro"),
             _cell("markdown", INTRO, f"{sid}-howto"),
             _cell("code", KERNEL_SETUP, f"{sid}-kernel", {"locked": True})]
    given = 0
    for seg in segments:
        if seg.kind == "solution":
            cells.append(_cell("code", nbgrader_markers(seg, source),
                               f"{sid}-{_safe_id(seg.name or f'part{len(cells)}')}",
                               {"solution": True}))
        else:
            given += 1
            cells.append(_cell("code", seg.text, f"{sid}-given-{given}", {"locked": True}))
    public_setup, public = read_graders(step.public_graders, step)
    hidden_setup, hidden = (read_graders(step.hidden_graders, step)
                            if step.hidden_graders.exists() else ("", []))
    api = api_names(step)
    cells.append(_cell("markdown", "## Tests\n\nThe public tests below are the graders of "
                       f"`graders/test_{step.id}.py`, run on your notebook. Each cell shows "
                       "its points.", f"{sid}-tests"))
    cells.append(_cell("code", "\n".join([
        "# Grading set-up (read-only): the tests grade the functions and classes above, "
        "collected",
        f"# into `impl` as if they were the module exercises/{step.id}.py.",
        "from ml2llm_nbgrader import Grading",
        "",
        f"grading = Grading({step.id!r}, api={api!r}, namespace=globals())"]),
        f"{sid}-grading", {"locked": True}))
    cells.append(_cell("code", "%%ml2llm_setup public\n" + public_setup,
                       f"{sid}-public-setup", {"locked": True}))
    for t in public:
        cells.append(_cell("code", f"%%ml2llm_test public\n{t.source}",
                           f"{sid}-{_safe_id(t.name)}", {"grade": True,
                                                          "points": _points(t.points)}))
    for k, t in enumerate(hidden, 1):
        body = "\n".join([
            "%%ml2llm_test hidden",
            f"# A hidden test worth {_points(t.points)} point{'' if t.points == 1 else 's'}: "
            "it runs when your notebook is graded.",
            "### BEGIN HIDDEN TESTS", hidden_setup, "", t.source, "### END HIDDEN TESTS"])
        cells.append(_cell("code", body, f"{sid}-hidden-{k}", {"grade": True,
                                                                "points": _points(t.points)}))
    lab = lab_cells(step) if with_lab else []
    if lab:
        cells.append(_cell("markdown", "## Lab\n\nThe lab runs *your* functions above: in this "
                           "notebook `load_step(...)` returns them, and `Run` records each "
                           "experiment under `results/`. Lab cells are not graded (they are "
                           "skipped while the notebook is autograded).", f"{sid}-lab"))
        for k, (kind, text) in enumerate(lab, 1):
            if kind == "code":
                text = f"{LAB_MARK}\n{text}"
            cells.append(_cell(kind, text, f"{sid}-lab-{k}"))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "ml2llm": {"step": step.id, "generated_by": "tools/nbgrader_export.py"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_points(nb: dict) -> float:
    return sum(float(c["metadata"]["nbgrader"]["points"]) for c in nb["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade"))


def write_course(course: Path, steps: list[Step], with_lab: bool = True,
                 force_config: bool = False) -> list[Path]:
    """Write COURSE/nbgrader_config.py (unless present) and COURSE/source/<id>/ per step."""
    course.mkdir(parents=True, exist_ok=True)
    config = course / "nbgrader_config.py"
    if force_config or not config.exists():
        config.write_text(CONFIG_TEMPLATE.read_text())
    written = []
    for step in steps:
        nb = build_notebook(step, with_lab)
        folder = course / "source" / step.id
        if folder.exists():
            shutil.rmtree(folder)  # generated: never edited by hand
        (folder / "graders").mkdir(parents=True)
        path = folder / f"{step.id}.ipynb"
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        shutil.copy2(HARNESS, folder / HARNESS.name)
        (folder / "graders" / "__init__.py").write_text("")
        shutil.copy2(ROOT / "graders" / "helpers.py", folder / "graders" / "helpers.py")
        written.append(path)
    return written


# --- filling a notebook with a module's code -------------------------------------------------

def fill_notebook(nb: dict, module_source: str) -> dict:
    """A copy of `nb` whose solution cells hold the matching definitions of `module_source`."""
    _, segments = module_segments(module_source)
    by_name = {s.name: s for s in segments if s.name}
    out = copy.deepcopy(nb)
    sid = out["metadata"].get("ml2llm", {}).get("step", "")[:3]
    for cell in out["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("solution") or cell["cell_type"] != "code":
            continue
        name = meta["grade_id"].removeprefix(f"{sid}-")
        if name not in by_name:
            raise ExportError(f"the module defines no {name}, which the notebook's solution "
                              f"cell {meta['grade_id']} needs")
        cell["source"] = without_markers(by_name[name].text).splitlines(keepends=True)
    return out


# --- command line ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write an nbgrader course (source notebooks + config)")
    ex.add_argument("course", type=Path, help="the nbgrader course root to write")
    ex.add_argument("steps", nargs="*", help="step ids (default: every step with a solution)")
    ex.add_argument("--no-lab", action="store_true", help="leave the lab cells out")
    ex.add_argument("--force-config", action="store_true",
                    help="overwrite an existing nbgrader_config.py")
    fi = sub.add_parser("fill", help="put a module's code into a notebook's solution cells")
    fi.add_argument("notebook", type=Path)
    fi.add_argument("module", type=Path)
    fi.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "fill":
        nb = json.loads(args.notebook.read_text())
        filled = fill_notebook(nb, args.module.read_text())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(filled, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
        return 0
    steps = [find_step(s) for s in args.steps] if args.steps else load_steps()
    missing = [s.id for s in steps if not s.solution.exists() or not s.public_graders.exists()]
    if missing and args.steps:
        print(f"no solution or public graders yet for: {', '.join(missing)}")
        return 1
    steps = [s for s in steps if s.id not in missing]
    try:
        written = write_course(args.course, steps, with_lab=not args.no_lab,
                               force_config=args.force_config)
    except ExportError as exc:
        print(f"cannot export: {exc}")
        return 1
    for path in written:
        nb = json.loads(path.read_text())
        print(f"wrote {path} ({notebook_points(nb):g} points)")
    print(f"\nnext, from {args.course}: nbgrader generate_assignment <step id>")
    return 0


if __name__ == "__main__":
    sys.exit(main())

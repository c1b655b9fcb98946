"""Build a lab notebook (exercises/<id>.ipynb) from its source, solutions/labs/<id>.py.

The source is a plain Python file in the "percent" format that editors and jupytext know:

    # %% [markdown]
    # # A heading
    # Some prose.

    # %%
    x = 1

Every notebook gets the same first code cell, which finds the course root so that
``from tools.labkit import load_step`` works wherever Jupyter was started. Notebooks are
written with the standard library (no nbformat needed) with stable cell ids, so regenerating
an unchanged source gives a byte-identical file and the sync check can compare text.

A lab also runs headless, top to bottom, from the course folder:

    python tools/labs.py s01                  on your exercises/ (the default)
    python tools/labs.py s01 --impl solutions on the reference code

When a cell fails, the learner's error comes first, in plain words (which cell, which error,
the last line of their own code it ran), and nbclient's long traceback only after it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CELL = re.compile(r"^# %%(?P<kind> \[markdown\])?.*$")

BOOTSTRAP = """\
# Find the course root (the folder with tools/curriculum.toml) so `tools` imports work
# wherever Jupyter was started. ML2LLM_IMPL=solutions runs the lab on the reference code.
import pathlib
import sys

ROOT = next(p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
            if (p / "tools" / "curriculum.toml").exists())
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))"""


def parse_cells(source: str) -> list[tuple[str, str]]:
    """[(cell_type, text)] from a percent-format source."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        m = CELL.match(line)
        if m:
            cells.append(("markdown" if m["kind"] else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError("a lab source must start with a '# %%' cell marker")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = "\n".join(lines).strip("\n")
        if text:
            out.append((kind, text))
    return out


def notebook_text(source: str, step) -> str:
    cells = [("code", BOOTSTRAP), *parse_cells(source)]
    nb_cells = []
    for i, (kind, text) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"{step.id[:3]}-{i:02d}", "metadata": {},
                "source": text.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    nb = {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "ml2llm": {"step": step.id, "generated_from": f"solutions/labs/{step.id}.py"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


class LabError(RuntimeError):
    """A lab cell failed; the message starts with what went wrong, in plain words."""


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain_error(nb, notebook: Path | str = "") -> str | None:
    """The first failed cell of an executed notebook, learner's error first (None: none)."""
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for number, cell in enumerate(code_cells, 1):
        err = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if err is None:
            continue
        trace = [ANSI.sub("", line) for line in err.get("traceback", [])]
        mine = [m for line in trace for m in re.findall(
            r"(exercises/s\d\d_\w+\.py):(\d+)(?:, in (\w+))?", line)]
        where = (f" The last line of your code it ran: {mine[-1][0]}, line {mine[-1][1]}"
                 + (f", in {mine[-1][2]}" if mine[-1][2] else "") + "." if mine else "")
        first = next((ln for ln in cell.source.splitlines()
                      if ln.strip() and not ln.startswith("#")), "")
        details = "\n".join("\n".join(trace).strip().splitlines()[-25:])
        return (f"The lab {Path(notebook).name} stopped at code cell {number} (it starts "
                f"`{first[:70]}`) with {err.get('ename')}: {err.get('evalue')}.{where} Fix "
                "that, then run the lab again; nothing was recorded for this run.\n\n"
                f"Details (the end of the traceback):\n{details}")
    return None


def execute(notebook, impl: str = "solutions", results_dir=None, timeout: int = 300):
    """Run a lab notebook headless (as CI does) and return the executed notebook.

    The kernel starts in the notebook's folder with ML2LLM_IMPL=`impl`; a failing cell raises
    LabError, whose message names the cell and the error first, in plain words.
    """
    import os

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(notebook), as_version=4)
    env_before = {k: os.environ.get(k) for k in ("ML2LLM_IMPL", "ML2LLM_RESULTS", "MPLBACKEND")}
    os.environ.update(ML2LLM_IMPL=impl, MPLBACKEND="Agg")
    if results_dir is not None:
        os.environ["ML2LLM_RESULTS"] = str(results_dir)
    try:  # the kernel inherits this process's environment
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(notebook).parent)}}).execute()
    except CellExecutionError as exc:
        raise LabError(plain_error(nb, notebook) or str(exc)) from None
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def main(argv: list[str]) -> int:
    import argparse

    from tools.course import find_step

    parser = argparse.ArgumentParser(prog="python tools/labs.py",
                                     description="run a step's lab notebook headless")
    parser.add_argument("step", help="s01, 1, s01_linear_regression, ...")
    parser.add_argument("--impl", default="exercises", help="exercises (default) or solutions")
    args = parser.parse_args(argv)
    try:
        step = find_step(args.step)
    except KeyError as exc:
        print(exc.args[0])
        return 2
    try:
        execute(step.lab, impl=args.impl)
    except LabError as exc:
        print(exc)
        return 1
    except ImportError:
        print('Labs need the notebooks extra: pip install -e ".[notebooks]"')
        return 1
    print(f"{step.lab.name} ran top to bottom on {args.impl}/.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

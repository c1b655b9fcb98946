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
"""

from __future__ import annotations

import json
import re

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


def execute(notebook, impl: str = "solutions", results_dir=None, timeout: int = 300):
    """Run a lab notebook headless (as CI does) and return the executed notebook.

    The kernel starts in the notebook's folder with ML2LLM_IMPL=`impl`; a failing cell raises
    nbclient's CellExecutionError naming the cell and the error.
    """
    import os
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(notebook), as_version=4)
    env_before = {k: os.environ.get(k) for k in ("ML2LLM_IMPL", "ML2LLM_RESULTS", "MPLBACKEND")}
    os.environ.update(ML2LLM_IMPL=impl, MPLBACKEND="Agg")
    if results_dir is not None:
        os.environ["ML2LLM_RESULTS"] = str(results_dir)
    try:  # the kernel inherits this process's environment
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(notebook).parent)}}).execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb

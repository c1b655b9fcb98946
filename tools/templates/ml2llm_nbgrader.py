"""Run ml-to-llm's pytest graders inside an nbgrader notebook, with pytest itself.

This file is copied, unchanged, next to every notebook that tools/nbgrader_export.py generates
(nbgrader restores it from the course's source folder before autograding, so an edited copy
cannot change a grade). The notebook's locked cells use it like this:

    grading = Grading("s00_toolbox", api=["set_seed", ...], namespace=globals())

    %%ml2llm_setup public        <- the public grader module's imports and helpers
    ...
    %%ml2llm_test public         <- one pytest test function, run on your notebook
    @pytest.mark.points(2)
    def test_split_sizes_and_disjointness(impl): ...

A grade cell is run by ``pytest.main``: the cell's test, after its grader module's set-up code,
is written to a file of its own and collected by pytest, so fixtures, parametrisation, marks,
skips and Hypothesis behave exactly as in ``python -m pytest graders/``. A small plugin
(``NotebookPlugin``) supplies what the course's conftest.py supplies there: ``impl`` (your
notebook seen as the module ``exercises/<step>.py``), ``rng`` (seeded from the test's id in
the course, ``graders/test_<step>.py::test_name[case]``, so both tracks draw the same data), the
global seeds reset before every test, the ``points`` / ``hidden`` / ``step`` markers and a
check that the step's functions were written in this notebook. It also collects each test's
outcome, so the cell can print one line per test and raise when one fails.

A failing test raises an error in its cell (nbgrader gives the cell 0 points); a passing one
prints a line; a parametrised test whose cases partly pass returns its partial points, which
nbgrader records as partial credit. A skipped test counts its points, as in the pytest track.
Nothing is written to stderr while a test runs: nbgrader counts any stderr output in a grade
cell as a failure, so warnings are shown on stdout. nbgrader's timeout interrupts the kernel;
pytest stops and the interruption is passed on, so the cell stops too.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import json
import linecache
import os
import random
import shutil
import sys
import tempfile
import time
import types
import zlib
from pathlib import Path

import numpy as np
import pytest

__all__ = ["Grading", "Run", "load_step"]

LAB_MARK = "# Lab cell (not graded)"  # first line of every lab code cell
_GRADINGS: dict[str, Grading] = {}  # step id -> its Grading, for load_step() in lab cells
MAX_MESSAGE_LINES = 20
PYTEST_INI = """\
[pytest]
markers =
    points(n): points of a test
    hidden: a hidden test
    step(id): the step a test grades
"""


class TestFailed(AssertionError):
    """A grader test failed; shown as its message alone, without the harness's traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        head, *rest = str(self).splitlines() or [""]
        return [f"\x1b[0;31m{head}\x1b[0m", *rest]


class NotebookImpl(types.ModuleType):
    """The notebook's functions and classes, seen as the step's module (``impl`` in graders).

    Attribute look-ups read the notebook's namespace at call time, so re-running a cell
    updates what the next test grades.
    """

    def __init__(self, step: str, namespace: dict):
        super().__init__(f"notebook:{step}")
        self.__dict__["_ml2llm_namespace"] = namespace

    def __getattr__(self, name: str):
        namespace = self.__dict__["_ml2llm_namespace"]
        if name in namespace:
            return namespace[name]
        raise AttributeError(f"your notebook defines no `{name}`: run the cell that defines it "
                             "(and keep its name)")


class Grading:
    """The grading state of one step's notebook: its ``impl`` and the grader set-up code."""

    def __init__(self, step: str, api: list[str], namespace: dict):
        self.step = step
        self.api = list(api)
        self.user_ns = namespace
        self.impl = NotebookImpl(step, namespace)
        self.namespaces: dict[str, types.ModuleType] = {}
        self.setup_source: dict[str, str] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ml2llm-{step}-"))
        atexit.register(shutil.rmtree, self.workdir, ignore_errors=True)
        (self.workdir / "pytest.ini").write_text(PYTEST_INI)
        self.runs = 0
        _GRADINGS[step] = self
        _quiet_hypothesis()
        self._register_magics()
        _skip_labs_when_autograding()

    # --- the cell magics ----------------------------------------------------------------
    def _register_magics(self) -> None:
        try:
            from IPython import get_ipython
        except ImportError:  # plain Python: call setup() / run_cell() directly
            return
        shell = get_ipython()
        if shell is None:
            return
        shell.register_magic_function(self._setup_magic, "cell", "ml2llm_setup")
        shell.register_magic_function(self._test_magic, "cell", "ml2llm_test")

    def _setup_magic(self, line: str, cell: str) -> None:
        self.setup(line.strip() or "public", cell)

    def _test_magic(self, line: str, cell: str):
        return self.run_cell(line.strip() or "public", cell)

    # --- grader set-up ------------------------------------------------------------------
    def module_path(self, kind: str) -> str:
        return (f"graders/test_{self.step}.py" if kind == "public"
                else f"graders/hidden/test_{self.step}.py")

    def namespace(self, kind: str) -> types.ModuleType:
        """The grader module as a hidden grader imports it (``graders.test_<step>``)."""
        if kind not in ("public", "hidden"):
            raise ValueError(f"grader kind must be public or hidden, got {kind!r}")
        if kind not in self.namespaces:
            name = f"_ml2llm_graders_{kind}_{self.step}"
            module = types.ModuleType(name)
            module.__file__ = str(Path.cwd() / self.module_path(kind))
            sys.modules[name] = module  # dataclasses and pickling look modules up by name
            if kind == "public":  # hidden graders may import the public module's helpers
                sys.modules[f"graders.test_{self.step}"] = module
            self.namespaces[kind] = module
        return self.namespaces[kind]

    def setup(self, kind: str, source: str) -> None:
        """Keep a grader module's imports and helpers for its test cells (and run them once,
        so a hidden grader can import the public module's helpers)."""
        module = self.namespace(kind)
        filename = f"<{self.module_path(kind)}: set-up>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        with _quiet_streams():
            exec(compile(source, filename, "exec"), module.__dict__)
        self.setup_source[kind] = source

    # --- running tests -----------------------------------------------------------------
    def run_cell(self, kind: str, source: str):
        """Run the test functions a grade cell defines with pytest; raise if one fails."""
        names = [n.name for n in ast.parse(source).body
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                 and n.name.startswith("test")]
        if not names:
            if kind == "hidden":
                print("A hidden test: it runs when your notebook is graded.")
            return None
        plugin = self.run_pytest(kind, source)
        earned = total = 0.0
        failures, lines = [], []
        for name in names:
            cases = [r for r in plugin.results.values() if r["function"] == name]
            worth = sum(r["points"] for r in cases)
            got = sum(r["points"] for r in cases if r["outcome"] in ("passed", "skipped"))
            earned, total = earned + got, total + worth
            failures += [f"{r['name']} failed ({r['points']:g} points): {r['message']}"
                         for r in cases if r["outcome"] == "failed"]
            if not cases:
                failures.append(f"{name} could not run: {plugin.problem or 'not collected'}")
            mark = "passed" if cases and got == worth else "FAILED"
            lines.append(f"- {name}: {mark} ({got:g} / {worth:g} points)")
        print("\n".join(lines))
        if not failures:
            return None
        if earned == 0:
            raise TestFailed("\n".join(failures))
        print("\n".join(failures))
        return round(earned, 6)  # nbgrader reads a numeric result as partial credit

    def run_pytest(self, kind: str, source: str) -> NotebookPlugin:
        """pytest.main on one grade cell, written out after its module's set-up code."""
        self.runs += 1
        folder = self.workdir / f"cell{self.runs}"
        folder.mkdir()
        setup = self.setup_source.get(kind, "")
        test_file = folder / f"test_{self.step}.py"
        test_file.write_text(f"{setup}\n\n\n{source}\n")
        plugin = NotebookPlugin(self, kind)
        args = [str(test_file), "-c", str(self.workdir / "pytest.ini"),
                f"--rootdir={self.workdir}", "--import-mode=importlib", "--capture=sys",
                "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:warnings",
                "-p", "no:unraisableexception"]  # (it runs gc.collect 5 times per call)
        saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only what grading needs
        try:
            with _quiet_streams():
                code = pytest.main(args, plugins=[plugin])
        finally:
            if saved is None:
                os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            else:
                os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved
        if code == pytest.ExitCode.INTERRUPTED:
            raise KeyboardInterrupt  # nbgrader's timeout: stop the cell, as pytest stopped
        return plugin

    def provenance_problems(self) -> list[str]:
        """The step's functions and classes must be defined in this notebook, not imported."""
        problems = []
        for name in self.api:
            obj = self.user_ns.get(name)
            if obj is None:
                problems.append(f"`{name}` is not defined: run the cell that defines it, and "
                                "keep its name unchanged.")
            elif getattr(obj, "__module__", None) != "__main__":
                problems.append(f"`{name}` comes from {getattr(obj, '__module__', '?')}, not "
                                "from this notebook: write it yourself in its cell.")
        return problems


class NotebookPlugin:
    """What conftest.py gives the graders in the course, given from the notebook instead;
    and the outcome of each test, collected for the cell's summary."""

    def __init__(self, grading: Grading, kind: str):
        self.grading, self.kind = grading, kind
        self.results: dict[str, dict] = {}  # nodeid -> one result per test
        self.problem: str | None = None
        self._points: dict[str, float] = {}


    @pytest.fixture
    def impl(self):
        problems = self.grading.provenance_problems()
        if problems:
            pytest.fail(" ".join(problems), pytrace=False)
        return self.grading.impl

    @pytest.fixture
    def rng(self, request) -> np.random.Generator:
        nodeid = f"{self.grading.module_path(self.kind)}::{request.node.name}"  # as in the course
        return np.random.default_rng(zlib.crc32(nodeid.encode()))

    @pytest.fixture(autouse=True)
    def _ml2llm_seed_everything(self):
        _seed_everything()

    def pytest_collection_modifyitems(self, items):
        for item in items:
            item.add_marker(pytest.mark.step(self.grading.step))
            if self.kind == "hidden":
                item.add_marker(pytest.mark.hidden)
            mark = item.get_closest_marker("points")
            self._points[item.nodeid] = float(mark.args[0]) if mark and mark.args else 1.0

    def pytest_collectreport(self, report):
        if report.failed:
            self.problem = (str(report.longrepr).strip().splitlines() or ["?"])[-1]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and report.failed:
            report.ml2llm_message = _classify(call.excinfo.value)[1]

    def pytest_runtest_logreport(self, report):
        # One result per test, as tools/pytest_report.py counts them: the call phase, or setup
        # when it failed or skipped the test, and teardown only when it failed.
        if report.when == "call":
            outcome = report.outcome
        elif report.when == "setup" and not report.passed:
            outcome = "skipped" if report.skipped else "failed"
        elif report.when == "teardown" and report.failed:
            outcome = "failed"
        else:
            return
        name = report.nodeid.split("::")[-1]
        self.results[report.nodeid] = {
            "name": name, "function": name.split("[")[0], "outcome": outcome,
            "points": self._points.get(report.nodeid, 1.0),
            "message": getattr(report, "ml2llm_message", None) or str(report.longrepr or "")}


def _seed_everything() -> None:
    """What conftest.py's autouse fixture does before every grader test."""
    random.seed(0)
    np.random.seed(0)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(1)


def _quiet_hypothesis() -> None:
    """Deterministic property tests: the same examples on every run, no example database."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    settings.register_profile("ml2llm-nbgrader", derandomize=True, database=None,
                              deadline=None, print_blob=False,
                              suppress_health_check=list(HealthCheck))
    settings.load_profile("ml2llm-nbgrader")


@contextlib.contextmanager
def _quiet_streams():
    """Send stderr (Python's and the C libraries') to stdout while grader code runs."""
    saved_fd = None
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fd = os.dup(2)
        os.dup2(1, 2)
    except (OSError, ValueError, AttributeError):
        saved_fd = None
    try:
        with contextlib.redirect_stderr(sys.stdout):
            yield
    finally:
        if saved_fd is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
                os.dup2(saved_fd, 2)
            os.close(saved_fd)


def _learner_location(tb) -> str | None:
    """The deepest frame of notebook code (a cell), as 'function (cell line N)'."""
    found = None
    for frame, lineno in _walk(tb):
        filename = frame.f_code.co_filename
        if "ipykernel" in filename or filename.startswith("<ipython-input"):
            found = f"in {frame.f_code.co_name}, line {lineno} of its cell"
    return found


def _walk(tb):
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _classify(exc: BaseException) -> tuple[str, str]:
    kind = type(exc).__name__
    module = type(exc).__module__ or ""
    if kind == "Skipped" and module.startswith("_pytest"):
        return "skipped", str(exc)
    lines = str(exc).strip().splitlines()
    notes = [str(n) for n in getattr(exc, "__notes__", [])]
    lines = lines + notes
    if len(lines) > MAX_MESSAGE_LINES:
        lines = lines[:MAX_MESSAGE_LINES] + ["..."]
    text = "\n".join(lines)
    if kind == "Failed" and module.startswith("_pytest"):
        message = text
    elif isinstance(exc, AssertionError):
        message = text or "an assertion failed"
    elif isinstance(exc, NotImplementedError):
        message = f"NotImplementedError: {text or 'not written yet'}"
    elif isinstance(exc, SystemExit):
        message = ("your code called sys.exit() or exit(): a function must return values, "
                   "never end the program")
    else:
        message = f"{kind}: {text}"
    where = _learner_location(exc.__traceback__)
    return "failed", message + (f"\n  (raised {where})" if where else "")


def _skip_labs_when_autograding() -> None:
    """Lab cells grade nothing: while nbgrader autogrades (the course's nbgrader_config.py
    sets ML2LLM_SKIP_LABS=1 for `nbgrader autograde`) they are replaced by a one-line note,
    which halves the time a class takes to grade. ML2LLM_SKIP_LABS=0 runs them too."""
    if os.environ.get("ML2LLM_SKIP_LABS") != "1":
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "_ml2llm_skips_labs", False):
        return

    def skip_lab(lines: list[str]) -> list[str]:
        if lines and lines[0].startswith(LAB_MARK):
            return [lines[0], 'print("lab cell skipped while autograding")\n']
        return lines

    shell.input_transformers_post.append(skip_lab)
    shell._ml2llm_skips_labs = True


# --- what lab cells import instead of tools.labkit ----------------------------------------

def load_step(step_id: str, impl: str | None = None) -> types.ModuleType:
    """The functions and classes of this notebook, as tools.labkit.load_step gives a module."""
    for step, grading in _GRADINGS.items():
        if step == step_id or step.startswith(f"{step_id}_") or step[:3] == step_id[:3]:
            return grading.impl
    raise KeyError(f"no grading set-up for {step_id}: run the notebook's cells from the top")


class Run:
    """One experiment's record, as tools.labkit.Run writes it (results/<step>/<run>/); the
    run's folder appears only when it is finished, so a failing lab leaves none behind."""

    def __init__(self, step_id: str, config: dict, seed: int):
        self.step = step_id
        self.record = {"step": step_id, "config": config, "seed": seed, "commit": "notebook",
                       "impl": "notebook", "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                       "metrics": {}, "figures": [], "interpretation": ""}
        base = Path(os.environ.get("ML2LLM_RESULTS", "results"))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.dir = base / step_id / f"{stamp}-seed{seed}"
        n = 1
        while self.dir.exists():
            n += 1
            self.dir = base / step_id / f"{stamp}-seed{seed}-{n}"
        self._staging = self.dir.with_name(f".incomplete-{self.dir.name}")
        atexit.register(shutil.rmtree, self._staging, ignore_errors=True)

    def metric(self, name: str, value) -> None:
        self.record["metrics"][name] = float(value) if hasattr(value, "__float__") else value

    def figure(self, fig, name: str) -> Path:
        self._staging.mkdir(parents=True, exist_ok=True)
        fig.savefig(self._staging / f"{name}.png", dpi=110, bbox_inches="tight")
        self.record["figures"].append(f"{name}.png")
        return self.dir / f"{name}.png"

    def finish(self, interpretation: str) -> Path:
        self.record["interpretation"] = interpretation
        self._staging.mkdir(parents=True, exist_ok=True)
        (self._staging / "record.json").write_text(json.dumps(self.record, indent=1))
        self._staging.rename(self.dir)
        path = self.dir / "record.json"
        print(f"run recorded in {path}")
        return path

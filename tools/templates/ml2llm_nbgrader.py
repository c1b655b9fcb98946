"""Run ml-to-llm's pytest graders inside an nbgrader notebook.

This file is copied, unchanged, next to every notebook that tools/nbgrader_export.py generates
(nbgrader restores it from the course's source folder before autograding, so an edited copy
cannot change a grade). The notebook's locked cells use it like this:

    grading = Grading("s00_toolbox", api=["set_seed", ...], namespace=globals())

    %%ml2llm_setup public        <- the public grader module's imports and helpers
    ...
    %%ml2llm_test public         <- one pytest test function, run on your notebook
    @pytest.mark.points(2)
    def test_split_sizes_and_disjointness(impl): ...

Each test runs exactly as pytest would run it on ``exercises/<step>.py``: ``impl`` is your
notebook seen as that module, ``rng`` is seeded from the test's pytest node id, the global
seeds are reset before every test, hypothesis tests are derandomised, and the points come from
``@pytest.mark.points``. The grader code runs in its own namespace, so a helper in a test file
can never shadow a function of yours (nor yours one of the graders').

A failing test raises an error in its cell (nbgrader gives the cell 0 points); a passing one
prints a line; a parametrised test whose cases partly pass returns its partial points, which
nbgrader records as partial credit. Nothing is written to stderr while a test runs: nbgrader
counts any stderr output in a grade cell as a failure, so warnings are shown on stdout.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import itertools
import json
import linecache
import os
import random
import sys
import tempfile
import time
import types
import zlib
from pathlib import Path

import numpy as np

__all__ = ["Grading", "Run", "load_step"]

SUPPORTED_FIXTURES = ("impl", "rng", "tmp_path", "monkeypatch", "capsys")
LAB_MARK = "# Lab cell (not graded)"  # first line of every lab code cell
_GRADINGS: dict[str, Grading] = {}  # step id -> its Grading, for load_step() in lab cells
MAX_MESSAGE_LINES = 20


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
    """The grading state of one step's notebook: its ``impl`` and the grader namespaces."""

    def __init__(self, step: str, api: list[str], namespace: dict):
        self.step = step
        self.api = list(api)
        self.user_ns = namespace
        self.impl = NotebookImpl(step, namespace)
        self.namespaces: dict[str, types.ModuleType] = {}
        self.fixture_cache: dict[tuple[str, str], object] = {}
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

    # --- grader namespaces -------------------------------------------------------------
    def module_path(self, kind: str) -> str:
        return (f"graders/test_{self.step}.py" if kind == "public"
                else f"graders/hidden/test_{self.step}.py")

    def namespace(self, kind: str) -> types.ModuleType:
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

    def _exec(self, kind: str, source: str, label: str) -> types.ModuleType:
        module = self.namespace(kind)
        filename = f"<{self.module_path(kind)}: {label}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        with _quiet_streams():
            exec(compile(source, filename, "exec"), module.__dict__)
        return module

    def setup(self, kind: str, source: str) -> None:
        """Run a grader module's imports and helpers in its namespace."""
        self._exec(kind, source, "set-up")

    # --- running tests -----------------------------------------------------------------
    def run_cell(self, kind: str, source: str):
        """Run the test functions a grade cell defines; raise if one fails."""
        names = [n.name for n in ast.parse(source).body
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                 and n.name.startswith("test")]
        if not names:
            if kind == "hidden":
                print("A hidden test: it runs when your notebook is graded.")
            return None
        module = self._exec(kind, source, ", ".join(names))
        earned = total = 0.0
        failures, lines = [], []
        for name in names:
            got, worth, failed, line = self.run_test(kind, module, name)
            earned, total = earned + got, total + worth
            failures += failed
            lines.append(line)
        print("\n".join(lines))
        if not failures:
            return None
        if earned == 0:
            raise TestFailed("\n".join(failures))
        print("\n".join(failures))
        return round(earned, 6)  # nbgrader reads a numeric result as partial credit

    def run_test(self, kind: str, module: types.ModuleType, name: str):
        """(points earned, points possible, failure messages, summary line) for one test."""
        fn = getattr(module, name)
        marks = _marks(fn) + _as_list(module.__dict__.get("pytestmark"))
        points = _points(marks)
        cases = _cases(marks)
        base_id = f"{self.module_path(kind)}::{name}"
        skip = _skip_reason(marks, module)
        if skip is not None:
            worth = points * len(cases)
            return worth, worth, [], f"- {name}: skipped ({skip}); its {worth:g} points count"
        earned, failures = 0.0, []
        for case_id, params in cases:
            nodeid = base_id + (f"[{case_id}]" if case_id else "")
            shown = name + (f"[{case_id}]" if case_id else "")
            outcome, message = self._call(module, fn, nodeid, params)
            if outcome in ("passed", "skipped"):
                earned += points
            else:
                failures.append(f"{shown} failed ({points:g} points): {message}")
        worth = points * len(cases)
        mark = "passed" if earned == worth else "FAILED"
        return earned, worth, failures, f"- {name}: {mark} ({earned:g} / {worth:g} points)"

    def _call(self, module, fn, nodeid: str, params: dict) -> tuple[str, str]:
        problems = self.provenance_problems()
        if problems:
            return "failed", " ".join(problems)
        _seed_everything()
        finalizers: list = []
        with _quiet_streams():
            try:
                kwargs = {}
                for auto in _autouse_fixtures(module):
                    self._fixture(module, auto, nodeid, finalizers)
                for pname in inspect.signature(fn).parameters:
                    if pname in params:
                        kwargs[pname] = params[pname]
                    else:
                        kwargs[pname] = self._fixture(module, pname, nodeid, finalizers)
                fn(**kwargs)
                return "passed", ""
            except KeyboardInterrupt:
                raise  # nbgrader's timeout interrupts the kernel: let the cell stop
            except BaseException as exc:  # noqa: BLE001 - learner code may raise anything
                return _classify(exc)
            finally:
                for fin in reversed(finalizers):
                    with contextlib.suppress(Exception):
                        fin()

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

    def _fixture(self, module, name: str, nodeid: str, finalizers: list):
        if name == "impl":
            return self.impl
        if name == "rng":
            return np.random.default_rng(zlib.crc32(nodeid.encode()))
        if name == "tmp_path":
            return Path(tempfile.mkdtemp(prefix="ml2llm-"))
        if name == "monkeypatch":
            import pytest

            mp = pytest.MonkeyPatch()
            finalizers.append(mp.undo)
            return mp
        if name == "capsys":
            cap = Capsys()
            finalizers.append(cap.close)
            return cap
        defined = module.__dict__.get(name)
        marker = _fixture_marker(defined)
        if marker is None:
            raise RuntimeError(f"the graders use a fixture `{name}` this notebook cannot "
                               "provide; tell your instructor")
        scope = getattr(marker, "scope", "function")
        key = (module.__name__, name)
        if scope != "function" and key in self.fixture_cache:
            return self.fixture_cache[key]
        func = _fixture_function(defined)
        kwargs = {p: self._fixture(module, p, nodeid, finalizers)
                  for p in inspect.signature(func).parameters}
        value = func(**kwargs)
        if inspect.isgenerator(value):
            gen, value = value, next(value)
            finalizers.append(lambda: next(gen, None))
        if scope != "function":
            self.fixture_cache[key] = value
        return value


class Capsys:
    """pytest's ``capsys``: what the test prints, from ``readouterr()``."""

    def __init__(self):
        import io

        self._saved = sys.stdout, sys.stderr
        self._out, self._err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = self._out, self._err

    def readouterr(self):
        from collections import namedtuple

        result = namedtuple("CaptureResult", "out err")(self._out.getvalue(),
                                                        self._err.getvalue())
        for buf in (self._out, self._err):
            buf.seek(0)
            buf.truncate()
        return result

    def close(self) -> None:
        sys.stdout, sys.stderr = self._saved


# --- pytest marks, read the way pytest reads them ------------------------------------------

def _as_list(marks) -> list:
    if marks is None:
        return []
    return list(marks) if isinstance(marks, list | tuple) else [marks]


def _marks(fn) -> list:
    marks = []
    for m in _as_list(getattr(fn, "pytestmark", None)):
        marks.append(getattr(m, "mark", m))  # a MarkDecorator holds its Mark
    return marks


def _points(marks) -> float:
    for m in marks:
        if m.name == "points" and m.args:
            return float(m.args[0])
    return 1.0


def _skip_reason(marks, module) -> str | None:
    for m in marks:
        if m.name == "skip":
            return m.kwargs.get("reason", m.args[0] if m.args else "skipped")
        if m.name == "skipif":
            conditions = m.args or (m.kwargs.get("condition"),)
            for cond in conditions:
                if isinstance(cond, str):
                    cond = eval(cond, module.__dict__)  # pytest's string conditions
                if cond:
                    return m.kwargs.get("reason", "skipped")
    return None


def _idval(value, argname: str, idx: int) -> str:
    if isinstance(value, str):
        return value.encode("unicode_escape").decode("ascii")
    if value is None or isinstance(value, int | float | complex | bool):
        return str(value)
    name = getattr(value, "__name__", None)
    if isinstance(name, str) and (inspect.isclass(value) or inspect.isfunction(value)):
        return name
    return f"{argname}{idx}"


def _cases(marks) -> list[tuple[str, dict]]:
    """[(pytest's id for the case, {argname: value})] for stacked parametrize marks."""
    per_mark = []
    for m in marks:  # pytestmark lists the decorator closest to the function first
        if m.name != "parametrize":
            continue
        argnames, argvalues = m.args[0], list(m.args[1])
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",") if a.strip()]
        ids = m.kwargs.get("ids")
        cases = []
        for i, raw in enumerate(argvalues):
            explicit = getattr(raw, "id", None)
            values = raw.values if hasattr(raw, "values") and hasattr(raw, "marks") else raw
            if len(argnames) == 1 and not (hasattr(raw, "values") and hasattr(raw, "marks")):
                values = (values,)
            params = dict(zip(argnames, values, strict=True))
            if explicit is not None:
                case_id = str(explicit)
            elif isinstance(ids, list | tuple) and i < len(ids) and ids[i] is not None:
                case_id = str(ids[i])
            elif callable(ids):
                parts = [ids(v) for v in values]
                case_id = "-".join(str(p) if p is not None else _idval(v, a, i)
                                   for p, v, a in zip(parts, values, argnames, strict=True))
            else:
                case_id = "-".join(_idval(v, a, i)
                                   for v, a in zip(values, argnames, strict=True))
            cases.append((case_id, params))
        per_mark.append(cases)
    if not per_mark:
        return [("", {})]
    out = []
    for combo in itertools.product(*per_mark):
        out.append(("-".join(c[0] for c in combo), {k: v for c in combo for k, v in c[1].items()}))
    return out


def _fixture_marker(obj):
    marker = getattr(obj, "_fixture_function_marker", None)  # pytest >= 8.4
    if marker is None:
        marker = getattr(obj, "_pytestfixturefunction", None)  # older pytest
    return marker


def _fixture_function(obj):
    getter = getattr(obj, "_get_wrapped_function", None)
    return getter() if getter is not None else getattr(obj, "__wrapped__", obj)


def _autouse_fixtures(module) -> list[str]:
    return [name for name, obj in module.__dict__.items()
            if (m := _fixture_marker(obj)) is not None and getattr(m, "autouse", False)]


# --- running, the way tools/pytest_report.py reports -------------------------------------

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
    """One experiment's record, as tools.labkit.Run writes it (results/<step>/<run>/)."""

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
        self.dir.mkdir(parents=True)

    def metric(self, name: str, value) -> None:
        self.record["metrics"][name] = float(value) if hasattr(value, "__float__") else value

    def figure(self, fig, name: str) -> Path:
        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.record["figures"].append(path.name)
        return path

    def finish(self, interpretation: str) -> Path:
        self.record["interpretation"] = interpretation
        path = self.dir / "record.json"
        path.write_text(json.dumps(self.record, indent=1))
        print(f"run recorded in {path}")
        return path

"""Contract coverage: every public function, method and parameter of a step's solution is
called by a grader test with a non-default value, and every docstring promise names the
test that checks it.

    python tools/coverage_contract.py s00 [s01 ...]          trace the graders, print tables
    python tools/coverage_contract.py s00 --write            ... and write graders/coverage/
    python tools/coverage_contract.py check [s00 ...]        what the project's tests run

Tracing: the step's public + hidden graders run on the solution (``tools.grading.run_step``,
the same runner as a learner's verdict) with this module loaded as a pytest plugin, which
sets ``sys.setprofile`` around each test and records every call into the solution file that
comes straight from outside it (a grader, a helper, hypothesis; not the solution calling
itself): which parameters were passed a value that differs from their default (a parameter
without a default counts once the callable is called at all) and the dtypes of array
arguments. Public means the step's API (``stubgen.api_names``) and the methods its classes
define (``__init__``, ``__call__`` and names without a leading underscore); an exception
class's methods are raised by the solution, never called by a learner's caller, so they are
left out.

``graders/coverage/<step id>.toml`` holds the sha256 of the solution and the two grader
files, the traced table (written by ``--write``) and two hand-kept tables that ``--write``
keeps:

    [promises]   # "callable: what its docstring promises" = "test_name" (or a list of names)
    "train_val_test_split: sizes are round(frac * n)" = "test_split_sizes_round_fractions"
    [exempt]     # "callable.param" = "why no test passes it a non-default value"

``check`` (no tracing, so it is fast) fails when a file is missing or stale, a callable or
parameter is not exercised and not exempt, a public callable has no promise, or a promise
names a test that does not exist in the step's graders.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import os
import sys
import tempfile
import tomllib
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.course import ROOT, Step, find_step, load_steps

TABLES = ROOT / "graders" / "coverage"
OUT_ENV = "ML2LLM_COVERAGE_OUT"  # where the plugin writes what it traced (JSON)
TARGET_ENV = "ML2LLM_COVERAGE_TARGET"  # the solution file whose calls are recorded
_KEEP = ("__init__", "__call__")


# --- the pytest plugin (runs inside the grading process) ----------------------------------------

def _is_public(qualname: str) -> bool:
    parts = qualname.split(".")
    return "<locals>" not in parts and all(not p.startswith("_") or p in _KEEP for p in parts)


def _differs(value, default) -> bool:
    if value is default:
        return False
    try:
        same = value == default
        return not bool(same)
    except Exception:  # arrays compared with a scalar default, odd objects: they differ
        return True


class _Tracer:
    def __init__(self, target: str, out: str) -> None:
        self.target, self.out = target, out
        self.seen: dict[str, dict] = {}
        self._sigs: dict[object, inspect.Signature | None] = {}
        self.test = ""

    def _signature(self, frame) -> inspect.Signature | None:
        code = frame.f_code
        if code not in self._sigs:
            obj = frame.f_globals.get(code.co_qualname.split(".")[0])
            for part in code.co_qualname.split(".")[1:]:
                obj = inspect.getattr_static(obj, part, None) if obj is not None else None
            obj = getattr(obj, "__func__", obj)  # staticmethod / classmethod
            obj = obj.fget if isinstance(obj, property) else obj  # a property's getter
            try:
                self._sigs[code] = inspect.signature(obj) if callable(obj) else None
            except (TypeError, ValueError):
                self._sigs[code] = None
        return self._sigs[code]

    def profile(self, frame, event, arg) -> None:
        if event != "call" or frame.f_code.co_filename != self.target:
            return
        caller = frame.f_back
        if caller is not None and caller.f_code.co_filename == self.target:
            return  # the solution calling itself exercises nothing for the graders
        name = frame.f_code.co_qualname
        sig = self._signature(frame) if _is_public(name) else None
        if sig is None:
            return
        entry = self.seen.setdefault(name, {"calls": 0, "tests": [], "params": {}})
        entry["calls"] += 1
        if self.test and self.test not in entry["tests"] and len(entry["tests"]) < 3:
            entry["tests"].append(self.test)
        for pname, p in sig.parameters.items():
            if pname in ("self", "cls") or pname not in frame.f_locals:
                continue
            value = frame.f_locals[pname]
            rec = entry["params"].setdefault(pname, {"non_default": False, "dtypes": []})
            if p.kind is p.VAR_POSITIONAL or p.kind is p.VAR_KEYWORD:
                rec["non_default"] |= bool(value)
            elif p.default is p.empty or _differs(value, p.default):
                rec["non_default"] = True
            dtype = getattr(value, "dtype", None)
            if dtype is not None and str(dtype) not in rec["dtypes"]:
                rec["dtypes"].append(str(dtype))

    def write(self) -> None:
        Path(self.out).write_text(json.dumps(self.seen))


def pytest_configure(config):
    out, target = os.environ.get(OUT_ENV), os.environ.get(TARGET_ENV)
    if out and target:
        config.pluginmanager.register(_Plugin(_Tracer(target, out)), "ml2llm-coverage")


class _Plugin:
    def __init__(self, tracer: _Tracer) -> None:
        self.tracer = tracer

    def pytest_runtest_call(self, item):
        self.tracer.test = item.name.split("[")[0]
        sys.setprofile(self.tracer.profile)

    def pytest_runtest_teardown(self, item):
        sys.setprofile(None)

    def pytest_sessionfinish(self, session):
        sys.setprofile(None)
        self.tracer.write()


# --- what must be covered -----------------------------------------------------------------------

_FUNCTIONS = ast.FunctionDef | ast.AsyncFunctionDef  # `async def` is a callable like `def`

def public_callables(step: Step) -> list[str]:
    """Qualnames of the step's public functions and of its classes' public methods."""
    from tools.stubgen import api_names

    return callables_in(step.solution.read_text(), set(api_names(step)))


def callables_in(source: str, api: set[str]) -> list[str]:
    """public_callables of a module's source, given its API names (def and async def alike)."""
    names = []
    for node in ast.parse(source).body:
        if not isinstance(node, _FUNCTIONS | ast.ClassDef) or node.name not in api:
            continue
        if isinstance(node, _FUNCTIONS):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if any(b.endswith(("Error", "Exception")) for b in bases):
                continue
            names += [f"{node.name}.{f.name}" for f in node.body
                      if isinstance(f, _FUNCTIONS) and _is_public(f.name)]
    return names


def grader_tests(step: Step) -> set[str]:
    names = set()
    for path in step.grader_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, _FUNCTIONS) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def current_hashes(step: Step) -> dict[str, str]:
    return {"solution": sha256(step.solution), "public_graders": sha256(step.public_graders),
            "hidden_graders": sha256(step.hidden_graders)}


def trace(step: Step) -> dict:
    """Grade the solution with the tracer on; {qualname: {calls, tests, params}}."""
    from tools.grading import run_step

    with tempfile.TemporaryDirectory(prefix=f"coverage-{step.id}-") as tmp:
        out = Path(tmp) / "trace.json"
        old = {k: os.environ.get(k) for k in (OUT_ENV, TARGET_ENV)}
        os.environ[OUT_ENV], os.environ[TARGET_ENV] = str(out), str(step.solution)
        try:
            run = run_step(step, "solutions", extra_args=["-p", "tools.coverage_contract"])
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if not run.passed or not out.exists():
            raise RuntimeError(f"{step.id}: the traced grading did not pass (or wrote nothing); "
                               f"run python tools/contract.py {step.id[:3]}")
        return json.loads(out.read_text())


def table_from_trace(step: Step, traced: dict) -> list[dict]:
    rows = []
    for name in public_callables(step):
        got = traced.get(name, {"calls": 0, "tests": [], "params": {}})
        params = got["params"]
        rows.append({"name": name, "calls": got["calls"], "tests": got["tests"],
                     "exercised": sorted(p for p, r in params.items() if r["non_default"]),
                     "missing": sorted(p for p, r in params.items() if not r["non_default"]),
                     "dtypes": {p: r["dtypes"] for p, r in sorted(params.items())
                                if r["dtypes"]}})
        if not got["calls"]:
            rows[-1]["missing"] = ["(never called by a test)"]
    return rows


# --- the committed file ---------------------------------------------------------------------------

def table_path(step: Step) -> Path:
    return TABLES / f"{step.id}.toml"


def load_table(step: Step) -> dict | None:
    path = table_path(step)
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return tomllib.load(f)


def _s(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_table(step: Step, rows: list[dict], old: dict | None) -> None:
    old = old or {}
    lines = [f"# Contract coverage of {step.id}. [[callable]] is written by `python "
             f"tools/coverage_contract.py {step.id[:3]} --write`;",
             "# [promises] (\"callable: docstring promise\" = \"test name\") and [exempt] "
             "(\"callable.param\" = \"why\") are kept by hand.", "",
             f"step = {_s(step.id)}", "", "[hashes]"]
    lines += [f"{k} = {_s(v)}" for k, v in current_hashes(step).items()]
    for table in ("promises", "exempt"):
        lines += ["", f"[{table}]"]
        lines += [f"{_s(k)} = {_s(v)}" for k, v in old.get(table, {}).items()]
    for row in rows:
        lines += ["", "[[callable]]", f"name = {_s(row['name'])}", f"calls = {row['calls']}",
                  f"tests = {_s(row['tests'])}", f"exercised = {_s(row['exercised'])}",
                  f"missing = {_s(row['missing'])}"]
        if row["dtypes"]:
            lines.append("dtypes = { " + ", ".join(f"{k} = {_s(v)}" for k, v in
                                                   row["dtypes"].items()) + " }")
    TABLES.mkdir(parents=True, exist_ok=True)
    table_path(step).write_text("\n".join(lines) + "\n", encoding="utf-8")


def problems(step: Step, data: dict | None) -> list[str]:
    """Why a step's coverage file is missing, stale or incomplete."""
    redo = f"run `python tools/coverage_contract.py {step.id[:3]} --write`"
    if data is None:
        return [f"{step.id}: no contract coverage file (graders/coverage/{step.id}.toml); "
                f"{redo}"]
    out = []
    stale = [k for k, v in current_hashes(step).items() if data.get("hashes", {}).get(k) != v]
    if stale:
        out.append(f"{step.id}: the coverage table is stale ({', '.join(stale)} changed); {redo}")
    exempt = data.get("exempt", {})
    rows = {r["name"]: r for r in data.get("callable", [])}
    for name in public_callables(step):
        row = rows.get(name)
        if row is None:
            out.append(f"{step.id}: {name} is not in the coverage table; {redo}")
            continue
        for param in row["missing"]:
            key = name if param.startswith("(") else f"{name}.{param}"
            if key not in exempt:
                what = ("is never called by a test" if param.startswith("(") else
                        f"never gets a non-default `{param}` from a test")
                out.append(f"{step.id}: {name} {what}: add a test, or an [exempt] reason")
    promises = data.get("promises", {})
    tests = grader_tests(step)
    for key, names in promises.items():
        for test in [names] if isinstance(names, str) else names:
            if test not in tests:
                out.append(f"{step.id}: the promise {key!r} names {test!r}, which is not a test "
                           "in the step's graders")
    promised = {k.split(":", 1)[0].strip() for k in promises}
    for name in public_callables(step):
        if name not in promised and name not in exempt:
            out.append(f"{step.id}: no [promises] entry for {name} (\"{name}: what its "
                       "docstring promises\" = \"the test that checks it\")")
    return out


def render(step: Step, rows: list[dict]) -> str:
    width = max(len(r["name"]) for r in rows) if rows else 10
    out = [f"{step.id}: contract coverage", f"  {'callable':{width}}  calls  exercised "
           "(non-default) / MISSING"]
    for r in rows:
        miss = f"  MISSING: {', '.join(r['missing'])}" if r["missing"] else ""
        dt = "; ".join(f"{k}: {'/'.join(v)}" for k, v in r["dtypes"].items())
        out.append(f"  {r['name']:{width}}  {r['calls']:5}  {', '.join(r['exercised']) or '-'}"
                   f"{miss}" + (f"   [{dt}]" if dt else ""))
    return "\n".join(out)


def check(steps: list[Step]) -> list[str]:
    return [p for s in steps for p in problems(s, load_table(s))]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:
        steps = [find_step(s) for s in argv[1:]] or load_steps()
        bad = check(steps)
        print("\n".join(bad) or f"contract coverage: {len(steps)} step(s) hold")
        return 1 if bad else 0
    parser = argparse.ArgumentParser(description="Trace contract coverage of step graders.")
    parser.add_argument("steps", nargs="+")
    parser.add_argument("--write", action="store_true", help="write graders/coverage/<id>.toml")
    args = parser.parse_args(argv)
    bad = []
    for step in map(find_step, args.steps):
        rows = table_from_trace(step, trace(step))
        print(render(step, rows))
        if args.write:
            write_table(step, rows, load_table(step))
        found = problems(step, load_table(step)) if args.write else [
            f"{step.id}: {r['name']} missing {', '.join(r['missing'])}" for r in rows
            if r["missing"]]
        bad += found
        print("\n".join(found))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

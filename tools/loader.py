"""Load the implementation of a step that is being graded (or used by a lab).

``impl`` is ``exercises`` (the learner's file, the default), ``solutions`` (the reference) or a
path to any module file (a mutant, a learner's file elsewhere). The module is loaded from its
file under a private name, so two implementations of one step never share ``sys.modules``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from tools.course import ROOT, Step
from tools.stubgen import api_names


class ImplementationError(Exception):
    """The graded module cannot be used; the message says why in a learner's words."""


def implementation_path(step: Step, impl: str) -> Path:
    if impl == "exercises":
        return step.exercise
    if impl == "solutions":
        return step.solution
    return Path(impl).resolve()


def load_implementation(step: Step, impl: str = "exercises") -> ModuleType:
    path = implementation_path(step, impl)
    if not path.exists():
        raise ImplementationError(f"{step.id}: there is no file {path} to grade")
    name = f"_graded_{step.id}_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        raise ImplementationError(
            f"{rel} could not be imported: {type(exc).__name__}: {str(exc).rstrip('.')}. "
            "Fix this first: every test of the step needs the module to load."
        ) from exc
    problems = provenance_problems(module, step, path)
    if problems:
        raise ImplementationError(" ".join(problems))
    return module


def provenance_problems(module: ModuleType, step: Step, path: Path) -> list[str]:
    """The step's functions and classes must be defined in the graded file itself.

    A stub that imports a solved copy (from solutions/, a library, a previous cohort's package)
    must not score (cf. ANCHORS.md: a framework graded untouched stubs as passing that way).
    """
    problems = []
    for name in api_names(step):
        obj = getattr(module, name, None)
        if obj is None:
            problems.append(f"{path.name} has no `{name}`: keep every function and class of "
                            "the stub, with its name unchanged.")
            continue
        try:
            source_file = inspect.getsourcefile(obj)
        except TypeError:  # builtins, C extensions
            source_file = None
        if source_file is None or Path(source_file).resolve() != path.resolve():
            where = getattr(obj, "__module__", "somewhere else")
            problems.append(f"`{name}` in {path.name} comes from {where}, not from your file: "
                            "write it yourself in the exercise module.")
    return problems


class BlockSolutions(importlib.abc.MetaPathFinder):
    """Refuse ``import solutions...`` while grading anything but the reference solutions."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "solutions" or fullname.startswith("solutions."):
            raise ImportError(
                f"`import {fullname}`: the reference solutions cannot be imported while your "
                "work is graded. Write the code in your exercise file."
            )
        return None

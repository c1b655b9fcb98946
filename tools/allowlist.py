"""A static (AST) check of a learner's file before it is graded: imports and names.

Threat model. The audit hook (tools/sandbox.py) sees only what CPython raises events for; it
cannot see a module's globals being patched through ``sys.modules``, pytest's alarm disarmed
with ``signal.signal``, or the step's oracle called as the answer. So before any learner code
runs, the parent (tools/grading.py) reads the file's syntax tree, without executing it, and
refuses it with an integrity verdict (0 points, one sentence naming the line) when it:

- imports a module outside the step's allow-list (tools/curriculum.toml, ``[imports]``: the
  standard-library modules every step may use, the libraries of each phase, and per-step
  additions), or uses one of the step's refused names (``[[imports.refuse]]``: the oracle the
  step rebuilds, e.g. torch's own attention in s24, scikit-learn anywhere);
- uses the names that reach into other code: ``eval``/``exec``/``compile``/``__import__``/
  ``globals``/``vars``/..., attributes such as ``__globals__``, ``__dict__``,
  ``__subclasses__``, ``f_back``, ``tb_frame``, ``modules`` (except a call ``model.modules()``,
  torch's iterator over submodules: ``sys.modules`` is a dict, which cannot be called), a
  private attribute (``_x``) or a
  system module (``sys``, ``os``, ``signal``, ...) reached through an imported module, and
  ``getattr``/``setattr``/``delattr`` with a computed name on anything but ``self``/``cls``.

Aliases are followed (``import torch.nn.functional as F``, ``from torch import nn``, and
plain assignments such as ``f = F``), and a refused name is also matched by its last part on
any attribute (``x.scaled_dot_product_attention``), so renaming does not hide it. What a
static check cannot follow (a name built at run time and looked up through an allowed
library, a container holding a module) is left to the audit hook and to process isolation.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tools.course import MANIFEST, ROOT, Step

BANNED_CALLS = frozenset({"eval", "exec", "compile", "__import__", "globals", "locals", "vars",
                          "breakpoint", "__builtins__", "__loader__", "__spec__"})
BANNED_ATTRS = frozenset({
    "__globals__", "__code__", "__closure__", "__dict__", "__subclasses__", "__bases__",
    "__base__", "__mro__", "__builtins__", "__import__", "__loader__", "__spec__", "__self__",
    "__func__", "__wrapped__", "__getattribute__", "__reduce__", "__reduce_ex__",
    "__traceback__", "__defaults__", "__kwdefaults__", "f_back", "f_globals", "f_locals",
    "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next", "gi_frame", "gi_code",
    "cr_frame", "ag_frame", "co_code", "mro", "modules",
})
SYSTEM_MODULES = frozenset({"sys", "os", "gc", "signal", "inspect", "importlib", "builtins",
                            "ctypes", "subprocess", "socket", "linecache", "traceback",
                            "_thread", "resource", "posix", "io", "shutil", "pickle"})
DYNAMIC_ATTR_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
OWN = frozenset({"self", "cls"})


@dataclass(frozen=True)
class Rules:
    allowed: frozenset[str] | None  # importable modules (with their submodules); None: any
    refused: tuple[tuple[str, str], ...]  # (dotted name, why), checked first


def _imports_table(manifest: Path) -> dict | None:
    """The manifest's ``[imports]`` tables. They come after the steps, so only that tail is
    parsed (the whole manifest costs a verdict ~7 ms more); a file where they do not come
    last is parsed whole."""
    text = manifest.read_text(encoding="utf-8")
    start = text.find("\n[imports]\n")
    tail = tomllib.loads(text[start + 1:]) if start >= 0 else {}
    if start < 0 or set(tail) != {"imports"}:
        return tomllib.loads(text).get("imports")
    return tail["imports"]


def rules_for(step: Step, manifest: Path = MANIFEST) -> Rules:
    """The step's rules; a manifest without an ``[imports]`` table checks names only."""
    table = _imports_table(manifest)
    if table is None:
        return Rules(None, ())
    allowed = set(table.get("stdlib", ()))
    allowed.update(table.get("phase", {}).get(str(step.phase), ()))
    allowed.update(table.get("step", {}).get(step.id, {}).get("allow", ()))
    refused = tuple((r["name"], r["why"]) for r in table.get("refuse", ())
                    if r.get("steps", "all") == "all" or step.id in r["steps"])
    return Rules(frozenset(allowed), refused)


def _covers(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


class _Checker(ast.NodeVisitor):
    def __init__(self, step: Step, rules: Rules, shown: str):
        self.step, self.rules, self.shown = step, rules, shown
        self.aliases: dict[str, str] = {}  # local name -> dotted module path it stands for
        self.problems: list[tuple[int, str]] = []
        self.module_iterators: set[int] = set()  # ids of the `.modules` in `x.modules()` calls

    def problem(self, node: ast.AST, text: str) -> None:
        self.problems.append((node.lineno, f"{self.shown}, line {node.lineno}: {text}"))

    def refusal(self, dotted: str) -> str | None:
        for name, why in self.rules.refused:
            if _covers(name, dotted):
                return f"`{dotted}`: {why}"
        return None

    def leaf_refusal(self, attr: str) -> str | None:
        """A refused name met as `anything.<its last part>`, so an alias cannot hide it."""
        for name, why in self.rules.refused:
            if "." in name and attr == name.rsplit(".", 1)[1]:
                return f"`{name}`: {why}"
        return None

    def check_module(self, node: ast.AST, module: str) -> None:
        why = self.refusal(module)
        if why:
            self.problem(node, why)
        elif self.rules.allowed is not None and \
                not any(_covers(ok, module) for ok in self.rules.allowed):
            self.problem(node, f"`import {module}` is not allowed in {self.step.id[:3]}: its "
                               "code may import only the libraries the step is built with "
                               f"({', '.join(sorted(self._libraries()))}) and pure-computation "
                               "standard modules.")

    def _libraries(self) -> set[str]:
        return {m for m in self.rules.allowed or () if m in
                ("numpy", "torch", "mlx", "tqdm", "pathlib", "gc")} or {"the standard library"}

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)
            local = alias.asname or alias.name.partition(".")[0]
            self.aliases[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.problem(node, "a relative import (`from . import ...`) is not allowed: "
                               "import the libraries by name.")
            return
        module = node.module or ""
        if module == "__future__":
            return
        refused = [why for alias in node.names if (why := self.refusal(f"{module}.{alias.name}"))]
        if refused:  # the oracle's own reason reads better than "not allowed"
            self.problem(node, refused[0])
        else:
            self.check_module(node, module)
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"

    def dotted(self, node: ast.AST) -> str | None:
        """`torch.nn.functional.softmax` for an attribute chain rooted at an imported name."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        target = self.dotted(node.value) if isinstance(node.value, ast.Name | ast.Attribute) \
            else None
        if target:
            for t in node.targets:
                if isinstance(t, ast.Name):
                    self.aliases[t.id] = target
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in BANNED_CALLS:
            self.problem(node, f"`{node.id}` runs or reaches code that is not yours; graded "
                               "code may only compute its answers.")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        dotted = self.dotted(node)
        if id(node) in self.module_iterators:
            pass  # `model.modules()`: torch's submodule iterator, not `sys.modules`
        elif attr in BANNED_ATTRS:
            self.problem(node, f"`.{attr}` reaches into code that is not yours; graded code "
                               "may only compute its answers.")
        elif dotted is not None and (attr.startswith("_") and not attr.startswith("__")
                                     or attr in SYSTEM_MODULES):
            self.problem(node, f"`{dotted}` reaches a library's internals; use its public "
                               "functions.")
        else:
            why = (self.refusal(dotted) if dotted else None) or self.leaf_refusal(attr)
            if why:
                self.problem(node, why)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "modules" and not node.args
                and not node.keywords):
            self.module_iterators.add(id(func))
        if isinstance(func, ast.Name) and func.id in DYNAMIC_ATTR_CALLS and len(node.args) >= 2:
            obj, name = node.args[0], node.args[1]
            literal = isinstance(name, ast.Constant) and isinstance(name.value, str)
            if literal and name.value in BANNED_ATTRS:
                self.problem(node, f"`{func.id}(..., {name.value!r})` reaches into code that "
                                   "is not yours.")
            elif not literal and not (isinstance(obj, ast.Name) and obj.id in OWN):
                self.problem(node, f"`{func.id}` with a computed name is allowed only on "
                                   "self or cls; write the attribute out.")
        self.generic_visit(node)


def problems(step: Step, path: Path, rules: Rules | None = None) -> list[str]:
    """Every refused import or name in `path`, in line order (empty when the file is fine)."""
    shown = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []  # the import in the grading child reports it, with its line
    checker = _Checker(step, rules or rules_for(step), shown)
    checker.visit(tree)
    first: dict[int, str] = {}
    for line, text in checker.problems:
        first.setdefault(line, text)  # one problem per line: `torch.optim.SGD` once
    return [first[line] for line in sorted(first)]

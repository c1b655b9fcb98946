"""The course manifest and the file layout every tool shares.

One step id (e.g. ``s24_attention``) names every file of a step:

    solutions/<id>.py                 reference code with BEGIN/END SOLUTION regions
    exercises/<id>.py                 the learner's stub, generated from the solution
    exercises/<id>.ipynb              the lab notebook, generated from solutions/labs/<id>.py
    graders/test_<id>.py              public graders
    graders/hidden/test_<id>.py       hidden graders (not in the student edition)
    graders/mutants/<id>/*.toml       plausible wrong answers the graders must reject

The manifest (tools/curriculum.toml) gives the order, titles, extras and time budgets; each
step's hints live encoded in tools/hintstore/<id>.txt (``hints_file``; see tools/hints.py), so
opening the manifest spoils none of them. Inline ``hints = [...]`` still load while a step is
being written.
"""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tools" / "curriculum.toml"
PRISTINE_DIR = ROOT / "tools" / "pristine"  # stubs shipped in the student edition (no solutions)

# What each extra makes importable: used to tell a learner what to install.
EXTRA_MODULES = {"torch": "torch", "mlx": "mlx.core", "text": "sentencepiece",
                 "notebooks": "nbclient", "serve": "fastapi", "agent": "jsonschema"}


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    phase: int
    requires: tuple[str, ...] = ()
    budget: int = 60  # seconds for the whole step (public + hidden) before grading is stopped
    hints: tuple[str, ...] = field(default_factory=tuple)

    @property
    def number(self) -> str:
        return self.id[1:3]

    @property
    def name(self) -> str:
        return self.id.split("_", 1)[1]

    @property
    def solution(self) -> Path:
        return ROOT / "solutions" / f"{self.id}.py"

    @property
    def exercise(self) -> Path:
        return ROOT / "exercises" / f"{self.id}.py"

    @property
    def lab_source(self) -> Path:
        return ROOT / "solutions" / "labs" / f"{self.id}.py"

    @property
    def lab(self) -> Path:
        return ROOT / "exercises" / f"{self.id}.ipynb"

    @property
    def public_graders(self) -> Path:
        return ROOT / "graders" / f"test_{self.id}.py"

    @property
    def hidden_graders(self) -> Path:
        return ROOT / "graders" / "hidden" / f"test_{self.id}.py"

    @property
    def mutants_dir(self) -> Path:
        return ROOT / "graders" / "mutants" / self.id

    def grader_files(self) -> list[Path]:
        """Public graders, plus the hidden ones where this copy of the course has them."""
        return [p for p in (self.public_graders, self.hidden_graders) if p.exists()]

    def mutants(self) -> list[Path]:
        return sorted(self.mutants_dir.glob("*.toml")) if self.mutants_dir.is_dir() else []

    def missing_extras(self) -> list[str]:
        """Extras this step needs that are not importable here."""
        return [e for e in self.requires if importlib.util.find_spec(EXTRA_MODULES[e]) is None]


def load_steps(manifest: Path = MANIFEST) -> list[Step]:
    with open(manifest, "rb") as f:
        data = tomllib.load(f)
    steps = []
    for raw in data.get("step", []):
        steps.append(
            Step(
                id=raw["id"],
                title=raw["title"],
                phase=int(raw["phase"]),
                requires=tuple(raw.get("requires", ())),
                budget=int(raw.get("budget", 60)),
                hints=_hints(raw, manifest.parent),
            )
        )
    return steps


def _hints(raw: dict, tools_dir: Path) -> tuple[str, ...]:
    """A step's hints: from its encoded hints file, or inline while the step is being written."""
    from tools.hints import read

    if "hints_file" in raw:
        return read(raw["hints_file"], tools_dir)
    return tuple(raw.get("hints", ()))


def find_step(query: str, steps: list[Step] | None = None) -> Step:
    """Accept `s24_attention`, `s24`, `24` or `attention`."""
    steps = load_steps() if steps is None else steps
    q = query.strip().lower().removesuffix(".py")
    q = Path(q).name
    for s in steps:
        if q in (s.id, s.id[:3], s.number, s.number.lstrip("0") or "0", s.name):
            return s
    known = ", ".join(s.id for s in steps)
    raise KeyError(f"no step called {query!r}; the steps are: {known}")


def manifest_problems(steps: list[Step] | None = None) -> list[str]:
    """Every way the manifest and the trees disagree (empty when they match one-to-one)."""
    steps = load_steps() if steps is None else steps
    problems: list[str] = []
    ids = [s.id for s in steps]
    if len(set(ids)) != len(ids):
        problems.append("duplicate step ids in the manifest")
    if ids != sorted(ids):
        problems.append("steps are not in the order of their numbers")
    for s in steps:
        for extra in s.requires:
            if extra not in EXTRA_MODULES:
                problems.append(f"{s.id}: unknown extra {extra!r}")
        if not s.hints:
            problems.append(f"{s.id}: no hints")
        for path in (s.solution, s.exercise, s.lab_source, s.lab, s.public_graders,
                     s.hidden_graders):
            if not path.exists():
                problems.append(f"{s.id}: missing {path.relative_to(ROOT)}")
        if len(s.mutants()) < 3:
            problems.append(f"{s.id}: {len(s.mutants())} mutants (at least 3 required)")

    def stray(folder: str, pattern: str, to_id) -> None:
        for p in sorted((ROOT / folder).glob(pattern)):
            if to_id(p) not in ids:
                problems.append(f"stray file not in the manifest: {p.relative_to(ROOT)}")

    stray("solutions", "s*.py", lambda p: p.stem)
    stray("solutions/labs", "s*.py", lambda p: p.stem)
    stray("exercises", "s*.py", lambda p: p.stem)
    stray("exercises", "s*.ipynb", lambda p: p.stem)
    stray("graders", "test_*.py", lambda p: p.stem.removeprefix("test_"))
    stray("graders/hidden", "test_*.py", lambda p: p.stem.removeprefix("test_"))
    for kind in ("mutants", "alternatives"):
        for d in sorted((ROOT / "graders" / kind).glob("*")):
            if d.is_dir() and d.name not in ids:
                problems.append(f"stray {kind} folder not in the manifest: "
                                f"{d.relative_to(ROOT)}")
    stray("graders/mutation", "*.toml", lambda p: p.stem)
    stray("graders/coverage", "*.toml", lambda p: p.stem)
    return problems

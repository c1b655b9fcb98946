"""The course plan (tools/plan.toml): every step, shipped or not, and the README's table of it.

    python -m tools.plan readme     rewrite the curriculum table in README.md
    python -m tools.plan check      exit 1 when README.md, the plan and the manifest disagree

A step is shipped when tools/curriculum.toml has it; the plan only describes. When a step is
added to the manifest, run `python -m tools.plan readme` to mark it shipped in the README.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.course import ROOT, Step, load_steps

PLAN = ROOT / "tools" / "plan.toml"
README = ROOT / "README.md"
BEGIN = "<!-- course plan: generated from tools/plan.toml by `python -m tools.plan readme` -->"
END = "<!-- end of the course plan -->"


@dataclass(frozen=True)
class PlannedStep:
    number: int
    name: str
    phase: int
    builds: str
    graded: str

    @property
    def id(self) -> str:
        return f"s{self.number:02d}_{self.name}"

    @property
    def short(self) -> str:
        return f"s{self.number:02d}"


def load_plan(path: Path = PLAN) -> tuple[dict[int, str], list[PlannedStep]]:
    """({phase number: name}, every planned step in order)."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    phases = {int(p["number"]): p["name"] for p in data.get("phase", [])}
    steps = [PlannedStep(int(s["number"]), s["name"], int(s["phase"]), s["builds"], s["graded"])
             for s in data.get("step", [])]
    return phases, steps


def unshipped(steps: list[Step] | None = None) -> list[PlannedStep]:
    """The planned steps the manifest does not have yet."""
    ids = {s.id for s in (load_steps() if steps is None else steps)}
    return [p for p in load_plan()[1] if p.id not in ids]


def problems(steps: list[Step] | None = None) -> list[str]:
    """Every way the plan and the manifest disagree."""
    steps = load_steps() if steps is None else steps
    phases, planned = load_plan()
    found = []
    if [p.number for p in planned] != list(range(len(planned))):
        found.append("plan.toml: step numbers are not 0, 1, 2, ... in order")
    by_id = {p.id: p for p in planned}
    for s in steps:
        if s.id not in by_id:
            found.append(f"{s.id} ships (tools/curriculum.toml) but is not in tools/plan.toml")
        elif by_id[s.id].phase != s.phase:
            found.append(f"{s.id}: phase {s.phase} in the manifest, {by_id[s.id].phase} "
                         "in the plan")
    found += [f"{p.id}: phase {p.phase} has no [[phase]] entry" for p in planned
              if p.phase not in phases]
    return found


def readme_table(steps: list[Step] | None = None) -> str:
    """The Markdown table of the whole course, between its markers."""
    ids = {s.id for s in (load_steps() if steps is None else steps)}
    phases, planned = load_plan()
    rows = [BEGIN, "", "| step | what you build | what the graders check | |", "|---|---|---|---|"]
    for number, name in sorted(phases.items()):
        rows.append(f"| **Phase {number}** | **{name}** | | |")
        for p in (p for p in planned if p.phase == number):
            status = "✓ shipped" if p.id in ids else "planned"
            rows.append(f"| {p.short} {p.name.replace('_', ' ')} | {p.builds} | {p.graded} "
                        f"| {status} |")
    return "\n".join([*rows, "", END])


def _split(text: str) -> tuple[str, str, str]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no course-plan markers ({BEGIN!r} ... {END!r})")
    return text[:start], text[start:end + len(END)], text[end + len(END):]


def main(argv: list[str]) -> int:
    if argv == ["readme"]:
        head, _, tail = _split(README.read_text(encoding="utf-8"))
        README.write_text(head + readme_table() + tail, encoding="utf-8")
        print("README.md: course plan table rewritten")
        return 0
    if argv == ["check"]:
        found = problems()
        if _split(README.read_text(encoding="utf-8"))[1] != readme_table():
            found.append("README.md's course table is out of date: python -m tools.plan readme")
        print("\n".join(found) or "README.md, tools/plan.toml and the manifest agree")
        return 1 if found else 0
    print(__doc__.split("\n\n")[1])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

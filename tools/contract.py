"""The grading contract, checked for every step (README: "Run the project's tests"):

1. the stub fails: every grader test fails, and with NotImplementedError (not ImportError,
   AttributeError or a timeout), public and hidden alike;
2. the solution passes: every public and hidden test, within the step's time budget;
3. every mutant is killed: each graders/mutants/<id>/*.toml describes a plausible wrong answer
   as text replacements on the solution, and grading it must fail at least one test for a
   reason other than NotImplementedError;
4. every alternative passes: each graders/alternatives/<id>/*.toml (the same format) is a
   correct answer written differently (a loop for a vectorised line, lstsq for solve, another
   tie-break the docstring allows), and it must pass every test the solution passes, so the
   graders do not reject a correct implementation.

    python tools/contract.py                 # all steps
    python tools/contract.py s00 s24 --jobs 2
    python tools/contract.py --json out.json

A mutant file:

    description = "forgets the 1/sqrt(d_k) scale"
    [[replace]]
    old = "scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)"
    new = "scores = q @ k.transpose(-2, -1)"

Each ``old`` must occur exactly once in the solution, so a mutant cannot silently go stale.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.course import ROOT, Step, find_step, load_steps
from tools.grading import StepRun, run_step
from tools.stubgen import make_stub


class MutantError(ValueError):
    """A mutant file that does not apply to the current solution."""


def apply_mutant(solution: str, mutant_file: Path) -> tuple[str, str]:
    """(mutated source, description) for one mutant file."""
    with open(mutant_file, "rb") as f:
        spec = tomllib.load(f)
    if not spec.get("replace"):
        raise MutantError(f"{mutant_file.name}: no [[replace]] entries")
    source = solution
    for i, rep in enumerate(spec["replace"]):
        count = source.count(rep["old"])
        if count != 1:
            raise MutantError(f"{mutant_file.name}: replacement {i + 1} matches {count} places "
                              "in the solution (exactly 1 needed); update the mutant")
        source = source.replace(rep["old"], rep["new"])
    if source == solution:
        raise MutantError(f"{mutant_file.name}: the replacements change nothing")
    return source, spec.get("description", mutant_file.stem)


def alternatives(step: Step) -> list[Path]:
    folder = ROOT / "graders" / "alternatives" / step.id
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


@dataclass
class Verdict:
    step: str
    check: str  # stub | solution | mutant:<name>
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass
class StepContract:
    step: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)


def _judge_stub(run: StepRun) -> tuple[bool, str]:
    if run.crash:
        return False, run.crash
    if run.collect_errors:
        return False, "graders failed to collect: " + run.collect_errors[0][-400:]
    failing = [t for t in run.tests if t.outcome != "skipped"]
    if not failing or not any(t.hidden for t in failing) or all(t.hidden for t in failing):
        return False, "the stub must be graded by public and hidden tests that run"
    wrong = [t for t in failing if t.outcome not in ("failed", "error")
             or t.exc_type != "NotImplementedError"]
    if wrong:
        t = wrong[0]
        return False, (f"{len(wrong)} test(s) do not fail with NotImplementedError on the stub; "
                       f"e.g. {t.name}: {t.outcome} {t.exc_type}: {(t.message or '')[:200]}")
    return True, f"{len(failing)} tests fail with NotImplementedError"


def _judge_solution(run: StepRun) -> tuple[bool, str]:
    if run.crash:
        return False, run.crash
    bad = [t for t in run.tests if t.outcome not in ("passed", "skipped")]
    if bad or run.collect_errors or not run.passed:
        t = bad[0] if bad else None
        why = f"{t.name}: {t.exc_type}: {(t.message or '')[:300]}" if t else "no test passed"
        return False, f"{len(bad)} test(s) fail on the solution; {why}"
    skipped = sum(t.outcome == "skipped" for t in run.tests)
    note = f" ({skipped} skipped: optional extras missing)" if skipped else ""
    return True, f"{len(run.tests) - skipped} tests pass in {run.seconds:.1f}s{note}"


def _judge_mutant(run: StepRun) -> tuple[bool, str]:
    killers = [t for t in run.tests if t.outcome in ("failed", "error", "crashed")
               and t.exc_type != "NotImplementedError"]
    if run.collect_errors:
        return False, "the mutant broke collection, not a test: " + run.collect_errors[0][-300:]
    if killers:
        return True, f"killed by {killers[0].name}"
    if run.crash:
        return True, "killed (the grading process died)"
    return False, "SURVIVED: no grader test fails on this wrong implementation"


def _judge_alternative(run: StepRun) -> tuple[bool, str]:
    ok, detail = _judge_solution(run)
    return ok, detail if ok else "REJECTED, though it is correct: " + detail


def check_step(step: Step, jobs: int = 2) -> StepContract:
    """Run the triad for one step; mutants are graded in parallel, stopping at the first kill."""
    result = StepContract(step.id)
    solution = step.solution.read_text()
    with tempfile.TemporaryDirectory(prefix=f"contract-{step.id}-") as tmp:
        tasks: list[tuple[str, str | None, str]] = []  # (check, impl, problem)
        stub_path = Path(tmp) / f"{step.id}.py"
        stub_path.write_text(make_stub(solution, step.id))
        tasks.append(("stub", str(stub_path), ""))
        tasks.append(("solution", "solutions", ""))
        for mutant in step.mutants():
            try:
                source, description = apply_mutant(solution, mutant)
            except MutantError as exc:
                tasks.append((f"mutant:{mutant.stem}", None, str(exc)))
                continue
            path = Path(tmp) / mutant.stem / f"{step.id}.py"
            path.parent.mkdir()
            path.write_text(source)
            tasks.append((f"mutant:{mutant.stem}", str(path), description))
        for alt in alternatives(step):
            try:
                source, description = apply_mutant(solution, alt)
            except MutantError as exc:
                tasks.append((f"alternative:{alt.stem}", None, str(exc)))
                continue
            path = Path(tmp) / f"alternative-{alt.stem}" / f"{step.id}.py"
            path.parent.mkdir()
            path.write_text(source)
            tasks.append((f"alternative:{alt.stem}", str(path), description))

        def run(task) -> Verdict:
            check, impl, problem = task
            if impl is None:
                return Verdict(step.id, check, False, problem)
            stop_early = ["-x"] if check.startswith(("mutant", "alternative")) else []
            r = run_step(step, impl, extra_args=stop_early)
            kind = check.split(":")[0]
            judge = {"stub": _judge_stub, "solution": _judge_solution,
                     "alternative": _judge_alternative}.get(kind, _judge_mutant)
            ok, detail = judge(r)
            if kind in ("mutant", "alternative"):
                detail = f"{problem}: {detail}"
            return Verdict(step.id, check, ok, detail, round(r.seconds, 2))

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            result.verdicts = list(pool.map(run, tasks))
    if len(step.mutants()) < 3:
        result.verdicts.append(Verdict(step.id, "mutants", False,
                                       f"{len(step.mutants())} mutants; at least 3 required"))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the grading contract for steps.")
    parser.add_argument("steps", nargs="*", help="step ids (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="grading processes at once")
    parser.add_argument("--json", type=Path, help="write the verdicts as JSON")
    args = parser.parse_args(argv)
    steps = [find_step(s) for s in args.steps] if args.steps else load_steps()
    results = []
    for step in steps:
        res = check_step(step, jobs=args.jobs)
        results.append(res)
        for v in res.verdicts:
            mark = "ok  " if v.ok else "FAIL"
            print(f"{mark} {v.step:24} {v.check:38} {v.seconds:6.1f}s  {v.detail}")
    if args.json:
        args.json.write_text(json.dumps([asdict(v) for r in results for v in r.verdicts],
                                        indent=1))
    bad = [r.step for r in results if not r.ok]
    print(f"\ncontract: {len(results) - len(bad)} of {len(results)} steps hold"
          + (f"; broken: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Automated mutation testing of a step's graders: every small edit of the learner's part of
the solution must be rejected by the step's public + hidden graders.

    python tools/mutation.py run s00 [s01 ...]     grade every mutant, write the reports
    python tools/mutation.py check [s00 ...]       reports current, no unexplained survivor,
                                                   >= 95 % killed, a seeded sample re-killed
    python tools/mutation.py show s00              the survivors, with their diffs
    python tools/mutation.py explain s00 ID --equivalent "why"    (or --not-killed "why")

Mutants come from cosmic-ray's core operators (arithmetic, comparison, unary and boolean
operator swaps, True/False, and/or, break/continue, numbers +-1, zero-iteration loops,
exception swaps, decorator removal), applied only inside ``# BEGIN SOLUTION`` ...
``# END SOLUTION`` regions: the given code around them is not the learner's to get wrong.
Swaps of an arithmetic operator for a bitwise or shift one (``a - b`` -> ``a ^ b``) are left
out: on floats they only raise TypeError, which inflates the kill rate for nothing.

Why cosmic-ray and not mutmut: cosmic-ray's operators are plain classes over a parso tree
(``mutation_positions(node)``, ``mutate(node, index)``) and ``mutating.mutate_code(source,
operator, occurrence)`` returns one mutated text, so we can list every mutation, keep those
in the regions and grade each file with our own runner (``tools.grading.run_step``, as
``tools/contract.py`` grades hand-written mutants): the warm server, the loader's provenance
check, hidden graders, per-test timeouts, ``-x``. mutmut 3 rewrites a whole package into
trampolines switched by an environment variable and drives pytest itself over a ``mutants/``
copy of the tree; limiting it to our regions and our runner would mean undoing its design.

The report, ``graders/mutation/<step id>.toml``, is written by ``run`` and read by ``check``:

    step = "s00_toolbox"
    tool = "cosmic-ray"
    tool_version = "8.7.0"
    mutants_sha256 = "..."        # over the sorted ids of every mutation enumerated
    not_valid = []                # ids of edits that are not valid Python or change nothing
    died = []                     # ids killed only by a crash or the time budget (not sampled)
    [hashes]                      # sha256 of the files the verdicts depend on (only these)
    solution_code = "..."         # the solution's code, docstrings and comments left out
    public_graders = "..."
    hidden_graders = "..."
    [summary]
    generated = 210               # mutants graded (valid Python, different from the solution)
    killed = 205
    equivalent = 4                # survivors no input can tell apart from the solution
    not_killed = 1                # survivors that are real bugs, left with a reason
    unexplained = 0               # survivors with neither reason: `check` fails
    kill_rate = 0.9951            # killed / (generated - equivalent)
    [[survivor]]
    id = "ReplaceComparisonOperator_Gt_GtE #0 | self.scale_ = np.where(std > 0, std, 1.0)"
    diff = "- self.scale_ = ...\\n+ self.scale_ = ..."
    equivalent = "std >= 0 where std == 0 gives 0 / 0 ... (one line why)"   # or
    not_killed = "why no test can reasonably catch it"                      # or neither

A mutant's id is stable across edits elsewhere in the file: the operator, the index of this
position among that operator's positions on lines with the same text, and the stripped text
of the mutated line (no line numbers). Hand-written reasons are kept across re-runs by id;
``run`` prints the survivors that still need one. Only the solution and the step's two
grader files are hashed: a change to graders/helpers.py or conftest.py does not stale every
report (``check`` re-grades a sample, which catches a helper that stopped checking).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import importlib.metadata
import json
import os
import random
import sys
import tempfile
import tomllib
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.course import ROOT, Step, find_step, load_steps
from tools.grading import StepRun, run_step
from tools.stubgen import BEGIN, END

REPORTS = ROOT / "graders" / "mutation"
TOOL = "cosmic-ray"
MIN_KILL_RATE = 0.95
SAMPLE = 2  # killed mutants per step that `check` re-grades
DIED = "(the grading process died or ran over its budget)"
_BITWISE = ("RShift", "LShift", "BitOr", "BitAnd", "BitXor")


def tool_version() -> str:
    return importlib.metadata.version(TOOL)


@dataclass(frozen=True)
class Mutant:
    id: str
    operator: str  # cosmic-ray's full name, e.g. core/ReplaceBinaryOperator_Add_Sub
    occurrence: int  # the operator's position index over the whole file (for mutate_code)
    line: int  # 1-based, for messages only


def solution_lines(source: str) -> set[int]:
    """1-based numbers of the lines strictly inside BEGIN / END SOLUTION markers."""
    inside, lines = False, set()
    for number, text in enumerate(source.splitlines(), start=1):
        if BEGIN.match(text):
            inside = True
        elif END.match(text):
            inside = False
        elif inside:
            lines.add(number)
    return lines


def operators() -> list[tuple[str, object]]:
    """(name, instance) of every cosmic-ray operator we use (see the module docstring)."""
    from cosmic_ray.plugins import get_operator, operator_names

    chosen = []
    for name in operator_names():
        cls = get_operator(name)
        if cls.arguments():  # VariableReplacer / VariableInserter need a configuration
            continue
        if name.startswith("core/ReplaceBinaryOperator_"):
            _, _, to = name.rpartition("_")
            if to in _BITWISE:
                continue
        chosen.append((name, cls()))
    return chosen


def enumerate_mutants(source: str) -> list[Mutant]:
    """Every mutation the operators offer on lines inside the solution regions."""
    from cosmic_ray.ast import ast_nodes, get_ast

    region, text = solution_lines(source), source.splitlines()
    nodes = list(ast_nodes(get_ast(source)))
    mutants = []
    for name, op in operators():
        seen: dict[str, int] = {}
        positions = ((start, end) for node in nodes for start, end in op.mutation_positions(node))
        for occurrence, (start, _end) in enumerate(positions):
            if start[0] not in region:
                continue
            line_text = text[start[0] - 1].strip()
            k = seen.get(line_text, 0)
            seen[line_text] = k + 1
            short = name.split("/", 1)[1]
            mutants.append(Mutant(f"{short} #{k} | {line_text}", name, occurrence, start[0]))
    return mutants


def mutate(source: str, mutant: Mutant) -> str | None:
    """The mutated source, or None when the edit is not valid Python or changes nothing."""
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    mutated = mutate_code(source, get_operator(mutant.operator)(), mutant.occurrence)
    if mutated is None or mutated == source:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # `x is 0`: a silly but valid mutant
        try:
            compile(mutated, "<mutant>", "exec")
        except SyntaxError:
            return None
    return mutated


def diff_line(source: str, mutated: str) -> str:
    """'- old line / + new line' for the lines that differ (stripped)."""
    out = []
    for line in difflib.unified_diff(source.splitlines(), mutated.splitlines(), lineterm="",
                                     n=0):
        if line[:1] in "-+" and not line.startswith(("---", "+++")):
            out.append(f"{line[0]} {line[1:].strip()}")
    return "\n".join(out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def code_sha256(path: Path) -> str:
    """sha256 of a module's code without its docstrings and comments: what mutants are made
    from and graded on. Rewording a docstring (which rewrites the learner's stub, not the
    verdicts) leaves the report valid; any change to code, even a moved line, stales it."""
    if not path.exists():
        return ""
    tree = ast.parse(path.read_bytes())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        documented = isinstance(node, DOCUMENTED) and body and isinstance(body[0], ast.Expr)
        if documented and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def current_hashes(step: Step) -> dict[str, str]:
    return {"solution_code": code_sha256(step.solution),
            "public_graders": sha256(step.public_graders),
            "hidden_graders": sha256(step.hidden_graders)}


def stale_hashes(step: Step, recorded: dict[str, str]) -> list[str]:
    """The names of the recorded hashes that no longer match the files."""
    now = current_hashes(step)
    if "solution_code" not in recorded:  # written before code hashing: the whole file counted
        now = {"solution": sha256(step.solution), **{k: v for k, v in now.items()
                                                      if k != "solution_code"}}
    return [k for k, v in now.items() if recorded.get(k) != v]


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def report_path(step: Step) -> Path:
    return REPORTS / f"{step.id}.toml"


def load_report(step: Step) -> dict | None:
    path = report_path(step)
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return tomllib.load(f)


# --- grading ---------------------------------------------------------------------------------

def killed_by(run: StepRun) -> str | None:
    """Which test rejected a mutant (or how the grading died); None if it survived."""
    for t in run.tests:
        if t.outcome in ("failed", "error", "crashed") and t.exc_type != "NotImplementedError":
            return t.name
    if run.collect_errors:
        raise RuntimeError(f"{run.step.id}: the graders failed to collect, so no mutant can be "
                           f"judged: {run.collect_errors[0][-300:]}")
    if run.crash or run.timed_out:
        return DIED
    return None


def grade_all(step: Step, items: list[tuple[Mutant, str]], jobs: int,
              budget: float) -> dict[str, str | None]:
    """{mutant id: killer or None} for each (mutant, mutated source), `jobs` at a time."""
    with tempfile.TemporaryDirectory(prefix=f"mutation-{step.id}-") as tmp:
        def grade(pair: tuple[int, tuple[Mutant, str]]) -> tuple[str, str | None]:
            i, (mutant, source) = pair
            path = Path(tmp) / str(i) / f"{step.id}.py"
            path.parent.mkdir()
            path.write_text(source)
            run = run_step(step, str(path), extra_args=["-x"], budget=budget)
            return mutant.id, killed_by(run)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return dict(pool.map(grade, enumerate(items)))


def mutant_budget(step: Step) -> float:
    """Grade the solution once (it must pass) and allow a mutant a few times its time."""
    baseline = run_step(step, "solutions")
    if not baseline.passed:
        raise RuntimeError(f"{step.id}: the solution does not pass its own graders; fix that "
                           "first (python tools/contract.py " + step.id + ")")
    return float(min(step.budget, max(10.0, 4 * baseline.seconds)))


# --- run -------------------------------------------------------------------------------------

def run_mutation(step: Step, jobs: int = 2, progress=print) -> dict:
    """Grade every mutant of `step`, write its report and return it."""
    source = step.solution.read_text()
    old = load_report(step) or {}
    reasons = {s["id"]: s for s in old.get("survivor", [])}
    mutants, items, not_valid = enumerate_mutants(source), [], []
    for m in mutants:
        mutated = mutate(source, m)
        if mutated is None:
            not_valid.append(m.id)
        else:
            items.append((m, mutated))
    budget = mutant_budget(step)
    os.environ["ML2LLM_TEST_TIMEOUT"] = f"{budget:g}"  # an endless loop stops soon
    progress(f"{step.id}: grading {len(items)} mutants, {jobs} at a time "
             f"(budget {budget:g} s each)")
    verdicts = grade_all(step, items, jobs, budget)
    died = sorted(m.id for m, _ in items if verdicts[m.id] == DIED)
    survivors = []
    for m, mutated in items:
        if verdicts[m.id] is None:
            entry = {"id": m.id, "diff": diff_line(source, mutated)}
            for key in ("equivalent", "not_killed"):
                if reasons.get(m.id, {}).get(key):
                    entry[key] = reasons[m.id][key]
            survivors.append(entry)
    report = build_report(step, [m.id for m in mutants], not_valid, survivors)
    report["died"] = died
    write_report(step, report)
    return report


def summarize(generated: int, survivors: list[dict]) -> dict:
    equivalent = sum(bool(s.get("equivalent")) for s in survivors)
    not_killed = sum(bool(s.get("not_killed")) and not s.get("equivalent") for s in survivors)
    killed = generated - len(survivors)
    rate = killed / (generated - equivalent) if generated > equivalent else 1.0
    return {"generated": generated, "killed": killed, "equivalent": equivalent,
            "not_killed": not_killed, "unexplained": len(survivors) - equivalent - not_killed,
            "kill_rate": round(rate, 4)}


def build_report(step: Step, ids: list[str], not_valid: list[str],
                 survivors: list[dict]) -> dict:
    return {"step": step.id, "tool": TOOL, "tool_version": tool_version(),
            "mutants_sha256": ids_digest(ids), "hashes": current_hashes(step),
            "summary": summarize(len(ids) - len(not_valid), survivors),
            "not_valid": not_valid, "survivor": survivors}


def _toml_str(value) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def write_report(step: Step, report: dict) -> None:
    lines = [f"# Mutation report for {step.id}, written by `python tools/mutation.py run "
             f"{step.id[:3]}`.",
             "# By hand, edit only a survivor's `equivalent = \"...\"` (no input can tell it "
             "apart) or",
             "# `not_killed = \"...\"` (a real bug left uncaught, and why): re-runs keep them "
             "by id.", ""]
    for key in ("step", "tool", "tool_version", "mutants_sha256"):
        lines.append(f"{key} = {_toml_str(report[key])}")
    lines.append("not_valid = [" + ", ".join(map(_toml_str, report["not_valid"])) + "]"
                 "  # edits that are not valid Python or change nothing")
    lines.append("died = [" + ", ".join(map(_toml_str, report.get("died", []))) + "]"
                 "  # killed by a crash or the time budget: `check` does not re-grade them")
    for table in ("hashes", "summary"):
        lines += ["", f"[{table}]"]
        lines += [f"{k} = {_toml_str(v)}" for k, v in report[table].items()]
    for s in report["survivor"]:
        lines += ["", "[[survivor]]"]
        lines += [f"{k} = {_toml_str(s[k])}" for k in ("id", "diff", "equivalent", "not_killed")
                  if k in s]
    REPORTS.mkdir(parents=True, exist_ok=True)
    report_path(step).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- check -----------------------------------------------------------------------------------

def report_problems(step: Step, report: dict | None) -> list[str]:
    """Why a step's committed report is missing, stale or not good enough (no grading)."""
    run_it = f"run `python tools/mutation.py run {step.id[:3]}`"
    if report is None:
        return [f"{step.id}: no mutation report (graders/mutation/{step.id}.toml); {run_it}"]
    problems = []
    if report.get("tool") != TOOL or report.get("tool_version") != tool_version():
        problems.append(f"{step.id}: the report was made with {report.get('tool')} "
                        f"{report.get('tool_version')}, {TOOL} {tool_version()} is installed; "
                        f"{run_it}")
    stale = stale_hashes(step, report.get("hashes", {}))
    if stale:
        problems.append(f"{step.id}: the report is stale ({', '.join(stale)} changed since it "
                        f"was written); {run_it}")
    survivors = report.get("survivor", [])
    bare = [s["id"] for s in survivors if not s.get("equivalent") and not s.get("not_killed")]
    if bare:
        problems.append(f"{step.id}: {len(bare)} survivor(s) without a test that kills them or "
                        f"a reason (`python tools/mutation.py show {step.id[:3]}`), e.g. "
                        f"{bare[0]!r}")
    rate = report.get("summary", {}).get("kill_rate", 0.0)
    if rate < MIN_KILL_RATE:
        problems.append(f"{step.id}: {rate:.1%} of the non-equivalent mutants killed, below "
                        f"{MIN_KILL_RATE:.0%}: add tests for the survivors")
    return problems


def sample_to_regrade(step: Step, report: dict, k: int) -> tuple[list[tuple[Mutant, str]], str]:
    """A seeded sample of killed mutants, regenerated from the library; problem text if the
    generated mutants no longer match the report."""
    source = step.solution.read_text()
    mutants = enumerate_mutants(source)
    if ids_digest([m.id for m in mutants]) != report.get("mutants_sha256"):
        return [], (f"{step.id}: the mutants generated today differ from the report's; "
                    f"run `python tools/mutation.py run {step.id[:3]}`")
    skip = {s["id"] for s in report.get("survivor", [])} | set(report.get("not_valid", [])) \
        | set(report.get("died", []))
    killed = [m for m in mutants if m.id not in skip]
    random.Random(zlib.crc32(step.id.encode())).shuffle(killed)
    chosen = []
    for m in killed:  # mutating is ~40 ms a mutant: only the few sampled are built
        mutated = mutate(source, m)
        if mutated is not None:
            chosen.append((m, mutated))
        if len(chosen) == k:
            break
    return chosen, ""


def check(steps: list[Step], sample: int = SAMPLE, jobs: int = 2) -> list[str]:
    """Every problem with the steps' mutation reports; empty when all hold."""
    problems, to_grade = [], []
    for step in steps:
        report = load_report(step)
        found = report_problems(step, report)
        problems += found
        if found or sample <= 0 or step.missing_extras():
            continue
        items, problem = sample_to_regrade(step, report, sample)
        if problem:
            problems.append(problem)
        to_grade += [(step, m, src) for m, src in items]

    def grade(task) -> str | None:
        step, mutant, source = task
        with tempfile.TemporaryDirectory(prefix=f"mutation-{step.id}-") as tmp:
            path = Path(tmp) / f"{step.id}.py"
            path.write_text(source)
            run = run_step(step, str(path), extra_args=["-x"])
        if killed_by(run) is None:
            return (f"{step.id}: the mutant {mutant.id!r} (line {mutant.line}) was killed when "
                    "the report was written but survives now: a grader or helper stopped "
                    "checking something")
        return None

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        problems += [p for p in pool.map(grade, to_grade) if p]
    return problems


# --- show / explain / CLI ------------------------------------------------------------------------

def explain(step: Step, which: str, kind: str, reason: str) -> str:
    """Give the survivor whose id is `which` (or contains it, uniquely) a reason; its id."""
    report = load_report(step)
    if report is None:
        raise SystemExit(f"{step.id}: no report yet; run `python tools/mutation.py run "
                         f"{step.id[:3]}` first")
    found = [s for s in report["survivor"] if s["id"] == which] or \
        [s for s in report["survivor"] if which in s["id"]]
    if len(found) != 1:
        raise SystemExit(f"{step.id}: {len(found)} survivors match {which!r}; give the exact id "
                         "(python tools/mutation.py show " + step.id[:3] + ")")
    for key in ("equivalent", "not_killed"):
        found[0].pop(key, None)
    found[0][kind] = reason
    report["summary"] = summarize(report["summary"]["generated"], report["survivor"])
    write_report(step, report)
    return found[0]["id"]



def show(step: Step) -> str:
    report = load_report(step)
    if report is None:
        return f"{step.id}: no report yet; run `python tools/mutation.py run {step.id[:3]}`"
    s = report["summary"]
    out = [f"{step.id}: {s['generated']} mutants, {s['killed']} killed, {s['equivalent']} "
           f"equivalent, {s['not_killed']} not killed, {s['unexplained']} unexplained "
           f"(kill rate {s['kill_rate']:.1%})"]
    for sv in report.get("survivor", []):
        why = (f"equivalent: {sv['equivalent']}" if sv.get("equivalent") else
               f"not killed: {sv['not_killed']}" if sv.get("not_killed") else "UNEXPLAINED")
        out += ["", f"  {sv['id']}", *(f"    {d}" for d in sv["diff"].splitlines()),
                f"    -> {why}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mutation testing of the step graders.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="grade every mutant of the steps, write their reports")
    p_run.add_argument("steps", nargs="+")
    p_run.add_argument("--jobs", type=int, default=2)
    p_check = sub.add_parser("check", help="reports current and good enough (default: all)")
    p_check.add_argument("steps", nargs="*")
    p_check.add_argument("--sample", type=int, default=SAMPLE,
                         help="killed mutants per step to re-grade (0: none)")
    p_check.add_argument("--jobs", type=int, default=2)
    p_show = sub.add_parser("show", help="print a step's survivors with their diffs")
    p_show.add_argument("steps", nargs="+")
    p_why = sub.add_parser("explain", help="write a survivor's reason into the report")
    p_why.add_argument("step")
    p_why.add_argument("survivor", help="the survivor's id, or a part of it that is unique")
    how = p_why.add_mutually_exclusive_group(required=True)
    how.add_argument("--equivalent", metavar="REASON", help="no input can tell it apart")
    how.add_argument("--not-killed", metavar="REASON", help="a real bug left uncaught: why")
    args = parser.parse_args(argv)
    if args.command == "explain":
        kind = "equivalent" if args.equivalent else "not_killed"
        step = find_step(args.step)
        survivor = explain(step, args.survivor, kind, args.equivalent or args.not_killed)
        print(f"{step.id}: {kind}: {survivor}")
        print(show(step).splitlines()[0])
        return 0
    steps = [find_step(s) for s in args.steps] if args.steps else load_steps()
    if args.command == "show":
        print("\n\n".join(show(s) for s in steps))
        return 0
    if hasattr(os, "nice"):
        os.nice(10)  # a long, CPU-heavy batch on a shared machine (POSIX only)
    if args.command == "run":
        for step in steps:
            run_mutation(step, jobs=args.jobs)
            print(show(step))
        bad = [p for s in steps for p in report_problems(s, load_report(s))]
    else:
        bad = check(steps, sample=args.sample, jobs=args.jobs)
    for problem in bad:
        print(problem)
    print(f"mutation: {len(steps)} step(s), " + (f"{len(bad)} problem(s)" if bad else "all hold"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

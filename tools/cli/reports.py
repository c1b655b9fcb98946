"""--all (every step, locks ignored) and the JUnit XML, JSON and Markdown reports."""

from __future__ import annotations

import json
from pathlib import Path

from tools.cli.install import all_missing, install_note
from tools.cli.session import Grader
from tools.cli.verdict import explain, first_problem, run_status
from tools.course import Step
from tools.grading import StepRun

Results = list[tuple[Step, "StepRun | None", str]]


def cmd_all(g: Grader) -> tuple[int, Results]:
    """Grade every step, locks ignored; (exit code, [(step, run, status)]).

    The table keeps one short line per step; the first problem of each failing step follows
    it in full, wrapped, so no message is cut mid-sentence.
    """
    out = g.out
    results: Results = []
    for step in g.steps:
        if step.missing_extras():
            results.append((step, None, f"needs {', '.join(step.missing_extras())}"))
            out(f"{out.bad} {step.id:28} {'-':>9}         not graded: needs "
                f"{', '.join(step.missing_extras())}")
            continue
        run = g.grade(step)
        status = run_status(run)
        results.append((step, run, status))
        mark = out.paint(out.ok, "green") if run.passed else out.paint(out.bad, "red")
        out(f"{mark} {step.id:28} {run.points:>4g}/{run.max_points:<4g} {run.seconds:5.1f}s"
            f"  {status}")
    failing = [(step, run) for step, run, _ in results if run is not None and not run.passed]
    if failing:
        out()
        out("The first problem of each failing step:")
        for step, run in failing:
            out.para(f"{step.id[:3]}: {first_problem(run)}", "  ")
    missing = all_missing(g.steps)
    if missing:
        out()
        out.para(install_note(missing))
    total = sum(r.points for _, r, _ in results if r)
    total_max = sum(r.max_points for _, r, _ in results if r)
    n_pass = sum(status == "passed" for _, _, status in results)
    out()
    out(f"{n_pass} of {len(results)} steps pass; {total:g}/{total_max:g} points.")
    return (0 if n_pass == len(results) else 1), results


def write_reports(results: Results, impl: str, *, junit: Path | None, json_path: Path | None,
                  markdown: Path | None) -> None:
    if junit:
        _write(junit, junit_xml(results))
    if json_path:
        _write(json_path, json.dumps(json_report(results, impl), indent=1))
    if markdown:
        _write(markdown, markdown_report(results))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def json_report(results: Results, impl: str) -> dict:
    steps = []
    for step, run, status in results:
        entry = {"id": step.id, "title": step.title, "status": status,
                 "points": run.points if run else 0.0,
                 "max_points": run.max_points if run else 0.0,
                 "seconds": round(run.seconds, 2) if run else 0.0,
                 "verdict": (run.crash or (None if run.passed else first_problem(run))
                             if run else f"{status}: "
                             f"{install_note(step.missing_extras(), terminal=False)}"),
                 "tests": []}
        for t in run.tests if run else []:
            entry["tests"].append({
                "name": t.name, "nodeid": t.nodeid, "outcome": t.outcome, "points": t.points,
                "hidden": t.hidden, "exc_type": t.exc_type,
                "message": explain(t) if t.outcome in ("failed", "error") else t.message,
                "where": t.where, "duration": t.duration})
        steps.append(entry)
    return {"impl": impl, "passed": all(s["status"] == "passed" for s in steps),
            "points": sum(s["points"] for s in steps),
            "max_points": sum(s["max_points"] for s in steps), "steps": steps}


def junit_xml(results: Results) -> str:
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="ml-to-llm")
    for step, run, status in results:
        suite = ET.SubElement(suites, "testsuite", name=step.id)
        cases = []
        if run is None:
            case = ET.Element("testcase", classname=step.id, name="grading", time="0")
            ET.SubElement(case, "skipped", message=status)
            cases.append(case)
        else:
            for t in run.tests:
                case = ET.Element("testcase", classname=step.id, name=t.name,
                                  time=f"{t.duration or 0:.3f}")
                props = ET.SubElement(case, "properties")
                ET.SubElement(props, "property", name="points", value=f"{t.points:g}")
                ET.SubElement(props, "property", name="hidden", value=str(t.hidden).lower())
                if t.outcome == "skipped":
                    ET.SubElement(case, "skipped", message=t.message or "")
                elif t.outcome in ("failed", "error", "crashed"):
                    text = explain(t) + (f"\nat {t.where}" if t.where else "")
                    kind = "failure" if t.outcome == "failed" else "error"
                    el = ET.SubElement(case, kind, message=text.splitlines()[0][:300],
                                       type=t.exc_type or t.outcome)
                    el.text = text
                cases.append(case)
            problem = run.crash or (run.collect_errors[0][-2000:] if run.collect_errors else None)
            if problem:
                case = ET.Element("testcase", classname=step.id, name="grading",
                                  time=f"{run.seconds:.3f}")
                el = ET.SubElement(case, "error", message=problem.splitlines()[0][:300],
                                   type=status)
                el.text = problem
                cases.append(case)
        suite.extend(cases)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
        suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
        suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
        suite.set("time", f"{run.seconds:.3f}" if run else "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def markdown_report(results: Results) -> str:
    rows = ["| step | points | status |", "|---|---:|---|"]
    total = total_max = 0.0
    for step, run, status in results:
        pts = f"{run.points:g} / {run.max_points:g}" if run else "-"
        total += run.points if run else 0
        total_max += run.max_points if run else 0
        icon = "✅" if status == "passed" else ("⚠️" if run is None else "❌")
        rows.append(f"| `{step.id}` {step.title.split(':')[0]} | {pts} | {icon} {status} |")
    n_pass = sum(status == "passed" for _, _, status in results)
    return (f"## ml-to-llm grading\n\n**{n_pass} of {len(results)} steps pass, "
            f"{total:g} / {total_max:g} points.**\n\n" + "\n".join(rows) + "\n")

"""check (grade the current step or a named one), list, reset, and what follows a pass."""

from __future__ import annotations

from tools.cli.args import CMD
from tools.cli.install import all_missing, install_note, missing_line
from tools.cli.output import plural, rel
from tools.cli.session import Grader
from tools.cli.verdict import label, render_run
from tools.course import Step, find_step
from tools.grading import StepRun


def hint_line(g: Grader, step: Step) -> str | None:
    """The 'Stuck?' line under a failing verdict: the hint command and how many are left."""
    if not step.hints or not g.learner:
        return None
    left = len(step.hints) - g.prog.hints_shown(step)
    more = (f"{left} of {len(step.hints)} hints left" if left > 0
            else f"all hints shown; {CMD} hint {step.id[:3]} --shown repeats them")
    return f"Stuck? {CMD} hint {step.id[:3]}  ({more})"


def what_it_builds(step: Step) -> str | None:
    """One line from the course plan on what a step builds (never one of its hints)."""
    from tools.plan import load_plan

    try:
        planned = {p.id: p for p in load_plan()[1]}
    except (OSError, ValueError, KeyError):
        return None
    return planned[step.id].builds if step.id in planned else None


def announce_next(g: Grader, step: Step) -> None:
    """The next step's title, files and what it builds: no hint, nothing counted."""
    out = g.out
    out()
    out(out.paint(f"Next: {label(step)}", "bold"))
    builds = what_it_builds(step)
    if builds:
        out.para(f"you build: {builds}", "  ")
    out(f"  code: {rel(step.exercise)}")
    if step.lab.exists():
        out(f"  lab:  {rel(step.lab)}")
    if step.missing_extras():
        out.para(missing_line(step), "  ")
    out(f"Run {CMD} when you are ready, or {CMD} watch to re-grade on every save.")


def finish_course(g: Grader) -> int:
    """Re-check every step before declaring the course finished (rustlings does the same)."""
    out = g.out
    out()
    out("That was the last step. Re-checking every step before declaring the course finished:",
        end="")
    failed = None
    for step in g.steps:
        run = g.runs.get(step.id)  # graded moments ago by this command: no need to repeat
        if run is None:
            if step.missing_extras():
                out()
                out.para(missing_line(step), "  ")
                failed = failed or step
                continue
            run = g.grade(step, live=False)
        mark = out.paint(out.ok, "green") if run.passed else out.paint(out.bad, "red")
        out(f" {step.id[:3]} {mark}", end="")
        if not run.passed and failed is None:
            failed = step
    out()
    if failed is not None:
        out(f"{failed.id} no longer passes, so the course is not finished yet: "
            f"run {CMD} {failed.id[:3]} to see why.")
        return 1
    g.prog.finished = True
    g.save()
    out()
    out(out.paint(f"{out.ok} Course finished: all {len(g.steps)} steps pass. Well done!", "green"))
    return 0


def report_unrecorded(g: Grader, step: Step) -> bool:
    """Say so, in one sentence, when a pass was not recorded because files that decide a
    verdict (graders, conftest.py, the grading code) differ from the course's own."""
    files = g.unrecorded.get(step.id)
    if not files:
        return False
    named = [f for f in files if not f.startswith("(")]
    fix = (f"restore {'it' if len(named) == 1 else 'them'} with git checkout -- "
           f"{' '.join(named)}" if named else "restore them from the course as you received it")
    g.out()
    g.out.para(f"This pass is not recorded and {step.id[:3]} stays current, because it was "
               f"graded under modified course files ({', '.join(files)}): {fix} and run "
               f"{CMD} again.")
    return True


def point_at_reference(g: Grader, step: Step) -> None:
    """Learners ask for the reference once a step is done (it is absent in a release)."""
    if step.solution.exists():
        g.out(f"  Now compare with the reference solution: {rel(step.solution)}")


def after_pass(g: Grader, step: Step) -> int:
    """A step just passed: point at the reference, then announce the next step or finish."""
    if not g.learner:
        return 0
    if report_unrecorded(g, step):
        return 1
    point_at_reference(g, step)
    nxt = g.current_index(rebuild=False)
    if nxt is None:
        if g.prog.finished:
            g.out(f"\nEvery step passes; the course is finished. {CMD} list shows your scores.")
            return 0
        return finish_course(g)
    following = g.steps[nxt]
    if g.steps.index(following) > g.steps.index(step):
        announce_next(g, following)
    else:
        g.out(f"\nYour current step is still {label(following)}: {CMD}")
    return 0


def show(g: Grader, run: StepRun) -> None:
    render_run(run, g.out, hint_line(g, run.step))


def grade_one(g: Grader, step: Step, *, reuse: bool = False) -> int:
    if step.missing_extras():
        g.out.para(missing_line(step))
        return 1
    if g.learner and not step.exercise.exists():
        g.out(f"{rel(step.exercise)} is missing: restore the stub with {CMD} reset "
              f"{step.id[:3]}")
        return 1
    run = g.runs.get(step.id) if reuse else None
    run = run or g.grade(step)
    show(g, run)
    return after_pass(g, step) if run.passed else 1


def cmd_check(g: Grader, query: str | None) -> int:
    if query is None:
        idx = g.current_index()
        if idx is None:
            if g.learner and not g.prog.finished:
                return finish_course(g)
            g.out(f"{g.out.ok} Every step passes; the course is finished. "
                  f"{CMD} list shows your scores.")
            return 0
        return grade_one(g, g.steps[idx], reuse=True)
    step = find_step(query, g.steps)
    if g.learner:
        g.current_index()  # rebuild progress first if it was lost
        unlocked, first = g.is_unlocked(step)
        if not unlocked:
            g.out(f"{step.id} is locked: {first.id} ({first.title}) comes first. Run {CMD} "
                  "to work on it.")
            return 1
    return grade_one(g, step, reuse=True)


def cmd_list(g: Grader) -> int:
    from tools.plan import unshipped

    out = g.out
    idx = g.current_index()
    width = max(len(s.id) for s in g.steps)
    out(f"  {'step':{width}}  {'status':8}  {'score':>7}  title")
    kept = False
    for i, step in enumerate(g.steps):
        if idx is None or i < idx:
            status, mark = "done", out.paint(out.ok, "green")
        elif i == idx:
            status, mark = "current", out.paint(out.cur, "yellow")
        else:
            status, mark = "locked", out.dot
        score = g.prog.score(step)
        shown = f"{score[0]:g}/{score[1]:g}" if score else "-"
        if status == "locked" and score:
            shown, kept = shown + "*", True
        extra = f"  (needs {', '.join(step.missing_extras())})" if step.missing_extras() else ""
        out(f"{mark} {step.id:{width}}  {status:8}  {shown:>7}  {step.title}{extra}")
    done = len(g.steps) if idx is None else idx
    out()
    if idx is None:
        out(f"All {len(g.steps)} steps done.")
    else:
        out(f"{done} of {len(g.steps)} steps done. Current: {g.steps[idx].id} ({CMD})")
    if kept:
        out.para(f"* a locked step's score is from its last grading: it passed before, but "
                 f"a step before it ({g.steps[idx].id[:3]}) no longer does. It counts again, "
                 f"without re-doing it, once the steps before it pass.")
    missing = all_missing(g.steps)
    if missing:
        out.para(install_note(missing))
    planned = unshipped(g.steps)
    if planned:
        out()
        out.para(f"Not shipped yet ({plural(len(planned), 'planned step')}, in the README's "
                 "course table): " + ", ".join(f"{p.short} {p.name.replace('_', ' ')}"
                                        for p in planned) + ".")
    return 0


def cmd_reset(g: Grader, query: str | None) -> int:
    from tools.progress import backup
    from tools.stubgen import pristine_stub

    out = g.out
    if not query:
        out(f"Name the step to reset, e.g. {CMD} reset s00")
        return 2
    step = find_step(query, g.steps)
    try:
        stub = pristine_stub(step)
    except FileNotFoundError as exc:
        out(f"Cannot reset {step.id}: {exc}")
        return 1
    path = step.exercise
    if path.exists() and path.read_text(encoding="utf-8") == stub:
        out(f"{rel(path)} is already the original stub; nothing to reset.")
        return 0
    saved = backup(path) if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stub, encoding="utf-8")
    out(f"{rel(path)} is the original stub again.")
    if saved is not None:
        out(f"Your version is saved as {rel(saved)} (copy it back to undo).")
    out(f"Run {CMD} {step.id[:3]} to see what is left to implement.")
    return 0

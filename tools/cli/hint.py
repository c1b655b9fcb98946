"""hint: one more hint, every hint shown so far (--shown), or all of them at once (--all).

Every follow-up names the step it was asked for, so `hint s24` is followed by `hint s24`.
"""

from __future__ import annotations

from tools.cli.args import CMD
from tools.cli.session import Grader
from tools.cli.verdict import label
from tools.course import find_step


def cmd_hint(g: Grader, query: str | None, mode: str) -> int:
    """mode: 'next' (one more hint), 'shown' (repeat those seen) or 'all' (reveal the rest)."""
    out = g.out
    if query:
        step = find_step(query, g.steps)
    else:
        idx = g.current_index(rebuild=False)
        if idx is None:
            out("Every step passes: no hint needed. Name a step for its hints, e.g. "
                f"{CMD} hint s00.")
            return 0
        step = g.steps[idx]
    hints, short = step.hints, step.id[:3]
    if not hints:
        out(f"{step.id} has no hints yet.")
        return 0
    shown = min(g.prog.hints_shown(step), len(hints))
    if mode == "shown":
        if not shown:
            out(f"No hint of {step.id} has been shown yet: {CMD} hint {short} shows the first.")
            return 0
        out(f"The {shown} of {len(hints)} hints for {label(step)} shown so far:")
        for i, h in enumerate(hints[:shown], 1):
            out.para(f"{i}. {h}", "  ")
        _footer(g, step, shown)
        return 0
    if mode == "all":
        out(f"Every hint for {label(step)} ({len(hints)}, the last one close to the answer):")
        for i, h in enumerate(hints, 1):
            out.para(f"{i}. {h}", "  ")
        g.prog.set_hints_shown(step, len(hints))
    elif shown < len(hints):
        out.para(f"Hint {shown + 1}/{len(hints)} for {step.id}: {hints[shown]}")
        g.prog.set_hints_shown(step, shown + 1)
        _footer(g, step, shown + 1)
    else:
        out.para(f"All {len(hints)} hints for {step.id} have been shown; the last one was: "
                 f"{hints[-1]}")
        out(f"All of them again: {CMD} hint {short} --shown")
    g.save()
    return 0


def _footer(g: Grader, step, shown: int) -> None:
    out, short, left = g.out, step.id[:3], len(step.hints) - shown
    if left <= 0:
        out(f"That was the last hint for {step.id}. All of them again: {CMD} hint {short} "
            "--shown")
        return
    rows = [(f"next hint ({left} left):", f"{CMD} hint {short}"),
            (f"the {shown} shown so far, again:", f"{CMD} hint {short} --shown"),
            (f"reveal all {left} remaining at once:",
             f"{CMD} hint {short} --all  (the last one is close to the answer)")]
    for what, command in rows:
        out(f"  {what:35} {command}")

"""The command line of tools/check.py: its usage text and argument parsing."""

from __future__ import annotations

import argparse
from pathlib import Path

CMD = "python tools/check.py"
COMMANDS = ("list", "hint", "watch", "reset")

USAGE = """\
The learner's loop: grade the current step, unlock the next, hint, watch, reset.

    python tools/check.py                 grade the current step (the first one not passed yet)
    python tools/check.py s03             grade one step (s03, 3, s03_softmax_regression, ...)
    python tools/check.py list            every step with its status, score and title
    python tools/check.py hint [STEP]     one more hint for the current step (or STEP)
        --shown                           ... every hint shown so far, again (reveals nothing)
        --all                             ... reveal every hint at once, the near-answer too
    python tools/check.py watch           re-grade the current step each time you save it
    python tools/check.py reset STEP      restore the original stub (your file is backed up)
    python tools/check.py --all           grade every step, locks ignored (instructors, CI),
        [--junit PATH] [--json PATH] [--markdown PATH]   ... and write reports
    --impl exercises|solutions|PATH       what to grade (default: your exercises/)

Each step is graded in a child process (tools/grading.py), so nothing your code does -- loop,
crash, exit -- can take this tool down. Progress (.ml2llm/progress.json) is derived from your
files: delete it and it is rebuilt by grading again; hint counts are kept in .ml2llm/hints.json.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=CMD, description=USAGE.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(USAGE.split("\n\n")[1].splitlines()))
    parser.add_argument("command", nargs="?",
                        help="a step (s03, 3, softmax_regression), list, hint, watch or reset")
    parser.add_argument("target", nargs="?", help="the step for hint and reset")
    parser.add_argument("--all", action="store_true",
                        help="grade every step, locks ignored (with hint: reveal every hint)")
    parser.add_argument("--shown", action="store_true",
                        help="with hint: repeat the hints shown so far, revealing no new one")
    parser.add_argument("--impl", default="exercises",
                        help="exercises (default), solutions, or a path (a module, or a folder "
                             "of <step id>.py files)")
    parser.add_argument("--junit", type=Path, help="write a JUnit XML report")
    parser.add_argument("--json", type=Path, help="write a JSON report")
    parser.add_argument("--markdown", type=Path, help="write a Markdown summary")
    return parser.parse_args(argv)

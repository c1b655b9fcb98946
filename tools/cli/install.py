"""The one pip command that installs what a step needs beyond the core."""

from __future__ import annotations

import sys

from tools.course import Step

# PyPI's Linux torch wheel is the CUDA build (gigabytes). With PyTorch's CPU index added, pip
# sees both 2.13.0 and 2.13.0+cpu for the pinned torch==2.13.0 and takes 2.13.0+cpu, the
# higher of the two; `-e` keeps the course's editable install in place.
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def install_command(extras: list[str]) -> str:
    cmd = f'pip install -e ".[{",".join(extras)}]"'
    if "torch" in extras and sys.platform == "linux":
        cmd += f" --extra-index-url {CPU_INDEX}"
    return cmd


def install_note(extras: list[str], *, terminal: bool = True) -> str:
    """What to run, and (for torch on Linux) the one thing a GPU owner changes.

    For the terminal the command is a line of its own, marked ``$ `` for `Out.para`, which
    prints it unwrapped: a command wrapped over two lines, pasted, runs its first half (pip
    would fetch PyPI's CUDA build). ``terminal=False`` gives one line, for reports."""
    gpu = (" (the CPU build; with an NVIDIA GPU, leave out --extra-index-url and its URL)"
           if "torch" in extras and sys.platform == "linux" else "")
    what = ", ".join(extras)
    if not terminal:
        return f"To install {what}, run from the course folder: {install_command(extras)}{gpu}"
    return (f"To install {what}, run this one line from the course folder{gpu}:\n"
            f"$ {install_command(extras)}")


def missing_line(step: Step) -> str:
    """`sNN needs torch: <the command>`, for a step that cannot be graded here."""
    extras = step.missing_extras()
    return f"{step.id[:3]} needs {', '.join(extras)}. {install_note(extras)}"


def all_missing(steps: list[Step]) -> list[str]:
    """Every extra some step needs and this environment lacks, in course order."""
    seen: list[str] = []
    for step in steps:
        seen += [e for e in step.missing_extras() if e not in seen]
    return seen

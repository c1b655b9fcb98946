"""Terminal output: marks and colours that degrade to plain text, and a pipe that may close."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

from tools.course import ROOT


class Out:
    """Marks and colours that degrade to ASCII / plain text where the terminal cannot show them.

    When the reader goes away (`check.py list | head`), output stops silently and the command
    carries on, so grading and progress are never cut short by a closed pipe.
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.color = self.tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        try:
            "✓✗▶·•—".encode(self.stream.encoding or "ascii")
            self.ok, self.bad, self.cur, self.dot, self.bullet = "✓", "✗", "▶", "·", "•"
        except (LookupError, UnicodeEncodeError):
            self.ok, self.bad, self.cur, self.dot, self.bullet = "ok", "x", ">", "-", "*"
        self.width = min(100, shutil.get_terminal_size((100, 24)).columns) - 2
        self.closed = False

    def paint(self, text: str, color: str) -> str:
        codes = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}
        return f"\033[{codes[color]}m{text}\033[0m" if self.color else text

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            detach_stdout(self.stream)

    def __call__(self, text: str = "", end: str = "\n") -> None:
        self.write(text + end)

    def para(self, text: str, indent: str = "") -> None:
        """A paragraph wrapped to the terminal; explicit line breaks are kept.

        A line that starts with ``$ `` is a command to copy: it is printed whole, indented,
        without the ``$``, however long (a wrapped command pastes as two)."""
        for line in text.splitlines() or [""]:
            if line.startswith("$ "):
                self(f"{indent}    {line[2:]}")
                continue
            self(textwrap.fill(line, self.width, initial_indent=indent,
                               subsequent_indent=indent + "  ", break_on_hyphens=False,
                               break_long_words=False) if line.strip() else "")

    def status(self, text: str) -> None:
        """A transient line (terminals only), overwritten by the next output."""
        if self.tty:
            self.write("\r\033[K" + text[: self.width])

    def clear_status(self) -> None:
        if self.tty:
            self.write("\r\033[K")


def detach_stdout(stream) -> None:
    """Point a closed stdout at /dev/null, so Python's exit-time flush raises nothing."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def rel(path: Path) -> str:
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def plural(n: int | float, word: str) -> str:
    return f"{n:g} {word}{'' if n == 1 else 's'}"

"""watch: re-grade the current step on every save (or on Enter), move on when it passes."""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from pathlib import Path

from tools.cli.commands import (
    announce_next,
    finish_course,
    point_at_reference,
    report_unrecorded,
    show,
)
from tools.cli.install import missing_line
from tools.cli.output import rel
from tools.cli.session import Grader

POLL_SECONDS = 1.0


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Keyboard:
    """Lines typed on stdin, read by a background thread (works where select() does not)."""

    def __init__(self):
        self.lines: queue.Queue = queue.Queue()
        self.open = True
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in sys.stdin:
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        self.lines.put(None)  # end of input: no manual re-runs from here on

    def wait_line(self, seconds: float) -> str | None:
        """A typed line, or None after `seconds` without one."""
        if not self.open:
            time.sleep(seconds)
            return None
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return None
        if line is None:
            self.open = False
        return line


def wait_for_change(path: Path, since: tuple[int, int] | None, keys: Keyboard) -> str:
    """'changed' when `path` is saved, 'rerun' on Enter, 'quit' on q; polls every second."""
    while True:
        line = keys.wait_line(POLL_SECONDS)
        if line is not None:
            return "quit" if line.strip().lower() in ("q", "quit", "exit") else "rerun"
        if _signature(path) != since:
            time.sleep(0.2)  # let the editor finish writing
            return "changed"


def _ctrl_c_stops() -> None:
    """Make Ctrl-C raise KeyboardInterrupt whatever this process inherited: a parent that
    started it with SIGINT ignored or blocked (a background job, a test runner's worker)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)


def cmd_watch(g: Grader) -> int:
    out = g.out
    _ctrl_c_stops()
    keys = Keyboard()
    try:
        idx = g.current_index()
        while idx is not None:
            step = g.steps[idx]
            if step.missing_extras():
                out.para(missing_line(step))
                return 1
            out(out.paint(f"Watching {rel(step.exercise)}", "bold")
                + ": every save re-runs the check.")
            out("If saving does not start a run (WSL2, network drives), press Enter to re-run. "
                "Quit with q + Enter or Ctrl-C.")
            while True:
                since = _signature(step.exercise)
                out()
                run = g.grade(step)
                show(g, run)
                if run.passed and not report_unrecorded(g, step):
                    point_at_reference(g, step)
                    break
                out(out.paint(f"-- waiting for you to save {rel(step.exercise)} (Enter re-runs, "
                              "q quits) --", "dim"))
                if wait_for_change(step.exercise, since, keys) == "quit":
                    out("Stopped watching.")
                    return 0
            idx = g.current_index(rebuild=False)
            if idx is None:
                return finish_course(g)
            announce_next(g, g.steps[idx])
            out()
        out(f"{out.ok} Every step passes; the course is finished.")
        return 0
    except KeyboardInterrupt:
        out.clear_status()
        out("\nStopped watching.")
        return 0

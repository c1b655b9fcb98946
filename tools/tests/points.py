"""The points grader files carry, counted by a plain pytest collection in a subprocess.

Tests compare verdicts with this count instead of pinning a number, so they follow the graders
as they grow; it shares no code with tools/expected.py (whose collection some tests check).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

COUNT_POINTS = """
import json, sys, pytest
total = []
class Count:
    def pytest_collection_modifyitems(self, items):
        for item in items:
            mark = item.get_closest_marker("points")
            total.append(float(mark.args[0]) if mark and mark.args else 1.0)
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]],
                   plugins=[Count()])
print(json.dumps(sum(total) if code == 0 else None))
"""


def grader_points(course: Path, *graders: Path) -> float:
    """The points of `graders` (paths relative to `course` or absolute), collected in `course`."""
    proc = subprocess.run([sys.executable, "-c", COUNT_POINTS, *map(str, graders)], cwd=course,
                          capture_output=True, text=True, timeout=300)
    total = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    assert total, f"the graders did not collect:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return float(total)


@functools.cache
def step_points(step_id: str) -> float:
    """Public plus hidden points of one step of this checkout."""
    from tools.course import ROOT, find_step  # noqa: PLC0415

    return grader_points(ROOT, *find_step(step_id).grader_files())

"""The code base is ruff clean (configuration in pyproject.toml)."""

import shutil
import subprocess

import pytest

from tools.course import ROOT


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the dev extra")
def test_ruff_clean():
    out = subprocess.run(["ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-4000:]

"""exercises/ is exactly what the generator makes, and the manifest matches the trees."""

from tools.course import load_steps, manifest_problems
from tools.stubgen import check


def test_exercises_match_the_generator():
    stale = check(load_steps())
    assert not stale, ("generated files are out of date (python tools/stubgen.py --write): "
                       + ", ".join(stale))


def test_manifest_matches_the_trees():
    problems = manifest_problems()
    assert not problems, "\n".join(problems)

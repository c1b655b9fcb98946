"""exercises/ is exactly what the generator makes; the manifest, the plan, the hints store and
the README agree."""

from tools import hints, plan
from tools.course import MANIFEST, ROOT, load_steps, manifest_problems
from tools.stubgen import check


def test_exercises_match_the_generator():
    stale = check(load_steps())
    assert not stale, ("generated files are out of date (python tools/stubgen.py --write): "
                       + ", ".join(stale))


def test_manifest_matches_the_trees():
    problems = manifest_problems()
    assert not problems, "\n".join(problems)


def test_every_shipped_step_has_its_hints_in_the_store_and_none_inline():
    found = hints.problems()
    assert not found, "\n".join(found)
    manifest = MANIFEST.read_text(encoding="utf-8")
    for step in load_steps():
        stored = (MANIFEST.parent / "hintstore" / f"{step.id}.txt").read_text(encoding="utf-8")
        for hint in step.hints:  # opening either file reveals no hint
            words = hint[:40]
            assert words not in manifest and words not in stored, (step.id, words)


def test_readme_table_shows_the_whole_plan_and_every_shipped_step_is_planned():
    found = plan.problems()
    assert not found, "\n".join(found)
    _, planned = plan.load_plan()
    assert [p.number for p in planned] == list(range(49))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert plan.readme_table() in readme, "stale README table: python -m tools.plan readme"
    shipped = {s.id for s in load_steps()}
    for p in planned:
        status = "✓ shipped" if p.id in shipped else "planned"
        assert f"| {p.short} {p.name.replace('_', ' ')} | {p.builds} | {p.graded} | {status} |" \
            in readme, p.id


def test_readme_install_lines_are_the_ones_the_tools_print_and_ci_runs():
    import re

    from tools.cli.install import CPU_INDEX

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    torch_line = f'pip install -e ".[torch]" --extra-index-url {CPU_INDEX}'
    assert f"```bash\n{torch_line}\n```" in readme  # what check.py prints on Linux
    student = (ROOT / "tools" / "templates" / "student_README.md").read_text(encoding="utf-8")
    assert f"```bash\n{torch_line}\n```" in student, "the edition's README, the same line"
    assert "pip install torch" not in readme + student, "one command, never a second one"
    block = re.search(r"## Run the project's tests.*?```bash\n(.*?)\n```", readme, re.S)
    install, test = block.group(1).split(" && ")
    assert install == f'pip install -e ".[dev]" --extra-index-url {CPU_INDEX}'
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"python -m {install}\n" in ci
    assert ci.rstrip().endswith(test)


OUTSIDE = "../" + "shared"  # spelled in two parts so this file does not match itself
NOT_OURS = ("DESIGN" + ".md", "CURRICULUM" + ".md")


def test_no_file_points_at_documents_outside_the_project():
    """The course carries its own plan (tools/plan.toml, README, INTEGRITY.md): no tracked file
    a learner can read points at a folder beside the checkout or at a design document the
    clone does not have. Only CI's data fallback in .ci/run takes tinyshakespeare from a local
    copy beside the checkout (CI has no internet; documented there)."""
    import subprocess

    import pytest

    proc = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("not a git checkout: no list of tracked files")
    tracked = proc.stdout.splitlines()
    found = []
    for rel in tracked:
        if rel.startswith(".ci/") or not (ROOT / rel).is_file():
            continue
        text = (ROOT / rel).read_text(encoding="utf-8", errors="replace")
        found += [f"{rel}: {word}" for word in (OUTSIDE, *NOT_OURS) if word in text]
    assert not found, "\n".join(found)


def test_the_course_ignores_the_grading_reports_its_editions_ignore():
    """`git add -A` in the course itself never commits a grading report either."""
    from tools.release import IGNORED_OUTPUTS

    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert [p for p in IGNORED_OUTPUTS if p not in ignored] == []

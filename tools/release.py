"""Build the student edition: the repository a class receives.

    python tools/release.py OUT                       # every step with a solution and graders
    python tools/release.py OUT --steps s00 s01 s02   # release the first steps only
    python tools/release.py OUT --force               # rebuild into OUT (its .git is kept)
    python tools/release.py OUT --hidden-out PRIVATE  # + the hidden graders, for a private repo
    python tools/release.py OUT --upstream URL --release-ref TAG   # pin CI to a tagged release

OUT receives: ``exercises/`` (stubs and lab notebooks generated from the solutions, plus the
learner's notes templates), ``graders/`` (public graders and helpers), ``tools/`` (the learner's
tools, ``tools/pristine/<id>.py`` stubs so ``check.py reset`` and the provenance check work
without solutions, the manifest of the released steps, ``release.json``), ``datasets/`` (the
data manifest), ``conftest.py``, ``pyproject.toml``, a README for learners (which says where
their solutions go), ``.gitignore`` and the grading workflow ``.github/workflows/grade.yml``.

It never writes ``solutions/``, ``graders/hidden/``, ``graders/mutants/``, the project's tests or
the instructor tools (contract, nbgrader export, this builder, benchmarks), and the build ends
with a leak scan: if the code of any solution region, or the name of any hidden test, appears
anywhere in OUT, the edition is refused.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import isolation, labs
from tools.ci_grade import graders_digest
from tools.course import ROOT, Step, find_step, load_steps
from tools.stubgen import make_stub, solution_regions

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Instructor-side tools: they need solutions, hidden graders or mutants.
TOOLS_DENY_FILES = {"contract.py", "nbgrader_export.py", "release.py", "bench.py", "AUTHORING.md",
                    "mutation.py", "coverage_contract.py", "gradebook.py"}
# Instructor-side graders/ folders: they quote solution code.
GRADERS_DENY_DIRS = ("hidden", "mutants", "mutation", "coverage", "alternatives")
TOOLS_DENY_DIRS = {"tests", "templates", "benchmarks", "pristine", "__pycache__"}
TOP_LEVEL_FILES = {"conftest.py", ".gitignore"}
FORBIDDEN = ("solutions", *(f"graders/{d}" for d in GRADERS_DENY_DIRS), "tools/tests",
             *(f"tools/{f}" for f in TOOLS_DENY_FILES))
# Reports the tools write: never part of a learner's commit (`git add -A` must skip them).
IGNORED_OUTPUTS = ("grade-report/", "gradebook/", "grades.csv")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".yml", ".yaml", ".json", ".cfg", ".ini",
                 ".ipynb", ".csv"}


class ReleaseError(RuntimeError):
    """The edition cannot be built, or would leak; the message says why."""


def releasable(steps: list[Step]) -> tuple[list[Step], list[Step]]:
    """(steps with a solution and public graders, the others)."""
    ok = [s for s in steps if s.solution.exists() and s.public_graders.exists()]
    return ok, [s for s in steps if s not in ok]


def source_files() -> list[str]:
    """Tracked and untracked, not ignored, files of the course (paths relative to ROOT)."""
    proc = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                          capture_output=True)
    if proc.returncode == 0:
        return sorted(p for p in proc.stdout.decode().split("\0") if p and (ROOT / p).is_file())
    junk = {".git", "__pycache__", ".ml2llm", "results", ".pytest_cache", ".hypothesis",
            ".ruff_cache", ".venv", "cache"}
    return sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                  if p.is_file() and not junk & set(p.relative_to(ROOT).parts))


def wanted(rel: str, released: set[str]) -> bool:
    """Whether a course file belongs in the student edition as it is."""
    parts = rel.split("/")
    top = parts[0]
    if len(parts) == 1:
        return rel in TOP_LEVEL_FILES or rel.startswith("LICENSE")
    if top == "tools":
        return not (set(parts[1:-1]) & TOOLS_DENY_DIRS) and parts[-1] not in TOOLS_DENY_FILES \
            and not parts[-1].endswith(".pyc")
    if top == "graders":
        if parts[1] in GRADERS_DENY_DIRS or parts[-1].endswith(".pyc"):
            return False
        m = re.fullmatch(r"test_(s\d\d_\w+)\.py", parts[1])
        return m is None or m.group(1) in released
    if top == "exercises":
        return len(parts) == 2 and not re.match(r"s\d\d_", parts[1])  # steps are generated
    if top == "datasets":
        return parts[1] != "cache"
    return False


def filtered_manifest(text: str, ids: list[str]) -> str:
    """The manifest with only the released [[step]] tables, comments and order kept."""
    head, *blocks = re.split(r"(?m)^(?=\[\[step\]\]\s*$)", text)
    kept = [b for b in blocks if re.search(r'(?m)^id\s*=\s*"([^"]+)"', b).group(1) in ids]
    out = head + "".join(kept)
    got = [s["id"] for s in tomllib.loads(out).get("step", [])]
    if got != ids:
        raise ReleaseError(f"could not cut the manifest down to {ids}: got {got}")
    return out


def student_pyproject(text: str) -> str:
    new, n = re.subn(r'(?m)^testpaths = \["tools/tests"\]$',
                     '# The student edition has no project tests: `python -m pytest` runs the '
                     'graders.\ntestpaths = ["graders"]', text)
    if n != 1:
        raise ReleaseError('pyproject.toml has no line testpaths = ["tools/tests"] to adapt')
    return new


def steps_table(steps: list[Step]) -> str:
    rows = ["| step | title |", "|---|---|"]
    rows += [f"| `{s.id}` | {s.title} |" for s in steps]
    return "\n".join(rows)


def _commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) if sha else "unknown"
    except OSError:
        return "unknown"


def _clean(out: Path, force: bool) -> None:
    if out.exists() and any(p.name != ".git" for p in out.iterdir()):
        if not force:
            raise ReleaseError(f"{out} is not empty; use --force to rebuild it (.git is kept)")
        for p in out.iterdir():
            if p.name == ".git":
                continue
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build(out: Path, steps: list[Step], *, force: bool = False, release_ref: str = "",
          upstream: str = "", hidden_out: Path | None = None) -> dict:
    """Write the student edition of `steps` into `out`; return its release record."""
    if not steps:
        raise ReleaseError("no step to release")
    out = out.resolve()
    if out == ROOT or ROOT in out.parents:
        raise ReleaseError(f"{out} is inside the course repository; build the edition elsewhere")
    _clean(out, force)
    ids = [s.id for s in steps]
    for rel in source_files():
        if wanted(rel, set(ids)):
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest)
    for step in steps:
        stub = make_stub(step.solution.read_text(), step.id)
        _write(out / "exercises" / f"{step.id}.py", stub)
        _write(out / "tools" / "pristine" / f"{step.id}.py", stub)
        if step.lab_source.exists():
            _write(out / "exercises" / f"{step.id}.ipynb",
                   labs.notebook_text(step.lab_source.read_text(), step))
    _write(out / "tools" / "curriculum.toml",
           filtered_manifest((ROOT / "tools" / "curriculum.toml").read_text(), ids))
    _write(out / "pyproject.toml", student_pyproject((ROOT / "pyproject.toml").read_text()))
    _write(out / "README.md", (TEMPLATES / "student_README.md").read_text()
           .replace("@@STEPS@@", steps_table(steps)))
    workflow = (TEMPLATES / "grade.yml").read_text()
    _write(out / ".github" / "workflows" / "grade.yml",
           workflow.replace("@@RELEASE_REF@@", release_ref).replace("@@UPSTREAM@@", upstream))
    _ignore_outputs(out / ".gitignore")
    record = {
        "schema": "ml2llm-release/1", "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "source_commit": _commit(), "steps": ids, "release_ref": release_ref,
        "upstream": upstream, "public_graders_sha256": graders_digest(out, include_hidden=False),
        # every file that decides a verdict (tools/isolation.py); CI compares it on each run
        "trusted_sha256": isolation.tree_digest(out),
    }
    _write(out / "tools" / "release.json", json.dumps(record, indent=1) + "\n")
    leaks = find_leaks(out)
    if leaks:
        raise ReleaseError("the edition would leak:\n  " + "\n  ".join(leaks[:20]))
    if hidden_out is not None:
        write_hidden(hidden_out, steps)
    return record


def _ignore_outputs(gitignore: Path) -> None:
    text = gitignore.read_text() if gitignore.exists() else ""
    missing = [p for p in IGNORED_OUTPUTS if p not in text.splitlines()]
    if missing:
        text += ("" if text.endswith("\n") or not text else "\n") + \
            "# grading reports (tools/ci_grade.py, the instructor's gradebook)\n" + \
            "\n".join(missing) + "\n"
        gitignore.write_text(text)


def write_hidden(dest: Path, steps: list[Step]) -> list[Path]:
    """The hidden graders of `steps`, laid out for the instructor's private repository."""
    folder = dest / "graders" / "hidden"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for step in steps:
        if step.hidden_graders.exists():
            shutil.copy2(step.hidden_graders, folder / step.hidden_graders.name)
            written.append(folder / step.hidden_graders.name)
    _write(dest / "README.md", "# ml-to-llm hidden graders (keep this repository private)\n\n"
           "The grading workflow of the student edition fetches `graders/hidden/` from here when "
           "the learners' repositories have the variable `ML2LLM_HIDDEN_REPO` (this repository, "
           "owner/name) and the secret `ML2LLM_HIDDEN_TOKEN` (a read-only token for it).\n")
    return written


# --- the leak scan -------------------------------------------------------------------------

TRIVIAL = {"return self", "return", "pass", "continue", "break", "else:", "try:", "finally:"}


def _squash(text: str) -> str:
    return "\n".join(ln.strip() for ln in text.splitlines() if ln.strip())


def _holds(haystack: list[str], needle: list[str]) -> bool:
    """`needle` occurs as consecutive whole lines of `haystack` (squashed lines)."""
    n = len(needle)
    return any(haystack[i:i + n] == needle for i, line in enumerate(haystack)
               if line == needle[0])


def _distinctive(body: str) -> bool:
    """Code worth calling a leak: 40+ characters once trivial lines are left out."""
    return sum(len(ln) for ln in body.splitlines() if ln not in TRIVIAL) >= 40


def _text_of(path: Path) -> str | None:
    if path.suffix not in TEXT_SUFFIXES:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if path.suffix == ".ipynb":
        try:
            return "\n".join("".join(c.get("source", [])) for c in json.loads(text)["cells"])
        except (ValueError, KeyError, TypeError):
            return text
    return text


def region_bodies(source: str) -> list[str]:
    """The code of each BEGIN/END SOLUTION region, squashed (stripped lines, no blanks)."""
    lines = source.splitlines()
    return [_squash("\n".join(lines[b + 1:e])) for b, e, _, _ in solution_regions(source)]


def find_leaks(edition: Path, steps: list[Step] | None = None) -> list[str]:
    """Every way `edition` exposes solutions, hidden graders or mutants (empty: none).

    - A step's own stub (exercises/<id>.py, tools/pristine/<id>.py) holds none of the code of
      its own solution regions.
    - No file holds the code of any step's solution region as consecutive whole lines (when it
      has 40+ characters besides trivial lines like ``return self``, which occur anywhere),
      unless the authors ship that code on purpose as the given code of another step's stub
      (later steps are handed earlier answers, so they never grade them).
    - No file names a hidden test (one that has no public namesake in any step), and no solutions/,
      graders/hidden/, graders/mutants/ or instructor tool is present.
    """
    steps = load_steps() if steps is None else steps
    leaks = [f"{rel}/ is present" for rel in FORBIDDEN if (edition / rel).exists()]
    stubs = {p.stem: _squash(p.read_text()).splitlines()
             for p in (edition / "exercises").glob("s*.py")}
    for step in steps:
        if not step.solution.exists():
            continue
        bodies = [b for b in region_bodies(step.solution.read_text()) if len(b) >= 12]
        for rel in (f"exercises/{step.id}.py", f"tools/pristine/{step.id}.py"):
            if (edition / rel).exists():
                own = _squash((edition / rel).read_text()).splitlines()
                leaks += [f"{rel} holds its own solution ({b.splitlines()[0]})"
                          for b in bodies if _holds(own, b.splitlines())]
    secrets: list[tuple[str, list[str]]] = []  # (what, lines that must not appear together)
    # A hidden test's name that another step ships as a public test (test_bad_arguments_are_
    # refused, say) is a generic name: seeing it in that public file tells a learner nothing.
    public_names = {name for step in steps if step.public_graders.exists()
                    for name in re.findall(r"(?m)^def (test_\w+)", step.public_graders.read_text())}
    for step in steps:
        if step.solution.exists():
            for body in region_bodies(step.solution.read_text()):
                lines = body.splitlines()
                given = any(_holds(text, lines) for sid, text in stubs.items() if sid != step.id)
                if _distinctive(body) and not given:
                    secrets.append((f"a solution region of {step.id} ({lines[0]})", lines))
        if step.hidden_graders.exists():
            public = step.public_graders.read_text() if step.public_graders.exists() else ""
            for name in re.findall(r"(?m)^def (test_\w+)", step.hidden_graders.read_text()):
                if name not in public and name not in public_names:
                    secrets.append((f"hidden test {name} of {step.id}", [name]))
    for path in sorted(p for p in edition.rglob("*") if p.is_file() and ".git" not in p.parts):
        text = _text_of(path)
        if text is None:
            continue
        squashed = _squash(text)
        lines = squashed.splitlines()
        for what, secret in secrets:
            found = (secret[0] in squashed if what.startswith("hidden test")
                     else _holds(lines, secret))
            if found:
                leaks.append(f"{path.relative_to(edition)} holds {what}")
    return leaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write the edition into")
    parser.add_argument("--steps", nargs="+", help="release only these steps (default: all "
                        "that have a solution and public graders)")
    parser.add_argument("--force", action="store_true", help="rebuild a non-empty OUT")
    parser.add_argument("--hidden-out", type=Path,
                        help="also write the hidden graders here (for a private repository)")
    parser.add_argument("--release-ref", default="",
                        help="the tag or commit CI grades with (default: the first commit)")
    parser.add_argument("--upstream", default="",
                        help="the course repository's URL CI fetches --release-ref from")
    args = parser.parse_args(argv)
    steps = [find_step(s) for s in args.steps] if args.steps else load_steps()
    ready, missing = releasable(steps)
    if missing and args.steps:
        print(f"cannot release {', '.join(s.id for s in missing)}: no solution or graders yet")
        return 1
    try:
        record = build(args.out, ready, force=args.force, release_ref=args.release_ref,
                       upstream=args.upstream, hidden_out=args.hidden_out)
    except ReleaseError as exc:
        print(f"release refused: {exc}")
        return 1
    print(f"wrote the student edition of {len(ready)} steps to {args.out}")
    if missing:
        print(f"not released yet (no solution or graders): {', '.join(s.id for s in missing)}")
    print(f"public graders sha256: {record['public_graders_sha256']}")
    if args.hidden_out:
        print(f"hidden graders written to {args.hidden_out} (keep that repository private)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Grade a learner's repository with the graders of the released course (what CI runs).

    python tools/ci_grade.py [--release-ref REF] [--upstream URL] [--hidden DIR]
                             [--out DIR] [--fail-on started|any|never]

The GitHub Actions workflow of the student edition (.github/workflows/grade.yml) runs this on
every push and pull request. It never trusts the copies of the tests in the repository it grades:

1. It finds the released commit: ``--release-ref`` / ``$ML2LLM_RELEASE_REF`` (a tag, branch or
   sha), fetched from ``--upstream`` / ``$ML2LLM_UPSTREAM`` when given (the course's own
   repository); otherwise the repository's first commit, which is the release a fork or a
   repository made from the template starts from.
2. It extracts that commit's tree into a clean folder (``git archive``): graders, conftest.py,
   tools and configuration exactly as released. From the working copy it takes only the
   learner's work, ``exercises/<id>.py`` for each released step. Edited or deleted tests, an
   added conftest.py, pytest.ini or plugin, a module shadowing numpy: none of it is there.
3. It adds the hidden graders from ``--hidden DIR`` when that folder exists (the workflow fetches
   them from the instructor's private repository when a secret is configured).
4. It grades every step there with the released ``tools/check.py --all --json`` and writes
   ``OUT/junit.xml``, ``OUT/summary.md`` (appended to ``$GITHUB_STEP_SUMMARY`` on GitHub) and
   ``OUT/score.json``. Each records the released commit and the sha256 of the graders used.
   Hidden tests are reported by number only: never their names or messages.

Exit status: 0 when grading ran and, with ``--fail-on started`` (the default), every step the
learner has started passes; 1 when one does not; 2 when the repository cannot be graded.

What this cannot stop (see the student README): a learner who edits the workflow file itself,
or whose exercise module patches the graders while they run. The report records whether the
workflow and this script match the release, so an instructor can tell.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

SCHEMA = "ml2llm-ci-grade/1"
WORKFLOW = ".github/workflows/grade.yml"
FRAMEWORK = ("graders", "tools", "conftest.py", "pyproject.toml", ".github")
STEP_FILE = re.compile(r"^s\d\d_\w+\.py$")


class GradeError(RuntimeError):
    """The repository cannot be graded; the message says why."""


# --- hashes (also used by tools/release.py, so a release and a grade can be compared) ------

def _files(root: Path, rel: str) -> list[Path]:
    base = root / rel
    if base.is_file():
        return [base]
    return sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix != ".pyc") if base.is_dir() else []


def graders_digest(root: Path, include_hidden: bool = True) -> str:
    """sha256 over the graders (graders/**, conftest.py) of a course tree, path by path."""
    h = hashlib.sha256()
    for path in _files(root, "graders") + _files(root, "conftest.py"):
        rel = path.relative_to(root).as_posix()
        if not include_hidden and rel.startswith("graders/hidden/"):
            continue
        h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def step_digest(root: Path, step_id: str) -> str:
    h = hashlib.sha256()
    for rel in (f"graders/test_{step_id}.py", f"graders/hidden/test_{step_id}.py"):
        if (root / rel).exists():
            h.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).digest())
    return h.hexdigest()


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# --- git --------------------------------------------------------------------------------

def git(repo: Path, *args: str, binary: bool = False):
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          text=not binary)
    if proc.returncode != 0:
        err = proc.stderr if not binary else proc.stderr.decode(errors="replace")
        raise GradeError(f"git {' '.join(args)} failed: {err.strip()[-500:]}")
    return proc.stdout


def resolve_release(repo: Path, ref: str | None, upstream: str | None) -> tuple[str, str]:
    """(the ref as asked, the released commit's sha)."""
    if upstream:
        git(repo, "fetch", "--no-tags", "--quiet", upstream, ref or "HEAD")
        return f"{upstream} {ref or 'HEAD'}", git(repo, "rev-parse", "FETCH_HEAD").strip()
    if ref:
        return ref, git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    roots = git(repo, "rev-list", "--max-parents=0", "HEAD").split()
    if len(roots) != 1:
        raise GradeError(f"this history has {len(roots)} first commits; say which commit is "
                         "the release with --release-ref (or ML2LLM_RELEASE_REF)")
    return "first commit", roots[0]


def extract(repo: Path, commit: str, dest: Path) -> None:
    data = git(repo, "archive", "--format=tar", commit, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python < 3.11.4
            tar.extractall(dest)  # noqa: S202 - our own repository's archive


# --- building the grading tree -----------------------------------------------------------

def released_steps(tree: Path) -> list[dict]:
    with open(tree / "tools" / "curriculum.toml", "rb") as f:
        return tomllib.load(f).get("step", [])


def build_tree(repo: Path, commit: str, tree: Path, hidden: Path | None) -> dict:
    """Extract the release, copy in the learner's exercises and the hidden graders."""
    extract(repo, commit, tree)
    if not (tree / "tools" / "check.py").exists():
        raise GradeError(f"the released commit {commit[:12]} has no tools/check.py: is it "
                         "the course's release?")
    started = {}
    for step in released_steps(tree):
        sid = step["id"]
        mine, released = repo / "exercises" / f"{sid}.py", tree / "exercises" / f"{sid}.py"
        started[sid] = mine.is_file() and _sha(mine) != _sha(released)
        if mine.is_file():
            shutil.copyfile(mine, released)
    hidden_files = []
    if hidden is not None and hidden.is_dir():
        src = hidden / "graders" / "hidden" if (hidden / "graders" / "hidden").is_dir() else hidden
        ids = {s["id"] for s in released_steps(tree)}
        dest = tree / "graders" / "hidden"
        for path in sorted(src.glob("test_*.py")):
            if path.stem.removeprefix("test_") in ids:
                dest.mkdir(parents=True, exist_ok=True)
                (dest / "__init__.py").touch()
                shutil.copyfile(path, dest / path.name)
                hidden_files.append(path.name)
    return {"started": started, "hidden_files": hidden_files}


def modified_framework_files(repo: Path, tree_commit: str) -> list[str]:
    """Framework files of the working copy that differ from the release (for the record)."""
    out = git(repo, "diff", "--name-only", tree_commit, "--", *FRAMEWORK)
    untracked = git(repo, "ls-files", "--others", "--exclude-standard", "--", *FRAMEWORK)
    return sorted(set(out.split()) | set(untracked.split()))


# --- grading -----------------------------------------------------------------------------

def run_check(tree: Path, raw: Path) -> dict:
    """The released tools/check.py --all, in the clean tree; its JSON report."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
               # Only the plugins the graders need: a plugin installed from an edited
               # pyproject.toml (pytest11 entry point) cannot load and rewrite outcomes.
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTEST_PLUGINS="pytest_timeout,_hypothesis_pytestplugin")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "tools/check.py", "--all", "--json", str(raw)],
                          cwd=tree, env=env, capture_output=True, text=True)
    if not raw.exists():
        raise GradeError("tools/check.py --all wrote no report:\n"
                         + (proc.stdout + proc.stderr)[-3000:])
    return json.loads(raw.read_text())


def _status(step: dict, started: bool) -> str:
    status = step["status"]
    if status == "failed" and not started:
        return "not started"
    if status not in ("passed", "failed", "crashed"):
        return f"skipped ({status})"
    return status


def score_record(report: dict, context: dict, tree: Path) -> dict:
    """The JSON score: per step points and status; hidden tests by number only."""
    steps = []
    for s in report["steps"]:
        started = context["started"].get(s["id"], False)
        tests, n_hidden = [], 0
        for t in s.get("tests", []):
            if t.get("hidden"):
                n_hidden += 1
                tests.append({"name": f"hidden test {n_hidden}", "outcome": t["outcome"],
                              "points": t["points"], "hidden": True})
            else:
                tests.append({"name": t["name"], "outcome": t["outcome"], "points": t["points"],
                              "hidden": False, "exc_type": t.get("exc_type"),
                              "message": t.get("message")})
        first = next((t for t in tests if t["outcome"] not in ("passed", "skipped")
                      and not t["hidden"]), None)
        steps.append({
            "id": s["id"], "title": s["title"], "status": _status(s, started),
            "started": started, "points": s["points"], "max_points": s["max_points"],
            "seconds": s.get("seconds", 0.0), "graders_sha256": step_digest(tree, s["id"]),
            "first_failure": (f"{first['name']}: {(first.get('message') or '').splitlines()[0]}"
                              if first and first.get("message") else None),
            "hidden_failed": sum(t["hidden"] and t["outcome"] not in ("passed", "skipped")
                                 for t in tests),
            "tests": tests})
    points = sum(s["points"] for s in steps)
    max_points = sum(s["max_points"] for s in steps)
    return {
        "schema": SCHEMA, **{k: v for k, v in context.items() if k != "started"},
        "graders_sha256": graders_digest(tree),
        "public_graders_sha256": graders_digest(tree, include_hidden=False),
        "points": points, "max_points": max_points,
        "score": round(points / max_points, 4) if max_points else 0.0,
        "steps_passed": sum(s["status"] == "passed" for s in steps), "steps": steps,
    }


ICONS = {"passed": "✅", "failed": "❌", "crashed": "💥", "not started": "⬜"}


def markdown(score: dict) -> str:
    rows = ["| step | points | status |", "|---|---:|---|"]
    for s in score["steps"]:
        status = s["status"]
        detail = ""
        if status in ("failed", "crashed") and s["first_failure"]:
            detail = ": " + s["first_failure"].replace("|", "\\|")[:120]
        if s["hidden_failed"]:
            detail += f" ({s['hidden_failed']} hidden test(s) fail)"
        rows.append(f"| `{s['id']}` | {s['points']:g} / {s['max_points']:g} | "
                    f"{ICONS.get(status, '⚠️')} {status}{detail} |")
    hidden = (f"included ({len(score['hidden_graders'])} files)" if score["hidden_graders"]
              else "not configured (public graders only)")
    notes = [f"Graded with the released graders of `{score['release_commit'][:12]}` "
             f"({score['release_ref']}), graders sha256 `{score['graders_sha256'][:16]}`; "
             f"hidden graders: {hidden}."]
    if score["modified_framework_files"]:
        notes.append("Files of the course framework differ from the release and were **not** "
                     "used: " + ", ".join(f"`{f}`" for f in score["modified_framework_files"]
                                          [:10]) + ".")
    return (f"## ml-to-llm grade: {score['points']:g} / {score['max_points']:g} points\n\n"
            f"{score['steps_passed']} of {len(score['steps'])} steps pass.\n\n"
            + "\n".join(rows) + "\n\n" + "\n\n".join(notes) + "\n")


def junit(score: dict) -> str:
    suites = ET.Element("testsuites", name="ml-to-llm", tests="0")
    props = ET.SubElement(suites, "properties")
    for key in ("release_commit", "graders_sha256", "graded_commit"):
        ET.SubElement(props, "property", name=key, value=str(score[key]))
    total = 0
    for s in score["steps"]:
        suite = ET.SubElement(suites, "testsuite", name=s["id"], time=f"{s['seconds']:.3f}")
        counts = {"failure": 0, "error": 0, "skipped": 0}
        tests = s["tests"] or [{"name": "grading", "outcome": "error", "points": 0,
                                "hidden": False, "message": s["status"]}]
        for t in tests:
            case = ET.SubElement(suite, "testcase", classname=s["id"], name=t["name"])
            p = ET.SubElement(case, "properties")
            ET.SubElement(p, "property", name="points", value=f"{t['points']:g}")
            if t["outcome"] == "skipped":
                ET.SubElement(case, "skipped")
                counts["skipped"] += 1
            elif t["outcome"] != "passed":
                kind = "failure" if t["outcome"] == "failed" else "error"
                text = ("a hidden test failed (hidden tests are not described)" if t["hidden"]
                        else t.get("message") or t["outcome"])
                el = ET.SubElement(case, kind, message=text.splitlines()[0][:300] if text else "")
                el.text = text
                counts[kind] += 1
        suite.set("tests", str(len(tests)))
        for kind, n in counts.items():
            suite.set(f"{kind}s" if kind != "skipped" else "skipped", str(n))
        total += len(tests)
    suites.set("tests", str(total))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


# --- entry point -------------------------------------------------------------------------

def grade(repo: Path, out: Path, *, release_ref: str | None = None, upstream: str | None = None,
          hidden: Path | None = None) -> dict:
    """Grade `repo` and write OUT/{score.json, summary.md, junit.xml}; return the score."""
    repo = Path(git(repo, "rev-parse", "--show-toplevel").strip())
    asked, commit = resolve_release(repo, release_ref, upstream)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ml2llm-grade-") as tmp:
        tree = Path(tmp) / "course"
        tree.mkdir()
        built = build_tree(repo, commit, tree, hidden)
        released_workflow, released_script = _sha(tree / WORKFLOW), _sha(tree / "tools/ci_grade.py")
        report = run_check(tree, Path(tmp) / "check.json")
        context = {
            "release_ref": asked, "release_commit": commit,
            "graded_commit": git(repo, "rev-parse", "HEAD").strip(),
            "hidden_graders": built["hidden_files"], "started": built["started"],
            "modified_framework_files": modified_framework_files(repo, commit),
            "workflow_matches_release": _sha(repo / WORKFLOW) == released_workflow,
            "ci_grade_matches_release": _sha(repo / "tools/ci_grade.py") == released_script,
        }
        score = score_record(report, context, tree)
    score["seconds"] = round(time.monotonic() - start, 1)
    (out / "score.json").write_text(json.dumps(score, indent=1) + "\n")
    (out / "summary.md").write_text(markdown(score), encoding="utf-8")
    (out / "junit.xml").write_text(junit(score), encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(markdown(score))
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the repository to grade")
    parser.add_argument("--release-ref", default=os.environ.get("ML2LLM_RELEASE_REF") or None,
                        help="the released commit, tag or branch (default: the first commit)")
    parser.add_argument("--upstream", default=os.environ.get("ML2LLM_UPSTREAM") or None,
                        help="fetch the release from this repository URL")
    parser.add_argument("--hidden", type=Path, help="a folder with the hidden graders")
    parser.add_argument("--out", type=Path, default=Path("grade-report"))
    parser.add_argument("--fail-on", choices=("started", "any", "never"), default="started",
                        help="exit 1 when a started step (default) / any step fails")
    args = parser.parse_args(argv)
    try:
        score = grade(args.repo, args.out, release_ref=args.release_ref,
                      upstream=args.upstream, hidden=args.hidden)
    except GradeError as exc:
        print(f"cannot grade: {exc}", file=sys.stderr)
        return 2
    print(markdown(score))
    print(f"reports in {args.out}/ (score.json, summary.md, junit.xml)")
    failing = [s["id"] for s in score["steps"] if s["status"] != "passed"
               and (args.fail_on == "any" or (args.fail_on == "started" and s["started"]))]
    if failing and args.fail_on != "never":
        print(f"not passing yet: {', '.join(failing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

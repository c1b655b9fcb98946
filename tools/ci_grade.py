"""Grade a learner's repository with the released course, one isolated copy per step (CI).

    python RELEASE/tools/ci_grade.py --repo REPO [--release-ref REF] [--upstream URL]
                                     [--hidden DIR] [--out DIR] [--jobs N]
                                     [--fail-on started|any|never]

The GitHub Actions workflow of the student edition (.github/workflows/grade.yml) runs this on
every push and pull request. It is **feedback, not an official grade**: the learner owns the
workflow file and can make it print anything. Official grades come from the instructor's
gradebook (tools/gradebook.py, in the instructor's own checkout). What this must still
guarantee is that no *exercise file* can forge a verdict:

1. The workflow extracts the released commit into a folder of its own and runs *that* copy of
   this script. It never runs the fork's ``tools/ci_grade.py``: an edited copy could report
   anything about itself (so no field of the report is the script vouching for itself).
2. The released commit is ``--release-ref`` / ``$ML2LLM_RELEASE_REF`` (a tag, branch or sha),
   fetched from ``--upstream`` / ``$ML2LLM_UPSTREAM`` when given; otherwise the repository's
   first commit (the release a fork or a repository made from the template starts from).
3. Its trusted tree -- graders, conftest.py, tools, pyproject.toml, plus the hidden graders of
   ``--hidden DIR`` -- is snapshotted and hashed before anything is graded; the digest is
   compared with the one ``tools/release.json`` recorded when the edition was built.
4. Every step is graded in its own fresh, read-only copy of that tree holding only that
   step's exercise file, ``exercises/<id>.py`` from the working copy (tools/isolation.py):
   as an unprivileged uid when this runs as root (the workflow uses sudo), and re-hashed after
   the step, so an exercise that rewrites the grading code voids its own verdict and cannot
   touch another step's.
5. Only after every grading process is dead does it write ``OUT/junit.xml``,
   ``OUT/summary.md`` (appended to ``$GITHUB_STEP_SUMMARY`` on GitHub) and ``OUT/score.json``.
   Hidden tests appear by number only, with a fixed message; a public test's message is
   capped and withheld when it carries text of the hidden graders.

Exit status: 0 when grading ran and, with ``--fail-on started`` (the default), every step the
learner has started passes; 1 when one does not; 2 when the repository cannot be graded.

The default ``--out`` is a folder outside the repository (``grade-report`` next to it would
be committed by ``git add -A``; the edition's .gitignore lists it too).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `tools` is the released copy next to it
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import isolation  # noqa: E402

SCHEMA = "ml2llm-ci-grade/2"
WORKFLOW = ".github/workflows/grade.yml"
FRAMEWORK = ("graders", "tools", "conftest.py", "pyproject.toml", ".github")


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
    # safe.directory: under sudo, root reads a checkout the runner user owns
    proc = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), *args],
                          capture_output=True,
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


# --- the learner's work -------------------------------------------------------------------

def released_steps(tree: Path) -> list[dict]:
    with open(tree / "tools" / "curriculum.toml", "rb") as f:
        return tomllib.load(f).get("step", [])


def learner_exercises(repo: Path, release: Path, step_ids: list[str]) -> tuple[dict, dict]:
    """({step id: bytes of the learner's exercises/<id>.py or None}, {step id: started})."""
    files, started = {}, {}
    for sid in step_ids:
        mine, stub = repo / "exercises" / f"{sid}.py", release / "exercises" / f"{sid}.py"
        files[sid] = mine.read_bytes() if mine.is_file() and not mine.is_symlink() else None
        started[sid] = files[sid] is not None and _sha(mine) != _sha(stub)
    return files, started


def modified_framework_files(repo: Path, tree_commit: str) -> list[str]:
    """Framework files of the working copy that differ from the release (for the record)."""
    out = git(repo, "diff", "--name-only", tree_commit, "--", *FRAMEWORK)
    untracked = git(repo, "ls-files", "--others", "--exclude-standard", "--", *FRAMEWORK)
    return sorted(set(out.split()) | set(untracked.split()))


def released_stubs(release: Path, step_ids: list[str]) -> dict[str, bytes]:
    stubs = {}
    for sid in step_ids:
        for rel in (f"tools/pristine/{sid}.py", f"exercises/{sid}.py"):
            if (release / rel).is_file():
                stubs[sid] = (release / rel).read_bytes()
                break
        else:
            raise GradeError(f"the release has no stub of {sid} (tools/pristine/{sid}.py)")
    return stubs


# --- the score -------------------------------------------------------------------------------

def _status(verdict: dict, started: bool) -> str:
    status = verdict["status"]
    if status in ("failed", "not started") and not started:
        return "not started"
    if status.startswith("needs "):
        return f"skipped ({status})"
    return status


def score_record(verdicts: dict, context: dict, trusted: isolation.Trusted) -> dict:
    """The JSON score: per step points and status; hidden tests by number only."""
    steps = []
    for step in trusted.steps:
        v = verdicts[step.id]
        started = context["started"].get(step.id, False)
        status = _status(v, started)
        first = next((t for t in v["tests"] if t["outcome"] not in ("passed", "skipped")
                      and not t["hidden"]), None)
        first_failure = None
        if status == "integrity" or status == "interrupted":
            first_failure = v["verdict"]
        elif first is not None:
            first_failure = f"{first['name']}: {(first.get('message') or '').splitlines()[0]}" \
                if first.get("message") else first["name"]
        steps.append({
            "id": step.id, "title": step.title, "status": status, "started": started,
            "points": v["points"], "max_points": v["max_points"] or 0.0,
            "seconds": v["seconds"], "graders_sha256": step_digest(trusted.root, step.id),
            "first_failure": first_failure, "integrity": v.get("integrity"),
            "hidden_failed": v["hidden_failed"], "tests": v["tests"]})
    points = sum(s["points"] for s in steps)
    max_points = sum(s["max_points"] for s in steps)
    return {
        "schema": SCHEMA, "official": False,
        **{k: v for k, v in context.items() if k != "started"},
        "graders_sha256": graders_digest(trusted.root),
        "public_graders_sha256": graders_digest(trusted.root, include_hidden=False),
        "points": points, "max_points": max_points,
        "score": round(points / max_points, 4) if max_points else 0.0,
        "steps_passed": sum(s["status"] == "passed" for s in steps), "steps": steps,
    }


ICONS = {"passed": "✅", "failed": "❌", "crashed": "💥", "not started": "⬜",
         "integrity": "🚫", "interrupted": "⚠️"}
FEEDBACK = ("**This is feedback, not an official grade.** The workflow that produced it runs "
            "in your repository, which you control. Official grades come from your "
            "instructor's gradebook, which grades your `exercises/` files from the "
            "instructor's own copy of the course.")


def markdown(score: dict) -> str:
    rows = ["| step | points | status |", "|---|---:|---|"]
    for s in score["steps"]:
        status = s["status"]
        detail = ""
        if status in ("failed", "crashed", "integrity", "interrupted") and s["first_failure"]:
            detail = ": " + s["first_failure"].replace("|", "\\|").replace("\n", " ")[:160]
        if s["hidden_failed"]:
            detail += f" ({s['hidden_failed']} hidden test(s) fail)"
        rows.append(f"| `{s['id']}` | {s['points']:g} / {s['max_points']:g} | "
                    f"{ICONS.get(status, '⚠️')} {status}{detail} |")
    hidden = (f"included ({len(score['hidden_graders'])} files)" if score["hidden_graders"]
              else "not configured (public graders only)")
    notes = [FEEDBACK,
             f"Graded with the released course `{score['release_commit'][:12]}` "
             f"({score['release_ref']}), one isolated copy per step "
             f"({score['isolation']}); graders sha256 `{score['graders_sha256'][:16]}`; "
             f"hidden graders: {hidden}."]
    if score["matches_release_record"] is False:
        notes.append("The released tree does **not** match the digest its `tools/release.json` "
                     "recorded: the release commit was changed after it was built.")
    if score["modified_framework_files"]:
        notes.append("Files of the course framework differ from the release and were **not** "
                     "used: " + ", ".join(f"`{f}`" for f in score["modified_framework_files"]
                                          [:10]) + ".")
    return (f"## ml-to-llm feedback: {score['points']:g} / {score['max_points']:g} points\n\n"
            f"{score['steps_passed']} of {len(score['steps'])} steps pass.\n\n"
            + "\n".join(rows) + "\n\n" + "\n\n".join(notes) + "\n")


def junit(score: dict) -> str:
    suites = ET.Element("testsuites", name="ml-to-llm", tests="0")
    props = ET.SubElement(suites, "properties")
    for key in ("release_commit", "graders_sha256", "graded_commit"):
        ET.SubElement(props, "property", name=key, value=str(score[key]))
    ET.SubElement(props, "property", name="official", value="false (feedback)")
    total = 0
    for s in score["steps"]:
        suite = ET.SubElement(suites, "testsuite", name=s["id"], time=f"{s['seconds']:.3f}")
        counts = {"failure": 0, "error": 0, "skipped": 0}
        tests = s["tests"] or [{"name": "grading", "outcome": "error", "points": 0,
                                "hidden": False,
                                "message": s["first_failure"] or s["status"]}]
        for t in tests:
            case = ET.SubElement(suite, "testcase", classname=s["id"], name=t["name"])
            p = ET.SubElement(case, "properties")
            ET.SubElement(p, "property", name="points", value=f"{t['points']:g}")
            if t["outcome"] == "skipped":
                ET.SubElement(case, "skipped")
                counts["skipped"] += 1
            elif t["outcome"] != "passed" or s["status"] in ("integrity", "interrupted"):
                kind = "failure" if t["outcome"] in ("failed", "passed") else "error"
                text = isolation.HIDDEN_MESSAGE if t["hidden"] else \
                    (t.get("message") or t["outcome"])
                if s["status"] in ("integrity", "interrupted"):
                    text = s["first_failure"] or s["status"]
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


def write_atomic(path: Path, text: str) -> None:
    """Write via a new file renamed over `path`: a planted symlink is replaced, not followed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    with open(tmp, "x", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# --- entry point -------------------------------------------------------------------------

def grade(repo: Path, out: Path, *, release_ref: str | None = None, upstream: str | None = None,
          hidden: Path | None = None, jobs: int = 1) -> dict:
    """Grade `repo` and write OUT/{score.json, summary.md, junit.xml}; return the score."""
    repo = Path(git(repo, "rev-parse", "--show-toplevel").strip())
    asked, commit = resolve_release(repo, release_ref, upstream)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ml2llm-grade-") as tmp:
        release = Path(tmp) / "release"
        release.mkdir()
        extract(repo, commit, release)
        if not (release / "tools" / "grading.py").exists():
            raise GradeError(f"the released commit {commit[:12]} has no tools/grading.py: is "
                             "it the course's release?")
        record = _release_record(release)
        try:
            trusted = isolation.snapshot(release, Path(tmp) / "trusted", hidden=hidden)
        except isolation.IsolationError as exc:
            raise GradeError(str(exc)) from exc
        ids = [s.id for s in trusted.steps]
        files, started = learner_exercises(repo, release, ids)
        session = isolation.Session(trusted, released_stubs(release, ids), Path(tmp) / "work",
                                    jobs=jobs)
        try:
            verdicts = session.grade([("learner", step, files[step.id])
                                      for step in trusted.steps])["learner"]
        except isolation.IsolationError as exc:
            raise GradeError(str(exc)) from exc
        finally:
            session.close()
        released_digest = isolation.tree_digest(release)
        context = {
            "release_ref": asked, "release_commit": commit,
            "graded_commit": git(repo, "rev-parse", "HEAD").strip(),
            "hidden_graders": sorted(p.name for p in (trusted.root / "graders" / "hidden")
                                     .glob("test_*.py")),
            "started": started, "isolation": session.isolation,
            "trusted_sha256": released_digest,
            "matches_release_record": (record.get("trusted_sha256") == released_digest
                                       if record.get("trusted_sha256") else None),
            "modified_framework_files": modified_framework_files(repo, commit),
            "workflow_matches_release": _sha(repo / WORKFLOW) == _sha(release / WORKFLOW),
        }
        score = score_record(verdicts, context, trusted)
        isolation.remove_tree(trusted.root)
    score["seconds"] = round(time.monotonic() - start, 1)
    out.mkdir(parents=True, exist_ok=True)  # only now: every grading process is dead
    write_atomic(out / "score.json", json.dumps(score, indent=1) + "\n")
    write_atomic(out / "summary.md", markdown(score))
    write_atomic(out / "junit.xml", junit(score))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(markdown(score))
    return score


def _release_record(release: Path) -> dict:
    try:
        return json.loads((release / "tools" / "release.json").read_text())
    except (OSError, ValueError):
        return {}


def default_out(repo: Path) -> Path:
    """Outside the repository, so `git add -A` never commits a report."""
    return Path(tempfile.gettempdir()) / f"ml2llm-grade-report-{Path(repo).resolve().name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the repository to grade")
    parser.add_argument("--release-ref", default=os.environ.get("ML2LLM_RELEASE_REF") or None,
                        help="the released commit, tag or branch (default: the first commit)")
    parser.add_argument("--upstream", default=os.environ.get("ML2LLM_UPSTREAM") or None,
                        help="fetch the release from this repository URL")
    parser.add_argument("--hidden", type=Path, help="a folder with the hidden graders")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the reports go (default: a folder in the temp directory, "
                             "outside the repository)")
    parser.add_argument("--jobs", type=int, default=1, help="steps graded at once")
    parser.add_argument("--fail-on", choices=("started", "any", "never"), default="started",
                        help="exit 1 when a started step (default) / any step fails")
    args = parser.parse_args(argv)
    out = args.out or default_out(args.repo)
    try:
        score = grade(args.repo, out, release_ref=args.release_ref,
                      upstream=args.upstream, hidden=args.hidden, jobs=args.jobs)
    except GradeError as exc:
        print(f"cannot grade: {exc}", file=sys.stderr)
        return 2
    print(markdown(score))
    print(f"reports in {out}/ (score.json, summary.md, junit.xml)")
    failing = [s["id"] for s in score["steps"] if s["status"] != "passed"
               and (args.fail_on == "any" or (args.fail_on == "started" and s["started"]))]
    if failing and args.fail_on != "never":
        print(f"not passing yet: {', '.join(failing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

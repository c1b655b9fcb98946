"""The instructor's gradebook: official grades for a class, from the instructor's checkout.

    python tools/gradebook.py grade SOURCE... --out DIR [--roster FILE]
        [--classroom ASSIGNMENT_ID [--api-url URL] [--git-base URL] [--token-env NAME]]
        [--deadline 2026-12-01T23:59:00Z | --commit REF] [--steps s00 s01 ...]
        [--hidden DIR] [--jobs N] [--shard I/N]
    python tools/gradebook.py merge SHARD_DIR... --out DIR

A SOURCE is a learner's repository: a local folder or a git URL (cloned with git, bare: no
hook or config of the learner's runs). ``--roster FILE`` lists them as CSV
(``student_id,source[,first_name,last_name,email]``); ``--classroom ID`` lists the
repositories of a GitHub Classroom assignment through the REST API (``GET
/assignments/{id}/accepted_assignments``) with the token in ``$GITHUB_TOKEN`` (or
``--token-env``), which is removed from the environment before any grading starts.

From each repository only ``exercises/<step>.py`` is taken, at ``--commit`` (default: the
default branch's last commit) or at the last commit before ``--deadline``. Everything else --
graders (hidden ones included), conftest.py, tools -- comes from this checkout, snapshotted and
hashed before grading; each step of each learner is graded in its own read-only copy
(tools/isolation.py: an unprivileged uid per slot when run as root). ``--jobs`` grades that
many steps at once (default: the number of cores); ``--shard I/N`` grades every N-th learner
(for a GitHub Actions matrix), and ``merge`` joins shards into one gradebook.

DIR receives, once every grading process is dead: ``grades.csv`` (nbgrader's ``nbgrader
export`` columns, one row per step and learner), ``learners/<id>.md`` and ``.json``,
``summary.md`` with ``plots/`` (score distribution per step, the tests failed most often,
integrity verdicts to review) and ``manifest.json`` (what was graded, with what, and the
sha256 of every file written; ``merge`` checks it).

A deadline is judged by commit dates, which a learner can set to anything: for a deadline
that holds, grade at the deadline (the scheduled workflow) and keep the commit it recorded.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import isolation  # noqa: E402
from tools.course import ROOT, find_step, load_steps  # noqa: E402
from tools.stubgen import make_stub  # noqa: E402

SCHEMA = "ml2llm-gradebook/1"
NBGRADER_COLUMNS = ("assignment", "duedate", "timestamp", "student_id", "last_name",
                    "first_name", "email", "raw_score", "late_submission_penalty", "score",
                    "max_score")
API_VERSION = "2022-11-28"
REVIEW = ("integrity", "interrupted")
HASH_ONLY = ("**Isolated by hash checks only:** this ran without root (or without an "
             "interpreter an unprivileged uid can run), so exercise code ran as the "
             "gradebook's own user. A change to the grading tree that stays is caught; one "
             "made and undone during grading, or outside the tree, is not. Run the gradebook "
             "as root (a container, or sudo) for official grades.")


class GradebookError(RuntimeError):
    """The class cannot be graded as asked; the message says why."""


@dataclass
class Learner:
    id: str
    source: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""


# --- the roster ------------------------------------------------------------------------------

def _learner_id(source: str) -> str:
    name = source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    return re.sub(r"[^\w.-]", "_", name) or "learner"


def read_roster(path: Path) -> list[Learner]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    if rows and rows[0] and rows[0][0].strip().lower() in ("student_id", "id"):
        rows = rows[1:]
    learners = []
    for row in rows:
        row = [c.strip() for c in row]
        if not row or not row[0] or row[0].startswith("#"):
            continue
        if len(row) == 1:
            learners.append(Learner(_learner_id(row[0]), row[0]))
        else:
            learners.append(Learner(row[0], row[1], *row[2:5]))
    return learners


def classroom_learners(assignment: str, token: str, api_url: str, git_base: str) -> list:
    """The accepted assignments of a GitHub Classroom assignment, one learner per repo."""
    learners, page = [], 1
    while True:
        url = (f"{api_url.rstrip('/')}/assignments/{urllib.parse.quote(assignment)}"
               f"/accepted_assignments?per_page=100&page={page}")
        items = _api_get(url, token)
        for item in items:
            students = item.get("students") or []
            login = "+".join(s.get("login", "") for s in students) or str(item.get("id"))
            repo = item["repository"]["full_name"]
            name = (students[0].get("name") or "") if len(students) == 1 else ""
            learners.append(Learner(_learner_id(login), f"{git_base.rstrip('/')}/{repo}.git",
                                    first_name=name))
        if len(items) < 100:
            return learners
        page += 1


def _api_get(url: str, token: str) -> list:
    request = urllib.request.Request(url, headers={
        "Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": API_VERSION, "User-Agent": "ml2llm-gradebook"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            data = json.loads(response.read().decode())
    except (OSError, ValueError) as exc:
        raise GradebookError(f"the GitHub API did not list the assignment ({url}): {exc}") \
            from exc
    if not isinstance(data, list):
        raise GradebookError(f"the GitHub API answered {str(data)[:200]} for {url}")
    return data


def shard(learners: list[Learner], spec: str | None) -> list[Learner]:
    """Every N-th learner (sorted by id), starting at the I-th, for ``I/N``."""
    learners = sorted(learners, key=lambda ln: ln.id)
    seen = Counter(ln.id for ln in learners)
    twice = sorted(i for i, n in seen.items() if n > 1)
    if twice:
        raise GradebookError(f"these learner ids appear more than once: {', '.join(twice)}")
    odd = [ln.id for ln in learners if not re.fullmatch(r"\w[\w.+-]*", ln.id)]
    if odd:  # an id names files of the gradebook
        raise GradebookError(f"learner ids may hold letters, digits and . _ + - only: {odd}")
    if not spec:
        return learners
    m = re.fullmatch(r"(\d+)/(\d+)", spec)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise GradebookError(f"--shard {spec!r}: write I/N with 1 <= I <= N, e.g. 2/4")
    i, n = int(m[1]), int(m[2])
    return learners[i - 1::n]


# --- the learners' work ----------------------------------------------------------------------

def _git(*args: str, env: dict | None = None) -> str:
    proc = subprocess.run(["git", "-c", "safe.directory=*", *args], capture_output=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=600)
    if proc.returncode != 0:
        raise GradebookError(proc.stderr.decode(errors="replace").strip()[-400:])
    return proc.stdout.decode(errors="replace")


def _clone_env(source: str, token: str | None, git_base: str) -> dict:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    if token and source.startswith(git_base.rstrip("/") + "/"):  # never to another host
        auth = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraheader",
                   GIT_CONFIG_VALUE_0=f"AUTHORIZATION: basic {auth}")
    return env


def fetch(learner: Learner, dest: Path, *, token: str | None, git_base: str) -> Path | None:
    """A bare clone of the learner's repository (None: a plain folder, read in place)."""
    src = Path(learner.source)
    if src.is_dir() and not (src / ".git").exists() and not (src / "HEAD").is_file():
        return None
    _git("clone", "--quiet", "--bare", "--no-hardlinks", learner.source, str(dest),
         env=_clone_env(learner.source, token, git_base))
    return dest


def pick_commit(repo: Path, commit: str | None, deadline: str | None) -> str | None:
    if deadline:
        sha = _git("-C", str(repo), "rev-list", "-1", "--first-parent", f"--before={deadline}",
                   "HEAD").strip()
        return sha or None
    return _git("-C", str(repo), "rev-parse", "--verify", f"{commit or 'HEAD'}^{{commit}}").strip()


def exercise_at(repo: Path, commit: str, step_id: str) -> bytes | None:
    """The bytes of exercises/<id>.py at `commit`: a regular file only (no symlink)."""
    rel = f"exercises/{step_id}.py"
    listing = _git("-C", str(repo), "ls-tree", commit, "--", rel).split()
    if len(listing) < 3 or listing[0] not in ("100644", "100755") or listing[1] != "blob":
        return None
    proc = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), "cat-file",
                           "blob", listing[2]], capture_output=True, timeout=120)
    return proc.stdout if proc.returncode == 0 else None


def collect(learner: Learner, steps: list, work: Path, args) -> dict:
    """{"commit", "timestamp", "files": {step id: bytes | None}, "problem"} of one learner."""
    record = {"commit": None, "timestamp": "", "files": {s.id: None for s in steps},
              "problem": None}
    try:
        repo = fetch(learner, work / f"{learner.id}.git", token=args.token,
                     git_base=args.git_base)
        if repo is None:
            folder = Path(learner.source)
            for s in steps:
                path = folder / "exercises" / f"{s.id}.py"
                if path.is_file() and not path.is_symlink():
                    record["files"][s.id] = path.read_bytes()
            return record
        commit = pick_commit(repo, args.commit, args.deadline)
        if commit is None:
            record["problem"] = f"no commit before the deadline {args.deadline}"
            return record
        record["commit"] = commit
        record["timestamp"] = _git("-C", str(repo), "show", "-s", "--format=%cI",
                                   commit).strip()
        for s in steps:
            record["files"][s.id] = exercise_at(repo, commit, s.id)
    except (GradebookError, subprocess.TimeoutExpired, OSError) as exc:
        record["problem"] = f"could not read the repository: {str(exc)[:300]}"
    return record


# --- grading ---------------------------------------------------------------------------------

def trusted_snapshot(dest: Path, steps: list, hidden: Path | None) -> isolation.Trusted:
    stubs = {s.id: make_stub(s.solution.read_text(), s.id) for s in steps
             if s.solution.exists()}
    return isolation.snapshot(ROOT, dest, hidden=hidden, stubs=stubs)


def checkout_state() -> str:
    try:
        sha = _git("-C", str(ROOT), "rev-parse", "HEAD").strip()
        dirty = _git("-C", str(ROOT), "status", "--porcelain", "--", *isolation.TRUSTED_TOP)
        return sha + ("+modified" if dirty.strip() else "")
    except GradebookError:
        return "not a git checkout"


def grade_class(learners: list[Learner], steps: list, args) -> dict:
    """Every learner's record, graded; written nowhere yet."""
    with tempfile.TemporaryDirectory(prefix="ml2llm-gradebook-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o711)
        (tmp / "repos").mkdir(mode=0o700)
        work = {ln.id: collect(ln, steps, tmp / "repos", args) for ln in learners}
        trusted = trusted_snapshot(tmp / "trusted", steps, args.hidden)
        by_id = {s.id: s for s in trusted.steps}
        graded_steps = [by_id[s.id] for s in steps]
        stubs = {s.id: (trusted.root / "tools" / "pristine" / f"{s.id}.py").read_bytes()
                 for s in graded_steps}
        session = isolation.Session(trusted, stubs, tmp / "work", jobs=args.jobs)
        start = time.monotonic()
        try:
            verdicts = session.grade([(ln.id, s, work[ln.id]["files"][s.id])
                                      for ln in learners for s in graded_steps
                                      if not work[ln.id]["problem"]])
        except isolation.IsolationError as exc:
            raise GradebookError(str(exc)) from exc
        finally:
            session.close()
        context = {"schema": SCHEMA, "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                time.gmtime()),
                   "instructor_checkout": checkout_state(), "trusted_sha256": trusted.digest,
                   "isolation": session.isolation, "steps": [s.id for s in graded_steps],
                   "max_points": {s.id: session.calibration.get(s.id, {}).get("max_points", 0.0)
                                  for s in graded_steps},
                   "deadline": args.deadline or "", "commit": args.commit or "",
                   "shard": args.shard or "", "seconds": round(time.monotonic() - start, 1)}
        isolation.remove_tree(trusted.root)
    records = [learner_record(ln, work[ln.id], verdicts.get(ln.id, {}), context)
               for ln in learners]
    return {"context": context, "learners": records}


def learner_record(learner: Learner, work: dict, verdicts: dict, context: dict) -> dict:
    steps = []
    for sid in context["steps"]:
        v = verdicts.get(sid) or {"id": sid, "status": "not graded", "points": 0.0,
                                  "verdict": work["problem"], "tests": [], "integrity": None,
                                  "hidden_failed": 0, "seconds": 0.0}
        steps.append({**v, "max_points": context["max_points"][sid]})
    points = sum(s["points"] for s in steps)
    max_points = sum(s["max_points"] for s in steps)
    return {**asdict(learner), "commit": work["commit"], "timestamp": work["timestamp"],
            "problem": work["problem"], "points": points, "max_points": max_points,
            "steps": steps}


# --- outputs ---------------------------------------------------------------------------------

def write_gradebook(book: dict, out: Path) -> None:
    """Every output file of the gradebook, and the manifest of their hashes."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}

    def put(rel: str, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a planted symlink is replaced, never followed
        written[rel] = hashlib.sha256(data).hexdigest()

    ctx = book["context"]
    for rec in book["learners"]:
        put(f"learners/{rec['id']}.json", json.dumps(rec, indent=1) + "\n")
        put(f"learners/{rec['id']}.md", learner_markdown(rec, ctx))
    put("grades.csv", grades_csv(book))
    for name, png in plots(book).items():
        put(f"plots/{name}", png)
    put("summary.md", summary_markdown(book))
    manifest = {"schema": SCHEMA, "context": ctx, "learners": [r["id"] for r in
                                                              book["learners"]],
                "files": written}
    put("manifest.json", json.dumps(manifest, indent=1) + "\n")


def grades_csv(book: dict) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=NBGRADER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    ctx = book["context"]
    for sid in ctx["steps"]:
        for rec in book["learners"]:
            step = next(s for s in rec["steps"] if s["id"] == sid)
            writer.writerow({
                "assignment": sid, "duedate": ctx["deadline"], "timestamp": rec["timestamp"],
                "student_id": rec["id"], "last_name": rec["last_name"],
                "first_name": rec["first_name"], "email": rec["email"],
                "raw_score": f"{step['points']:g}", "late_submission_penalty": "0",
                "score": f"{step['points']:g}", "max_score": f"{step['max_points']:g}"})
    return buf.getvalue()


def _cell(text: str | None, limit: int = 140) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")[:limit]


def learner_markdown(rec: dict, ctx: dict) -> str:
    rows = ["| step | points | status | first problem |", "|---|---:|---|---|"]
    for s in rec["steps"]:
        detail = "" if s["status"] == "passed" else _cell(s.get("verdict"))
        if s.get("hidden_failed"):
            detail += f" ({s['hidden_failed']} hidden test(s) fail)"
        rows.append(f"| `{s['id']}` | {s['points']:g} / {s['max_points']:g} | {s['status']} "
                    f"| {detail} |")
    at = f"commit `{rec['commit'][:12]}` ({rec['timestamp']})" if rec["commit"] else \
        "the folder as it is"
    notes = [f"Graded at {at} from the instructor's checkout `{ctx['instructor_checkout']}` "
             f"(trusted tree sha256 `{ctx['trusted_sha256'][:16]}`, {ctx['isolation']})."]
    if rec["problem"]:
        notes.append(f"**Not graded:** {rec['problem']}")
    return (f"# {rec['id']}: {rec['points']:g} / {rec['max_points']:g} points\n\n"
            + "\n".join(rows) + "\n\n" + "\n\n".join(notes) + "\n")


def failed_tests(book: dict) -> Counter:
    counts: Counter = Counter()
    for rec in book["learners"]:
        for s in rec["steps"]:
            if s["status"] in ("not started", "not submitted", "not graded"):
                continue  # an untouched stub fails everything: that says nothing
            for t in s["tests"]:
                if t["outcome"] not in ("passed", "skipped"):
                    counts[f"{s['id']}::{t['name']}"] += 1
    return counts


def to_review(book: dict) -> list[tuple[str, str, str]]:
    return [(rec["id"], s["id"], s.get("verdict") or s["status"]) for rec in book["learners"]
            for s in rec["steps"] if s["status"] in REVIEW]


def summary_markdown(book: dict) -> str:
    ctx, recs = book["context"], book["learners"]
    lines = [f"# Gradebook: {len(recs)} learners, {len(ctx['steps'])} steps", "",
             f"Graded {ctx['graded_at']} from `{ctx['instructor_checkout']}` (trusted tree "
             f"`{ctx['trusted_sha256'][:16]}`, {ctx['isolation']})"
             + (f", deadline {ctx['deadline']}" if ctx["deadline"] else "") + ".", "",
             *([HASH_ONLY, ""] if ctx["isolation"] != "unprivileged uid per step" else []),
             "| step | max | mean | median | passed | to review |",
             "|---|---:|---:|---:|---:|---:|"]
    for sid in ctx["steps"]:
        pts = sorted(next(s for s in r["steps"] if s["id"] == sid)["points"] for r in recs)
        passed = sum(next(s for s in r["steps"] if s["id"] == sid)["status"] == "passed"
                     for r in recs)
        review = sum(1 for _, step, _ in to_review(book) if step == sid)
        mean = sum(pts) / len(pts) if pts else 0.0
        median = pts[len(pts) // 2] if pts else 0.0
        lines.append(f"| `{sid}` | {ctx['max_points'][sid]:g} | {mean:.1f} | {median:g} | "
                     f"{passed} | {review} |")
    lines += ["", "![score distribution](plots/score_distribution.png)", "",
              "## Tests failed most often", "", "| test | learners |", "|---|---:|"]
    lines += [f"| `{_cell(name)}` | {n} |" for name, n in failed_tests(book).most_common(15)]
    lines += ["", "![tests failed most often](plots/most_failed.png)", "",
              "## Integrity verdicts to review", ""]
    review = to_review(book)
    lines += (["| learner | step | verdict |", "|---|---|---|"]
              + [f"| {who} | `{sid}` | {_cell(text, 300)} |" for who, sid, text in review]
              if review else ["None."])
    lines += ["", "![integrity verdicts](plots/integrity.png)", ""]
    return "\n".join(lines)


def plots(book: dict) -> dict[str, bytes]:
    import matplotlib  # noqa: PLC0415 (only when writing a gradebook)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import matplotlib.ticker  # noqa: PLC0415

    ctx, recs = book["context"], book["learners"]
    figures = {}
    fig, ax = plt.subplots(figsize=(max(4, len(ctx["steps"]) * 0.8), 3.5))
    data = [[next(s for s in r["steps"] if s["id"] == sid)["points"]
             / (ctx["max_points"][sid] or 1) for r in recs] for sid in ctx["steps"]]
    ax.boxplot(data)
    ax.set_xticks(range(1, len(data) + 1), [sid[:3] for sid in ctx["steps"]])
    for i, values in enumerate(data, start=1):
        ax.scatter([i] * len(values), values, s=12, alpha=0.6)
    ax.set_ylabel("fraction of the step's points")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Score distribution per step")
    figures["score_distribution.png"] = _png(fig, plt)
    common = failed_tests(book).most_common(15)
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(3, len(common)) + 1))
    labels = [f"{name[:3]} {name.split('::', 1)[1]}"[:60] for name, _ in common]
    ax.barh(labels[::-1], [n for _, n in common][::-1])
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("learners failing it")
    ax.set_title("Tests failed most often" if common else "No test failed")
    figures["most_failed.png"] = _png(fig, plt)
    review = Counter(sid for _, sid, _ in to_review(book))
    fig, ax = plt.subplots(figsize=(max(4, len(ctx["steps"]) * 0.8), 3))
    ax.bar([sid[:3] for sid in ctx["steps"]], [review.get(sid, 0) for sid in ctx["steps"]])
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("verdicts to review")
    ax.set_title("Integrity / interrupted verdicts per step")
    figures["integrity.png"] = _png(fig, plt)
    return figures


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


# --- merge -----------------------------------------------------------------------------------

def read_shard(folder: Path) -> dict:
    """A shard's records, each file checked against the shard's manifest."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise GradebookError(f"{folder} has no readable manifest.json: {exc}") from exc
    records = []
    for learner in manifest["learners"]:
        rel = f"learners/{learner}.json"
        data = (folder / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest["files"].get(rel):
            raise GradebookError(f"{folder / rel} does not match the shard's manifest")
        records.append(json.loads(data))
    return {"context": manifest["context"], "learners": records}


def merge(folders: list[Path]) -> dict:
    shards = [read_shard(f) for f in folders]
    if not shards:
        raise GradebookError("no shard to merge")
    first = shards[0]["context"]
    for f, s in zip(folders, shards, strict=True):
        for key in ("trusted_sha256", "steps", "deadline", "commit"):
            if s["context"][key] != first[key]:
                raise GradebookError(f"{f} was graded with another {key} than {folders[0]}")
    learners = [r for s in shards for r in s["learners"]]
    twice = sorted(i for i, n in Counter(r["id"] for r in learners).items() if n > 1)
    if twice:
        raise GradebookError(f"learners graded in more than one shard: {', '.join(twice)}")
    context = dict(first, shard="", seconds=sum(s["context"]["seconds"] for s in shards),
                   merged_from=[s["context"]["shard"] for s in shards])
    return {"context": context, "learners": sorted(learners, key=lambda r: r["id"])}


# --- entry point -----------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a class")
    g.add_argument("sources", nargs="*", help="learners' repositories: folders or git URLs")
    g.add_argument("--roster", type=Path, help="CSV: student_id,source[,first,last,email]")
    g.add_argument("--classroom", help="a GitHub Classroom assignment id")
    g.add_argument("--api-url", default="https://api.github.com")
    g.add_argument("--git-base", default="https://github.com",
                   help="where Classroom repositories are cloned from")
    g.add_argument("--token-env", default="GITHUB_TOKEN",
                   help="the environment variable holding the instructor's token")
    when = g.add_mutually_exclusive_group()
    when.add_argument("--deadline", help="grade the last commit before this time (ISO 8601)")
    when.add_argument("--commit", help="grade this commit, tag or branch (default: HEAD)")
    g.add_argument("--steps", nargs="+", help="grade only these steps")
    g.add_argument("--hidden", type=Path, help="hidden graders to add (default: this "
                   "checkout's graders/hidden/)")
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    g.add_argument("--shard", help="I/N: grade the I-th of N slices of the class")
    g.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("merge", help="join shards into one gradebook")
    m.add_argument("shards", nargs="+", type=Path)
    m.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def roster(args) -> list[Learner]:
    learners = [Learner(_learner_id(s), s) for s in args.sources]
    if args.roster:
        learners += read_roster(args.roster)
    if args.classroom:
        if not args.token:
            raise GradebookError(f"--classroom needs a token in ${args.token_env}")
        learners += classroom_learners(args.classroom, args.token, args.api_url, args.git_base)
    if not learners:
        raise GradebookError("no learner to grade: give sources, --roster or --classroom")
    return shard(learners, args.shard)


def cmd_grade(args) -> int:
    args.token = os.environ.pop(args.token_env, None)  # never in a grading process's env
    if args.deadline:
        try:
            datetime.fromisoformat(args.deadline.replace("Z", "+00:00"))
        except ValueError as exc:
            raise GradebookError(f"--deadline {args.deadline!r} is not an ISO 8601 time, "
                                 "e.g. 2026-12-01T23:59:00Z") from exc
    steps = [find_step(s) for s in args.steps] if args.steps else \
        [s for s in load_steps() if s.solution.exists() and s.public_graders.exists()]
    book = grade_class(roster(args), steps, args)
    write_gradebook(book, args.out)
    if book["context"]["isolation"] != "unprivileged uid per step":
        print(HASH_ONLY.replace("**", ""), file=sys.stderr)
    print(summary_markdown(book))
    print(f"gradebook in {args.out}/ (grades.csv, summary.md, learners/, plots/)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "merge":
            book = merge(args.shards)
            write_gradebook(book, args.out)
            print(summary_markdown(book))
            return 0
        return cmd_grade(args)
    except GradebookError as exc:
        print(f"gradebook: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

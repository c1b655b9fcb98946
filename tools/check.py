"""The learner's loop: `python tools/check.py --help` for the commands.

This file only parses the command line and hands each command to its module in tools/cli/
(see tools/cli/__init__.py for which module does what).
"""

from __future__ import annotations

import faulthandler
import signal
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.cli.args import CMD, COMMANDS, parse_args
from tools.cli.output import Out, detach_stdout
from tools.course import load_steps


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` prints where a stuck check.py is
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    out = Out()
    try:
        return dispatch(parse_args(argv), out)
    except KeyboardInterrupt:
        out.clear_status()
        out("\nInterrupted.")
        return 130
    except BrokenPipeError:  # the reader went away (`check.py list | head`): end quietly
        detach_stdout(sys.stdout)
        return 0


def dispatch(args, out: Out) -> int:
    from tools.cli import commands, hint, reports, session, watch

    try:
        steps = load_steps()
    except (OSError, ValueError, KeyError) as exc:
        out(f"Cannot read the course manifest tools/curriculum.toml: {exc}")
        return 2
    if args.impl not in ("exercises", "solutions") and not Path(args.impl).exists():
        out(f"--impl {args.impl}: no such file or folder")
        return 2
    if Path(args.impl).is_file() and (args.all or args.command in COMMANDS or not args.command):
        out(f"--impl {args.impl} is one module: name the step it implements, e.g. "
            f"{CMD} s03 --impl {args.impl}")
        return 2
    cmd = args.command
    if cmd in COMMANDS and cmd not in ("hint", "reset") and args.target:
        out(f"{cmd} takes no step; see {CMD} --help")
        return 2
    if cmd not in COMMANDS and cmd is not None and args.target:
        out(f"unexpected argument {args.target!r}; see {CMD} --help")
        return 2
    if args.shown and (cmd != "hint" or args.all):
        out(f"--shown goes with hint alone: {CMD} hint [STEP] --shown")
        return 2
    g = session.Grader(steps, args.impl, out)
    reports_to = {"junit": args.junit, "json_path": args.json, "markdown": args.markdown}
    try:
        if cmd in ("list", "hint", "reset"):
            session.start_warm_server()  # so the next verdict need not wait for the preload
        if cmd == "hint":
            return hint.cmd_hint(g, args.target,
                                 "all" if args.all else "shown" if args.shown else "next")
        if cmd == "list":
            return commands.cmd_list(g)
        if cmd == "reset":
            return commands.cmd_reset(g, args.target)
        if cmd == "watch":
            return watch.cmd_watch(g)
        if args.all:
            if cmd is not None:
                out(f"--all grades every step; leave out {cmd!r}")
                return 2
            code, results = reports.cmd_all(g)
            reports.write_reports(results, args.impl, **reports_to)
            return code
        code = commands.cmd_check(g, cmd)
        if any(reports_to.values()):
            from tools.cli.verdict import run_status

            graded = [(s, r, run_status(r)) for s in steps if (r := g.runs.get(s.id))]
            reports.write_reports(graded, args.impl, **reports_to)
        return code
    except KeyError as exc:  # an unknown step name
        out(exc.args[0] if exc.args else str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())

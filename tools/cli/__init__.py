"""The learner's command line, `python tools/check.py`, one job per module.

    args.py       the command line: usage text and argument parsing
    output.py     the terminal: marks, colours, wrapping, a status line, a closed pipe
    verdict.py    a grading run in plain words: what is left to do, what is wrong, the score
    install.py    the one pip command that installs a missing extra
    session.py    grading a step and keeping progress in step with the result
    commands.py   check (grade the current step), list, reset, and what follows a pass
    hint.py       hint: one more hint, the ones shown so far, or all of them
    watch.py      watch: re-grade on every save
    reports.py    --all and the JUnit / JSON / Markdown reports

tools/check.py parses the arguments and hands each command to its module.
"""

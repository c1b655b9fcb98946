"""nbgrader configuration of the ml-to-llm course (written by tools/nbgrader_export.py).

Run every nbgrader command from this folder, the course root: nbgrader reads this file from the
current directory only, and from anywhere else it would silently use an empty gradebook. The
root and the database below are absolute, so scripts may also pass them explicitly:

    nbgrader autograde s00_toolbox --CourseDirectory.root="$PWD" \
        --CourseDirectory.db_url="sqlite:///$PWD/gradebook.db"

Edit freely (the export never overwrites this file unless given --force-config).
"""

import os
import sys

c = get_config()  # noqa: F821  (nbgrader defines get_config when it loads this file)

_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "ml-to-llm"
c.CourseDirectory.root = _ROOT
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_ROOT, "gradebook.db")
# Never release or collect caches, lab records or checkpoints.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "results", ".hypothesis"]

# What replaces a solution region in the release (nbgrader's default, stated here on purpose:
# the notebooks keep each region's TODO as a comment above it).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Seconds per cell while autograding (nbgrader's default). Every grade cell runs one grader
# test, which takes well under a second or two on a correct solution; a learner's infinite
# loop is interrupted here and that test scores 0.
c.Execute.timeout = 30

# Lab cells grade nothing, so `nbgrader autograde` skips them (each shows a one-line note),
# which halves the time a class takes to grade. Export ML2LLM_SKIP_LABS=0 to run them too.
if "autograde" in sys.argv[1:2]:
    os.environ.setdefault("ML2LLM_SKIP_LABS", "1")

# For nbgrader's exchange (release_assignment / collect), uncomment and set:
# c.Exchange.root = "/srv/nbgrader/exchange"

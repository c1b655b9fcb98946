"""The hints store: one encoded file per step, so opening the course files spoils nothing.

A step's hints are revealed one at a time by ``python tools/check.py hint``. They used to sit
as plain text in ``tools/curriculum.toml``, which learners open to see the course; now the
manifest only points at a file (``hints_file = "hintstore/<id>.txt"``, relative to ``tools/``)
whose body is the hints as a JSON list of strings, zlib-compressed and base64-encoded. That
is no secret from a determined reader (this module decodes it), only a guard against reading
them by accident.

Authors write hints inline while a step is being built (``hints = ["...", ...]`` in its
``[[step]]`` table) and move them into the store before the step ships:

    python -m tools.hints pack            move every inline `hints = [...]` into tools/hintstore/
    python -m tools.hints unpack s04      put s04's hints back inline, to edit them
    python -m tools.hints show s04        print s04's hints (authors only: it spoils them)
    python -m tools.hints check           exit 1 if a step has inline hints or none at all

tools/tests/test_sync.py runs `check`, so a step cannot ship with inline or missing hints.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import textwrap
import tomllib
import zlib
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOOLS = Path(__file__).resolve().parent
MANIFEST = TOOLS / "curriculum.toml"
STORE = TOOLS / "hintstore"
HEADER = ("# Hints for {id}, encoded so that opening this file reveals none of them.\n"
          "# `python tools/check.py hint {short}` shows them one at a time.\n")


class HintsError(ValueError):
    """A hints file that cannot be read back, or a manifest that cannot be rewritten."""


def encode(step_id: str, hints: list[str]) -> str:
    """The text of a store file holding `hints`."""
    if not all(isinstance(h, str) and h.strip() for h in hints):
        raise HintsError(f"{step_id}: every hint must be a non-empty string")
    payload = base64.b64encode(zlib.compress(json.dumps(hints).encode("utf-8"), 9)).decode()
    return HEADER.format(id=step_id, short=step_id[:3]) + "\n".join(textwrap.wrap(payload, 76)) \
        + "\n"


def decode(text: str) -> list[str]:
    body = "".join(line.strip() for line in text.splitlines() if not line.startswith("#"))
    try:
        hints = json.loads(zlib.decompress(base64.b64decode(body, validate=True)))
    except (ValueError, zlib.error) as exc:
        raise HintsError(f"not a hints file ({exc})") from None
    if not isinstance(hints, list) or not all(isinstance(h, str) for h in hints):
        raise HintsError("not a hints file (no list of strings inside)")
    return hints


def read(hints_file: str, tools_dir: Path = TOOLS) -> tuple[str, ...]:
    """The hints in `hints_file` (a path relative to tools/), as the manifest gives it."""
    path = tools_dir / hints_file
    try:
        return tuple(decode(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise HintsError(f"cannot read the hints file tools/{hints_file}: {exc}") from None
    except HintsError as exc:
        raise HintsError(f"tools/{hints_file}: {exc}") from None


# --- rewriting the manifest --------------------------------------------------------------------

def _blocks(text: str) -> list[str]:
    return re.split(r"(?m)^(?=\[\[step\]\]\s*$)", text)


def _step_id(block: str) -> str | None:
    m = re.search(r'(?m)^id\s*=\s*"([^"]+)"', block)
    return m.group(1) if m else None


def _inline_span(block: str) -> tuple[int, int, list[str]] | None:
    """(start, end, hints) of the `hints = [...]` entry of one [[step]] block, if any."""
    m = re.search(r"(?m)^hints\s*=\s*\[", block)
    if m is None:
        return None
    lines_end = [i + 1 for i, ch in enumerate(block) if ch == "\n" and i >= m.start()]
    for end in lines_end + [len(block)]:
        try:
            value = tomllib.loads(block[m.start():end])["hints"]
        except tomllib.TOMLDecodeError:
            continue
        return m.start(), end, list(value)
    raise HintsError(f"{_step_id(block)}: the inline hints list never closes")


def pack(manifest: Path = MANIFEST, store: Path = STORE) -> list[str]:
    """Move every inline hints list into the store; the ids of the steps moved."""
    text = manifest.read_text(encoding="utf-8")
    out, moved = [], []
    for block in _blocks(text):
        span, step_id = _inline_span(block), _step_id(block)
        if span is None or step_id is None:
            out.append(block)
            continue
        start, end, hints = span
        store.mkdir(parents=True, exist_ok=True)
        (store / f"{step_id}.txt").write_text(encode(step_id, hints), encoding="utf-8")
        rel = (store / f"{step_id}.txt").relative_to(manifest.parent).as_posix()
        out.append(block[:start] + f'hints_file = "{rel}"\n' + block[end:])
        moved.append(step_id)
    new = "".join(out)
    tomllib.loads(new)  # never write a manifest that no longer parses
    manifest.write_text(new, encoding="utf-8")
    return moved


def unpack(step_id: str, manifest: Path = MANIFEST) -> None:
    """Put one step's stored hints back inline (to edit them; `pack` again when done)."""
    text = manifest.read_text(encoding="utf-8")
    out, done = [], False
    for block in _blocks(text):
        m = re.search(r'(?m)^hints_file\s*=\s*"([^"]+)"\n?', block)
        if _step_id(block) != step_id or m is None:
            out.append(block)
            continue
        hints = read(m.group(1), manifest.parent)
        inline = "hints = [\n" + "".join(f"    {json.dumps(h, ensure_ascii=False)},\n"
                                        for h in hints) + "]\n"
        out.append(block[:m.start()] + inline + block[m.end():])
        (manifest.parent / m.group(1)).unlink()
        done = True
    if not done:
        raise HintsError(f"{step_id} has no hints_file in {manifest.name}")
    manifest.write_text("".join(out), encoding="utf-8")


def problems(manifest: Path = MANIFEST) -> list[str]:
    """Every step whose hints are inline, missing, empty or unreadable."""
    found = []
    for raw in tomllib.loads(manifest.read_text(encoding="utf-8")).get("step", []):
        sid = raw.get("id", "?")
        if "hints" in raw:
            found.append(f"{sid}: hints are inline in {manifest.name} (readable by anyone "
                         "opening it): run python -m tools.hints pack")
        if "hints_file" not in raw:
            if "hints" not in raw:
                found.append(f"{sid}: no hints")
            continue
        try:
            if not read(raw["hints_file"], manifest.parent):
                found.append(f"{sid}: its hints file holds no hints")
        except HintsError as exc:
            found.append(f"{sid}: {exc}")
    return found


def main(argv: list[str]) -> int:
    from tools.course import find_step, load_steps

    cmd, *rest = argv or ["--help"]
    if cmd == "pack" and not rest:
        moved = pack()
        print(f"moved the hints of {', '.join(moved)} into tools/hintstore/" if moved
              else "no inline hints to move")
        return 0
    if cmd in ("unpack", "show") and len(rest) == 1:
        step = find_step(rest[0], load_steps())
        if cmd == "unpack":
            unpack(step.id)
            print(f"{step.id}'s hints are inline in tools/curriculum.toml again; "
                  "python -m tools.hints pack when done")
        for i, hint in enumerate(step.hints if cmd == "show" else (), 1):
            print(f"{i}. {hint}")
        return 0
    if cmd == "check" and not rest:
        found = problems()
        print("\n".join(found) if found else "every step's hints are in the store")
        return 1 if found else 0
    print("\n\n".join(__doc__.split("\n\n")[2:4]))
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

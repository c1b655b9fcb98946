"""Fetch the data sets listed in datasets/manifest.toml, verified by size and sha256.

    python tools/fetch_data.py --list
    python tools/fetch_data.py tinyshakespeare
    python tools/fetch_data.py tinyshakespeare --from path/to/tinyshakespeare.txt

Files land in datasets/cache/ (or $ML2LLM_DATA_DIR). A file that is already there and verifies
is not fetched again. A download is written to a temporary file and only moved into place once
its checksum matches, so an interrupted or corrupted download never looks like data.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.course import ROOT

MANIFEST = ROOT / "datasets" / "manifest.toml"


class DataError(Exception):
    """A data set that cannot be found, fetched or verified; the message says what to do."""


@dataclass(frozen=True)
class Dataset:
    name: str
    file: str
    url: str
    sha256: str
    size: int
    licence: str


def datasets() -> dict[str, Dataset]:
    with open(MANIFEST, "rb") as f:
        raw = tomllib.load(f)["dataset"]
    return {d["name"]: Dataset(d["name"], d["file"], d["url"], d["sha256"], int(d["size"]),
                               d["licence"]) for d in raw}


def cache_dir() -> Path:
    return Path(os.environ.get("ML2LLM_DATA_DIR", ROOT / "datasets" / "cache"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, ds: Dataset) -> None:
    size = path.stat().st_size
    if size != ds.size:
        raise DataError(f"{path}: {size} bytes, expected {ds.size} for {ds.name}")
    digest = sha256_of(path)
    if digest != ds.sha256:
        raise DataError(f"{path}: sha256 {digest[:16]}..., expected {ds.sha256[:16]}... "
                        f"for {ds.name}: the file is corrupt or a different version")


def fetch(name: str, source: Path | None = None, timeout: float = 60) -> Path:
    """Path of the verified local file for `name`, copying or downloading it if needed."""
    table = datasets()
    if name not in table:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(table))}")
    ds = table[name]
    target = cache_dir() / ds.file
    if target.exists():
        try:
            verify(target, ds)
            return target
        except DataError:
            target.unlink()  # stale or corrupt: fetch again
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            if source is not None:
                with open(source, "rb") as f:
                    shutil.copyfileobj(f, tmp)
            else:
                with urllib.request.urlopen(ds.url, timeout=timeout) as resp:
                    shutil.copyfileobj(resp, tmp)
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            where = source or ds.url
            raise DataError(f"could not read {where}: {exc}. Offline? Download {ds.url} "
                            f"elsewhere and run: python tools/fetch_data.py {name} --from FILE"
                            ) from exc
    try:
        verify(tmp_path, ds)
    except DataError:
        tmp_path.unlink(missing_ok=True)
        raise
    os.replace(tmp_path, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch and verify the course's data sets.")
    parser.add_argument("names", nargs="*", help="data sets to fetch (default: all)")
    parser.add_argument("--from", dest="source", type=Path, help="use this local file")
    parser.add_argument("--list", action="store_true", help="list the data sets")
    args = parser.parse_args(argv)
    table = datasets()
    if args.list:
        for ds in table.values():
            state = "cached" if (cache_dir() / ds.file).exists() else "not fetched"
            print(f"{ds.name:18} {ds.size:>10,} bytes  {state:12} {ds.url}")
        return 0
    names = args.names or list(table)
    if args.source and len(names) != 1:
        parser.error("--from takes one data set name")
    try:
        for name in names:
            path = fetch(name, args.source)
            print(f"{name}: verified {path}")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

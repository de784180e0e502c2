"""Files that directory ingestion passes over, so the summary can name them.

:func:`graphmem.ingest.readers.expand_paths` takes only the readable types from a
folder; this lists the rest (hidden files and folders stay out of both lists, as
they are never meant: ``.git``, ``.DS_Store``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from graphmem.ingest.readers import SUFFIXES

#: how many left-out files a summary names one by one (the rest are counted)
NAMED = 20


def unsupported_files(paths: Iterable[str | Path], suffixes: set[str] = SUFFIXES) -> list[str]:
    """Files inside the directories among ``paths`` whose type is not one of ``suffixes``,
    sorted (absolute paths, as sources are named). Files named directly and globs are not
    listed: a file named directly with another type is an error of its own."""
    left: set[str] = set()
    for raw in paths:
        folder = Path(raw)
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.suffix.lower() in suffixes or any(p.startswith(".") for p in path.relative_to(folder).parts):
                continue
            if path.is_file():
                left.add(str(path.resolve()))
    return sorted(left)


def left_out_lines(files: list[str], suffixes: set[str] = SUFFIXES) -> list[str]:
    """The lines that tell the user which files were left out (at most :data:`NAMED` by name)."""
    if not files:
        return []
    kinds = ", ".join(sorted(suffixes))
    lines = [f"left out {len(files)} file(s) of a type graphmem does not read (it reads {kinds}):"]
    lines += [f"  {name}" for name in files[:NAMED]]
    if len(files) > NAMED:
        lines.append(f"  ... and {len(files) - NAMED} more")
    return lines

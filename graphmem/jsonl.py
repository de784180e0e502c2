"""Reading JSON Lines files line by line, with errors that name the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphmem.errors import InputError


def json_lines(path: Path, *, bom: bool = False) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of ``path``, streamed (an export
    may be larger than memory). Each line is decoded on its own, so text that is not
    UTF-8 is reported at its line; ``bom``: a leading byte-order mark is allowed."""
    try:
        # closed by the `with` below; opened apart so that only a failure to open reads "cannot read"
        handle = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if bom and number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text", path=path, line=number) from None
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"invalid JSON: {exc.msg}", path=path, line=number) from None

"""Readers: files on disk -> :class:`Document` records, with errors that name
the file and line at fault.

Supported: ``.txt``, ``.md`` / ``.markdown``, ``.jsonl`` (one JSON object per
line with a ``text`` field and optional ``title``, ``id``, ``date``),
directories (recursive) and glob patterns.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from graphmem.errors import InputError
from graphmem.jsonl import json_lines
from graphmem.model import content_hash
from graphmem.timeutil import ensure_utc

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
SUFFIXES = TEXT_SUFFIXES | JSONL_SUFFIXES


@dataclass
class Document:
    """One source to ingest: a text file or one JSONL record."""

    name: str  # unique source name: the file path, or path#id for a JSONL record
    text: str
    title: str = ""
    date: datetime | None = None
    uri: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        stamp = self.date.isoformat() if self.date else ""
        return content_hash(f"{self.title}\x1f{stamp}\x1f{self.text}")


def expand_paths(paths: Iterable[str | Path], suffixes: set[str] = SUFFIXES) -> list[Path]:
    """Files named by ``paths`` (files, directories walked recursively, globs), sorted, deduplicated.

    Inside directories only files with one of ``suffixes`` are taken."""
    found: list[Path] = []
    for raw in paths:
        text = str(raw)
        path = Path(text)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError("no file matches this pattern", path=text)
            found += matches
        else:
            raise InputError("no such file or directory", path=text)
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def _read_text(path: Path, max_bytes: int) -> str:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(
                f"file is {size} bytes, over the {max_bytes}-byte limit (GRAPHMEM_MAX_FILE_BYTES)", path=path
            )
        data = path.read_bytes()
    except PermissionError:
        raise InputError("permission denied: cannot read this file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if b"\x00" in data[:8192]:
        raise InputError("looks like a binary file (contains NUL bytes); graphmem reads UTF-8 text", path=path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 (byte {exc.start}); convert it to UTF-8 first", path=path, line=line
        ) from None
    _refuse_nul(text, path)
    return text


def _refuse_nul(text: str, path: Path, line: int | None = None, field: str | None = None) -> None:
    """NUL characters end strings in the store's C code: refuse them rather than truncate."""
    at = text.find("\x00")
    if at >= 0:
        where = line if line is not None else text.count("\n", 0, at) + 1
        raise InputError("contains a NUL character; graphmem reads text", path=path, line=where, field=field)


def _title_of(path: Path, text: str) -> str:
    if path.suffix.lower() in {".md", ".markdown"}:
        for line in text.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
            if line.strip():
                break
    return path.stem.replace("_", " ").replace("-", " ")


def _parse_date(value: object, path: Path, line: int) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InputError("must be an ISO date string like 2023-05-01", path=path, line=line, field="date")
    try:
        return ensure_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise InputError(f"{value!r} is not an ISO date like 2023-05-01", path=path, line=line, field="date") from None


def read_jsonl(path: Path, text: str, errors: list[InputError] | None = None) -> list[Document]:
    """The records of a JSONL file. With ``errors`` (a list), a bad record is
    appended to it and skipped instead of raised."""
    documents: list[Document] = []
    seen_ids: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append(_jsonl_record(path, number, line, seen_ids))
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)
    if not documents and errors is None:
        raise InputError("no records (empty JSONL file)", path=path)
    return documents


def jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, dict) for every non-blank line of a JSONL file, with errors naming the line."""
    for number, record in json_lines(path, bom=True):
        if not isinstance(record, dict):
            raise InputError("each line must be a JSON object", path=path, line=number)
        yield number, record


def _jsonl_record(path: Path, number: int, line: str, seen_ids: dict[str, int]) -> Document:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise InputError(f"invalid JSON: {reason}", path=path, line=number) from None
    if not isinstance(record, dict):
        raise InputError("each line must be a JSON object", path=path, line=number)
    body = record.get("text")
    if not isinstance(body, str) or not body.strip():
        raise InputError("missing or empty (a non-empty string is required)", path=path, line=number, field="text")
    _refuse_nul(body, path, number, "text")
    title = record.get("title") or ""
    if not isinstance(title, str):
        raise InputError("must be a string", path=path, line=number, field="title")
    _refuse_nul(title, path, number, "title")
    raw_id = record.get("id")
    if raw_id is not None and not isinstance(raw_id, (str, int)):
        raise InputError("must be a string or an integer", path=path, line=number, field="id")
    record_id = str(raw_id) if raw_id is not None else f"L{number}"
    _refuse_nul(record_id, path, number, "id")
    if record_id in seen_ids:
        raise InputError(
            f"duplicate id {record_id!r} (first on line {seen_ids[record_id]})", path=path, line=number, field="id"
        )
    date = _parse_date(record.get("date"), path, number)
    seen_ids[record_id] = number
    return Document(
        name=f"{path}#{record_id}",
        text=body,
        title=title,
        date=date,
        uri=path.as_uri(),
        metadata={"id": record_id, "line": str(number)},
    )


def read_documents(
    paths: Iterable[str | Path],
    max_file_bytes: int = 200 * 1024 * 1024,
    errors: list[InputError] | None = None,
    max_errors: int = 0,
) -> list[Document]:
    """Read every document named by ``paths``.

    Strict by default: raises :class:`InputError` on the first bad file or
    record. Lenient when ``errors`` is a list: bad files and JSONL records are
    skipped and collected there, until more than ``max_errors`` are found,
    which raises (so a corpus that is mostly garbage is not half-ingested).
    """
    documents: list[Document] = []
    for path in expand_paths(paths):
        try:
            documents += _read_file(path, max_file_bytes, errors)
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)
        if errors is not None and len(errors) > max_errors:
            raise InputError(f"more than {max_errors} bad records or files (--max-errors); the last: {errors[-1]}")
    return documents


def _read_file(path: Path, max_file_bytes: int, errors: list[InputError] | None) -> list[Document]:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"unsupported file type {suffix or '(none)'!r}; graphmem reads {', '.join(sorted(SUFFIXES))}", path=path
        )
    text = _read_text(path, max_file_bytes)
    if suffix in JSONL_SUFFIXES:
        return read_jsonl(path, text, errors)
    if not text.strip():
        raise InputError("file is empty", path=path)
    return [Document(name=str(path), text=text, title=_title_of(path, text), uri=path.as_uri())]

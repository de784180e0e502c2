"""Moving a whole graph between stores: JSONL export/import, GraphML export,
and resumable migration (e.g. embedded FalkorDB -> Neo4j).

Everything is read and written with the named queries of
``cypher/transfer.cypher`` (``count_*``, ``export_*``, ``import_*``) plus the
dialect's ``*_embeddings_set`` queries, so any two stores can exchange
graphs. Pages are read in key order (keyset pagination on uuids), and every
write MERGEs on its key, so a page may be written twice without harm: that
is what makes an interrupted migration resumable from its checkpoint.

The JSONL format, one JSON object per line::

    {"type": "header", "format": "graphmem", "version": 1, "dim": 384}
    {"type": "node", "label": "Episode", "key": "<uuid>", "properties": {...}, "embedding": [...]}
    {"type": "relationship", "label": "FACT", "key": "<uuid>", "start": "<uuid>", "end": "<uuid>",
     "properties": {...}, "embedding": [...]}

Nodes come before the relationships that use them. ``key`` is the node's
uuid (``group_id`` for the per-group ``GraphMeta`` node), the FACT's uuid, or
``start>end`` for the other relationship types.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from graphmem.errors import InputError, StoreError
from graphmem.jsonl import json_lines
from graphmem.store.base import GROUP_ID, GraphStore, Row
from graphmem.store.owners import now_ms

FORMAT = "graphmem"
VERSION = 1
PAGE = 1000

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Kind:
    """One kind of graph element and how it moves."""

    name: str  # suffix of its count_/export_/import_ queries
    type: str  # 'node' or 'relationship'
    label: str  # node label or relationship type
    start: str | None = None  # relationship endpoints' labels
    end: str | None = None
    embeddings: str | None = None  # the dialect query that sets its vectors
    keyed: bool = True  # False: relationships identified by their endpoints


#: In dependency order: nodes first, relationships after their endpoints.
KINDS: tuple[Kind, ...] = (
    Kind("sources", "node", "Source"),
    Kind("episodes", "node", "Episode", embeddings="episode_embeddings_set"),
    Kind("entities", "node", "Entity", embeddings="entity_embeddings_set"),
    Kind("meta", "node", "GraphMeta"),
    Kind("has_episode", "relationship", "HAS_EPISODE", "Source", "Episode", keyed=False),
    Kind("next", "relationship", "NEXT", "Episode", "Episode", keyed=False),
    Kind("mentions", "relationship", "MENTIONS", "Episode", "Entity", keyed=False),
    Kind("facts", "relationship", "FACT", "Entity", "Entity", embeddings="fact_embeddings_set"),
    Kind("synonyms", "relationship", "SYNONYM", "Entity", "Entity", keyed=False),
)
BY_LABEL = {(k.type, k.label): k for k in KINDS}

Record = dict[str, Any]


class Queries(Protocol):
    """What reading and writing records needs of a store: a :class:`GraphStore`, or the
    one-graph view of an old FalkorDB store that is being split into one graph per group."""

    def groups(self) -> list[str]: ...

    def run(self, query: str, /, **params: Any) -> list[Row]: ...

    def run_rows(self, query: str, rows: Sequence[Row], /, batch_size: int = 500, **params: Any) -> None: ...


# -- reading a store ---------------------------------------------------------------
def _groups(store: Queries, group_id: str | None) -> list[str]:
    return [group_id] if group_id is not None else store.groups()


def count(store: Queries, kind: Kind, group_id: str | None = None) -> int:
    """How many elements of ``kind`` the store holds (in every group unless ``group_id``)."""
    total = 0
    for group in _groups(store, group_id):
        rows = store.run(f"count_{kind.name}", group_id=group)
        total += int(rows[0]["n"]) if rows else 0
    return total


def counts(store: Queries, group_id: str | None = None) -> dict[str, int]:
    """How many elements of each kind ``store`` holds (all groups unless ``group_id``)."""
    return {kind.name: count(store, kind, group_id) for kind in KINDS}


def pages(
    store: Queries, kind: Kind, *, group_id: str, after: str = "", page: int = PAGE
) -> Iterator[tuple[str, list[Record]]]:
    """``(last_key, records)`` pages of ``kind`` in ``group_id``, in key order, starting
    after ``after``. Resuming from a page's ``last_key`` yields exactly the pages that
    follow it.
    """
    while True:
        rows = store.run(f"export_{kind.name}", group_id=group_id, after=after, limit=page)
        if not rows:
            return
        records = [_record(kind, row) for row in rows if kind.type == "node" or row.get("end") is not None]
        last = max(row["key"] for row in rows)
        distinct = len({row["key"] for row in rows})
        yield last, records
        if distinct < page:
            return
        after = last


def _record(kind: Kind, row: dict[str, Any]) -> Record:
    props = dict(row.get("props") or {})
    embedding = props.pop("embedding", None)
    record: Record = {"type": kind.type, "label": kind.label}
    if kind.type == "node":
        record["key"] = row["key"]
    else:
        start = row.get("start") or row["key"]
        record.update(key=row["key"] if kind.keyed else f"{start}>{row['end']}", start=start, end=row["end"])
    record["properties"] = props
    if embedding is not None:
        record["embedding"] = [float(x) for x in embedding]
    return record


def records(store: Queries, group_id: str | None = None, page: int = PAGE) -> Iterator[Record]:
    """Every element of the store (or one group) as export records: group by group,
    each group's nodes before its relationships."""
    for group in _groups(store, group_id):
        for kind in KINDS:
            for _, chunk in pages(store, kind, group_id=group, page=page):
                yield from chunk


def vector_dim(store: Queries, group_id: str | None = None) -> int | None:
    """The embedding size stored in ``store`` (None when nothing has a vector)."""
    for group in _groups(store, group_id):
        for kind in KINDS:
            if kind.embeddings is None:
                continue
            for _, chunk in pages(store, kind, group_id=group, page=50):
                for record in chunk:
                    if record.get("embedding"):
                        return len(record["embedding"])
                break
    return None


# -- writing a store -------------------------------------------------------------------
def write(store: Queries, kind: Kind, chunk: Sequence[Record], group_id: str, batch_size: int = 500) -> None:
    """MERGE ``chunk`` (records of ``kind``, all of ``group_id``) into ``store``;
    replaying it is harmless."""
    if not chunk:
        return
    rows = [{"key": r["key"], "start": r.get("start"), "end": r.get("end"), "props": r["properties"]} for r in chunk]
    if kind.type == "node":
        rows = [{"key": r["key"], "props": r["props"]} for r in rows]
    store.run_rows(f"import_{kind.name}", rows, batch_size, group_id=group_id)
    if kind.embeddings is not None:
        vectors = [
            {"uuid": r["key"], "subject": r.get("start"), "embedding": np.asarray(r["embedding"], dtype=np.float32)}
            for r in chunk
            if r.get("embedding")
        ]
        if kind.type == "node":
            vectors = [{"uuid": v["uuid"], "embedding": v["embedding"]} for v in vectors]
        if vectors:
            store.run_rows(kind.embeddings, vectors, max(1, batch_size // 4), group_id=group_id)


def copy_group(
    source: Queries,
    target: Queries,
    group_id: str,
    *,
    batch_size: int = 500,
    page: int = PAGE,
    progress: Progress | None = None,
) -> None:
    """Copy one group from ``source`` to ``target`` (MERGEs: safe to repeat)."""
    for kind in KINDS:
        for _, chunk in pages(source, kind, group_id=group_id, page=page):
            write(target, kind, chunk, group_id, batch_size)
            if progress:
                progress(len(chunk))


# -- JSONL ---------------------------------------------------------------------------------
def export_jsonl(
    store: GraphStore, path: str | Path, *, group_id: str | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Write the store (or one group) to ``path`` as JSONL; returns counts per kind.

    Written to a temporary file first, so a failed export leaves no half file.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    written = {kind.name: 0 for kind in KINDS}
    dim = vector_dim(store)
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(
            json.dumps({"type": "header", "format": FORMAT, "version": VERSION, "dim": dim, "group_id": group_id})
            + "\n"
        )
        for group in _groups(store, group_id):
            for kind in KINDS:
                for _, chunk in pages(store, kind, group_id=group):
                    for record in chunk:
                        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                    written[kind.name] += len(chunk)
                    if progress:
                        progress(len(chunk))
    tmp.replace(path)
    return written


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


def _check_record(record: Any, path: Path, line: int, nodes: set[tuple[str, str]], dim: list[int | None]) -> Kind:
    """Validate one JSONL record; returns its kind. Raises InputError naming line and field."""
    if not isinstance(record, dict):
        raise InputError("expected a JSON object", path=path, line=line)
    kind = BY_LABEL.get((str(record.get("type")), str(record.get("label"))))
    if kind is None:
        if record.get("type") not in {"node", "relationship"}:
            raise InputError(
                f"must be 'node' or 'relationship', got {record.get('type')!r}", path=path, line=line, field="type"
            )
        labels = sorted(k.label for k in KINDS if k.type == record["type"])
        raise InputError(
            f"unknown {record['type']} label {record.get('label')!r} (one of {', '.join(labels)})",
            path=path,
            line=line,
            field="label",
        )
    if not isinstance(record.get("key"), str) or not record["key"]:
        raise InputError("must be a non-empty string", path=path, line=line, field="key")
    props = record.get("properties")
    if not isinstance(props, dict):
        raise InputError("must be an object", path=path, line=line, field="properties")
    for name, value in props.items():
        ok = _is_scalar(value) or (isinstance(value, list) and all(_is_scalar(v) and v is not None for v in value))
        if not ok:
            raise InputError(
                "property values must be strings, numbers, booleans or lists of them",
                path=path,
                line=line,
                field=f"properties.{name}",
            )
    if "embedding" in record:
        vector = record["embedding"]
        if (
            not isinstance(vector, list)
            or not vector
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector)
        ):
            raise InputError("must be a non-empty list of finite numbers", path=path, line=line, field="embedding")
        if kind.embeddings is None:
            raise InputError(f"{kind.label} elements carry no embedding", path=path, line=line, field="embedding")
        if dim[0] is None:
            dim[0] = len(vector)
        elif len(vector) != dim[0]:
            raise InputError(
                f"has {len(vector)} numbers, earlier embeddings {dim[0]}", path=path, line=line, field="embedding"
            )
    if kind.type == "node":
        nodes.add((kind.label, record["key"]))
    else:
        for end, label in (("start", kind.start), ("end", kind.end)):
            if not isinstance(record.get(end), str):
                raise InputError("must be a string uuid", path=path, line=line, field=end)
            if (label, record[end]) not in nodes:
                raise InputError(
                    f"refers to {label} {record[end]!r}, which no earlier line defines", path=path, line=line, field=end
                )
    return kind


def read_jsonl(path: str | Path) -> tuple[dict[str, Any], int]:
    """Validate an export file completely; returns (header, number of records).

    Raises :class:`InputError` naming the line and field of the first problem.
    """
    path = Path(path)
    nodes: set[tuple[str, str]] = set()
    dim: list[int | None] = [None]
    header: dict[str, Any] | None = None
    n = 0
    for number, record in json_lines(path):
        if header is None:
            if not isinstance(record, dict) or record.get("type") != "header" or record.get("format") != FORMAT:
                raise InputError(
                    'the first line must be a graphmem export header ({"type": "header", "format": "graphmem", ...})',
                    path=path,
                    line=number,
                )
            if record.get("version") != VERSION:
                raise InputError(
                    f"unsupported export version {record.get('version')!r} (this graphmem reads {VERSION})",
                    path=path,
                    line=number,
                    field="version",
                )
            header = record
            continue
        _check_record(record, path, number, nodes, dim)
        n += 1
    if header is None:
        raise InputError("empty file: no graphmem export header", path=path)
    header = {**header, "dim": header.get("dim") or dim[0]}
    return header, n


def import_jsonl(
    store: GraphStore, path: str | Path, *, batch_size: int = 500, progress: Progress | None = None, schema: bool = True
) -> dict[str, int]:
    """Load an export into ``store``: the whole file is validated first, so a bad
    file writes nothing; records then MERGE on their keys (re-importing is harmless).
    Each record goes to its own group: a node's ``group_id`` property, a
    relationship's start node's. The imported groups get their revision bumped so
    cached projections reload. ``schema``: create the indexes first (for the
    export's vector size)."""
    path = Path(path)
    header, _ = read_jsonl(path)
    dim = int(header["dim"]) if schema and header.get("dim") else None
    loaded = {kind.name: 0 for kind in KINDS}
    group_of: dict[str, str] = {}  # node key -> its group, for the relationships that follow
    pending: dict[str, list[Record]] = {}
    current: Kind | None = None
    made: set[str] = set()

    def flush(group: str | None = None) -> None:
        for name in [group] if group is not None else list(pending):
            chunk = pending.pop(name, [])
            if current is None or not chunk:
                continue
            if dim is not None and name not in made:
                store.ensure_schema(dim, name)
                made.add(name)
            write(store, current, chunk, name, batch_size)
            loaded[current.name] += len(chunk)
            if progress:
                progress(len(chunk))

    with open(path, encoding="utf-8") as handle:
        next(handle)  # the header
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            record = json.loads(line)
            kind = BY_LABEL[(record["type"], record["label"])]
            if kind is not current:
                flush()
                current = kind
            if kind.type == "node":
                group = record["properties"].get("group_id")
                if not isinstance(group, str) or not GROUP_ID.fullmatch(group):
                    raise InputError(
                        "every node needs a valid group_id property (the group it belongs to)",
                        path=path,
                        line=number,
                        field="properties.group_id",
                    )
                group_of[record["key"]] = group
            else:
                group = group_of[record["start"]]
            pending.setdefault(group, []).append(record)
            if len(pending[group]) >= batch_size:
                flush(group)
        flush()
    for group in sorted(set(group_of.values())):
        store.run("revision_bump", group_id=group, first=now_ms())
    return loaded


# -- GraphML ---------------------------------------------------------------------------------
def export_graphml(
    store: GraphStore, path: str | Path, *, group_id: str | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Write the graph as GraphML for networkx / Gephi / yEd (export only).

    Embeddings are left out; list properties become JSON strings (GraphML has
    no list type); every node gets ``label`` (its graph label) and a readable
    ``name``. Relationship types are the edge attribute ``type``.
    """
    import networkx as nx

    graph = nx.MultiDiGraph()
    written = {kind.name: 0 for kind in KINDS}
    for group, kind in ((g, k) for g in _groups(store, group_id) for k in KINDS):
        for _, chunk in pages(store, kind, group_id=group):
            for record in chunk:
                attrs = {k: _graphml_value(v) for k, v in record["properties"].items() if v is not None}
                if kind.type == "node":
                    attrs.setdefault("name", attrs.get("title") or attrs.get("group_id") or record["key"])
                    graph.add_node(record["key"], label=kind.label, **attrs)
                else:
                    graph.add_edge(record["start"], record["end"], key=record["key"], type=kind.label, **attrs)
            written[kind.name] += len(chunk)
            if progress:
                progress(len(chunk))
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    nx.write_graphml(graph, tmp)
    tmp.replace(path)
    return written


def _graphml_value(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


# -- migration ---------------------------------------------------------------------------------
@dataclass
class Migration:
    """The outcome of :func:`migrate`: counts on both sides, per kind."""

    source: dict[str, int]
    target: dict[str, int]
    resumed: bool = False
    copied: dict[str, int] = field(default_factory=dict)

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        return {
            k: (self.source[k], self.target.get(k, 0)) for k in self.source if self.source[k] != self.target.get(k, 0)
        }


def checkpoint_path(home: str | Path, target: str) -> Path:
    """Where the progress of a migration to ``target`` (a printable URI) is kept."""
    digest = hashlib.sha1(target.encode()).hexdigest()[:12]
    return Path(home) / "migrate" / f"{digest}.json"


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def migrate(
    source: GraphStore,
    target: GraphStore,
    *,
    checkpoint: Path,
    target_name: str,
    batch_size: int = 500,
    page: int = PAGE,
    dim: int | None = None,
    restart: bool = False,
    schema: bool = True,
    on_total: Callable[[int, int], None] | None = None,
    progress: Progress | None = None,
) -> Migration:
    """Copy every group of ``source`` into ``target``, page by page, then verify counts.

    After each page is written the checkpoint file records the group, kind and last
    key, so a run that is interrupted (or fails) continues where it stopped; pages
    written twice are harmless because every write MERGEs on its key. The
    checkpoint is removed once the counts on both sides agree.
    ``on_total(total, done)`` is called once, before copying, for a progress bar.
    Raises :class:`StoreError` if the counts differ at the end.
    """
    state: dict[str, Any] = {"target": target_name, "done": [], "kind": None, "after": "", "copied": {}}
    resumed = False
    if checkpoint.exists() and not restart:
        try:
            saved = json.loads(checkpoint.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            saved = None
        if isinstance(saved, dict) and saved.get("target") == target_name:
            state, resumed = saved, True
    groups = source.groups()
    expected = counts(source)
    if on_total is not None:
        on_total(sum(expected.values()), sum(state["copied"].values()))
    dim = dim or vector_dim(source) or 384
    for group in groups:
        if schema:
            target.ensure_schema(dim, group)
        for kind in KINDS:
            step = f"{group}/{kind.name}"
            if step in state["done"]:
                continue
            after = state["after"] if state["kind"] == step else ""
            for last, chunk in pages(source, kind, group_id=group, after=after, page=page):
                write(target, kind, chunk, group, batch_size)
                state.update(kind=step, after=last)
                state["copied"][kind.name] = state["copied"].get(kind.name, 0) + len(chunk)
                _save(checkpoint, state)
                if progress:
                    progress(len(chunk))
            state["done"].append(step)
            state.update(kind=None, after="")
            _save(checkpoint, state)
        if count(
            source, BY_LABEL[("node", "GraphMeta")], group
        ):  # cached projections of the target's group must reload
            target.run("revision_bump", group_id=group, first=now_ms())
    result = Migration(
        source=expected,
        target={k: sum(count(target, kind, g) for g in groups) for k, kind in ((k.name, k) for k in KINDS)},
        resumed=resumed,
        copied=dict(state["copied"]),
    )
    if result.mismatches:
        detail = ", ".join(f"{k}: {s} in the source, {t} in the target" for k, (s, t) in result.mismatches.items())
        raise StoreError(
            f"migration finished but the counts differ ({detail}); was the target empty? "
            f"the checkpoint {checkpoint} is kept"
        )
    checkpoint.unlink(missing_ok=True)
    return result

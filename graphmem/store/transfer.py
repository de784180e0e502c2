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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from graphmem.errors import InputError, StoreError
from graphmem.jsonl import json_lines
from graphmem.store.base import GraphStore

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


# -- reading a store ---------------------------------------------------------------
def count(store: GraphStore, kind: Kind, group_id: str | None = None) -> int:
    rows = store.run(f"count_{kind.name}", group_id=group_id)
    return int(rows[0]["n"]) if rows else 0


def counts(store: GraphStore, group_id: str | None = None) -> dict[str, int]:
    """How many elements of each kind ``store`` holds (all groups unless ``group_id``)."""
    return {kind.name: count(store, kind, group_id) for kind in KINDS}


def pages(store: GraphStore, kind: Kind, *, group_id: str | None = None, after: str = "",
          page: int = PAGE) -> Iterator[tuple[str, list[Record]]]:
    """``(last_key, records)`` pages of ``kind`` in key order, starting after ``after``.

    Resuming from a page's ``last_key`` yields exactly the pages that follow it.
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


def records(store: GraphStore, group_id: str | None = None, page: int = PAGE) -> Iterator[Record]:
    """Every element of the store (or one group) as export records, nodes first."""
    for kind in KINDS:
        for _, chunk in pages(store, kind, group_id=group_id, page=page):
            yield from chunk


def vector_dim(store: GraphStore) -> int | None:
    """The embedding size stored in ``store`` (None when nothing has a vector)."""
    for kind in KINDS:
        if kind.embeddings is None:
            continue
        for _, chunk in pages(store, kind, page=50):
            for record in chunk:
                if record.get("embedding"):
                    return len(record["embedding"])
            break
    return None


# -- writing a store -------------------------------------------------------------------
def write(store: GraphStore, kind: Kind, chunk: Sequence[Record], batch_size: int = 500) -> None:
    """MERGE ``chunk`` (records of ``kind``) into ``store``; replaying it is harmless."""
    if not chunk:
        return
    rows = [{"key": r["key"], "start": r.get("start"), "end": r.get("end"), "props": r["properties"]} for r in chunk]
    if kind.type == "node":
        rows = [{"key": r["key"], "props": r["props"]} for r in rows]
    store.run_rows(f"import_{kind.name}", rows, batch_size)
    if kind.embeddings is not None:
        vectors = [{"uuid": r["key"], "subject": r.get("start"),
                    "embedding": np.asarray(r["embedding"], dtype=np.float32)}
                   for r in chunk if r.get("embedding")]
        if kind.type == "node":
            vectors = [{"uuid": v["uuid"], "embedding": v["embedding"]} for v in vectors]
        if vectors:
            store.run_rows(kind.embeddings, vectors, max(1, batch_size // 4))


# -- JSONL ---------------------------------------------------------------------------------
def export_jsonl(store: GraphStore, path: str | Path, *, group_id: str | None = None,
                 progress: Progress | None = None) -> dict[str, int]:
    """Write the store (or one group) to ``path`` as JSONL; returns counts per kind.

    Written to a temporary file first, so a failed export leaves no half file.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    written = {kind.name: 0 for kind in KINDS}
    dim = vector_dim(store)
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "header", "format": FORMAT, "version": VERSION, "dim": dim,
                              "group_id": group_id}) + "\n")
        for kind in KINDS:
            for _, chunk in pages(store, kind, group_id=group_id):
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
    kind = BY_LABEL.get((record.get("type"), record.get("label")))
    if kind is None:
        if record.get("type") not in {"node", "relationship"}:
            raise InputError(f"must be 'node' or 'relationship', got {record.get('type')!r}", path=path, line=line, field="type")
        labels = sorted(k.label for k in KINDS if k.type == record["type"])
        raise InputError(f"unknown {record['type']} label {record.get('label')!r} (one of {', '.join(labels)})",
                         path=path, line=line, field="label")
    if not isinstance(record.get("key"), str) or not record["key"]:
        raise InputError("must be a non-empty string", path=path, line=line, field="key")
    props = record.get("properties")
    if not isinstance(props, dict):
        raise InputError("must be an object", path=path, line=line, field="properties")
    for name, value in props.items():
        ok = _is_scalar(value) or (isinstance(value, list) and all(_is_scalar(v) and v is not None for v in value))
        if not ok:
            raise InputError("property values must be strings, numbers, booleans or lists of them",
                             path=path, line=line, field=f"properties.{name}")
    if "embedding" in record:
        vector = record["embedding"]
        if not isinstance(vector, list) or not vector or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector):
            raise InputError("must be a non-empty list of finite numbers", path=path, line=line, field="embedding")
        if kind.embeddings is None:
            raise InputError(f"{kind.label} elements carry no embedding", path=path, line=line, field="embedding")
        if dim[0] is None:
            dim[0] = len(vector)
        elif len(vector) != dim[0]:
            raise InputError(f"has {len(vector)} numbers, earlier embeddings {dim[0]}", path=path, line=line, field="embedding")
    if kind.type == "node":
        nodes.add((kind.label, record["key"]))
    else:
        for end, label in (("start", kind.start), ("end", kind.end)):
            if not isinstance(record.get(end), str):
                raise InputError("must be a string uuid", path=path, line=line, field=end)
            if (label, record[end]) not in nodes:
                raise InputError(f"refers to {label} {record[end]!r}, which no earlier line defines",
                                 path=path, line=line, field=end)
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
                raise InputError("the first line must be a graphmem export header "
                                 '({"type": "header", "format": "graphmem", ...})', path=path, line=number)
            if record.get("version") != VERSION:
                raise InputError(f"unsupported export version {record.get('version')!r} (this graphmem reads {VERSION})",
                                 path=path, line=number, field="version")
            header = record
            continue
        _check_record(record, path, number, nodes, dim)
        n += 1
    if header is None:
        raise InputError("empty file: no graphmem export header", path=path)
    header = {**header, "dim": header.get("dim") or dim[0]}
    return header, n


def import_jsonl(store: GraphStore, path: str | Path, *, batch_size: int = 500,
                 progress: Progress | None = None, schema: bool = True) -> dict[str, int]:
    """Load an export into ``store``: the whole file is validated first, so a bad
    file writes nothing; records then MERGE on their keys (re-importing is harmless).
    The imported groups get their revision bumped so cached projections reload.
    ``schema``: create the indexes first (for the export's vector size)."""
    path = Path(path)
    header, _ = read_jsonl(path)
    if schema and header.get("dim"):
        store.ensure_schema(int(header["dim"]))
    loaded = {kind.name: 0 for kind in KINDS}
    groups: set[str] = set()
    pending: list[Record] = []
    current: Kind | None = None

    def flush() -> None:
        if current is not None and pending:
            write(store, current, pending, batch_size)
            loaded[current.name] += len(pending)
            if progress:
                progress(len(pending))
            pending.clear()

    with open(path, encoding="utf-8") as handle:
        next(handle)  # the header
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            kind = BY_LABEL[(record["type"], record["label"])]
            if kind is not current:
                flush()
                current = kind
            if kind.type == "node" and isinstance(record["properties"].get("group_id"), str):
                groups.add(record["properties"]["group_id"])
            pending.append(record)
            if len(pending) >= batch_size:
                flush()
        flush()
    for group in sorted(groups):
        store.run("revision_bump", group_id=group)
    return loaded


# -- GraphML ---------------------------------------------------------------------------------
def export_graphml(store: GraphStore, path: str | Path, *, group_id: str | None = None,
                   progress: Progress | None = None) -> dict[str, int]:
    """Write the graph as GraphML for networkx / Gephi / yEd (export only).

    Embeddings are left out; list properties become JSON strings (GraphML has
    no list type); every node gets ``label`` (its graph label) and a readable
    ``name``. Relationship types are the edge attribute ``type``.
    """
    import networkx as nx

    graph = nx.MultiDiGraph()
    written = {kind.name: 0 for kind in KINDS}
    for kind in KINDS:
        for _, chunk in pages(store, kind, group_id=group_id):
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
        return {k: (self.source[k], self.target.get(k, 0)) for k in self.source if self.source[k] != self.target.get(k, 0)}


def checkpoint_path(home: str | Path, target: str) -> Path:
    """Where the progress of a migration to ``target`` (a printable URI) is kept."""
    digest = hashlib.sha1(target.encode()).hexdigest()[:12]
    return Path(home) / "migrate" / f"{digest}.json"


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def migrate(source: GraphStore, target: GraphStore, *, checkpoint: Path, target_name: str,
            batch_size: int = 500, page: int = PAGE, dim: int | None = None, restart: bool = False,
            schema: bool = True, on_total: Callable[[int, int], None] | None = None, progress: Progress | None = None) -> Migration:
    """Copy every group of ``source`` into ``target``, page by page, then verify counts.

    After each page is written the checkpoint file records the last key, so a
    run that is interrupted (or fails) continues where it stopped; pages
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
    expected = counts(source)
    if on_total is not None:
        on_total(sum(expected.values()), sum(state["copied"].values()))
    if schema:
        target.ensure_schema(dim or vector_dim(source) or 384)
    for kind in KINDS:
        if kind.name in state["done"]:
            continue
        after = state["after"] if state["kind"] == kind.name else ""
        for last, chunk in pages(source, kind, after=after, page=page):
            write(target, kind, chunk, batch_size)
            state.update(kind=kind.name, after=last)
            state["copied"][kind.name] = state["copied"].get(kind.name, 0) + len(chunk)
            _save(checkpoint, state)
            if progress:
                progress(len(chunk))
        state["done"].append(kind.name)
        state.update(kind=None, after="")
        _save(checkpoint, state)
    groups = [row["key"] for _, chunk in pages(source, BY_LABEL[("node", "GraphMeta")]) for row in chunk]
    for group in groups:  # cached projections of the target's groups must reload
        target.run("revision_bump", group_id=group)
    result = Migration(source=expected, target=counts(target), resumed=resumed, copied=dict(state["copied"]))
    if result.mismatches:
        detail = ", ".join(f"{k}: {s} in the source, {t} in the target" for k, (s, t) in result.mismatches.items())
        raise StoreError(f"migration finished but the counts differ ({detail}); was the target empty? "
                         f"the checkpoint {checkpoint} is kept")
    checkpoint.unlink(missing_ok=True)
    return result

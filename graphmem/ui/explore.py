"""What the graph explorer shows, read through :class:`~graphmem.memory.Memory`: entities by
name, an entity's neighbourhood a page at a time, its facts as a timeline with what superseded
what, and the passages that mention it. The queries are the ``ui_*`` blocks of
``cypher/explore.cypher``; this module only pages, shapes and links their rows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from graphmem.errors import InputError
from graphmem.timeutil import from_ms, to_ms

if TYPE_CHECKING:
    from graphmem.memory import FactRecord, Memory

#: the most neighbours one neighbourhood page draws (the page asks for more a page at a time)
MAX_NEIGHBOURS = 50
#: the most passages one page of an entity's mentions lists
MAX_PASSAGES = 20
#: passages are cut to this many characters in lists (the episode endpoint has the full text)
SNIPPET_CHARS = 600


def iso(ms: Any) -> str | None:
    """Epoch milliseconds from the store as ISO 8601 (None when absent)."""
    value = from_ms(int(ms)) if isinstance(ms, (int, float)) else None
    return value.isoformat() if value else None


def find(memory: Memory, entity: str) -> dict[str, Any]:
    """The entity named ``entity`` (uuid, name or alias) with its aliases and mention count;
    InputError when the group has none."""
    from graphmem.model import entity_key

    rows = memory.read("entity_find", name=entity, key=entity_key(entity))
    if not rows:
        raise InputError(f"no entity named {entity!r} in this group")
    found = memory.entity(rows[0]["uuid"]) or rows[0]
    return {
        "uuid": found["uuid"],
        "name": found.get("name") or "",
        "type": found.get("type") or "",
        "aliases": list(found.get("aliases") or []),
        "mentions": int(found.get("mentions") or 0),
    }


def lookup(memory: Memory, text: str, limit: int = 20) -> list[dict[str, Any]]:
    """Entities whose name contains ``text``, the most mentioned first (at most ``limit``)."""
    from graphmem.model import entity_key

    text = text.strip()
    if not text:
        return []
    rows = memory.read("ui_entity_lookup", text=text.lower(), key=entity_key(text), limit=limit)
    return [
        {"uuid": r["uuid"], "name": r["name"] or "", "type": r["type"] or "", "mentions": r["mentions"]} for r in rows
    ]


def neighbourhood(
    memory: Memory,
    entity: str,
    *,
    as_of: datetime | None = None,
    history: bool = False,
    skip: int = 0,
    limit: int = MAX_NEIGHBOURS,
) -> dict[str, Any]:
    """One page of ``entity``'s neighbours through FACT edges, the most connected first.

    ``as_of``: the facts that held then; else the facts true now, or every fact with
    ``history``. At most :data:`MAX_NEIGHBOURS` neighbours per page; ``total`` says how many
    there are, so the page can offer the next ones. Edges carry their predicate and times.
    """
    center = find(memory, entity)
    limit = max(1, min(limit, MAX_NEIGHBOURS))
    params = {"uuid": center["uuid"], "as_of": to_ms(as_of), "history": history and as_of is None}
    total = memory.read("ui_neighbour_count", **params)
    rows = memory.read("ui_neighbours", **params, skip=max(0, skip), limit=limit)
    nodes: dict[str, dict[str, Any]] = {}
    edges = []
    for r in rows:
        nodes.setdefault(
            r["uuid"], {"uuid": r["uuid"], "name": r["name"] or "", "type": r["type"] or "", "weight": r["weight"]}
        )
        edges.append(
            {
                "uuid": r["fact"],
                "source": r["source"],
                "target": r["target"],
                "predicate": r["predicate"] or "",
                "text": r["text"] or "",
                "valid_at": iso(r["valid_at"]),
                "invalid_at": iso(r["invalid_at"]),
            }
        )
    return {
        "entity": center,
        "as_of": as_of.isoformat() if as_of else None,
        "history": history and as_of is None,
        "total": int(total[0]["total"]) if total else 0,
        "skip": max(0, skip),
        "limit": limit,
        "nodes": list(nodes.values()),
        "edges": edges,
    }


def timeline(memory: Memory, entity: str, *, as_of: datetime | None = None) -> dict[str, Any]:
    """Every fact of ``entity`` (current and ended), oldest first, each with ``holds`` (true
    at ``as_of``, or now) and the facts it superseded / was superseded by: for a predicate
    that holds one value at a time (``Settings.temporal``), the fact of the same subject and
    relation that started when this one ended. ``times``: the distinct start and end times,
    the stops of the page's as-of slider."""
    from graphmem.resolve.temporal import relation_of

    center = find(memory, entity)
    records = memory.facts(center["uuid"], history=True)
    relations = memory.settings.temporal.relations()
    successor = _successors(records, relations)
    before = {new: old for old, new in successor.items()}
    facts = []
    for f in records:
        facts.append(
            {
                "uuid": f.uuid,
                "subject": f.subject,
                "predicate": f.predicate,
                "object": f.object,
                "text": f.text,
                "valid_at": f.valid_at.isoformat() if f.valid_at else None,
                "invalid_at": f.invalid_at.isoformat() if f.invalid_at else None,
                "expired_at": f.expired_at.isoformat() if f.expired_at else None,
                "relation": relation_of(f.predicate, relations),
                "holds": f.valid_on(as_of) if as_of is not None else f.current,
                "superseded_by": successor.get(f.uuid),
                "supersedes": before.get(f.uuid),
            }
        )
    times = sorted({t for f in records for t in (f.valid_at, f.invalid_at) if t is not None})
    return {
        "entity": center,
        "as_of": as_of.isoformat() if as_of else None,
        "facts": facts,
        "times": [t.isoformat() for t in times],
    }


def _successors(records: list[FactRecord], relations: dict[str, str]) -> dict[str, str]:
    """old fact uuid -> the uuid of the fact that ended it (same subject and relation,
    starting when the old one ended)."""
    from graphmem.resolve.temporal import relation_of

    by_key: dict[tuple[str, str], list[FactRecord]] = {}
    for f in records:
        relation = relation_of(f.predicate, relations)
        if relation is not None:
            by_key.setdefault((f.subject, relation), []).append(f)
    found: dict[str, str] = {}
    for chain in by_key.values():
        for old in chain:
            if old.invalid_at is None:
                continue
            nxt = [f for f in chain if f.uuid != old.uuid and f.valid_at == old.invalid_at]
            if nxt:
                found[old.uuid] = nxt[0].uuid
    return found


def passages(memory: Memory, entity: str, *, skip: int = 0, limit: int = MAX_PASSAGES) -> dict[str, Any]:
    """One page of the passages that mention ``entity`` (cut to :data:`SNIPPET_CHARS`)."""
    center = find(memory, entity)
    limit = max(1, min(limit, MAX_PASSAGES))
    rows = memory.read("ui_entity_passages", uuid=center["uuid"], skip=max(0, skip), limit=limit)
    return {
        "entity": center,
        "total": int(rows[0]["total"]) if rows else 0,
        "skip": max(0, skip),
        "passages": [
            {
                "uuid": r["uuid"],
                "title": r["title"] or "",
                "content": (r["content"] or "")[:SNIPPET_CHARS],
                "occurred_at": iso(r["occurred_at"]),
                "speaker": r["speaker"] or "",
            }
            for r in rows
        ],
    }

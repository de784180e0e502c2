"""What the MCP tools do, on the public :class:`~graphmem.memory.Memory` facade.

Each method takes one group's Memory and plain arguments, checks them with the REST API's
own request models (so both faces share one set of limits) and returns JSON values. Bad
input raises :class:`~graphmem.errors.InputError` with a message that says what to fix;
the server turns every failure into a tool error (see :mod:`graphmem.mcp.server`).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from graphmem.errors import InputError

if TYPE_CHECKING:
    from graphmem.memory import Memory

#: the largest text one write may carry: the REST API's body limit (graphmem serve's default)
MAX_TEXT_BYTES = 20 * 1024 * 1024
#: passages get_entity shows and episodes the recent-episodes resource lists, at most
MAX_PASSAGES = 50


def checked(model: type[BaseModel], **values: Any) -> Any:
    """``model(**values)`` (a REST request model), or an InputError naming each bad field."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise InputError(problems) from None


def parse_time(text: str | None, field: str) -> datetime | None:
    """An ISO date or date-time given by the agent (naive = UTC), or an InputError naming ``field``."""
    if text is None or not text.strip():
        return None
    from graphmem.timeutil import parse_when

    try:
        return parse_when(text)
    except ValueError as exc:
        raise InputError(str(exc), field=field) from None
    except OverflowError:  # a valid date that leaves the calendar in UTC (0001-01-01T00:00+14:00)
        raise InputError(f"{text!r} is out of range: in UTC it falls outside the years 1-9999", field=field) from None


def check_text(text: str, field: str = "text") -> str:
    if not text.strip():
        raise InputError("is empty: give the text to remember", field=field)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise InputError(f"is {size} bytes, over the limit of {MAX_TEXT_BYTES}; split it", field=field)
    return text


@cache
def _queries() -> dict[str, str]:
    from graphmem.store.queries import cypher_dir, parse_blocks

    path = cypher_dir() / "agent.cypher"
    return parse_blocks(path.read_text(encoding="utf-8"), str(path))


def _uuids(memory: Memory, group: str, query: str, limit: int, **params: Any) -> list[str]:
    _, rows = memory.cypher(_queries()[query], {**params, "group_id": group, "limit": limit}, max_rows=limit)
    return [str(row[0]) for row in rows]


def jsonable(value: Any) -> Any:
    """A store row or model as JSON values (times in ISO 8601, epoch ms turned into ISO)."""
    return json.loads(json.dumps(value, default=str))


def episode_view(row: dict[str, Any]) -> dict[str, Any]:
    """One stored episode with its provenance, times as ISO 8601."""
    from graphmem.api.values import iso

    return {
        "uuid": row.get("uuid"),
        "content": row.get("content"),
        "title": row.get("title") or "",
        "source": row.get("source_name") or "",
        "speaker": row.get("speaker") or "",
        "turn_id": row.get("turn_id") or "",
        "occurred_at": iso(row.get("occurred_at")),
        "ingested_at": iso(row.get("ingested_at")),
    }


def _episodes(memory: Memory, uuids: list[str]) -> list[dict[str, Any]]:
    found = memory.episodes(uuids)
    return [episode_view(found[u]) for u in uuids if u in found]


# -- writes ------------------------------------------------------------------------------------
def add_memory(
    memory: Memory,
    group: str,
    text: str,
    *,
    speaker: str | None = None,
    time: str | None = None,
    source: str | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Store ``text`` (a dialogue turn when ``speaker`` is given) as its own source, then read
    it back: the answer lists the stored episodes, so it is never a success without them."""
    from graphmem.api.models import DocumentIn, TurnIn

    check_text(text)
    when = parse_time(time, "time")
    name = source or _fresh_name("memory")
    if speaker is not None and speaker.strip():
        from graphmem.ingest.dialogue import Conversation, Turn

        turn = checked(TurnIn, speaker=speaker.strip(), text=text, time=when)
        checked(DocumentIn, name=name, text=text, title=title)  # the name and title limits
        conversation = Conversation(
            name=name, title=title, uri=f"mcp:{name}", turns=[Turn(speaker=turn.speaker, text=text, time=turn.time)]
        )
        report = memory.ingest_conversations([conversation])
    else:
        report = _ingest_document(memory, checked(DocumentIn, name=name, text=text, title=title, date=when))
    return _acknowledge(memory, group, name, report)


def add_document(
    memory: Memory,
    group: str,
    *,
    path: str | None = None,
    text: str | None = None,
    name: str | None = None,
    title: str = "",
    date: str | None = None,
    paths_allowed: bool = True,
) -> dict[str, Any]:
    """Ingest one document: a file on this machine (``path``) or ``text``; read back as add_memory."""
    from graphmem.api.models import DocumentIn

    if (path is None) == (text is None):
        raise InputError("give either 'path' or 'text' (exactly one)")
    if path is not None:
        if not paths_allowed:
            raise InputError(
                "paths are read on the server's machine, which this connection may not do; send 'text'",
                field="path",
            )
        return _add_file(memory, group, path)
    assert text is not None
    check_text(text)
    when = parse_time(date, "date")
    document = checked(DocumentIn, name=name or _fresh_name("document"), text=text, title=title, date=when)
    return _acknowledge(memory, group, document.name, _ingest_document(memory, document))


def _add_file(memory: Memory, group: str, path: str) -> dict[str, Any]:
    from graphmem.ingest.readers import read_documents

    target = Path(path).expanduser()
    if not target.is_file():
        raise InputError("no such file (give a .txt, .md or .jsonl file)", path=target)
    documents = read_documents([target], memory.settings.max_file_bytes)
    if not documents:
        raise InputError("holds no text to ingest", path=target)
    report = memory.ingest_documents(documents)
    answers = [_acknowledge(memory, group, d.name, report) for d in documents]
    return {**answers[0], "sources": [a["source"] for a in answers]} if len(answers) > 1 else answers[0]


def _ingest_document(memory: Memory, document: Any) -> Any:
    from graphmem.ingest.readers import Document

    return memory.ingest_documents(
        [
            Document(
                name=document.name,
                text=document.text,
                title=document.title,
                date=document.date,
                uri=f"mcp:{document.name}",
            )
        ]
    )


def _acknowledge(memory: Memory, group: str, name: str, report: Any) -> dict[str, Any]:
    """The answer to a write, from what the store now holds under ``name``."""
    if report.errors:
        raise InputError("; ".join(report.errors))
    stored = _uuids(memory, group, "agent_source_episodes", 10_000, name=name)
    if not stored:
        raise RuntimeError(f"the write of {name!r} was not found in the store afterwards; it was not stored")
    return {
        "stored": True,
        "group": group,
        "source": name,
        "episodes": stored,
        "unchanged": bool(report.skipped),
        "facts": report.facts,
        "entities": report.entities,
    }


def _fresh_name(kind: str) -> str:
    return f"mcp-{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def forget(memory: Memory, group: str, *, source: str | None = None, episode: str | None = None) -> dict[str, Any]:
    removed = memory.forget(source=source or None, episode=episode or None)
    return {"group": group, "forgot": {"source": source} if source else {"episode": episode}, "removed": removed}


# -- reads --------------------------------------------------------------------------------------
def search(memory: Memory, group: str, query: str, k: int = 5, as_of: str | None = None) -> dict[str, Any]:
    from graphmem.api.models import SearchRequest

    request = checked(SearchRequest, query=query, k=k, as_of=parse_time(as_of, "as_of"))
    if not request.query.strip():
        raise InputError("is empty: ask a question", field="query")
    hits = memory.search(request.query, request.k, as_of=request.as_of)
    return {"group": group, "query": request.query, "hits": [hit.model_dump(mode="json") for hit in hits]}


def facts(memory: Memory, group: str, entity: str, as_of: str | None = None, history: bool = False) -> dict[str, Any]:
    entity = _entity_name(entity)
    records = memory.facts(entity, as_of=parse_time(as_of, "as_of"), history=history)
    return {"group": group, "entity": entity, "facts": [r.model_dump(mode="json") for r in records]}


def entity(memory: Memory, group: str, name: str, passages: int = 5) -> dict[str, Any]:
    """An entity's card: names, type, summary, its neighbours through current facts, and
    the newest passages that mention it."""
    from graphmem.model import entity_key

    name = _entity_name(name)
    passages = max(0, min(int(passages), MAX_PASSAGES))
    columns, rows = memory.cypher(
        _queries()["agent_entity"], {"group_id": group, "name": name, "key": entity_key(name)}, max_rows=1
    )
    if not rows:
        raise InputError(f"no entity named {name!r} in group {group!r}; search_memory finds what is there")
    card = dict(zip(columns, rows[0], strict=True))
    current = memory.facts(card["uuid"])
    neighbours = []
    for fact in current:
        outgoing = fact.subject == card["name"]
        neighbours.append(
            {
                "entity": fact.object if outgoing else fact.subject,
                "predicate": fact.predicate,
                "direction": "out" if outgoing else "in",
                "fact": fact.text,
            }
        )
    mentioning = _uuids(memory, group, "agent_mentioning", passages, uuid=card["uuid"]) if passages else []
    return {
        "group": group,
        **jsonable(card),
        "aliases": list(card.get("aliases") or []),
        "neighbours": neighbours,
        "passages": _episodes(memory, mentioning),
    }


def _entity_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InputError("is empty: name an entity (a name, alias or uuid)", field="entity")
    if len(name) > 1000 or "\x00" in name:
        raise InputError("must be at most 1000 characters, without NUL", field="entity")
    return name


def sources(memory: Memory, group: str) -> dict[str, Any]:
    return {"group": group, "sources": jsonable(memory.sources())}


def stats(memory: Memory, group: str) -> dict[str, Any]:
    return {"group": group, **memory.stats()}


def recent_episodes(memory: Memory, group: str, limit: int = 20) -> dict[str, Any]:
    uuids = _uuids(memory, group, "agent_recent_episodes", max(1, min(limit, MAX_PASSAGES)))
    return {"group": group, "episodes": _episodes(memory, uuids)}

"""Reading the graph: one episode, one entity, an entity's facts over time."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from graphmem.api.errors import ApiError
from graphmem.api.models import GROUP_PATTERN, ID_PATTERN
from graphmem.api.server import Principal, Server, principal, server
from graphmem.api.values import iso, jsonable, parse_when
from graphmem.errors import InputError

router = APIRouter(tags=["graph"])
GroupQuery = Query(None, pattern=GROUP_PATTERN)


@router.get("/v1/episodes/{uuid}")
def episode(
    uuid: Annotated[str, Path(pattern=ID_PATTERN)],
    request: Request,
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """One episode (a passage or a dialogue turn) exactly as received, with its source."""
    group, memory, _ = served.scoped(request, who, group)
    found = memory.episodes([uuid]).get(uuid)
    if found is None:
        raise ApiError(404, f"no episode {uuid!r} in group {group!r}")
    return jsonable(
        {
            **found,
            "occurred_at": iso(found.get("occurred_at")),
            "ingested_at": iso(found.get("ingested_at")),
            "group": group,
        }
    )


@router.get("/v1/entities/{uuid}")
def entity(
    uuid: Annotated[str, Path(pattern=ID_PATTERN)],
    request: Request,
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """One entity: name, type, aliases, how many episodes mention it, and its current facts."""
    group, memory, lock = served.scoped(request, who, group)
    row = memory.entity(uuid)
    if row is None:
        raise ApiError(404, f"no entity {uuid!r} in group {group!r}")
    found = {**row, "group": group}
    with lock:  # its current facts (history: GET /v1/facts?history=true)
        found["facts"] = [json.loads(f.model_dump_json()) for f in memory.facts(uuid)]
    return jsonable(found)


@router.get("/v1/facts")
def facts(
    request: Request,
    entity: str = Query(..., min_length=1, max_length=1000, pattern=ID_PATTERN),
    as_of: str | None = Query(None, description="ISO date/time: the facts true then"),
    history: bool = Query(False, description="also facts that were later contradicted"),
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """The facts about an entity (name, alias or uuid) as a timeline, oldest first."""
    group, memory, lock = served.scoped(request, who, group)
    when = parse_when(as_of, "as_of")
    try:
        with lock:
            records = memory.facts(entity, as_of=when, history=history)
    except InputError as exc:  # no entity of that name in this group
        raise ApiError(404, str(exc)) from None
    return {"group": group, "entity": entity, "facts": [json.loads(r.model_dump_json()) for r in records]}

"""The graph explorer: its page (``/ui``, static files shipped in ``graphmem/ui/static``) and
the read-only JSON it needs beyond the other routes (``/v1/ui/*``: entities by name, an
entity's neighbourhood a page at a time, its fact timeline, the passages that mention it).
The JSON routes take the same keys and groups as every ``/v1`` route; the page itself holds
no data, so it is served without a key."""

from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from graphmem.api.errors import ApiError
from graphmem.api.models import GROUP_PATTERN, ID_PATTERN
from graphmem.api.server import Principal, Server, principal, server
from graphmem.api.values import parse_when
from graphmem.errors import InputError
from graphmem.ui import STATIC_DIR, explore

router = APIRouter(tags=["explorer"])
GroupQuery = Query(None, pattern=GROUP_PATTERN)
EntityQuery = Query(..., min_length=1, max_length=1000, pattern=ID_PATTERN, description="name, alias or uuid")
AsOfQuery = Query(None, description="ISO date/time: the facts true then (default: now)")

#: the page runs only its own scripts: nothing inline, nothing from elsewhere (store text that
#: slipped into the page as markup could still not run)
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain"}


@router.get("/ui", include_in_schema=False)
def page_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui/", include_in_schema=False)
def page() -> Response:
    """The explorer's single page."""
    return _file(STATIC_DIR / "index.html")


@router.get("/ui/static/{name:path}", include_in_schema=False)
def asset(name: str) -> Response:
    """A file of the page (scripts, styles, the vendored cytoscape.js and its licence)."""
    root = STATIC_DIR.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ApiError(404, f"no file {name!r} in the explorer's static files")
    return _file(path)


def _file(path: FilePath) -> Response:
    kind = _TYPES.get(path.suffix, "application/octet-stream")
    headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=kind, headers=headers)


@router.get("/v1/ui/info")
def info(
    request: Request,
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """The group the page works in, its counts, and the caps the page draws under."""
    group, memory, _ = served.scoped(request, who, group)
    return {
        "group": group,
        "stats": memory.stats(),
        "auth": "local" if who.local else "key",
        "max_neighbours": explore.MAX_NEIGHBOURS,
        "max_passages": explore.MAX_PASSAGES,
    }


@router.get("/v1/ui/entities")
def entities(
    request: Request,
    q: str = Query(..., min_length=1, max_length=200, pattern=ID_PATTERN, description="part of a name"),
    limit: int = Query(20, ge=1, le=100),
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """Entities whose name contains ``q``, the most mentioned first."""
    group, memory, _ = served.scoped(request, who, group)
    return {"group": group, "entities": explore.lookup(memory, q, limit)}


@router.get("/v1/ui/neighbours")
def neighbours(
    request: Request,
    entity: str = EntityQuery,
    as_of: str | None = AsOfQuery,
    history: bool = Query(False, description="every fact, current and ended (ignored with as_of)"),
    skip: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(explore.MAX_NEIGHBOURS, ge=1, le=explore.MAX_NEIGHBOURS),
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """One page (at most 50) of an entity's neighbours through FACT edges, most connected first,
    with the facts that link them (predicate, text, valid_at, invalid_at) and the total."""
    group, memory, _ = served.scoped(request, who, group)
    when = parse_when(as_of, "as_of")
    try:
        found = explore.neighbourhood(memory, entity, as_of=when, history=history, skip=skip, limit=limit)
    except InputError as exc:
        raise ApiError(404, str(exc)) from None
    return {"group": group, **found}


@router.get("/v1/ui/timeline")
def timeline(
    request: Request,
    entity: str = EntityQuery,
    as_of: str | None = AsOfQuery,
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """Every fact of an entity, oldest first: valid_at, invalid_at, whether it holds at
    ``as_of`` (or now), and which fact superseded which."""
    group, memory, lock = served.scoped(request, who, group)
    when = parse_when(as_of, "as_of")
    try:
        with lock:
            found = explore.timeline(memory, entity, as_of=when)
    except InputError as exc:
        raise ApiError(404, str(exc)) from None
    return {"group": group, **found}


@router.get("/v1/ui/passages")
def passages(
    request: Request,
    entity: str = EntityQuery,
    skip: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(explore.MAX_PASSAGES, ge=1, le=explore.MAX_PASSAGES),
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """One page of the passages that mention an entity (cut to a snippet), and how many there are."""
    group, memory, _ = served.scoped(request, who, group)
    try:
        found = explore.passages(memory, entity, skip=skip, limit=limit)
    except InputError as exc:
        raise ApiError(404, str(exc)) from None
    return {"group": group, **found}

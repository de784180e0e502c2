"""``POST /v1/search``: the passages that best answer a query."""

import time

from fastapi import APIRouter, Depends, Request

from graphmem.api.models import Hit, SearchRequest, SearchResponse
from graphmem.api.server import Principal, Server, principal, server
from graphmem.api.values import utc

router = APIRouter(tags=["retrieval"])


@router.post("/v1/search", response_model=SearchResponse)
def search(
    body: SearchRequest, request: Request, who: Principal = Depends(principal), served: Server = Depends(server)
) -> SearchResponse:
    """The ``k`` passages that best answer ``query``, with the facts and entities that led to them."""
    group, memory, lock = served.scoped(request, who, body.group)
    started = time.perf_counter()
    with lock:
        results = memory.search(body.query, body.k, mode=body.mode, as_of=utc(body.as_of))
    hits = [Hit(**r.model_dump()) for r in results]
    return SearchResponse(
        group=group, mode=body.mode, took_ms=round((time.perf_counter() - started) * 1000, 2), results=hits
    )

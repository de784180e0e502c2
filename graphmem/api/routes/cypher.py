"""``POST /v1/cypher``: read-only user Cypher in the key's group, under budgets and slots."""

from fastapi import APIRouter, Depends, Request

from graphmem.api.errors import ApiError
from graphmem.api.models import CypherRequest, CypherResponse, Problem
from graphmem.api.server import Principal, Server, principal, server
from graphmem.api.values import jsonable
from graphmem.errors import StoreError, StoreStoppedDuringQuery
from graphmem.memory import Memory
from graphmem.store.user_cypher import CypherRefused

router = APIRouter(tags=["graph"])


@router.post("/v1/cypher", response_model=CypherResponse, responses={429: {"model": Problem}})
def cypher(
    body: CypherRequest, request: Request, who: Principal = Depends(principal), served: Server = Depends(server)
) -> CypherResponse:
    """Read-only Cypher in the key's group. Each group lives apart in the store (its own
    FalkorDB graph, or its own Neo4j database), so a query sees that group whatever it says;
    ``$group_id`` is bound to it. Before the store sees a query it is checked against budgets
    (at most 20,000 characters and 10 levels of nesting); at most ``limit`` rows are read
    (the limit is written into the query), and it stops after ``timeout_ms``. Writes,
    LOAD CSV, USE and administration commands are refused, and CALL is limited to the
    read procedures the error lists. One query per key runs at a time (429 otherwise)."""
    group, memory, _ = served.scoped(request, who, body.group)
    if "group_id" in body.params:
        raise ApiError(422, "params: 'group_id' is set by the server from your key; leave it out")
    _check_isolation(memory, who, served)
    params = {**body.params, "group_id": group}
    timeout_ms = min(body.timeout_ms, served.config.cypher_timeout_ms)
    with served.cypher_slots.take(who.key_id):
        try:
            columns, rows = memory.cypher(
                body.query, params, write=False, timeout_ms=timeout_ms, max_rows=body.limit + 1
            )
        except CypherRefused as exc:
            raise ApiError(400, f"query refused: {exc}") from None
        except StoreStoppedDuringQuery:
            served.cypher_slots.pause(who.key_id, served.config.cypher_crash_pause_s)
            raise
        except StoreError as exc:
            raise ApiError(400, f"the query failed: {exc}") from None
    found = jsonable(rows)
    return CypherResponse(
        group=group, columns=[str(c) for c in columns], rows=found[: body.limit], truncated=len(found) > body.limit
    )


def _check_isolation(memory: Memory, who: Principal, served: Server) -> None:
    """Tenant keys may not run Cypher where groups share one database (Neo4j without a
    database per group), unless this server has only one group."""
    single_tenant = len({g for record in served.keys.list() for g in record.groups}) <= 1
    if memory.isolation == "property" and not (who.admin or who.groups is None or single_tenant):
        raise ApiError(
            403,
            "user Cypher is off for tenant keys on this store: its groups share one Neo4j "
            "database, so a query could reach other groups. Use the embedded store or Neo4j "
            "with one database per group (GRAPHMEM_NEO4J_DATABASE_PER_GROUP=true), or ask an "
            "admin to run it",
        )

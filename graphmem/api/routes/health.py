"""``/healthz`` (the process answers) and ``/readyz`` (the store answers)."""

from typing import Any

from fastapi import APIRouter, Depends

from graphmem.api.errors import ApiError
from graphmem.api.server import Server, server

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(served: Server = Depends(server)) -> dict[str, Any]:
    """Readiness: the store answers (503 otherwise)."""
    try:
        dialect = served.groups.admin.ping()
    except Exception as exc:
        raise ApiError(503, f"the graph store is not reachable: {exc}") from None
    return {
        "status": "ready",
        "store": dialect,
        "jobs_pending": served.jobs.pending(),
        "auth": "keys" if served.keys.configured else "local",
    }

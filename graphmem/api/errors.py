"""RFC 9457 problem details: every error the API answers is ``application/problem+json``
with a ``detail`` that says what to fix and the request's id."""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from graphmem.api.limits import Busy
from graphmem.errors import GraphmemError, InputError, StoreError

log = logging.getLogger("graphmem.api")
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    421: "Misdirected request",
    422: "Unprocessable request",
    500: "Internal error",
    501: "Not implemented",
    503: "Unavailable",
}


class ApiError(Exception):
    """An answer other than 2xx: its status, detail, and headers (e.g. WWW-Authenticate)."""

    def __init__(
        self, status: int, detail: str, title: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}
        self.title = title or TITLES.get(status, "Error")


def problem_bytes(status: int, detail: str, request_id: str | None) -> bytes:
    """A problem body, for the middleware (which answers before the app)."""
    return json.dumps(
        {
            "type": "about:blank",
            "title": TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
            "request_id": request_id,
        }
    ).encode()


def problem(
    request: Request,
    status: int,
    detail: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "request_id": request.scope.get("state", {}).get("request_id"),
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(request, exc.status, exc.detail, exc.title, exc.headers)


async def _on_busy(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Busy)
    return problem(request, 429, str(exc), "Too many requests", {"Retry-After": str(exc.retry_after)})


async def _on_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    first: dict[str, Any] = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p != "body") or "request"
    return problem(request, 422, f"{where}: {first['msg']}", errors=errors)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _on_graphmem(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StoreError):
        return problem(request, 503, f"the graph store failed: {exc}")
    return problem(request, 422 if isinstance(exc, InputError) else 400, str(exc))


async def _on_bug(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error (request %s)", request.scope.get("state", {}).get("request_id"))
    return problem(request, 500, f"internal error ({type(exc).__name__}); the request id is in the server log")


def install(app: FastAPI) -> None:
    """Answer every error as a problem."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(Busy, _on_busy)
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(GraphmemError, _on_graphmem)
    app.add_exception_handler(Exception, _on_bug)

"""``graphmem serve``: the retrieval REST API for RAG pipelines.

One store connection serves every tenant: the server keeps one
:class:`~graphmem.memory.Memory` per ``group_id`` over it, and every request is
confined to the groups its API key is bound to (see :mod:`graphmem.api.auth`).
Operations on one group are serialised by a lock (ingestion, forgetting and the
projection reload must not interleave with searches of that group); different
groups run in parallel.

Errors are RFC 9457 ``application/problem+json`` bodies with a ``detail`` that
says what to fix and the ``request_id`` also logged in the access log
(:mod:`graphmem.api.errors`). The routes are in :mod:`graphmem.api.routes`, one
router per resource; what they share is :class:`graphmem.api.server.Server`.
"""

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from graphmem.api import errors
from graphmem.api.auth import KeyStore
from graphmem.api.middleware import RequestContext, is_loopback, loopback_host_header
from graphmem.api.models import Problem
from graphmem.api.routes import admin, cypher, entities, health, ingest, search, ui
from graphmem.api.server import LOCAL_TOKEN_FILE, LOCAL_TOKEN_HEADER, ApiConfig, Server
from graphmem.config import Settings
from graphmem.errors import ConfigError
from graphmem.store.base import GraphStore

__all__ = [
    "ApiConfig",
    "create_app",
    "check_bind",
    "serve",
    "is_loopback",
    "loopback_host_header",
    "LOCAL_TOKEN_HEADER",
    "LOCAL_TOKEN_FILE",
]
log = logging.getLogger("graphmem.api")


def create_app(
    settings: Settings | None = None,
    keys: KeyStore | None = None,
    config: ApiConfig | None = None,
    store: GraphStore | None = None,
) -> FastAPI:
    """The FastAPI app. ``store``: an open store to serve (else one is opened from ``settings``)."""
    settings = settings or Settings.from_env()
    keys = keys if keys is not None else KeyStore(env={})
    config = config or ApiConfig()
    server = Server(settings, keys, config, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            server.stop()

    app = FastAPI(
        title="graphmem",
        version="1",
        lifespan=lifespan,
        summary="Temporal knowledge-graph memory: multi-hop retrieval for RAG pipelines",
        description="Authenticate with `Authorization: Bearer KEY` or `X-API-Key: KEY`. Every read and "
        "write is confined to the groups the key is bound to. Errors are "
        "`application/problem+json`.",
        responses={
            400: {"model": Problem},
            401: {"model": Problem},
            403: {"model": Problem},
            413: {"model": Problem},
            422: {"model": Problem},
        },
    )
    _add_middleware(app, server)
    app.state.server = server
    app.state.local_token = server.local_token
    app.state.local_token_path = server.local_token_path
    errors.install(app)
    for module in (search, ingest, entities, cypher, admin, health, ui):
        app.include_router(module.router)
    return app


def _add_middleware(app: FastAPI, server: Server) -> None:
    from fastapi.middleware.cors import CORSMiddleware

    config = server.config
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(
        RequestContext,
        max_body_bytes=config.max_body_bytes,
        local_mode=server.local_mode,
        keys=server.keys,
        query_body_bytes=config.query_body_bytes,
    )


def check_bind(host: str, keys: KeyStore) -> None:
    """Local mode (no keys) serves loopback only; so do servers whose environment holds a weak key."""
    if not keys.configured:
        if not is_loopback(host):
            raise ConfigError(
                f"no API keys are configured, so graphmem serve only binds 127.0.0.1 (not {host}); "
                "create keys with `graphmem keys add --group NAME --keys FILE` and pass --keys FILE"
            )
        log.warning("no API keys configured: local mode, any local process may read and write every group")
        return
    for where, why in keys.weak:
        if not is_loopback(host):
            raise ConfigError(
                f"{where} is a weak key ({why}), so graphmem serve will not bind {host}: use a key of "
                "24 or more random characters, e.g. one made by `graphmem keys add --keys FILE "
                "--group NAME` (or `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        log.warning("%s is a weak key (%s): fine on loopback, refused beyond it", where, why)


def serve(
    settings: Settings,
    keys: KeyStore,
    config: ApiConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Run the API in this process until SIGINT/SIGTERM."""
    import uvicorn

    check_bind(host, keys)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(settings, keys, config)
    if app.state.local_token is not None:  # on the terminal of who started it, whatever the log level
        print(
            f"graphmem serve: local mode. To create the first API key through POST /v1/admin/keys, send "
            f"'{LOCAL_TOKEN_HEADER}: {app.state.local_token}' (also in {app.state.local_token_path})",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=30)

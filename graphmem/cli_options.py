"""Click options that several commands share (``graphmem serve``, ``mcp``, ``ui``, ``keys``,
``ingest``, ``eval``), defined once so their names, environment variables and help agree.
Imports click alone: every command's start-up pays for this module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def keys_option(help: str) -> Callable[[F], F]:
    """``--keys FILE`` (parameter ``keys_file``, env ``GRAPHMEM_API_KEYS_FILE``): the API key file."""
    return click.option(
        "--keys", "keys_file", envvar="GRAPHMEM_API_KEYS_FILE", type=click.Path(dir_okay=False), default=None, help=help
    )


def embedder_option() -> Callable[[F], F]:
    """``--embedder``: which embedder a command loads (None: the settings' or the group's recipe's)."""
    return click.option(
        "--embedder", default=None, help="'minilm', a model folder, or http://host:port of `graphmem embed-serve`."
    )


def log_level_option(default: str) -> Callable[[F], F]:
    """``--log-level`` of a command that runs a server."""
    return click.option("--log-level", default=default, show_default=True, type=click.Choice(LOG_LEVELS))

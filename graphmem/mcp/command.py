"""The ``graphmem mcp`` command (registered in :mod:`graphmem.cli`; the server loads inside it)."""

from __future__ import annotations

from typing import Any

import click

from graphmem.cli_options import embedder_option, keys_option, log_level_option

_EXAMPLE = """
\b
Example (an MCP client's config: command, args, env):
  {"mcpServers": {"graphmem": {"command": "graphmem", "args": ["mcp"],
                               "env": {"GRAPHMEM_HOME": "/home/me/.graphmem"}}}}
\b
Over HTTP, with the keys of `graphmem serve`:
  graphmem mcp --http 127.0.0.1:8765 --keys keys.json    # endpoint http://127.0.0.1:8765/mcp
"""


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise click.BadParameter(f"write HOST:PORT (e.g. 127.0.0.1:8765), not {text!r}", param_hint="--http")
    return host.strip("[]"), int(port)


@click.command("mcp", epilog=_EXAMPLE)
@click.option(
    "--http",
    "http",
    metavar="HOST:PORT",
    default=None,
    help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (API keys as graphmem serve).",
)
@keys_option("With --http: API key file [env GRAPHMEM_API_KEYS_FILE]; GRAPHMEM_API_KEYS / GRAPHMEM_API_KEY add more.")
@embedder_option()
@log_level_option("warning")
@click.pass_obj
def mcp_command(obj: Any, http: str | None, keys_file: str | None, embedder: str | None, log_level: str) -> None:
    """Serve the memory to agents over the Model Context Protocol (stdio by default).

    Tools: add_memory, add_document, search_memory, get_facts, get_entity, forget,
    list_sources. Resources: graphmem://stats, graphmem://episodes/recent. Over stdio it
    serves the --group group; over --http each API key sees only its own group.
    """
    from graphmem.cli import handle_errors

    handle_errors(_serve)(obj, http, keys_file, embedder, log_level)


def _serve(obj: Any, http: str | None, keys_file: str | None, embedder: str | None, log_level: str) -> None:
    settings = obj.settings(**({"embedder": embedder} if embedder else {}))
    if http is None:
        if keys_file:
            raise click.UsageError("--keys goes with --http (over stdio the client is the local user)")
        from graphmem.mcp.server import run_stdio

        run_stdio(settings)
        return
    host, port = _host_port(http)
    from graphmem.api.auth import KeyStore
    from graphmem.mcp.server import run_http

    run_http(settings, KeyStore(keys_file), host, port, log_level)

"""``graphmem ui``: the graph explorer on this machine's store, in the browser.

Only click is imported at module level: the server and its models load when the command runs.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import click

from graphmem.cli_options import keys_option

if TYPE_CHECKING:
    from graphmem.config import Settings

HOST = "127.0.0.1"


@click.command("ui")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
@keys_option("API keys file (as for `graphmem serve`); without keys the page needs none.")
@click.pass_obj
def ui_command(obj: Any, port: int, no_browser: bool, keys_file: str | None) -> None:
    """Explore the graph in a browser: search, entity neighbourhoods, fact timelines, Cypher.

    Serves the explorer and the API on 127.0.0.1 only, over the embedded store of --home
    (or --store), and opens the page. Nothing is written: the page only reads.

    \b
    Example:
      graphmem ingest examples/docs
      graphmem ui                      # opens http://127.0.0.1:8765/ui/
      graphmem ui --port 0 --no-browser
    """
    from graphmem.errors import GraphmemError

    try:
        settings = obj.settings()
        port = _free_port(port)
    except GraphmemError as exc:
        raise click.ClickException(str(exc)) from None
    url = f"http://{HOST}:{port}/ui/"
    click.echo(f"graphmem ui: {url}  (store: {settings.home}, group: {settings.group_id}; Ctrl+C stops it)", err=True)
    click.echo(url)
    _run(settings, keys_file, port, url, open_browser=not no_browser)


def _free_port(port: int) -> int:
    """``port`` if it can be bound on 127.0.0.1 (any free one for 0); a clear error otherwise."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {HOST}:{port} ({exc.strerror}): pass another --port, or --port 0 for any free one"
            ) from None
        return int(probe.getsockname()[1])


def _run(settings: Settings, keys_file: str | None, port: int, url: str, *, open_browser: bool) -> None:
    """Serve until Ctrl+C; open ``url`` in the default browser once the server answers."""
    import threading
    import time
    import webbrowser

    import uvicorn

    from graphmem.api.app import ApiConfig, create_app
    from graphmem.api.auth import KeyStore

    # the models load on the first search: browsing entities and Cypher needs none, and the page opens at once
    app = create_app(settings, KeyStore(keys_file), ApiConfig(preload=False))
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False))

    def opener() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.1)
        if server.started:
            webbrowser.open(url)

    if open_browser:
        threading.Thread(target=opener, name="graphmem-ui-browser", daemon=True).start()
    server.run()

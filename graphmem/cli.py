"""The ``graphmem`` command line."""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import click

from graphmem.errors import GraphmemError


class Context:
    def __init__(self, home: str | None, store: str | None, group: str | None, debug: bool) -> None:
        self.overrides = {"home": home, "store": store, "group_id": group}
        self.debug = debug

    def settings(self, **more: Any):
        from graphmem.config import Settings

        return Settings.from_env(**self.overrides, **more)

    def memory(self, **more: Any):
        from graphmem.memory import Memory

        return Memory(self.settings(**more))


def handle_errors(func: Callable) -> Callable:
    """User errors print one line and exit 1; --debug shows the traceback instead."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_object(Context) and ctx.find_object(Context).debug)
        try:
            return func(*args, **kwargs)
        except GraphmemError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug: say so briefly unless --debug
            if debug:
                raise
            click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", envvar="GRAPHMEM_HOME", type=click.Path(file_okay=False), default=None,
              help="Data directory of the embedded store [default: ./.graphmem; env GRAPHMEM_HOME].")
@click.option("--store", envvar="GRAPHMEM_STORE", default=None,
              help="'falkordb' (embedded, default) or neo4j://user:pass@host:7687/db [env GRAPHMEM_STORE].")
@click.option("--group", envvar="GRAPHMEM_GROUP_ID", default=None, help="Tenant group id [default: default].")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="graphmem")
@click.pass_context
def main(ctx: click.Context, home: str | None, store: str | None, group: str | None, debug: bool) -> None:
    """graphmem: a temporal knowledge-graph memory with multi-hop retrieval.

    \b
    Example:
      graphmem ingest examples/docs
      graphmem search "Which river flows past the town where the Halvard Library stands?"
    """
    ctx.obj = Context(home, store, group, debug)


# -- ingest --------------------------------------------------------------------
@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--pipeline", "pipeline", default=None,
              help="Pipeline spec: a name from pipelines/ (e.g. documents) or a YAML file.")
@click.option("--chunk-words", type=int, default=None, help="Passage length in words [default: 200].")
@click.option("--chunk-overlap", type=int, default=None, help="Words shared by consecutive passages [default: 30].")
@click.option("--embedder", default=None, help="'minilm', a model folder, or http://host:port of `graphmem embed-serve`.")
@click.option("--processes", type=click.IntRange(1), default=None,
              help="spaCy worker processes (parallel extraction; pair with a GPU --embedder) [default: 1].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
@handle_errors
def ingest(obj: Context, paths: tuple[str, ...], pipeline: str | None, chunk_words: int | None,
           chunk_overlap: int | None, embedder: str | None, processes: int | None, quiet: bool) -> None:
    """Ingest documents: files, directories (recursive) or globs of .txt, .md, .jsonl.

    Every file is validated before anything is written: a bad file stops the run
    with an error naming it (and the line), and the store is left as it was.
    Unchanged documents are skipped; changed ones replace their old passages.

    \b
    Example:
      graphmem ingest examples/docs
      graphmem ingest 'notes/**/*.md' --chunk-words 150
    """
    from graphmem.ingest.readers import read_documents
    from graphmem.pipelines import load_pipeline

    spec = load_pipeline(pipeline) if pipeline else {}
    settings = obj.settings(**{**spec.get("settings", {}), **{k: v for k, v in {
        "chunk_words": chunk_words, "chunk_overlap": chunk_overlap, "embedder": embedder,
        "extract_processes": processes}.items() if v is not None}})
    documents = read_documents(paths, settings.max_file_bytes)
    from graphmem.memory import Memory

    with Memory(settings) as memory, _progress(len(documents), "ingesting", quiet) as advance:
        report = memory.ingest_documents(documents, progress=advance)
    click.echo(f"ingested {report.summary()}")


class _progress:
    """A rich progress bar on stderr (silent when not a terminal or with --quiet)."""

    def __init__(self, total: int, label: str, quiet: bool) -> None:
        self.total, self.label = total, label
        self.enabled = not quiet and total > 0
        self._bar = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- search ----------------------------------------------------------------------
@main.command()
@click.argument("query", required=False)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Passages to return.")
@click.option("--mode", type=click.Choice(["graph", "dense", "bm25"]), default="graph", show_default=True,
              help="graph = seeds + personalized PageRank; dense / bm25 = the baselines.")
@click.option("--file", "query_file", type=click.Path(exists=True, dir_okay=False),
              help="JSONL of queries ({\"question\": ...} or {\"query\": ...} per line), searched as one batch.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
@handle_errors
def search(obj: Context, query: str | None, k: int, mode: str, query_file: str | None, as_json: bool) -> None:
    """Find the passages that answer QUERY, following the graph across hops.

    \b
    Example:
      graphmem search "Which river flows past the town where the Halvard Library stands?" -k 3
      graphmem search --file questions.jsonl --json
    """
    if (query is None) == (query_file is None):
        raise click.UsageError("give a QUERY or --file, not both")
    queries = [query] if query is not None else _read_queries(Path(query_file))
    with obj.memory() as memory:
        results = memory.search_many(queries, k, mode=mode)
    if as_json:
        payload = [{"query": q, "results": [r.model_dump(mode="json") for r in rows]} for q, rows in zip(queries, results)]
        click.echo(json.dumps(payload[0] if query is not None else payload, indent=2, ensure_ascii=False))
        return
    for q, rows in zip(queries, results):
        _print_hits(q, rows)


def _read_queries(path: Path) -> list[str]:
    from graphmem.errors import InputError

    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path=path, line=number) from None
        text = record.get("question") or record.get("query") if isinstance(record, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise InputError("needs a non-empty 'question' or 'query' string", path=path, line=number)
        queries.append(text)
    if not queries:
        raise InputError("no queries in file", path=path)
    return queries


def _print_hits(query: str, rows: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=query, show_lines=True, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("passage")
    table.add_column("via")
    for r in rows:
        where = Path(r.source).name if r.source else ""
        head = f"[bold]{r.title}[/bold] [dim]({where})[/dim]\n" if r.title or where else ""
        table.add_row(str(r.rank), f"{r.score:.4f}", head + _escape(r.content.strip()), _escape(", ".join(r.entities[:4])))
    if not rows:
        click.echo("no results (is the store empty? run `graphmem ingest PATH` first)")
        return
    Console(width=int(os.environ.get("COLUMNS", "120"))).print(table)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# -- cypher --------------------------------------------------------------------------
@main.command()
@click.argument("query", required=False)
@click.option("--file", "query_file", type=click.Path(exists=True, dir_okay=False), help="Read the query from a file.")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="Query parameter ($NAME); VALUE is parsed as JSON when it can be. Repeatable.")
@click.option("--write", is_flag=True, help="Allow writes (queries are read-only by default).")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="Rows to print at most.")
@click.option("--timeout", type=click.IntRange(1), default=30, show_default=True, help="Seconds before the query is stopped.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.pass_obj
@handle_errors
def cypher(obj: Context, query: str | None, query_file: str | None, params: tuple[str, ...], write: bool,
           limit: int, timeout: int, as_json: bool) -> None:
    """Run a Cypher query against the store (read-only unless --write).

    \b
    Example:
      graphmem cypher "MATCH (e:Entity) RETURN e.name, e.type LIMIT 10"
      graphmem cypher "MATCH (e:Entity {name: \\$name})-[f:FACT]-() RETURN f.text" -p name='"Mirela Toskova"'
    """
    if (query is None) == (query_file is None):
        raise click.UsageError("give a QUERY or --file, not both")
    text = query if query is not None else Path(query_file).read_text(encoding="utf-8")
    parsed = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--param takes NAME=VALUE, got {item!r}")
        try:
            parsed[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[name.strip()] = value
    from graphmem.store import open_store

    store = open_store(obj.settings())
    try:
        columns, rows = store.cypher(text, parsed, write=write, timeout_ms=timeout * 1000)
    finally:
        store.close()
    truncated = len(rows) > limit
    rows = rows[:limit]
    if as_json:
        click.echo(json.dumps([dict(zip(columns, row)) for row in rows], indent=2, ensure_ascii=False, default=str))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns) if columns else Table("result")
        for row in rows:
            table.add_row(*[_escape(_cell(v)) for v in row])
        Console(width=int(os.environ.get("COLUMNS", "160"))).print(table)
        click.echo(f"{len(rows)} row(s){' (truncated; raise --limit)' if truncated else ''}", err=True)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


# -- stats ---------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def stats(obj: Context, as_json: bool) -> None:
    """Count sources, episodes, entities, facts, mentions and synonym edges.

    \b
    Example:
      graphmem stats
    """
    from graphmem.store import open_store
    from graphmem.store.graph import Graph

    settings = obj.settings()
    store = open_store(settings)
    try:
        counts = Graph(store, settings.group_id).stats()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(counts))
    else:
        for key, value in counts.items():
            click.echo(f"{key:>10}  {value}")


# -- db ----------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Start, stop or inspect the embedded FalkorDB server of the data directory.

    Other commands start it on demand and stop it when they finish, unless it
    was already running (e.g. started here with `graphmem db start`).
    """


def _server(obj: Context):
    from graphmem.store.falkordb_server import EmbeddedServer

    return EmbeddedServer(obj.settings().home)


@db.command("start")
@click.pass_obj
@handle_errors
def db_start(obj: Context) -> None:
    """Start the embedded store and leave it running.

    \b
    Example:
      graphmem db start
    """
    server = _server(obj)
    started = server.start()
    click.echo(f"{'started' if started else 'already running'}: {server.socket}")


@db.command("stop")
@click.pass_obj
@handle_errors
def db_stop(obj: Context) -> None:
    """Stop the embedded store (its append-only file is flushed first).

    \b
    Example:
      graphmem db stop
    """
    server = _server(obj)
    click.echo("stopped" if server.stop() else "not running")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def db_status(obj: Context, as_json: bool) -> None:
    """Say whether the embedded store runs, its socket and data size.

    \b
    Example:
      graphmem db status
    """
    status = _server(obj).status()
    if as_json:
        click.echo(json.dumps({"running": status.running, "pid": status.pid, "socket": str(status.socket),
                               "data_bytes": status.data_bytes}))
    else:
        state = f"running (pid {status.pid})" if status.running else "stopped"
        click.echo(f"{state}; socket {status.socket}; data {status.data_bytes / 1e6:.1f} MB")


# -- embed-serve -----------------------------------------------------------------------
@main.command("embed-serve")
@click.option("--model", default="minilm", show_default=True,
              help="Packaged model name or a local sentence-transformers folder.")
@click.option("--device", default="auto", show_default=True,
              help="cuda (every visible GPU, one worker each), cuda:N, cpu, or auto (GPUs if any).")
@click.option("--dtype", type=click.Choice(["auto", "fp16", "bf16", "fp32"]), default="auto", show_default=True,
              help="Model precision; auto = fp16 on CUDA, fp32 on CPU.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=8081, show_default=True)
@click.option("--max-batch", type=click.IntRange(1), default=256, show_default=True,
              help="Most texts per model batch (merged across requests).")
@click.option("--max-wait-ms", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Longest a text waits for its batch to fill.")
@click.option("--max-queue", type=click.IntRange(1), default=16384, show_default=True,
              help="Texts that may wait; beyond that requests get 429 with Retry-After.")
@click.option("--max-texts", type=click.IntRange(1), default=2048, show_default=True,
              help="Most texts per request (413 beyond).")
@click.option("--max-chars", type=click.IntRange(1), default=1_000_000, show_default=True,
              help="Most characters per request (413 beyond).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1), default=60.0, show_default=True,
              help="Seconds a request may take before it gets 504.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_obj
@handle_errors
def embed_serve(obj: Context, model: str, device: str, dtype: str, host: str, port: int, max_batch: int,
                max_wait_ms: float, max_queue: int, max_texts: int, max_chars: int, timeout_s: float,
                log_level: str) -> None:
    """Serve embeddings over HTTP: OpenAI-compatible POST /v1/embeddings with dynamic batching.

    Concurrent requests are merged into batches of up to --max-batch texts (or
    whatever arrived within --max-wait-ms), sorted by length, and run in fp16 on
    each visible GPU. GET /healthz describes the model; GET /metrics is Prometheus text.
    Point ingestion at it with `graphmem ingest --embedder http://HOST:PORT ...`.

    \b
    Example:
      graphmem embed-serve --device cuda --host 0.0.0.0 --port 8081
      curl -s localhost:8081/v1/embeddings -H 'content-type: application/json' \\
           -d '{"input": ["hello world"], "model": "minilm"}'
    """
    from graphmem.embed.local import resolve_model_path
    from graphmem.embed.service import ServiceConfig, serve

    if max_queue < max_batch:
        raise click.UsageError("--max-queue must be at least --max-batch")
    resolve_model_path(model)  # fail fast with a clear error before uvicorn starts
    config = ServiceConfig(model=model, device=device, dtype=dtype, max_batch=max_batch, max_wait_ms=max_wait_ms,
                           max_queue=max_queue, max_texts=max_texts, max_chars=max_chars, request_timeout_s=timeout_s)
    serve(config, host=host, port=port, log_level=log_level)


if __name__ == "__main__":  # pragma: no cover
    main()

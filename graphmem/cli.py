"""The ``graphmem`` command line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from graphmem.cli_options import embedder_option, keys_option, log_level_option
from graphmem.errors import GraphmemError

if TYPE_CHECKING:
    from datetime import datetime

    from graphmem.admin import Admin, Bar
    from graphmem.config import Settings
    from graphmem.eval.runner import EvalReport
    from graphmem.ingest.dialogue import DialogueFormat
    from graphmem.ingest.report import IngestReport
    from graphmem.memory import Memory, SearchMode
    from graphmem.store.falkordb_server import EmbeddedServer


class Context:
    def __init__(self, home: str | None, store: str | None, group: str | None, debug: bool) -> None:
        self.overrides = {"home": home, "store": store, "group_id": group}
        self.debug = debug

    def settings(self, **more: Any) -> Settings:
        from graphmem.config import Settings

        # explicit --home/--store/--group win over a pipeline spec's values
        given = {k: v for k, v in self.overrides.items() if v is not None}
        return Settings.from_env(**{**more, **given})

    def memory(self, **more: Any) -> Memory:
        from graphmem.memory import Memory

        return Memory(self.settings(**more))

    def admin(self) -> Admin:
        from graphmem.admin import Admin

        return Admin(self.settings())


def handle_errors(func: Callable) -> Callable:
    """User errors print one line and exit 1; --debug shows the traceback instead."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        found = ctx.find_object(Context)
        debug = bool(found and found.debug)
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
@click.option(
    "--home",
    envvar="GRAPHMEM_HOME",
    type=click.Path(file_okay=False),
    default=None,
    help="Data directory of the embedded store [default: ./.graphmem; env GRAPHMEM_HOME].",
)
@click.option(
    "--store",
    envvar="GRAPHMEM_STORE",
    default=None,
    help="'falkordb' (embedded, default) or neo4j://user:pass@host:7687/db [env GRAPHMEM_STORE].",
)
@click.option("--group", envvar="GRAPHMEM_GROUP_ID", default=None, help="Tenant group id [default: default].")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="graphmem")
@click.pass_context
def main(ctx: click.Context, home: str | None, store: str | None, group: str | None, debug: bool) -> None:
    """graphmem: a temporal knowledge-graph memory with multi-hop retrieval.

    \b
    Example:
      graphmem ingest examples/docs
      graphmem search "In what year was the company that operates the Marigold Star founded?"
    """
    ctx.obj = Context(home, store, group, debug)


# -- ingest --------------------------------------------------------------------
@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--pipeline",
    "pipeline",
    default=None,
    help="Pipeline spec: a name from pipelines/ (e.g. documents) or a YAML file.",
)
@click.option("--chunk-words", type=int, default=None, help="Passage length in words [default: 200].")
@click.option("--chunk-overlap", type=int, default=None, help="Words shared by consecutive passages [default: 30].")
@embedder_option()
@click.option(
    "--processes",
    type=click.IntRange(0),
    default=None,
    help="spaCy worker processes: 0 = automatic (all cores but one, for ingestions of more than "
    "two batches), 1 = in-process, N = N workers (pair many with a GPU --embedder) [default: 0].",
)
@click.option(
    "--max-errors",
    type=click.IntRange(0),
    default=None,
    help="Skip up to N bad files or JSONL records (reported) instead of stopping at the first.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--update-recipe",
    is_flag=True,
    help="Replace the group's stored recipe when this ingestion's settings differ from it "
    "(without it such an ingestion is refused, naming what differs).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Run as a Ray job (pip install 'graphmem[ray]'): spaCy and embedding in Ray actors, writes "
    "here. No ADDRESS: a local Ray instance; 'auto' or host:port: that cluster. Same graph.",
)
@click.option("--ray-workers", type=click.IntRange(1), default=None, help="spaCy actors of --ray [default: free CPUs].")
@click.pass_obj
@handle_errors
def ingest(
    obj: Context,
    paths: tuple[str, ...],
    pipeline: str | None,
    chunk_words: int | None,
    chunk_overlap: int | None,
    embedder: str | None,
    processes: int | None,
    max_errors: int | None,
    quiet: bool,
    update_recipe: bool,
    ray_address: str | None,
    ray_workers: int | None,
) -> None:
    """Ingest documents: files, directories (recursive) or globs of .txt, .md, .jsonl
    (files of other types in a directory are left out, and listed).

    Every file is validated before anything is written: a bad file stops the run
    with an error naming it (and the line), and the store is left as it was.
    Unchanged documents are skipped; changed ones replace their old passages.
    The group keeps the recipe (pipeline, chunking, extraction, retrieval and
    temporal settings) of its first ingestion; searches use it by default.

    \b
    Example:
      graphmem ingest examples/docs
      graphmem ingest 'notes/**/*.md' --chunk-words 150
      graphmem ingest dirty.jsonl --max-errors 100
      graphmem ingest corpus/ --ray auto
    """
    from graphmem.pipelines import load_pipeline, read_with

    spec = load_pipeline(pipeline) if pipeline else {}
    settings = obj.settings(
        **{
            **spec.get("settings", {}),
            **{
                k: v
                for k, v in {
                    "chunk_words": chunk_words,
                    "chunk_overlap": chunk_overlap,
                    "embedder": embedder,
                    "extract_processes": processes,
                }.items()
                if v is not None
            },
        }
    )
    from graphmem.memory import Memory
    from graphmem.pipelines import DIALOGUE_READERS

    if spec.get("reader") in DIALOGUE_READERS:  # chat logs: see `graphmem ingest-chat`
        if ray_address is not None:
            raise click.UsageError("--ray ingests documents; chat logs are ingested without it")
        from graphmem.ingest.dialogue import read_conversations

        conversations = read_conversations(paths, DIALOGUE_READERS[spec["reader"]], settings.max_file_bytes)
        with (
            Memory(settings, update_recipe=update_recipe) as memory,
            _progress(sum(len(c.turns) for c in conversations), "ingesting turns", quiet) as advance,
        ):
            report = memory.ingest_conversations(conversations, progress=advance)
        click.echo(f"ingested {report.summary()}")
        return
    bad: list | None = [] if max_errors is not None else None
    documents = read_with(spec.get("reader", "documents"), paths, settings.max_file_bytes, bad, max_errors or 0)
    for error in bad or []:
        click.echo(f"skipped: {error}", err=True)
    if ray_address is not None:
        from graphmem.ingest.ray_ingest import ingest_with_progress

        with Memory(settings, update_recipe=update_recipe) as memory:
            report = ingest_with_progress(memory, documents, ray_address, ray_workers, quiet)
    else:
        from graphmem.ingest.units import expected_passages

        with (
            Memory(settings, update_recipe=update_recipe) as memory,
            _progress(expected_passages(documents, settings), "ingesting passages", quiet) as advance,
        ):
            report = memory.ingest_documents(documents, progress=advance)
    report.errors[:0] = [str(error) for error in bad or []]
    _left_out(report, paths, spec.get("reader", "documents") == "documents")
    skipped = f", {len(bad)} bad records skipped" if bad else ""
    click.echo(f"ingested {report.summary()}{skipped}")


def _left_out(report: IngestReport, paths: tuple[str, ...], applies: bool, suffixes: set[str] | None = None) -> None:
    """Name on stderr (and record in ``report``) the files of other types that the given
    folders held, which directory ingestion leaves out."""
    if not applies:
        return
    from graphmem.ingest.readers import SUFFIXES
    from graphmem.ingest.skipped import left_out_lines, unsupported_files

    report.unsupported = unsupported_files(paths, suffixes or SUFFIXES)
    for line in left_out_lines(report.unsupported, suffixes or SUFFIXES):
        click.echo(line, err=True)


def _progress(total: int, label: str, quiet: bool) -> Any:
    """Progress on stderr: a rich bar on a terminal, plain lines with rate and ETA when piped,
    nothing with --quiet (see graphmem.ingest.progress)."""
    from graphmem.ingest.progress import progress_display

    return progress_display(total, label, quiet)


# -- search ----------------------------------------------------------------------
@main.command()
@click.argument("query", required=False)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Passages to return.")
@click.option(
    "--mode",
    type=click.Choice(["graph", "dense", "bm25"]),
    default="graph",
    show_default=True,
    help="graph = seeds + personalized PageRank; dense / bm25 = the baselines.",
)
@click.option(
    "--file",
    "query_file",
    type=click.Path(exists=True, dir_okay=False),
    help='JSONL of queries ({"question": ...} or {"query": ...} per line), searched as one batch.',
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="DATE",
    help="Answer as of this ISO date/time: only facts valid then, only episodes that had happened.",
)
@click.option(
    "--pipeline",
    "pipeline",
    default=None,
    help="Search with this pipeline spec's retrieval knobs instead of the group's stored recipe.",
)
@click.pass_obj
@handle_errors
def search(
    obj: Context,
    query: str | None,
    k: int,
    mode: SearchMode,  # one of the click.Choice above
    query_file: str | None,
    as_json: bool,
    as_of: str | None,
    pipeline: str | None,
) -> None:
    """Find the passages that answer QUERY, following the graph across hops.

    The retrieval knobs are the group's stored recipe (those of the pipeline it
    was ingested with), overridden by GRAPHMEM_RETRIEVAL or --pipeline.

    \b
    Example:
      graphmem search "In what year was the company that operates the Marigold Star founded?" -k 3
      graphmem search --file questions.jsonl --json
      graphmem search "Where does Ana live?" --as-of 2022-01-01
    """
    if (query is None) == (query_file is None):
        raise click.UsageError("give a QUERY or --file, not both")
    when = _when(as_of)
    if query is not None:
        from graphmem.errors import InputError
        from graphmem.query_limits import query_problem

        problem = query_problem(query)
        if problem is not None:  # the REST API's 422 detail, word for word
            raise InputError(f"query: {problem}")
        queries = [query]
    elif query_file is not None:
        queries = _read_queries(Path(query_file))
    from graphmem.daemon.client import search_many

    # through the warm process of `graphmem db start` when one runs, else in this process
    results = search_many(obj.settings(**_search_settings(pipeline)), queries, k, mode=mode, as_of=when)
    if as_json:
        payload = [
            {"query": q, "results": [r.model_dump(mode="json") for r in rows]}
            for q, rows in zip(queries, results, strict=True)
        ]
        click.echo(json.dumps(payload[0] if query is not None else payload, indent=2, ensure_ascii=False))
        return
    for q, rows in zip(queries, results, strict=True):
        _print_hits(q, rows)


def _search_settings(pipeline: str | None) -> dict[str, Any]:
    """The search part of a pipeline spec (its retrieval knobs, whole) as settings overrides."""
    from graphmem.pipelines import load_pipeline

    return {"retrieval": load_pipeline(pipeline)["settings"]["retrieval"]} if pipeline else {}


def _read_queries(path: Path) -> list[str]:
    from graphmem.errors import InputError
    from graphmem.ingest.readers import jsonl_records
    from graphmem.query_limits import query_problem

    queries = []
    for number, record in jsonl_records(path):
        text = record.get("question") or record.get("query")
        if not isinstance(text, str):
            raise InputError("needs a non-empty 'question' or 'query' string", path=path, line=number)
        problem = query_problem(text)
        if problem is not None:
            raise InputError(problem, path=path, line=number)
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
        table.add_row(
            str(r.rank), f"{r.score:.4f}", head + _escape(r.content.strip()), _escape(", ".join(r.entities[:4]))
        )
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
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Query parameter ($NAME); VALUE is parsed as JSON when it can be. Repeatable.",
)
@click.option("--write", is_flag=True, help="Allow writes (queries are read-only by default).")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="Rows to print at most.")
@click.option(
    "--timeout",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Seconds before the query is stopped (a read-only query is given up on at 1.4x at the latest).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.pass_obj
@handle_errors
def cypher(
    obj: Context,
    query: str | None,
    query_file: str | None,
    params: tuple[str, ...],
    write: bool,
    limit: int,
    timeout: int,
    as_json: bool,
) -> None:
    """Run a Cypher query against the store (read-only unless --write).

    Read-only means read transactions on Neo4j and read-only queries on
    FalkorDB: a query that writes is refused. $group_id is filled in from
    --group when the query uses it and no --param sets it. Ready-made
    exploration queries are in cypher/examples/.

    \b
    Example:
      graphmem cypher "MATCH (e:Entity) RETURN e.name, e.type LIMIT 10"
      graphmem cypher "MATCH (e:Entity {name: \\$name})-[f:FACT]-() RETURN f.text" -p name='"Kessary Bridge"'
      graphmem cypher --file cypher/examples/neighbourhood.cypher --param name="Serrin River"
    """
    if (query is None) == (query_file is None):
        raise click.UsageError("give a QUERY or --file, not both")
    text = query if query is not None else Path(str(query_file)).read_text(encoding="utf-8")
    parsed = _parse_params(params)
    if "$group_id" in text and "group_id" not in parsed:  # the tenant, as every query filters on it
        parsed["group_id"] = obj.settings().group_id
    with obj.memory() as memory:

        def run() -> tuple[list[str], list[list[Any]]]:
            return memory.cypher(text, parsed, write=write, timeout_ms=timeout * 1000, max_rows=limit + 1)

        columns, rows = run() if write else _within(timeout, run)
    _print_rows(columns, rows[:limit], truncated=len(rows) > limit, as_json=as_json)


#: how long past its timeout a read query is waited for (the store's own timeout fires first
#: on queries it can stop; see _within)
_TIMEOUT_GRACE = 1.4


def _within(timeout: int, call: Callable[[], Any]) -> Any:
    """``call()``'s answer, or an error once ``timeout`` x :data:`_TIMEOUT_GRACE` seconds have
    passed without one. The store checks a query's timeout between rows, so a query that
    spends its time inside one expression (a comprehension over a long list) runs far past
    it; the command stops waiting instead. An embedded store started by this command is
    stopped as it closes; one running for others finishes the expression on its own."""
    import threading

    from graphmem.errors import StoreError

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            box["error"] = exc

    worker = threading.Thread(target=work, name="graphmem-cypher", daemon=True)
    worker.start()
    worker.join(timeout * _TIMEOUT_GRACE)
    if worker.is_alive():
        raise StoreError(
            f"the query ran past its timeout of {timeout} s (gave up waiting after {timeout * _TIMEOUT_GRACE:g} s: "
            "the store checks a timeout only between rows, so a query busy inside one long expression, "
            "this one or one the store was still running, goes on past it)"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]


def _parse_params(params: tuple[str, ...]) -> dict[str, Any]:
    """``--param NAME=VALUE`` options: VALUE as JSON when it parses, else as text."""
    parsed: dict[str, Any] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--param takes NAME=VALUE, got {item!r}")
        try:
            parsed[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[name.strip()] = value
    return parsed


def _print_rows(columns: list[str], rows: list[list[Any]], *, truncated: bool, as_json: bool) -> None:
    if as_json:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        click.echo(json.dumps(records, indent=2, ensure_ascii=False, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns) if columns else Table("result")
    for row in rows:
        table.add_row(*[_escape(_cell(_dated(name, v))) for name, v in zip(columns or ["result"], row, strict=False)])
    Console(width=int(os.environ.get("COLUMNS", "160"))).print(table)
    click.echo(f"{len(rows)} row(s){' (truncated; raise --limit)' if truncated else ''}", err=True)


#: column and property names that hold times (the store keeps UTC epoch milliseconds):
#: created_at, valid_at, occurred_at, ..., since, until, valid_until, valid_from
_TIME_NAME = ("_at", "_until", "_from", "since", "until")


def _dated(name: str, value: Any) -> Any:
    """A table cell's value with epoch milliseconds under a time-like name (a column, or a
    property of a returned node or relationship) shown as ISO 8601 UTC; --json keeps them."""
    if isinstance(value, dict):
        return {k: _dated(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dated(name, v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and name.split(".")[-1].lower().endswith(_TIME_NAME):
        from graphmem.timeutil import from_ms

        try:
            when = from_ms(value)
        except (OverflowError, OSError, ValueError):  # not a time after all: show it as it is
            return value
        assert when is not None
        text = when.isoformat(timespec="milliseconds" if value % 1000 else "seconds")
        return text.replace("+00:00", "Z").replace("T00:00:00Z", "")
    return value


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
    from graphmem.memory import Memory

    with Memory(obj.settings()) as memory:
        counts = memory.stats()
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


def _server(obj: Context) -> EmbeddedServer:
    from graphmem.store.falkordb_server import EmbeddedServer

    return EmbeddedServer(obj.settings().home)


@db.command("start")
@click.option("--store-only", is_flag=True, help="Start the store alone, without the warm search process.")
@click.pass_obj
@handle_errors
def db_start(obj: Context, store_only: bool) -> None:
    """Start the embedded store and the warm search process, and leave both running.

    The search process (graphmem/daemon) holds the store connection, the embedding
    model and the projection, so later `graphmem search` commands of this home answer
    without loading them; it sees every ingestion. It listens on a private unix socket
    of this user's; `graphmem db stop` stops it.

    \b
    Example:
      graphmem db start
    """
    server = _server(obj)
    started = server.start()
    click.echo(f"{'started' if started else 'already running'}: {server.socket}")
    if not store_only:
        from graphmem.daemon import socket_path
        from graphmem.daemon.client import start

        warm = start(obj.settings())
        click.echo(f"search process {'started' if warm else 'already running'}: {socket_path(obj.settings().home)}")


@db.command("stop")
@click.pass_obj
@handle_errors
def db_stop(obj: Context) -> None:
    """Stop the search process and the embedded store (its append-only file is flushed first).

    \b
    Example:
      graphmem db stop
    """
    from graphmem.daemon.client import stop

    if stop(obj.settings().home):
        click.echo("search process stopped")
    server = _server(obj)
    click.echo("stopped" if server.stop() else "not running")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def db_status(obj: Context, as_json: bool) -> None:
    """Say whether the embedded store runs, its socket and data size, and whether the
    warm search process runs.

    \b
    Example:
      graphmem db status
    """
    from graphmem.daemon.client import ping

    status = _server(obj).status()
    warm = ping(obj.settings().home)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "running": status.running,
                    "pid": status.pid,
                    "socket": str(status.socket),
                    "data_bytes": status.data_bytes,
                    "search_process": warm,
                }
            )
        )
    else:
        state = f"running (pid {status.pid})" if status.running else "stopped"
        click.echo(f"{state}; socket {status.socket}; data {status.data_bytes / 1e6:.1f} MB")
        searching = f"running (pid {warm['pid']}, {warm['searches']} searches)" if warm else "not running"
        click.echo(f"search process: {searching}")


# -- eval ----------------------------------------------------------------------------
@main.command("eval")
@click.argument("dataset")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding the named datasets [default: $GRAPHMEM_DATA_DIR, else ../shared/data].",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Ask only the first N questions.")
@click.option(
    "--corpus-limit",
    type=click.IntRange(0),
    default=None,
    help="Ingest only the gold passages of the asked questions plus the first M others (quick runs).",
)
@click.option(
    "--systems",
    default="graphmem,dense,bm25",
    show_default=True,
    help="Comma-separated systems to score: graphmem (graph + PPR), dense, bm25.",
)
@click.option("--ks", default="2,5,10", show_default=True, help="Comma-separated k of Recall@k.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the full report (summary, per-question results, ingest speed) as JSON.",
)
@click.option(
    "--home",
    "eval_home",
    type=click.Path(file_okay=False),
    default=None,
    help="Store folder to ingest into and keep; reused on the next run (ingestion skipped) "
    "[default: a fresh temporary folder, deleted afterwards].",
)
@click.option("--keep", is_flag=True, help="Keep the temporary store and print where it is.")
@click.option(
    "--pipeline",
    default=None,
    help="Pipeline spec for ingestion [default: pipelines/DATASET.yaml if there is one, else passages kept whole].",
)
@embedder_option()
@click.option(
    "--retrieval",
    "retrieval",
    multiple=True,
    metavar="KNOB=VALUE",
    help="Override a retrieval setting (e.g. damping=0.6, fusion_weight=0.7). Repeatable.",
)
@click.option(
    "--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Questions per batched search."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.pass_obj
@handle_errors
def eval_command(
    obj: Context,
    dataset: str,
    data_dir: str | None,
    limit: int | None,
    corpus_limit: int | None,
    systems: str,
    ks: str,
    out: str | None,
    eval_home: str | None,
    keep: bool,
    pipeline: str | None,
    embedder: str | None,
    retrieval: tuple[str, ...],
    batch_size: int,
    quiet: bool,
) -> None:
    """Measure passage Recall@k of graphmem against dense and BM25 baselines on a benchmark.

    DATASET is musique, hotpotqa or 2wikimultihopqa (looked up under --data-dir)
    or a path to a folder with corpus.jsonl and questions.jsonl (HippoRAG format);
    or locomo, or a LoCoMo-format .json file: each conversation is ingested into its
    own group and its questions score the evidence turns (Recall per category).
    The corpus is ingested into a fresh store (the global --home is not used),
    then every question runs with each system. Latency (p50/p95) is retrieval
    only, one query at a time, after the query embedding.

    \b
    Example:
      graphmem eval musique --limit 20 --corpus-limit 300
      graphmem eval hotpotqa --out results/hotpotqa.json
      graphmem eval ./my_set --systems graphmem,dense --ks 1,5
      graphmem eval musique --home /tmp/mq --retrieval damping=0.6   # 2nd run skips ingestion
      graphmem eval locomo --out results/locomo.json
    """
    from graphmem.eval import evaluate, load_dataset

    k_values = _parse_ks(ks)
    chosen = tuple(s.strip() for s in systems.split(",") if s.strip())
    data = load_dataset(dataset, data_dir=data_dir, limit=limit, corpus_limit=corpus_limit)
    pipeline, spec_settings = _eval_spec(data.name, pipeline, embedder, retrieval)
    settings = obj.settings(**spec_settings)  # its home is replaced by evaluate(): always a fresh or --home store
    click.echo(
        f"{data.name}: {len(data.questions)} questions, {len(data.passages)} passages "
        f"(pipeline {pipeline or 'default'}, embedder {settings.embedder})",
        err=True,
    )
    report = evaluate(
        data,
        settings,
        systems=chosen,
        ks=k_values,
        home=eval_home,
        keep=keep,
        batch_size=batch_size,
        progress=lambda label, total: _progress(total, label, quiet),
    )
    _eval_output(report, out, eval_home)


def _parse_ks(ks: str) -> tuple[int, ...]:
    try:
        return tuple(int(k) for k in ks.split(",") if k.strip())
    except ValueError:
        raise click.UsageError(f"--ks takes comma-separated integers, got {ks!r}") from None


def _eval_spec(
    dataset: str, pipeline: str | None, embedder: str | None, retrieval: tuple[str, ...]
) -> tuple[str | None, dict[str, Any]]:
    """The pipeline an eval ingests with (the dataset's own, when there is one, unless
    --pipeline names another) and the settings it runs with: the pipeline's, with
    --embedder and the --retrieval knobs over them."""
    from graphmem.pipelines import available, load_pipeline

    if pipeline is None and dataset in available():
        pipeline = dataset
    spec_settings: dict[str, Any] = (
        load_pipeline(pipeline)["settings"] if pipeline else {"chunk_words": 10_000, "chunk_overlap": 0}
    )
    if embedder is not None:
        spec_settings = {**spec_settings, "embedder": embedder}
    if retrieval:
        spec_settings = {**spec_settings, "retrieval": _retrieval_knobs(spec_settings.get("retrieval"), retrieval)}
    return pipeline, spec_settings


def _retrieval_knobs(base: dict[str, Any] | None, items: tuple[str, ...]) -> dict[str, Any]:
    """``base`` with the KNOB=VALUE ``items`` set (a value is read as JSON, else kept as text)."""
    knobs = dict(base or {})
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--retrieval takes KNOB=VALUE, got {item!r}")
        try:
            knobs[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            knobs[name.strip()] = value
    return knobs


def _eval_output(report: EvalReport, out: str | None, eval_home: str | None) -> None:
    """The report's tables on stdout, the JSON file when asked, and where a kept store is."""
    from rich.console import Console

    from graphmem.eval import print_report, write_json

    print_report(report, Console(width=int(os.environ.get("COLUMNS", "120"))))
    if out:
        click.echo(f"wrote {write_json(report, out)}", err=True)
    if report.home and not eval_home:
        click.echo(f"store kept in {report.home} (reuse it with --home)", err=True)


# -- export / import / migrate ------------------------------------------------------
def _bar(quiet: bool) -> Bar:
    return lambda total, label: _progress(total, label, quiet)


@main.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "graphml"]),
    default=None,
    help="File format [default: from the extension; .graphml -> graphml, else jsonl].",
)
@click.option("--group-only", is_flag=True, help="Export only the group of --group (default: every group).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
@handle_errors
def export_cmd(obj: Context, path: str, fmt: str | None, group_only: bool, quiet: bool) -> None:
    """Write the graph to PATH: JSONL (nodes, relationships and embeddings; what
    `graphmem import` reads) or GraphML (for networkx, Gephi, yEd; no embeddings).

    \b
    Example:
      graphmem export graph.jsonl
      graphmem export graph.graphml --group-only --group team-a
    """
    group = obj.settings().group_id if group_only else None
    with obj.admin() as admin:
        written = admin.export(path, fmt=fmt, group=group, bar=_bar(quiet))
    click.echo(f"exported {_counts_line(written)} to {path}")


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--batch-size", type=click.IntRange(1), default=500, show_default=True, help="Rows per write.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
@handle_errors
def import_cmd(obj: Context, path: str, batch_size: int, quiet: bool) -> None:
    """Load a JSONL export (from `graphmem export`) into the store (GraphML is export-only).

    The whole file is checked first: a bad line stops the import with its line
    number and field, before anything is written. Elements merge on their
    uuids, so importing the same file twice changes nothing.

    \b
    Example:
      graphmem --store neo4j://neo4j:password@localhost:7687 import graph.jsonl
    """
    with obj.admin() as admin:
        loaded = admin.import_file(path, batch_size=batch_size, bar=_bar(quiet))
    click.echo(f"imported {_counts_line(loaded)}")


@main.command("migrate")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URI",
    help="Target: neo4j://user:pass@host:7687/db (or bolt://...), or falkordb:PATH for another data directory.",
)
@click.option(
    "--batch-size", type=click.IntRange(1), default=500, show_default=True, help="Rows per write transaction."
)
@click.option("--restart", is_flag=True, help="Ignore a checkpoint left by an interrupted run and copy from the start.")
@click.option(
    "--dim",
    type=click.IntRange(1),
    default=None,
    help="Vector index size when the graph holds no embeddings yet [default: taken from the data].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
@handle_errors
def migrate_cmd(obj: Context, to: str, batch_size: int, restart: bool, dim: int | None, quiet: bool) -> None:
    """Copy the whole graph (every group) from this store into another, then verify counts.

    Runs in batches with a progress bar. Interrupted (Ctrl-C, lost connection)?
    Run the same command again: it resumes from the checkpoint in the data
    directory, and pages copied twice are harmless (every write merges on uuids).

    \b
    Example:
      graphmem migrate --to neo4j://neo4j:password@localhost:7687/neo4j
    """
    with obj.admin() as admin:
        result = admin.migrate(to, batch_size=batch_size, restart=restart, dim=dim, bar=_bar(quiet))
    how = "resumed and finished" if result.resumed else "copied"
    click.echo(f"{how}: {_counts_line(result.target)}; counts match the source")


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


# -- embed-serve -----------------------------------------------------------------------
@main.command("embed-serve")
@click.option(
    "--model", default="minilm", show_default=True, help="Packaged model name or a local sentence-transformers folder."
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="cuda (every visible GPU, one worker each), cuda:N, cpu, or auto (GPUs if any).",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "fp16", "bf16", "fp32"]),
    default="auto",
    show_default=True,
    help="Model precision; auto = fp16 on CUDA, fp32 on CPU.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=8081, show_default=True)
@click.option(
    "--max-batch",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Most texts per model batch (merged across requests).",
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Longest a text waits for its batch to fill.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(1),
    default=16384,
    show_default=True,
    help="Texts that may wait; beyond that requests get 429 with Retry-After.",
)
@click.option(
    "--max-texts", type=click.IntRange(1), default=2048, show_default=True, help="Most texts per request (413 beyond)."
)
@click.option(
    "--max-chars",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Most characters per request (413 beyond).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0.1),
    default=60.0,
    show_default=True,
    help="Seconds a request may take before it gets 504.",
)
@click.option(
    "--worker",
    type=click.Choice(["auto", "thread", "process"]),
    default="auto",
    show_default=True,
    help="Run each model replica in its own process, one per device (process: the HTTP loop keeps "
    "its GIL; 82% of the GPU ceiling against 79% for thread on an H100) or in the serving "
    "process (thread: no second model load, better on CPU); auto = process on GPUs.",
)
@click.option(
    "--switch-interval",
    type=click.FloatRange(1e-5, 1.0),
    default=None,
    help="Python's thread switch interval in seconds for the serving process, where the HTTP loop "
    "and the batcher share one GIL [Python's default, 0.005].",
)
@log_level_option("info")
@click.pass_obj
@handle_errors
def embed_serve(
    obj: Context,
    model: str,
    device: str,
    dtype: str,
    host: str,
    port: int,
    max_batch: int,
    max_wait_ms: float,
    max_queue: int,
    max_texts: int,
    max_chars: int,
    timeout_s: float,
    worker: str,
    switch_interval: float | None,
    log_level: str,
) -> None:
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
    if switch_interval:
        import sys

        sys.setswitchinterval(switch_interval)
    config = ServiceConfig(
        model=model,
        device=device,
        dtype=dtype,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        max_texts=max_texts,
        max_chars=max_chars,
        request_timeout_s=timeout_s,
        worker=worker,
    )
    serve(config, host=host, port=port, log_level=log_level)


# -- serve / keys (the REST API) ---------------------------------------------------------
_KEYS_HELP = "API key file (hashed keys) [env GRAPHMEM_API_KEYS_FILE]."


@main.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on; anything but loopback needs API keys.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@keys_option(_KEYS_HELP + " GRAPHMEM_API_KEYS / GRAPHMEM_ADMIN_KEY add keys from the environment.")
@click.option("--cors-origin", multiple=True, help="Allowed CORS origin (repeatable); none by default.")
@click.option(
    "--max-body-mb",
    type=click.FloatRange(0.001),
    default=20.0,
    show_default=True,
    help="Largest request body (413 beyond).",
)
@embedder_option()
@log_level_option("info")
@click.option(
    "--pipeline",
    "pipeline",
    default=None,
    help="Search every group with this pipeline spec's retrieval knobs [default: each group's stored recipe].",
)
@click.pass_obj
@handle_errors
def serve_cmd(
    obj: Context,
    host: str,
    port: int,
    keys_file: str | None,
    cors_origin: tuple[str, ...],
    max_body_mb: float,
    embedder: str | None,
    log_level: str,
    pipeline: str | None,
) -> None:
    """Serve the retrieval REST API (search, ingest, facts, cypher) for RAG pipelines.

    Every request carries an API key (Authorization: Bearer KEY or X-API-Key) bound
    to one or more groups, and everything it reads or writes stays in them. With no
    keys configured the server runs in local mode on 127.0.0.1 only. OpenAPI docs
    are at /docs.

    \b
    Example:
      graphmem keys add --keys keys.json --group default      # prints the key once
      graphmem serve --keys keys.json --host 0.0.0.0 --port 8000
      curl -s localhost:8000/v1/search -H "Authorization: Bearer $KEY" \\
           -H 'content-type: application/json' -d '{"query": "Who built the Kessary Bridge?", "k": 5}'
    """
    from graphmem.api.app import ApiConfig, check_bind, serve
    from graphmem.api.auth import KeyStore

    keys = KeyStore(keys_file)
    check_bind(host, keys)  # refuse before loading anything
    config = ApiConfig(max_body_bytes=int(max_body_mb * 1024 * 1024), cors_origins=list(cors_origin))
    settings = obj.settings(embedder=embedder, **_search_settings(pipeline))
    serve(settings, keys, config, host=host, port=port, log_level=log_level)


@main.group("keys")
def keys_group() -> None:
    """Manage API keys of `graphmem serve` (stored hashed in a JSON file).

    \b
    Example:
      graphmem keys add --keys keys.json --group default --name ci
      graphmem keys list --keys keys.json
      graphmem keys revoke --keys keys.json k_1a2b3c4d
    """


def _key_file(path: str | None) -> str:
    if not path:
        raise click.UsageError("give the key file with --keys FILE (or GRAPHMEM_API_KEYS_FILE)")
    return path


@keys_group.command("add")
@keys_option(_KEYS_HELP)
@click.option("--group", "groups", multiple=True, help="Group the key may read and write (repeatable).")
@click.option("--admin", is_flag=True, help="The key may manage keys (POST/GET/DELETE /v1/admin/keys).")
@click.option("--name", default="", help="A label to recognise the key by.")
@handle_errors
def keys_add(keys_file: str | None, groups: tuple[str, ...], admin: bool, name: str) -> None:
    """Create a key and print it (once: only its hash is stored)."""
    from graphmem.api.auth import KeyStore

    key, record = KeyStore(_key_file(keys_file), env={}).add(list(groups), admin=admin, name=name)
    click.echo(key)
    click.echo(f"id {record.id}, groups {','.join(record.groups) or '-'}{', admin' if admin else ''}", err=True)


@keys_group.command("list")
@keys_option(_KEYS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def keys_list(keys_file: str | None, as_json: bool) -> None:
    """List keys (ids, names, groups; never the keys)."""
    from graphmem.api.auth import KeyStore

    records = [r.public() for r in KeyStore(_key_file(keys_file), env={}).list()]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for r in records:
        click.echo(f"{r['id']}\t{r['name'] or '-'}\t{','.join(r['groups']) or '-'}\t{'admin' if r['admin'] else ''}")


@keys_group.command("revoke")
@keys_option(_KEYS_HELP)
@click.argument("key_id")
@handle_errors
def keys_revoke(keys_file: str | None, key_id: str) -> None:
    """Revoke a key by id (a running server re-reads nothing: restart it, or revoke through the admin API)."""
    from graphmem.api.auth import KeyStore
    from graphmem.errors import InputError

    if not KeyStore(_key_file(keys_file), env={}).revoke(key_id):
        raise InputError(f"no key {key_id!r} in {keys_file}")
    click.echo(f"revoked {key_id}")


@main.group("groups", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def groups_group(ctx: click.Context, as_json: bool) -> None:
    """List the groups (tenants) of the store with their sizes; `groups drop` deletes one.

    Each group lives apart in the store (its own graph on the embedded store).

    \b
    Example:
      graphmem groups
      graphmem groups drop team-a --yes
    """
    if ctx.invoked_subcommand is not None:
        return
    with ctx.obj.admin() as admin:
        sizes = admin.group_sizes()
    if as_json:
        click.echo(json.dumps(sizes, indent=2))
        return
    for group, counts in sizes.items():
        click.echo(
            f"{group}\t{counts['sources']} sources\t{counts['episodes']} episodes\t{counts['entities']} entities"
        )
    if not sizes:
        click.echo("no groups yet", err=True)


@groups_group.command("drop")
@click.argument("group")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@handle_errors
def groups_drop(obj: Context, group: str, yes: bool) -> None:
    """Delete a group and everything in it (its graph, and its cached projection)."""
    from graphmem.errors import InputError

    if not yes:
        click.confirm(f"delete group {group!r} and everything in it?", abort=True)
    with obj.admin() as admin:
        existed = admin.drop_group(group)
    if not existed:
        raise InputError(f"no group {group!r} in the store")
    click.echo(f"dropped group {group}")


# -- dialogues, facts over time, forgetting ------------------------------------------
def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    from graphmem.timeutil import parse_when

    try:
        return parse_when(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None


@main.command("ingest-chat")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "json", "locomo", "transcript"]),
    default="auto",
    show_default=True,
    help="auto: .json as graphmem JSON chat or LoCoMo (detected), other files as transcripts.",
)
@embedder_option()
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--update-recipe",
    is_flag=True,
    help="Replace the group's stored recipe when this ingestion's settings differ from it "
    "(without it such an ingestion is refused, naming what differs).",
)
@click.pass_obj
@handle_errors
def ingest_chat(
    obj: Context,
    paths: tuple[str, ...],
    fmt: DialogueFormat,  # one of the click.Choice above
    embedder: str | None,
    quiet: bool,
    update_recipe: bool,
) -> None:
    """Ingest conversations: one episode per turn, speakers as entities, facts over time.

    Formats (see graphmem/ingest/dialogue.py): graphmem JSON chat
    (conversations -> sessions with started_at -> turns with speaker, text,
    time), LoCoMo JSON, and transcripts of 'Speaker: text' lines
    ('[2023-05-08 13:56] Ana: ...' for a turn time, '--- 2023-05-08 ---' for a
    session break). Every file is validated first; a bad turn stops the run
    with an error naming the file, line and turn, and nothing is written.
    Unchanged conversations are skipped; grown ones get only their new turns.

    \b
    Example:
      graphmem ingest-chat chats.json
      graphmem ingest-chat standup.txt --format transcript
    """
    from graphmem.ingest.dialogue import read_conversations
    from graphmem.memory import Memory

    settings = obj.settings(**({"embedder": embedder} if embedder else {}))
    conversations = read_conversations(paths, fmt, settings.max_file_bytes)
    total = sum(len(c.turns) for c in conversations)
    with Memory(settings, update_recipe=update_recipe) as memory, _progress(total, "ingesting turns", quiet) as advance:
        report = memory.ingest_conversations(conversations, progress=advance)
    from graphmem.ingest.dialogue import JSON_SUFFIXES, TRANSCRIPT_SUFFIXES

    _left_out(report, paths, True, JSON_SUFFIXES | TRANSCRIPT_SUFFIXES)
    click.echo(f"ingested {report.summary()}")


@main.command()
@click.argument("entity")
@click.option("--history", is_flag=True, help="All facts, current and superseded, as a timeline.")
@click.option("--as-of", "as_of", default=None, metavar="DATE", help="The facts valid at this ISO date/time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def facts(obj: Context, entity: str, history: bool, as_of: str | None, as_json: bool) -> None:
    """Print what graphmem knows about ENTITY (a name, alias or uuid) as a timeline.

    By default only current facts; --history adds the superseded ones with the
    interval they held (valid_at .. invalid_at) and when graphmem learned they
    ended (expired_at); --as-of shows the facts valid at that time.

    \b
    Example:
      graphmem facts "Ana" --history
      graphmem facts "Ana" --as-of 2022-01-01 --json
    """
    when = _when(as_of)
    with obj.memory() as memory:
        records = memory.facts(entity, as_of=when, history=history)
    if as_json:
        click.echo(
            json.dumps(
                [{**r.model_dump(mode="json"), "current": r.current} for r in records], indent=2, ensure_ascii=False
            )
        )
        return
    if not records:
        click.echo(f"no {'' if history else 'current '}facts about {entity!r}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("valid from", "until", "fact", "status", title=f"facts about {entity}", title_justify="left")
    for r in records:
        status = "current" if r.current else f"superseded (learned {_day(r.expired_at)})"
        table.add_row(_day(r.valid_at) or "?", _day(r.invalid_at) or "now", _escape(r.text), status)
    Console(width=int(os.environ.get("COLUMNS", "120"))).print(table)


def _day(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M") if (value.hour, value.minute) != (0, 0) else value.strftime("%Y-%m-%d")


@main.command()
@click.option(
    "--source",
    default=None,
    metavar="NAME|UUID",
    help="Forget a whole document or conversation: its path as given to ingest (relative to here, "
    "or absolute; path#id for a JSONL record) or its uuid.",
)
@click.option("--episode", default=None, metavar="UUID", help="Forget one passage or turn.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON counts.")
@click.pass_obj
@handle_errors
def forget(obj: Context, source: str | None, episode: str | None, as_json: bool) -> None:
    """Delete a source or an episode and every fact that only it supports.

    Facts also asserted elsewhere stay; the turn order is relinked around a
    forgotten episode; a fact the forgotten one had superseded is current again.

    \b
    Example:
      graphmem forget --source notes/old.md
      graphmem forget --episode 1b4e28ba-2fa1-11d2-883f-0016d3cca427
    """
    if (source is None) == (episode is None):
        raise click.UsageError("give --source or --episode (exactly one)")
    with obj.memory() as memory:
        removed = memory.forget(source=source, episode=episode)
    if as_json:
        click.echo(json.dumps(removed))
    else:
        click.echo(
            f"forgot {removed['episodes']} episode(s), {removed['facts']} fact(s), "
            f"{removed['entities']} entit(y/ies); {removed['reopened']} fact(s) current again"
        )


# -- backup / restore (embedded store) ---------------------------------------------
@main.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.pass_obj
@handle_errors
def backup_cmd(obj: Context, path: str) -> None:
    """Write a consistent snapshot of the embedded store to PATH (safe while others write).

    \b
    Example:
      graphmem backup backups/graphmem-2026-05-01.rdb
      graphmem --home fresh restore backups/graphmem-2026-05-01.rdb
    """
    settings = obj.settings()
    with obj.admin() as admin:
        size = admin.backup(path)
    click.echo(f"backed up {settings.home} to {path} ({size / 1e6:.1f} MB)")


@main.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
@handle_errors
def restore_cmd(obj: Context, path: str) -> None:
    """Restore a snapshot written by `graphmem backup` into a fresh --home.

    \b
    Example:
      graphmem --home restored restore backups/graphmem-2026-05-01.rdb
      graphmem --home restored stats
    """
    settings = obj.settings()
    with obj.admin() as admin:
        admin.restore(path)
    click.echo(f"restored {path} into {settings.home}")


# `graphmem mcp` lives in graphmem/mcp/ (click only at import; the MCP SDK loads inside it)
from graphmem.mcp.command import mcp_command  # noqa: E402

main.add_command(mcp_command)


# the graph explorer (its own module: nothing heavy is imported until it runs)
from graphmem.ui.command import ui_command  # noqa: E402

main.add_command(ui_command)


if __name__ == "__main__":  # pragma: no cover
    main()

"""Store-wide administration: what spans groups or the whole data directory.

:class:`Admin` lists and drops groups, exports, imports and migrates the graph,
and snapshots the embedded store. The ``graphmem`` commands (``groups``,
``export``, ``import``, ``migrate``, ``backup``, ``restore``) and the API's
``/v1/admin`` routes both call it, so each operation is written once.

    >>> from graphmem.admin import Admin
    >>> with Admin(Settings(home=".graphmem")) as admin:
    ...     admin.export("graph.jsonl")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path

from graphmem.config import Settings
from graphmem.errors import ConfigError, InputError
from graphmem.store.base import GraphStore
from graphmem.store.graph import Graph
from graphmem.store.transfer import Migration

#: advance(n): n more elements done
Advance = Callable[[int], None]
#: bar(total, label): a context manager giving ``advance`` (the CLI's progress bar)
Bar = Callable[[int, str], AbstractContextManager[Advance]]
EXPORT_FORMATS = ("jsonl", "graphml")


def _refuse_xml(path: Path) -> None:
    """A GraphML (or any XML) file gets an error that says so, not "invalid JSON" on line 1."""
    try:
        with path.open("rb") as f:
            head = f.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return  # the reader reports it with its own words
    if path.suffix.lower() in {".graphml", ".xml"} or head.startswith(b"<"):
        raise InputError(
            "GraphML (XML) import is not supported: `graphmem import` reads the JSONL that "
            "`graphmem export graph.jsonl` writes (GraphML export is for networkx, Gephi and yEd)",
            path=path,
        )


def _no_bar(total: int, label: str) -> AbstractContextManager[Advance]:
    return nullcontext(lambda n: None)


class Admin:
    """Operations over every group of the store ``settings`` names (or ``store``: one already
    open, left open by :meth:`close`). The store is opened on first use, so backup and
    restore, which work on the data directory, never open it."""

    def __init__(self, settings: Settings, *, store: GraphStore | None = None) -> None:
        self.settings = settings
        self._store = store
        self._owns_store = store is None

    def close(self) -> None:
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _opened(self) -> GraphStore:
        if self._store is None:
            from graphmem.store import open_store

            self._store = open_store(self.settings)
        return self._store

    # -- groups ---------------------------------------------------------------------------
    def groups(self) -> list[str]:
        """Every group the store holds."""
        return self._opened().groups()

    def group_sizes(self) -> dict[str, dict[str, int]]:
        """Every group with its counts (sources, episodes, entities...)."""
        store = self._opened()
        return {group: Graph(store, group).stats() for group in store.groups()}

    def drop_group(self, group: str) -> bool:
        """Delete ``group`` from the store and its cached projection; True if it existed."""
        from graphmem.retrieve.projection import remove_group_cache

        existed = self._opened().drop_group(group)
        remove_group_cache(Path(self.settings.home) / "cache", group)
        return existed

    def ping(self) -> str:
        """Ask the store something (raises when it does not answer); its dialect."""
        store = self._opened()
        Graph(store, self.settings.group_id).revision()
        return str(getattr(store, "dialect", "?"))

    # -- export / import / migrate ------------------------------------------------------------
    def export(
        self, path: str | Path, *, fmt: str | None = None, group: str | None = None, bar: Bar = _no_bar
    ) -> dict[str, int]:
        """Write every group (or ``group``) to ``path``: JSONL (what :meth:`import_file` reads)
        or GraphML (no embeddings); ``fmt`` defaults from the extension. The file is readable
        by this user only: it holds every passage. Returns counts per kind."""
        from graphmem.store import transfer

        fmt = fmt or ("graphml" if str(path).lower().endswith(".graphml") else "jsonl")
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
        store = self._opened()
        writer = transfer.export_graphml if fmt == "graphml" else transfer.export_jsonl
        umask = os.umask(0o077)
        try:
            with bar(sum(transfer.counts(store, group).values()), f"exporting {fmt}") as advance:
                written = writer(store, path, group_id=group, progress=advance)
            os.chmod(path, 0o600)
        finally:
            os.umask(umask)
        return written

    def import_file(self, path: str | Path, *, batch_size: int = 500, bar: Bar = _no_bar) -> dict[str, int]:
        """Load a JSONL export (checked whole before anything is written; elements merge on
        their uuids, so importing a file twice changes nothing). Returns counts per kind."""
        from graphmem.store import transfer

        _refuse_xml(Path(path))
        _, total = transfer.read_jsonl(path)
        store = self._opened()
        with bar(total, "importing") as advance:
            return transfer.import_jsonl(store, path, batch_size=batch_size, progress=advance)

    def migrate(
        self, to: str, *, batch_size: int = 500, restart: bool = False, dim: int | None = None, bar: Bar = _no_bar
    ) -> Migration:
        """Copy every group into the store ``to`` names (see :meth:`open_target`), resuming from
        the checkpoint an interrupted run left in the data directory, then verify counts."""
        from graphmem.store import transfer

        source = self._opened()
        target, name = self.open_target(to)
        with ExitStack() as stack:
            stack.callback(target.close)
            advance: list[Advance] = []

            def on_total(total: int, done: int) -> None:
                advance.append(stack.enter_context(bar(total, f"migrating to {name}")))
                advance[0](done)

            return transfer.migrate(
                source,
                target,
                checkpoint=transfer.checkpoint_path(self.settings.home, name),
                target_name=name,
                batch_size=batch_size,
                dim=dim,
                restart=restart,
                on_total=on_total,
                progress=lambda n: advance[0](n),
            )

    def open_target(self, spec: str) -> tuple[GraphStore, str]:
        """A store named by ``spec``: a neo4j:// or bolt:// URI, or falkordb:PATH (the embedded
        store of another data directory). Returns (store, printable name)."""
        from graphmem.store import open_store

        if spec.startswith("falkordb:"):
            home = spec[len("falkordb:") :].removeprefix("//")
            if not home:
                raise ConfigError("--to falkordb:PATH needs the data directory PATH")
            if Path(home).resolve() == Path(self.settings.home).resolve():
                raise ConfigError("--to names this store's own data directory")
            settings = self.settings.model_copy(update={"store": "falkordb", "home": Path(home)})
            return open_store(settings), f"falkordb:{Path(home).resolve()}"
        from graphmem.store.neo4j import Neo4jTarget

        name = Neo4jTarget.parse(spec).display
        return open_store(self.settings.model_copy(update={"store": spec})), name

    # -- snapshots of the embedded store -------------------------------------------------------
    def backup(self, path: str | Path) -> int:
        """Write a consistent snapshot of the embedded store to ``path`` (safe while others
        write); returns its size in bytes."""
        from graphmem.store.backup import backup

        return backup(self._embedded_home("backup"), path)

    def restore(self, path: str | Path) -> None:
        """Load a snapshot written by :meth:`backup` into this (fresh) data directory."""
        from graphmem.store.backup import restore

        restore(path, self._embedded_home("restore"))

    def _embedded_home(self, what: str) -> Path:
        if self.settings.store.strip() not in {"falkordb", "embedded", ""}:
            raise ConfigError(
                f"{what} works on the embedded store; for Neo4j use neo4j-admin dump/load or graphmem export/import"
            )
        return Path(self.settings.home)

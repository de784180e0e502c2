"""Moving an embedded store of an older graphmem, which kept every group in one
FalkorDB graph, to one graph per group.

It runs when such a store is opened, once: each group is copied with the export
and import queries of ``cypher/transfer.cypher`` (MERGEs, so a copy interrupted
half-way is simply repeated), its counts are compared with the original's, and
the old graph is deleted only when every group's counts agree. A mismatch stops
with an error and leaves the old graph in place.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from graphmem.errors import StoreError
from graphmem.store import transfer

if TYPE_CHECKING:
    from graphmem.store.falkordb import FalkorDBStore, SingleGraph

log = logging.getLogger("graphmem.store")


def split_single_graph(store: FalkorDBStore, single: SingleGraph, home: Path) -> dict[str, dict[str, int]]:
    """Copy every group of ``single`` into its own graph of ``store``, check the counts,
    then delete ``single``. Returns the counts per group. Two processes opening the
    store at once are serialised by a lock file; the second finds nothing to do."""
    lock_dir = home / "falkordb"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "split.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if single.name not in _graph_names(store):
            return {}  # another process finished it while we waited
        groups = single.groups()
        dim = transfer.vector_dim(single)
        log.warning("moving %d group(s) of the store in %s to one graph per group", len(groups), home)
        moved: dict[str, dict[str, int]] = {}
        for group in groups:
            expected = transfer.counts(single, group)
            if dim is not None:
                store.ensure_schema(dim, group)
            transfer.copy_group(single, store, group)
            got = transfer.counts(store, group)
            if got != expected:
                detail = ", ".join(
                    f"{k}: {expected[k]} before, {got.get(k, 0)} after"
                    for k in expected
                    if expected[k] != got.get(k, 0)
                )
                raise StoreError(
                    f"moving group {group!r} to its own graph lost data ({detail}); the old graph "
                    f"{single.name!r} is kept as it was. Back up {home} and report this."
                )
            moved[group] = got
        single.delete()
        log.warning("moved groups %s; counts equal before and after", ", ".join(sorted(moved)) or "(none)")
        return moved


def _graph_names(store: FalkorDBStore) -> set[str]:
    names = store._call(lambda: store._db.list_graphs(), read=True)
    return {x.decode() if isinstance(x, bytes) else x for x in names}

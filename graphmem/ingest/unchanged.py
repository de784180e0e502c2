"""An ingestion that would write nothing, answered before any model loads.

Re-running ``graphmem ingest`` over files that have not changed is common (a cron
job, a Makefile, a second try). The ingestor would skip every source anyway (each
is stored complete with the same content hash), but only after loading the
embedding model for its schema check: seconds of start-up for nothing. Here the
same decision is made from the content hashes and the group's recipe alone.

What is checked, so the answer is the ingestor's: every source is stored
``complete`` with the same content hash (the ``done`` of the claim query), and the
group's recipe stands as it is (the same differences as the ingestion's recipe
check; the embedding model by the name the settings ask for, which must be the one
the recipe records). Anything else (no recipe yet, a changed or new source, one
being written, another model, a recipe to replace or refuse) goes the full way,
where the ingestor writes, refuses or replaces as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from graphmem import recipe
from graphmem.config import Settings
from graphmem.ingest.report import IngestReport
from graphmem.ingest.units import Source
from graphmem.model import stable_uuid
from graphmem.recipe import Recipe
from graphmem.store.graph import Graph


def stored_unchanged(graph: Graph, sources: Sequence[Source]) -> bool:
    """True when every source is stored complete with the same content."""
    rows = [
        {"uuid": stable_uuid(graph.group_id, "source", s.name), "content_hash": s.claim_row()["content_hash"]}
        for s in sources
    ]
    found = graph.store.run("sources_unchanged", rows=rows, group_id=graph.group_id)
    return bool(found) and int(found[0]["unchanged"]) == len(rows)


def unchanged_report(
    graph: Graph,
    settings: Settings,
    stored: Recipe | None,
    sources: Sequence[Source],
    report: IngestReport,
    progress: Callable[[int], None] | None,
) -> IngestReport | None:
    """``report`` filled in for an ingestion of ``sources`` that writes nothing (each one
    counted as skipped, ``progress`` told), or None when the ingestion may write or must
    check more than this can without the model (see the module's docstring).

    ``settings``: the memory's effective settings; ``stored``: the group's recipe."""
    started = time.perf_counter()
    if not sources or stored is None or not stored.ingestion.embedder:
        return None
    if settings.embedder != stored.ingestion.embedder or recipe.differences(stored, Recipe.of(settings)):
        return None
    if not stored_unchanged(graph, sources):
        return None
    report.skipped = len(sources)
    if progress is not None:
        progress(sum(s.size for s in sources))
    report.seconds = time.perf_counter() - started
    return report

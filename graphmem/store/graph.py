"""One tenant's view of a store: the writes ingestion makes and the reads
retrieval needs, each a named query from ``cypher/``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphmem.store.base import GraphStore, Row

PAGE = 5000
#: what :meth:`Graph.stats` counts
STATS = ("sources", "episodes", "entities", "facts", "mentions", "synonyms")


@dataclass
class SourceState:
    uuid: str
    content_hash: str
    state: str
    turn_count: int = 0  # dialogue sources: turns stored (a grown chat log appends after them)
    written: int = 0  # a long document being written in batches: passages fully stored


class Graph:
    """``store`` confined to ``group_id``: every query this class runs filters on it."""

    def __init__(self, store: GraphStore, group_id: str = "default", batch_size: int = 500) -> None:
        self.store = store
        self.group_id = group_id
        self.batch_size = batch_size

    # -- sources ------------------------------------------------------------
    def source(self, name: str) -> SourceState | None:
        rows = self.store.run("source_get", group_id=self.group_id, name=name)
        if not rows:
            return None
        row = rows[0]
        return SourceState(
            row["uuid"],
            row["content_hash"] or "",
            row["state"] or "",
            int(row.get("turn_count") or 0),
            int(row.get("written") or 0),
        )

    def set_turn_count(self, uuid: str, turn_count: int) -> None:
        """Dialogue sources: how many turns are stored (a grown chat log appends after them)."""
        self.store.run("source_turn_count_set", uuid=uuid, group_id=self.group_id, turn_count=turn_count)

    def set_written(self, rows: list[dict[str, Any]]) -> None:
        """``rows`` (uuid, written): how many passages of each long document are fully stored
        (0: none counted, the source is rewritten whole if it is left unfinished)."""
        if rows:
            self.store.run("sources_written_set", rows=rows, group_id=self.group_id)

    def trim_source(self, uuid: str, position: int, owner: str = "", dead: list[str] | None = None) -> list[Row]:
        """Remove a source's episodes from ``position`` on (what a batch that did not finish
        may have written), the facts only they supported and orphaned entities (as
        :meth:`clear_source`). Returns the keys of the timelines to recompute."""
        episodes = [
            row["uuid"]
            for row in self.store.run("source_episodes_from", uuid=uuid, group_id=self.group_id, position=position)
        ]
        if not episodes:
            return []
        keys = self.fact_keys_of_episodes(episodes)
        self.mark_unswept()
        self.store.run("facts_unsupport_episodes", episodes=episodes, group_id=self.group_id)
        self.store.run("facts_delete_unsupported", group_id=self.group_id)
        self.store.run("episodes_delete", episodes=episodes, group_id=self.group_id)
        self.delete_orphans(owner, dead)
        return keys

    def take_over(self, uuid: str, dead_owner: str, owner: str) -> bool:
        """Make ``owner`` the writer of a source a dead writer left in 'writing' (only if it
        still has that owner); True if it did."""
        from graphmem.store.owners import now_ms

        params = {"uuid": uuid, "group_id": self.group_id, "dead_owner": dead_owner, "owner": owner}
        return bool(self.store.run("source_takeover", now=now_ms(), **params))

    def clear_source(self, uuid: str, owner: str = "", dead: list[str] | None = None) -> dict[str, int]:
        """Remove a source's episodes, the facts only they support, and orphaned entities.

        The Source node stays (call :meth:`delete_source` to drop it too).
        Orphans are kept while another live writer (not ``owner``, not in
        ``dead``) has a source in 'writing'; a later :meth:`sweep` removes them.
        """
        params = {"uuid": uuid, "group_id": self.group_id}
        self.mark_unswept()
        self.store.run("facts_unsupport", **params)
        facts = self.store.run("facts_delete_unsupported", group_id=self.group_id)
        episodes = self.store.run("source_episodes_delete", **params)
        entities = self.delete_orphans(owner, dead)
        return {"episodes": _count(episodes), "facts": _count(facts), "entities": entities}

    def delete_orphans(self, owner: str = "", dead: list[str] | None = None, among: list[str] | None = None) -> int:
        """Delete entities nothing mentions or relates (only those of ``among``, when
        given), unless another live writer is busy."""
        dead = list(dead if dead is not None else [""])
        if among is None:
            return _count(self.store.run("entities_delete_orphans", group_id=self.group_id, owner=owner, dead=dead))
        deleted = 0
        for start in range(0, len(among), self.batch_size * 10):
            deleted += _count(
                self.store.run(
                    "entities_delete_orphans_among",
                    group_id=self.group_id,
                    owner=owner,
                    dead=dead,
                    uuids=among[start : start + self.batch_size * 10],
                )
            )
        return deleted

    # -- ownership (see graphmem.store.owners) ---------------------------------------
    def claim_sources(self, sources: list[dict[str, Any]], owner: str, dead: list[str]) -> list[dict[str, Any]]:
        """Claim sources for writing (``sources``: uuid, name, kind, uri, content_hash,
        metadata): one ``{uuid, mine, done, busy, was}`` each, in order. Each claim is
        atomic; they are sent ``batch_size`` to a query."""
        from graphmem.store.owners import now_ms

        claims: list[dict[str, Any]] = []
        for start in range(0, len(sources), self.batch_size):
            chunk = sources[start : start + self.batch_size]
            rows = [
                {**source, "metadata": json.dumps(source.get("metadata") or {}, sort_keys=True)} for source in chunk
            ]
            # rows come back in the store's order, not necessarily the input's
            by_uuid = {
                row["uuid"]: row
                for row in self.store.run(
                    "sources_claim", rows=rows, group_id=self.group_id, owner=owner, dead=dead, now=now_ms()
                )
            }
            claims += [by_uuid[source["uuid"]] for source in chunk]
        return claims

    def writing_sources(self) -> list[Row]:
        return self.store.run("sources_writing", group_id=self.group_id)

    def complete_owned(self, uuids: list[str], owner: str) -> int:
        """Mark the sources ``owner`` holds among ``uuids`` complete; how many were."""
        from graphmem.store.owners import now_ms

        return len(
            self.store.run(
                "sources_complete_owned", uuids=list(uuids), group_id=self.group_id, owner=owner, now=now_ms()
            )
        )

    def renew(self, owner: str) -> None:
        from graphmem.store.owners import now_ms

        self.store.run("sources_renew", group_id=self.group_id, owner=owner, now=now_ms())

    def sweep(self, owner: str) -> dict[str, int]:
        """Converge after crashes: take over and remove every source a dead writer
        left in 'writing' (its episodes, the facts only they support, then the
        Source itself), delete facts with no support left and orphan entities.
        Safe to run while other processes ingest: live writers are left alone."""
        from graphmem.store.owners import dead_owners, now_ms

        writing = self.writing_sources()
        dead = dead_owners(writing)
        removed = {"sources": 0, "episodes": 0, "facts": 0, "entities": 0}
        for row in writing:
            if row["owner"] not in dead:
                continue
            taken = self.store.run(
                "source_takeover",
                uuid=row["uuid"],
                group_id=self.group_id,
                dead_owner=row["owner"],
                owner=owner,
                now=now_ms(),
            )
            if not taken:
                continue  # someone else took it over first
            for key, value in self.clear_source(row["uuid"], owner, dead).items():
                removed[key] += value
            self.store.run("source_delete_owned", uuid=row["uuid"], group_id=self.group_id, owner=owner)
            removed["sources"] += 1
        seen = self.unswept()
        if seen:  # something may have left unsupported facts or orphans: check the whole group
            removed["facts"] += _count(self.store.run("facts_delete_unsupported", group_id=self.group_id))
            removed["entities"] += self.delete_orphans(owner, dead)
            self.settle_unswept(seen, 0, owner, dead)
        return removed

    # -- when the sweep checks the whole group (see cypher/ingest.cypher) ---------------
    def mark_unswept(self) -> int:
        """Before anything that may leave orphans or unsupported facts: the next :meth:`sweep`
        checks the whole group. Returns the mark as raised (for :meth:`settle_unswept`)."""
        from graphmem.store.owners import now_ms

        return int(self.store.run("sweep_mark", group_id=self.group_id, first=now_ms())[0]["unswept"])

    def unswept(self) -> int:
        """0 when nothing since the last whole-group sweep may have left orphans."""
        rows = self.store.run("sweep_unswept", group_id=self.group_id)
        return int(rows[0]["unswept"] or 0) if rows else 0

    def settle_unswept(self, seen: int, to: int, owner: str, dead: list[str]) -> bool:
        """Set the mark from ``seen`` to ``to``, unless it changed meanwhile or another live
        writer is busy; True if it was set."""
        rows = self.store.run("sweep_settle", group_id=self.group_id, owner=owner, dead=list(dead), seen=seen, to=to)
        return bool(rows)

    def delete_source(self, uuid: str) -> dict[str, int]:
        removed = self.clear_source(uuid)
        self.store.run("source_delete", uuid=uuid, group_id=self.group_id)
        return removed

    def find_source(self, key: str) -> Row | None:
        """A source by name or uuid."""
        rows = self.store.run("source_find", group_id=self.group_id, key=key)
        return rows[0] if rows else None

    def delete_episode(self, uuid: str) -> dict[str, int]:
        """Remove one episode: its NEXT neighbours are linked to each other, facts it
        alone supported go, and so do entities nothing mentions or relates any more."""
        rows = self.store.run("episode_neighbours", uuid=uuid, group_id=self.group_id)
        if not rows:
            return {"episodes": 0, "facts": 0, "entities": 0}
        self.mark_unswept()
        self.store.run("facts_unsupport_episodes", episodes=[uuid], group_id=self.group_id)
        facts = self.store.run("facts_delete_unsupported", group_id=self.group_id)
        episodes = self.store.run("episodes_delete", episodes=[uuid], group_id=self.group_id)
        previous, following = rows[0].get("previous"), rows[0].get("next")
        if previous and following:
            self.write("next_upsert", [{"from": previous, "to": following}])
        entities = self.store.run("entities_delete_orphans", group_id=self.group_id)
        return {"episodes": _count(episodes), "facts": _count(facts), "entities": _count(entities)}

    def sources(self) -> list[Row]:
        return self.store.run("sources_list", group_id=self.group_id)

    # -- timelines (see graphmem.resolve.temporal) ----------------------------------
    def fact_keys_of_source(self, uuid: str) -> list[Row]:
        """``{subject, predicate}`` of the facts the source's episodes support: the timelines
        to recompute once they are gone."""
        return self.store.run("facts_keys_of_source", uuid=uuid, group_id=self.group_id)

    def fact_keys_of_episodes(self, uuids: list[str]) -> list[Row]:
        """``{subject, predicate}`` of the facts some of the episodes ``uuids`` support."""
        return self.store.run("facts_keys_of_episodes", episodes=list(uuids), group_id=self.group_id)

    def facts_by_subject_predicates(self, keys: list[dict[str, Any]]) -> list[Row]:
        """The facts of the timelines ``keys`` (``{subject, predicates}``): uuid, subject, object,
        predicate and their four times."""
        if not keys:
            return []
        return self.store.run("facts_by_subject_predicates", rows=keys, group_id=self.group_id)

    # -- batched writes -------------------------------------------------------
    def write(self, name: str, rows: list[Row]) -> None:
        if rows:
            self.store.run_rows(name, rows, self.batch_size, group_id=self.group_id)

    def write_vectors(self, name: str, rows: list[Row], vectors: np.ndarray) -> None:
        """Write ``rows`` with ``vectors`` (one per row, in order) as their ``embedding``.

        The rows carry numpy float32 vectors; each store puts them on its own wire
        (see :class:`~graphmem.store.base.GraphStore`)."""
        if rows:
            vectors = np.asarray(vectors, dtype=np.float32)
            payload = [{**row, "embedding": vector} for row, vector in zip(rows, vectors, strict=True)]
            self.store.run_rows(name, payload, max(1, self.batch_size // 4), group_id=self.group_id)

    def bump_revision(self) -> int:
        from graphmem.store.owners import now_ms

        return int(self.store.run("revision_bump", group_id=self.group_id, first=now_ms())[0]["revision"])

    def revision(self) -> int:
        rows = self.store.run("revision_get", group_id=self.group_id)
        return int(rows[0]["revision"]) if rows else 0

    def meta(self) -> tuple[int, str | None]:
        """The group's revision and its stored recipe (JSON text, None if it has none), in one read."""
        rows = self.store.run("group_meta", group_id=self.group_id)
        return (int(rows[0]["revision"] or 0), rows[0]["recipe"]) if rows else (0, None)

    def set_recipe(self, recipe: str) -> None:
        """Store the recipe (JSON text, see graphmem/recipe.py) the group is ingested and searched with."""
        from graphmem.store.owners import now_ms

        self.store.run("recipe_set", group_id=self.group_id, recipe=recipe, first=now_ms())

    # -- reads -----------------------------------------------------------------
    def pages(self, name: str) -> Iterator[Row]:
        """All rows of a paged projection query."""
        skip = 0
        while True:
            rows = self.store.run(name, group_id=self.group_id, skip=skip, limit=PAGE)
            yield from rows
            if len(rows) < PAGE:
                return
            skip += PAGE

    def episodes(self, uuids: list[str]) -> dict[str, Row]:
        if not uuids:
            return {}
        rows = self.store.run("episodes_get", uuids=list(uuids), group_id=self.group_id)
        return {row["uuid"]: row for row in rows}

    def entities(self) -> list[Row]:
        return self.store.run("entities_all", group_id=self.group_id)

    def entity(self, uuid: str) -> Row | None:
        """One entity by uuid (name, type, aliases, summary, how many episodes mention it)."""
        rows = self.store.run("entity_get", uuid=uuid, group_id=self.group_id)
        return rows[0] if rows else None

    def entities_for_index(self, page: int = 5000) -> Iterator[Row]:
        """Every entity's uuid, name key and vector, read in pages of node ids (each page costs
        its own size, whatever the size of the group)."""
        rows = self.store.run("entity_index_span", group_id=self.group_id)
        last = rows[0]["last"] if rows else None
        if last is None:
            return
        for lo in range(0, int(last) + 1, page):
            yield from self.store.run("entity_index_ids", group_id=self.group_id, lo=lo, hi=lo + page)

    def find_entity(self, name: str, key: str) -> Row | None:
        """An entity by uuid, name, alias or name key (``key``: its normalised name)."""
        rows = self.store.run("entity_find", group_id=self.group_id, name=name, key=key)
        return rows[0] if rows else None

    def entity_facts(self, uuid: str) -> list[Row]:
        """Every fact of an entity, current and ended, with the episodes that assert it."""
        return self.store.run("entity_facts", uuid=uuid, group_id=self.group_id)

    def ensure_schema(self, dim: int) -> None:
        """The group's indexes, for vectors of ``dim`` floats."""
        self.store.ensure_schema(dim, self.group_id)

    def cypher(
        self,
        text: str,
        params: dict[str, Any] | None = None,
        *,
        write: bool = False,
        timeout_ms: int = 30_000,
        max_rows: int | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        """User Cypher in this group (see :meth:`GraphStore.cypher`). A write may remove what
        entities hang on: the next sweep checks the whole group."""
        if write:
            self.mark_unswept()
        return self.store.cypher(
            text, params, group_id=self.group_id, write=write, timeout_ms=timeout_ms, max_rows=max_rows
        )

    def stats(self) -> dict[str, int]:
        rows = self.store.run("stats", group_id=self.group_id)
        if not rows:  # a group that holds nothing yet
            return dict.fromkeys(STATS, 0)
        return {k: int(v or 0) for k, v in rows[0].items()}


def _count(rows: list[Row]) -> int:
    return int(rows[0]["deleted"]) if rows else 0

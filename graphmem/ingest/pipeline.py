"""The ingestion pipeline: documents and dialogues -> episodes -> entities and facts -> graph.

Documents and conversations are *sources* whose *units* (passages, turns)
become episodes (:mod:`graphmem.ingest.units`); both take the one path below.

Write protocol (what makes ingestion idempotent, resumable and safe with
concurrent writers): a run first *sweeps*: every source a dead writer left in
``writing`` is taken over and removed (episodes, facts only they support,
orphan entities). It then *claims* its sources in atomic queries: a source
complete with the same content hash is skipped, one another live process is
writing is left to it, a dialogue whose stored turns are an exact prefix of
the new ones gets only its new turns, any other is marked ``writing`` with
this run's owner token (cleared first if it had old content). Its entities,
episodes, mentions and facts are merged on deterministic uuids; last it is
marked ``complete``. A final sweep deletes entities that nothing kept. See
docs/reliability.md.

A long document is written in slices of ``batch_size`` passages (chunked as a
stream, one batch at a time: memory stays bounded). After each slice but its
last the Source records how many passages are fully stored; a run that
re-ingests the same content after a crash takes such a source over before the
start sweep would remove it, trims what an unfinished batch wrote after that
mark, and resumes there. The source is marked complete only after its last
slice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from graphmem.config import Settings
from graphmem.embed.base import Embedder
from graphmem.extract.base import Extraction, Extractor
from graphmem.ingest.context_vectors import TextMap, UnitVectors, embed_units, extraction_text_and_map, vectors_for
from graphmem.ingest.dialogue import Conversation
from graphmem.ingest.readers import Document
from graphmem.ingest.report import GraphDelta, IngestReport
from graphmem.ingest.units import ConversationSource, DocumentSource, Passage, Source, TurnUnit, Unit, turn_uuid
from graphmem.model import entity_key, stable_uuid
from graphmem.resolve import temporal
from graphmem.resolve.entities import EntityIndex
from graphmem.store.graph import Graph
from graphmem.store.owners import dead_owners, new_owner, now_ms, release
from graphmem.timeutil import to_ms

Progress = Callable[[int], None]

__all__ = ["GraphDelta", "IngestReport", "Ingestor", "Passage", "Progress", "TurnUnit", "turn_uuid"]


def extraction_text(content: str) -> str:
    """What the extractor reads of a passage (see :func:`extraction_text_and_map`)."""
    return extraction_text_and_map(content)[0]


def batch_names(extractions: Sequence[Extraction], people: Sequence[str] = ()) -> dict[str, str]:
    """Every name a batch may resolve, in order of first appearance, with its type:
    ``people`` (speakers) as PERSON, mentions as extracted, triple ends untyped."""
    types: dict[str, str] = {}
    _add_names(types, extractions, people)
    return types


def _add_names(types: dict[str, str], extractions: Sequence[Extraction], people: Sequence[str] = ()) -> None:
    for name in people:
        types.setdefault(name, "PERSON")
    for ex in extractions:
        for mention in ex.mentions:
            types.setdefault(mention.name, mention.type)
        for triple in ex.triples:
            types.setdefault(triple.subject, "")
            types.setdefault(triple.object, "")


def load_entity_index(graph: Graph, dim: int, settings: Settings) -> EntityIndex:
    r = settings.retrieval
    # neighbour search as the retrieval settings ask: exact, always HNSW, or HNSW from ann_min_rows names
    ann_min_rows = {"exact": None, "ann": 0}.get(r.vector_index, r.ann_min_rows)
    index = EntityIndex(
        graph.group_id,
        dim,
        synonym_threshold=r.synonym_threshold,
        synonym_top_k=r.synonym_top_k,
        ann_min_rows=ann_min_rows,
    )
    for row in sorted(graph.entities_for_index(), key=lambda row: row["uuid"]):
        vector = row.get("embedding")
        if row.get("name_key") and vector is not None and len(vector) == dim:
            index.add(row["name_key"], row["uuid"], np.asarray(vector, dtype=np.float32))
    return index


@dataclass
class Claimed:
    """A source this run writes: its uuid, and its first unit to write (after a stored prefix)."""

    source: Source
    uuid: str
    start: int = 0


@dataclass
class WriteRun:
    """One claim on the group (see :meth:`Ingestor._claim`): the owner token sources are
    claimed with, and what the closing sweep needs."""

    owner: str
    dead: list[str] = field(default_factory=list)
    #: the start sweep removed something, or this run created orphans and removed them
    changed: bool = False
    #: sources claimed (the revision is bumped at the end when any were)
    claimed: int = 0
    #: entities this run created, and those its mentions and facts refer to
    created: list[str] = field(default_factory=list)
    referenced: set[str] = field(default_factory=set)
    #: the group's sweep mark as this run raised it (0: not raised; see Graph.mark_unswept)
    mark: int = 0
    #: sources a dead writer left part-written with this run's content, taken over: uuid ->
    #: passages fully stored (the run resumes there)
    resumed: dict[str, int] = field(default_factory=dict)


@dataclass
class BatchPlan:
    """A batch of units embedded and resolved, waiting for its facts and its write."""

    claimed: list[Claimed]
    units: Sequence[Unit]
    extractions: list[Extraction]
    unit_vectors: np.ndarray
    pooled_facts: dict[str, np.ndarray]
    entity_rows: list[dict[str, Any]]
    entity_vectors: np.ndarray
    alias_rows: list[dict[str, Any]]
    synonyms: list[dict[str, Any]]
    uuid_of: dict[str, str]
    fact_rows: list[dict[str, Any]] = field(default_factory=list)
    fact_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    timeline: temporal.TemporalPlan = field(default_factory=lambda: temporal.TemporalPlan([], [], 0))

    def plan_facts(self, ingestor: Ingestor) -> None:
        """Fact rows, their vectors and the temporal plan (reads the stored timelines)."""
        self.fact_rows, self.timeline = ingestor._facts(self.units, self.extractions, self.uuid_of)
        with ingestor.embedding:
            self.fact_vectors = vectors_for(
                [row["text"] for row in self.fact_rows], self.pooled_facts, ingestor.embedder
            )

    def episode_rows(self, group_id: str, now: int) -> list[dict[str, Any]]:
        return [unit.episode_row(group_id, now) for unit in self.units]

    def mention_rows(self) -> list[dict[str, Any]]:
        return [
            {"episode": u.uuid, "entity": self.uuid_of[m.name], "count": m.count, "role": u.role_of(m.name)}
            for u, ex in zip(self.units, self.extractions, strict=True)
            for m in ex.mentions
            if m.name in self.uuid_of
        ]

    def next_rows(self) -> list[dict[str, str]]:
        """NEXT edges: between consecutive units of one source, and from a stored episode to
        the first unit appended after it."""
        rows = [{"from": u.follows, "to": u.uuid} for u in self.units if u.follows]
        return rows + [
            {"from": a.uuid, "to": b.uuid}
            for a, b in zip(self.units, self.units[1:], strict=False)
            if a.source_uuid == b.source_uuid
        ]

    def references(self) -> set[str]:
        """The entities this batch's mentions and facts refer to."""
        mentioned = {self.uuid_of[m.name] for ex in self.extractions for m in ex.mentions if m.name in self.uuid_of}
        return mentioned | {u for row in self.fact_rows for u in (row["subject"], row["object"])}


class Ingestor:
    """Runs the pipeline for one :class:`Graph` with one embedder and extractor."""

    def __init__(
        self,
        graph: Graph,
        embedder: Embedder | Callable[[], Embedder],
        extractor: Extractor | Callable[[], Extractor],
        settings: Settings,
        background_extractor: Callable[[], Extractor] | None = None,
    ) -> None:
        """``embedder``, ``extractor``: the models, or functions that load them on first use
        (forgetting needs neither). ``background_extractor``: gives an extractor with worker
        processes, used for runs of more than two batches so parsing overlaps embedding
        (started on first use)."""
        self.graph = graph
        self._embedder = embedder
        self._extractor = extractor
        self.settings = settings
        self.background_extractor = background_extractor
        self._index: EntityIndex | None = None
        self._index_revision = -1
        #: held while the embedder runs: the parsing thread embeds the next batch while this
        #: one may embed a leftover name or fact (a local model's tokenizer is not thread-safe)
        self.embedding = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if not isinstance(self._embedder, Embedder):
            self._embedder = self._embedder()
        return self._embedder

    @property
    def extractor(self) -> Extractor:
        if not hasattr(self._extractor, "extract"):
            self._extractor = self._extractor()
        return self._extractor

    @property
    def index(self) -> EntityIndex:
        if self._index is None:
            self._index_revision = self.graph.revision()
            self._index = load_entity_index(self.graph, self.embedder.dim, self.settings)
        return self._index

    def invalidate_index(self) -> None:
        """Forget the entity index: the next ingestion reloads it from the store (call after
        anything but this ingestor removed or changed entities)."""
        self._index = None

    # -- the two entry points --------------------------------------------------------
    def ingest(self, documents: Sequence[Document], progress: Progress | None = None) -> IngestReport:
        """Ingest ``documents``; ``progress(n)`` is called as ``n`` more passages are written
        or skipped (skipped documents count their expected passages, see
        :func:`graphmem.ingest.units.expected_passages`).

        Crash- and concurrency-safe: the run first sweeps what dead writers left
        half-written, then claims each source (skipping those complete with the
        same content, and those another live process is writing right now),
        writes the claimed ones batch by batch, and sweeps orphans at the end.
        """
        report = IngestReport(documents=len(documents))
        return self._ingest([DocumentSource(d) for d in documents], report, progress)

    def ingest_conversations(
        self, conversations: Sequence[Conversation], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest dialogues: one episode per turn, ``NEXT`` edges in order, speakers as entities.

        Unchanged conversations are skipped. One that grew (its stored turns are
        an exact prefix of the new ones) gets only its new turns appended; any
        other change rewrites the source. ``progress(n)``: ``n`` more turns done.
        """
        # the projection is reloaded after dialogue ingestion (speaker roles, NEXT edges and
        # timelines change in place), so no delta is collected
        report = IngestReport(documents=len(conversations), unit="conversations", piece="turns", delta=None)
        return self._ingest([ConversationSource(c) for c in conversations], report, progress)

    def _ingest(self, sources: Sequence[Source], report: IngestReport, progress: Progress | None) -> IngestReport:
        with self._claim(report, sources) as run:
            todo = self._claim_sources(sources, run, report, progress)
            if todo:  # a crash from here on may leave orphans: raised until the run ends cleanly
                run.mark = self.graph.mark_unswept()
            self._ingest_batches(self._batches(todo), run, report, progress)
        return report

    # -- claiming ------------------------------------------------------------------------
    @contextmanager
    def _claim(self, report: IngestReport, sources: Sequence[Source] = ()) -> Iterator[WriteRun]:
        """Hold the group for one run: take over what dead writers left part-written of
        ``sources`` (same content: resumed), sweep the rest they left, give the run an owner
        token, and on the way out delete the entities it created that nothing refers to and
        bump the revision (when it wrote or removed anything); the token is always released."""
        import time

        started = time.perf_counter()
        run = WriteRun(new_owner())
        try:
            self.graph.ensure_schema(self.embedder.dim)
            run.resumed = self._take_over_resumable(run.owner, sources)
            run.changed = any(self.graph.sweep(run.owner).values())
            if run.changed:
                report.delta = None
                self.invalidate_index()  # the sweep may have removed entities the index holds
            elif self._index is not None and self.graph.revision() != self._index_revision:
                self.invalidate_index()  # another process changed the graph since the index was loaded
            run.dead = dead_owners(self.graph.writing_sources())
            yield run
            self._close(run)
        finally:
            release(run.owner)
            report.seconds = time.perf_counter() - started

    def _take_over_resumable(self, owner: str, sources: Sequence[Source]) -> dict[str, int]:
        """Sources of ``sources`` that a dead writer left in 'writing' with some passages
        recorded as fully stored and the same content hash: taken over by ``owner`` (so the
        start sweep leaves them alone), with how many passages are stored."""
        rows = [row for row in self.graph.writing_sources() if int(row.get("written") or 0) > 0]
        if not rows or not sources:
            return {}
        dead = set(dead_owners(rows))
        group = self.graph.group_id
        by_uuid = {stable_uuid(group, "source", s.name): s for s in sources}
        resumed: dict[str, int] = {}
        for row in rows:
            source = by_uuid.get(row["uuid"])
            if (
                source is not None
                and row["owner"] in dead
                and source.claim_row()["content_hash"] == row.get("content_hash")
                and self.graph.take_over(row["uuid"], row["owner"], owner)
            ):
                resumed[row["uuid"]] = int(row["written"])
        return resumed

    def _close(self, run: WriteRun) -> None:
        # entities this run created that no mention or fact of it refers to (e.g. from a
        # triple with subject == object), checked by the store; other orphans are the
        # start sweep's
        unused = [uuid for uuid in run.created if uuid not in run.referenced]
        if unused and self.graph.delete_orphans(run.owner, run.dead, among=unused):
            self.invalidate_index()
            run.changed = True
        if run.mark:  # the run left nothing behind (unless another writer was busy): lower its mark
            self.graph.settle_unswept(run.mark, run.mark - 1, run.owner, run.dead)
        if run.claimed or run.changed:
            revision = self.graph.bump_revision()
            if self._index is not None:
                self._index_revision = revision

    def _claim_sources(
        self, sources: Sequence[Source], run: WriteRun, report: IngestReport, progress: Progress | None
    ) -> list[Claimed]:
        """Claim every source (see the module's write protocol): the ones this run writes,
        cleared of old content unless only new units are appended; skipped ones are counted
        in ``report`` and passed to ``progress``."""
        group = self.graph.group_id
        # read before claiming: a grown dialogue keeps its stored turns
        stored = {s.name: self.graph.source(s.name) for s in sources if s.turn_count is not None}
        rows = [{**s.claim_row(), "uuid": stable_uuid(group, "source", s.name)} for s in sources]
        todo: list[Claimed] = []
        for source, row, claim in zip(sources, rows, self.graph.claim_sources(rows, run.owner, run.dead), strict=True):
            if not claim["mine"]:
                self._skipped(source, claim, report, progress)
                continue
            start = source.resume_at(stored.get(source.name)) if claim["was"] == "complete" else 0
            resumed = run.resumed.get(row["uuid"], 0) if claim["was"] == "writing" else 0
            if resumed:  # a long document a dead writer left part-written: go on after its last full batch
                report.delta = None
                self._retime(self.graph.trim_source(row["uuid"], resumed, run.owner, run.dead))
                start = resumed
                if progress:
                    progress(start)
            elif start:
                report.appended += 1
                if progress:
                    progress(start)
            elif claim["was"] in ("writing", "complete"):
                report.delta = None
                self._clear(row["uuid"], run.owner, run.dead)
                report.replaced += claim["was"] == "complete"
            todo.append(Claimed(source, row["uuid"], start))
        run.claimed = len(todo)
        return todo

    def _skipped(self, source: Source, claim: dict[str, Any], report: IngestReport, progress: Progress | None) -> None:
        if claim["done"]:
            report.skipped += 1
        else:
            report.busy += 1
            report.errors.append(f"{source.name}: being written by another process; skipped")
        if progress:
            progress(source.expected(self.settings, 0))

    def _batches(self, todo: list[Claimed]) -> list[list[Claimed]]:
        """Batches of about ``batch_size`` units: bounded memory, steady progress. Sources
        go whole into batches, except a long document, which goes in slices of
        ``batch_size`` passages, one batch each (see :meth:`Source.parts`)."""
        size = self.settings.batch_size
        batches: list[list[Claimed]] = [[]]
        expected = 0
        for item in todo:
            parts = item.source.parts(self.settings, item.start, size)
            if len(parts) > 1 and batches[-1]:  # a long document starts a batch of its own
                batches.append([])
                expected = 0
            for start, source, units in parts:
                batches[-1].append(Claimed(source, item.uuid, start))
                expected += units
                if expected >= size:
                    batches.append([])
                    expected = 0
        return [b for b in batches if b]

    # -- removing ------------------------------------------------------------------------
    def forget(self, *, source: str | None = None, episode: str | None = None) -> dict[str, int]:
        """Delete a source (by uuid) or one episode (by uuid), and every fact only it supports,
        then recompute the timelines they were part of (with this ingestor's temporal
        relations) and bump the revision. Returns counts of what was removed (``reopened``:
        facts that became current again); all zero when nothing matched."""
        if source is not None:
            keys = self.graph.fact_keys_of_source(source)
            removed = self.graph.delete_source(source)
        else:
            keys = self.graph.fact_keys_of_episodes([str(episode)])
            removed = self.graph.delete_episode(str(episode))
            if not removed["episodes"]:
                return {**removed, "reopened": 0}
        removed["reopened"] = self._retime(keys)
        self.graph.bump_revision()
        return removed

    def _clear(self, source_uuid: str, owner: str = "", dead: list[str] | None = None) -> None:
        """Remove a source's episodes and the facts only they support (the Source stays, for
        this run to rewrite), then mend the timelines."""
        keys = self.graph.fact_keys_of_source(source_uuid)
        self.graph.clear_source(source_uuid, owner, dead)
        self._retime(keys)

    def _retime(self, keys: list[dict[str, Any]]) -> int:
        self.invalidate_index()  # removing may have orphaned entities
        return temporal.retime(self.graph, keys, self.settings.temporal.relations(), now_ms())

    # -- batches --------------------------------------------------------------------------
    def _ingest_batches(
        self, batches: list[list[Claimed]], run: WriteRun, report: IngestReport, progress: Progress | None
    ) -> None:
        """Three stages, overlapped when there is more than one batch: batch k+1 is parsed
        (in the extractor's worker processes, when it has them) and embedded while batch
        k is written to the store (in a writer thread). Batches are written one after
        another, in order, and a batch's facts are planned only after the batch before
        it is written (the temporal plan reads the facts stored so far)."""
        from concurrent.futures import Future, ThreadPoolExecutor

        if not batches:
            return
        extractor = self.extractor
        if len(batches) > 2 and self.background_extractor is not None:
            extractor = self.background_extractor()
        concurrent = getattr(extractor, "concurrent", False) and len(batches) > 1
        with (
            ThreadPoolExecutor(1, thread_name_prefix="graphmem-extract") as parsing,
            ThreadPoolExecutor(1, thread_name_prefix="graphmem-write") as writing,
        ):
            units = self._units(batches[0])
            upcoming = parsing.submit(self._extract_and_embed, units, extractor) if concurrent else None
            written: Future[None] | None = None
            for k, batch in enumerate(batches):
                current = units
                extractions, vectors, fallback = self._parsed(upcoming, current, extractor)
                if fallback is not extractor:  # the worker processes stopped: parse here from now on
                    extractor, concurrent = fallback, False
                if k + 1 < len(batches):
                    units = self._units(batches[k + 1])
                    upcoming = parsing.submit(self._extract_and_embed, units, extractor) if concurrent else None
                plan = self._prepare_batch(batch, current, extractions, vectors)
                if written is not None:
                    written.result()  # in order; and its facts must be stored before this batch's plan
                plan.plan_facts(self)
                run.created += [row["uuid"] for row in plan.entity_rows]
                run.referenced |= plan.references()
                written = writing.submit(self._write_batch, plan, report, progress, run.owner)
            if written is not None:
                written.result()

    def _parsed(
        self, upcoming: Any, units: Sequence[Unit], extractor: Extractor
    ) -> tuple[list[Extraction], UnitVectors, Extractor]:
        """The batch's extractions and vectors: from the parsing thread when it ran ahead, else
        made here; and the extractor to go on with."""
        import warnings
        from concurrent.futures.process import BrokenProcessPool

        try:
            if upcoming is not None:
                return (*upcoming.result(), extractor)
            return (*self._extract_and_embed(units, extractor), extractor)
        except BrokenProcessPool:
            # e.g. a script without `if __name__ == "__main__":` cannot start spawned
            # workers; parsing in this process is slower but gives the same graph
            warnings.warn(
                "spaCy worker processes stopped; parsing in this process instead (a script "
                "that ingests should guard its entry point with `if __name__ == '__main__':`)",
                RuntimeWarning,
                stacklevel=3,
            )
            return (*self._extract_and_embed(units, self.extractor), self.extractor)

    def _units(self, batch: list[Claimed]) -> list[Unit]:
        return [
            unit
            for item in batch
            for unit in item.source.units(self.graph.group_id, item.uuid, item.start, self.settings)
        ]

    def _extract_and_embed(self, units: Sequence[Unit], extractor: Extractor) -> tuple[list[Extraction], UnitVectors]:
        """Parse a batch, then embed it (see :meth:`_embed_batch`): for long runs this runs
        in the parsing thread, a batch ahead of resolution and writes."""
        extractions = type(units[0]).extract(units, extractor) if units else []
        return extractions, self._embed_batch(
            extractions, [u.embedding_text() for u in units], [u.text_map for u in units]
        )

    def _embed_batch(self, extractions: list[Extraction], texts: list[str], maps: list[TextMap]) -> UnitVectors:
        """The units' vectors, and those of every fact text fact planning may need: pooled
        from the units where the embedder can, the rest embedded in one call. Names not
        pooled are embedded at resolution (:meth:`_resolve`), only those the entity index
        lacks then: a vector depends a little (1e-7) on the texts embedded with it, so the
        call must hold the same names in any run that reaches this batch with the same
        store, which only resolution time guarantees (this runs a batch ahead)."""
        with self.embedding:
            vectors = embed_units(self.embedder, texts, extractions, maps, pool=self.settings.context_vectors)
        facts = dict.fromkeys(triple.text for ex in extractions for triple in ex.triples)
        missing_facts = [t for t in facts if t not in vectors.facts]
        if missing_facts:
            with self.embedding:
                fresh = self.embedder.embed(missing_facts)
            vectors.facts.update(zip(missing_facts, fresh, strict=True))
        return vectors

    def _prepare_batch(
        self, batch: list[Claimed], units: Sequence[Unit], extractions: list[Extraction], vectors: UnitVectors
    ) -> BatchPlan:
        """Resolve an embedded batch's names (no store access: runs while the batch before is
        written). Each source's people come before its units' names, so a batch of several
        sources resolves as the sources would one after another."""
        types: dict[str, str] = {}
        people = {item.uuid: item.source.people for item in batch}
        for i, (unit, ex) in enumerate(zip(units, extractions, strict=True)):
            first = i == 0 or units[i - 1].source_uuid != unit.source_uuid
            _add_names(types, [ex], people.get(unit.source_uuid, ()) if first else ())
        entity_rows, entity_vectors, alias_rows, synonyms, uuid_of = self._resolve(types, known=vectors.names)
        entity_rows, entity_vectors, synonyms = self._referenced_only(
            extractions, entity_rows, entity_vectors, synonyms, uuid_of
        )
        return BatchPlan(
            batch,
            units,
            extractions,
            vectors.units,
            vectors.facts,
            entity_rows,
            entity_vectors,
            alias_rows,
            synonyms,
            uuid_of,
        )

    def _write_batch(self, plan: BatchPlan, report: IngestReport, progress: Progress | None, owner: str) -> None:
        """Write one planned batch (its sources were claimed, state 'writing') and mark its
        sources complete."""
        group, graph = self.graph.group_id, self.graph
        episodes, mentions, nexts = plan.episode_rows(group, now_ms()), plan.mention_rows(), plan.next_rows()
        graph.renew(owner)
        for item in plan.claimed:
            if item.source.turn_count is not None:
                graph.set_turn_count(item.uuid, item.source.turn_count)
        finished = [item for item in plan.claimed if item.source.final]
        graph.write_vectors("entities_upsert", plan.entity_rows, plan.entity_vectors)
        graph.write("entities_upsert", plan.alias_rows)
        graph.write("episodes_upsert", episodes)
        graph.write_vectors("episode_embeddings_set", [{"uuid": u.uuid} for u in plan.units], plan.unit_vectors)
        graph.write("mentions_upsert", mentions)
        graph.write("next_upsert", nexts)
        graph.write_vectors("facts_upsert", plan.fact_rows, plan.fact_vectors)
        temporal.write_validity(graph, plan.timeline)
        graph.write("synonyms_upsert", plan.synonyms)
        # a slice of a long document: its passages are all stored, a resumed run starts after
        # them; a finished one written in slices counts none again before it is complete
        marks = [{"uuid": item.uuid, "written": item.source.stop} for item in plan.claimed if not item.source.final]
        graph.set_written(marks + [{"uuid": item.uuid, "written": 0} for item in finished if item.start > 0])
        graph.complete_owned([item.uuid for item in finished], owner)
        if report.delta is not None:
            _extend_delta(report.delta, plan, episodes, mentions, nexts)
        report.passages += len(plan.units)
        report.entities += len(plan.entity_rows)
        report.facts += len(plan.fact_rows)
        report.invalidated += plan.timeline.ended
        if progress:
            progress(len(plan.units))

    # -- resolution and facts -----------------------------------------------------------
    def _referenced_only(
        self,
        extractions: list[Extraction],
        rows: list[dict[str, Any]],
        vectors: np.ndarray,
        synonyms: list[dict[str, Any]],
        uuid_of: dict[str, str],
    ) -> tuple[list[dict[str, Any]], np.ndarray, list[dict[str, Any]]]:
        """The batch's new entities that its mentions or facts refer to, with their vectors
        and SYNONYM edges. The others (a name only in a triple whose subject and object are
        one entity) are taken back from the entity index and not written: the index then
        holds, after every batch, what the store holds, so a run resumed after a crash
        resolves the rest as the uninterrupted run would (a sweep deletes such entities
        from the store, and a later batch naming one would otherwise find it only in the
        uninterrupted run)."""
        used = {uuid_of[m.name] for ex in extractions for m in ex.mentions if m.name in uuid_of}
        for ex in extractions:
            for triple in ex.triples:
                subject, obj = uuid_of.get(triple.subject), uuid_of.get(triple.object)
                if subject is not None and obj is not None and subject != obj:  # as _facts keeps them
                    used |= {subject, obj}
        unused = {row["uuid"] for row in rows} - used
        if not unused:
            return rows, vectors, synonyms
        self.index.discard(unused)
        keep = [i for i, row in enumerate(rows) if row["uuid"] not in unused]
        edges = [edge for edge in synonyms if edge["a"] not in unused and edge["b"] not in unused]
        return [rows[i] for i in keep], vectors[keep], edges

    def _resolve(
        self, types: dict[str, str], known: dict[str, np.ndarray] | None = None
    ) -> tuple[list[dict[str, Any]], np.ndarray, list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
        """Resolve the batch's names (name -> type) against the entity index; new names'
        vectors come from ``known`` (pooled from their units) or are embedded here."""
        need = [name for name in types if entity_key(name) and entity_key(name) not in self.index.by_key]
        with self.embedding:
            vectors = dict(zip(need, vectors_for(need, known or {}, self.embedder), strict=True)) if need else {}
        resolution = self.index.resolve(types, vectors)
        entity_vectors = (
            np.vstack(resolution.new_vectors)
            if resolution.new_vectors
            else np.zeros((0, self.embedder.dim), np.float32)
        )
        new_uuids = {row["uuid"] for row in resolution.new}
        alias_rows = [
            {
                "uuid": uuid,
                "group_id": self.graph.group_id,
                "name": sorted(names)[0],
                "name_key": "",
                "type": "",
                "aliases": sorted(names),
            }
            for uuid, names in resolution.aliases.items()
            if uuid not in new_uuids
        ]
        return resolution.new, entity_vectors, alias_rows, resolution.synonyms, resolution.uuid_of

    def _facts(
        self, units: Sequence[Unit], extractions: list[Extraction], uuid_of: dict[str, str]
    ) -> tuple[list[dict[str, Any]], temporal.TemporalPlan]:
        """Fact rows of a batch, and the temporal plan for its single-valued ones.

        A fact's ``valid_at`` is the date its sentence names, else the time of its
        episode (document date, turn or session time), else none.
        """
        group = self.graph.group_id
        now = now_ms()
        relations = self.settings.temporal.relations()
        facts: dict[str, dict[str, Any]] = {}
        assertions: list[temporal.Assertion] = []
        for unit, ex in zip(units, extractions, strict=True):
            for triple in ex.triples:
                subject, obj = uuid_of.get(triple.subject), uuid_of.get(triple.object)
                if subject is None or obj is None or subject == obj:
                    continue
                valid_at: datetime | None = triple.valid_at or unit.date
                if temporal.relation_of(triple.predicate, relations) is not None:
                    assertions.append(
                        temporal.Assertion(
                            subject=subject,
                            predicate=triple.predicate,
                            object=obj,
                            text=triple.text,
                            valid_at=to_ms(valid_at),
                            episode=unit.uuid,
                            seq=len(assertions),
                        )
                    )
                    continue
                _add_fact(facts, group, now, subject, triple.predicate, obj, triple.text, unit.uuid, to_ms(valid_at))
        timeline = temporal.resolve(self.graph, assertions, relations, now)
        return list(facts.values()) + timeline.upserts, timeline


def _add_fact(
    facts: dict[str, dict[str, Any]],
    group: str,
    now: int,
    subject: str,
    predicate: str,
    obj: str,
    text: str,
    episode: str,
    valid_at: int | None,
) -> None:
    """Add one assertion of a multi-valued fact to the batch's rows: a fact asserted again
    gains the episode, and starts at the earliest time any of its episodes gives."""
    uuid = stable_uuid(group, "fact", subject, predicate, obj)
    row = facts.get(uuid)
    if row is None:
        facts[uuid] = {
            "uuid": uuid,
            "group_id": group,
            "subject": subject,
            "object": obj,
            "predicate": predicate,
            "text": text,
            "valid_at": valid_at,
            "invalid_at": None,
            "created_at": now,
            "expired_at": None,
            "episodes": [episode],
        }
        return
    if episode not in row["episodes"]:
        row["episodes"].append(episode)
    if valid_at is not None and (row["valid_at"] is None or valid_at < row["valid_at"]):
        row["valid_at"] = valid_at


def _extend_delta(
    delta: GraphDelta,
    plan: BatchPlan,
    episodes: list[dict[str, Any]],
    mentions: list[dict[str, Any]],
    nexts: list[dict[str, str]],
) -> None:
    """Add a written batch to the run's delta (stored facts whose validity changed go with
    it: the projection patches them)."""
    delta.validity += plan.timeline.validity
    delta.nexts += nexts
    delta.entities += plan.entity_rows
    delta.episodes += episodes
    delta.episode_vectors += list(plan.unit_vectors)
    delta.mentions += mentions
    delta.facts += plan.fact_rows
    delta.fact_vectors += list(plan.fact_vectors)
    delta.synonyms += plan.synonyms

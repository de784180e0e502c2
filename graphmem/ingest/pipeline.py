"""The ingestion pipeline: documents -> passages -> entities and facts -> graph.

Write protocol (what makes ingestion idempotent, resumable and safe with
concurrent writers): a run first *sweeps*: every source a dead writer left in
``writing`` is taken over and removed (episodes, facts only they support,
orphan entities). It then *claims* each source in one atomic query: a source
complete with the same content hash is skipped, one another live process is
writing is left to it, any other is marked ``writing`` with this run's owner
token (cleared first if it had old content). Its entities, episodes, mentions
and facts are merged on deterministic uuids; last it is marked ``complete``.
A final sweep deletes entities that nothing kept. See docs/reliability.md.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence

import numpy as np

from graphmem.config import Settings
from graphmem.embed.base import Embedder
from graphmem.extract.base import Extraction, Extractor
from graphmem.extract.base import Mention
from graphmem.ingest.chunking import chunk_text
from graphmem.ingest.context_vectors import TextMap, UnitVectors, embed_units, extraction_text_and_map, vectors_for
from graphmem.ingest.dialogue import Conversation, Turn
from graphmem.ingest.readers import Document
from graphmem.ingest.report import GraphDelta, IngestReport
from graphmem.model import content_hash, stable_uuid
from graphmem.resolve import temporal
from graphmem.resolve.entities import EntityIndex
from graphmem.store.graph import Graph
from graphmem.timeutil import to_ms, utcnow

Progress = Callable[[int], None]

__all__ = ["GraphDelta", "IngestReport", "Ingestor", "Progress"]


@dataclass
class Passage:
    document: Document
    source_uuid: str
    position: int
    content: str
    uuid: str = ""
    #: offsets of the extracted text -> offsets of :meth:`embedding_text` (set by the extraction)
    text_map: TextMap = field(default_factory=TextMap)

    def embedding_text(self) -> str:
        title = self.document.title
        return f"{title}\n{self.content}" if title and title not in self.content[: len(title) + 10] else self.content

    @property
    def date(self) -> datetime | None:
        return self.document.date


@dataclass
class BatchPlan:
    """A batch of units (passages or dialogue turns) embedded and resolved, waiting
    for its facts and its write."""

    units: list[Any]
    extractions: list[Extraction]
    unit_vectors: np.ndarray
    pooled_facts: dict[str, np.ndarray]
    entity_rows: list[dict]
    entity_vectors: np.ndarray
    alias_rows: list[dict]
    synonyms: list[dict]
    uuid_of: dict[str, str]
    fact_rows: list[dict] = field(default_factory=list)
    fact_vectors: np.ndarray | None = None
    timeline: temporal.TemporalPlan | None = None

    def plan_facts(self, ingestor: "Ingestor") -> None:
        """Fact rows, their vectors and the temporal plan (reads the stored timelines)."""
        self.fact_rows, self.timeline = ingestor._facts(self.units, self.extractions, self.uuid_of)
        with ingestor.embedding:
            self.fact_vectors = vectors_for([row["text"] for row in self.fact_rows], self.pooled_facts,
                                            ingestor.embedder)


@dataclass
class TurnUnit:
    """One dialogue turn on its way to becoming an episode."""

    turn: Turn
    position: int
    uuid: str

    @property
    def date(self) -> datetime | None:
        return self.turn.time


def turn_uuid(group_id: str, conversation: str, position: int, turn: Turn) -> str:
    """Deterministic: the same turn at the same place of the same conversation keeps its uuid."""
    return stable_uuid(group_id, "turn", conversation, str(position), turn.digest())


def extraction_text(content: str) -> str:
    """What the extractor reads of a passage (see :func:`extraction_text_and_map`)."""
    return extraction_text_and_map(content)[0]


def batch_names(extractions: Sequence[Extraction], people: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    """Every name a batch may resolve, in order of first appearance, with its type:
    ``people`` (speakers) as PERSON, mentions as extracted, triple ends untyped."""
    types: dict[str, str] = {name: "PERSON" for name in people}
    for ex in extractions:
        for mention in ex.mentions:
            types.setdefault(mention.name, mention.type)
        for triple in ex.triples:
            types.setdefault(triple.subject, "")
            types.setdefault(triple.object, "")
    return types


def load_entity_index(graph: Graph, dim: int, settings: Settings) -> EntityIndex:
    r = settings.retrieval
    # neighbour search as the retrieval settings ask: exact, always HNSW, or HNSW from ann_min_rows names
    ann_min_rows = {"exact": None, "ann": 0}.get(r.vector_index, r.ann_min_rows)
    index = EntityIndex(graph.group_id, dim, synonym_threshold=r.synonym_threshold, synonym_top_k=r.synonym_top_k,
                        ann_min_rows=ann_min_rows)
    for row in graph.pages("entity_index_page"):
        vector = row.get("embedding")
        if row.get("name_key") and vector is not None and len(vector) == dim:
            index.add(row["name_key"], row["uuid"], np.asarray(vector, dtype=np.float32))
    return index


class Ingestor:
    """Runs the pipeline for one :class:`Graph` with one embedder and extractor."""

    def __init__(self, graph: Graph, embedder: Embedder, extractor: Extractor, settings: Settings,
                 background_extractor: Callable[[], Extractor] | None = None) -> None:
        """``background_extractor``: gives an extractor with worker processes, used for runs
        of more than two batches so parsing overlaps embedding (started on first use)."""
        self.graph = graph
        self.embedder = embedder
        self.extractor = extractor
        self.settings = settings
        self.background_extractor = background_extractor
        self._index: EntityIndex | None = None
        self._index_revision = -1
        #: held while the embedder runs: the parsing thread embeds the next batch while this
        #: one may embed a leftover name or fact (a local model's tokenizer is not thread-safe)
        self.embedding = threading.Lock()

    @property
    def index(self) -> EntityIndex:
        if self._index is None:
            self._index_revision = self.graph.revision()
            self._index = load_entity_index(self.graph, self.embedder.dim, self.settings)
        return self._index

    def ingest(self, documents: Sequence[Document], progress: Progress | None = None) -> IngestReport:
        """Ingest ``documents``; ``progress(n)`` is called as ``n`` more documents finish.

        Crash- and concurrency-safe: the run first sweeps what dead writers left
        half-written, then claims each source (skipping those complete with the
        same content, and those another live process is writing right now),
        writes the claimed ones batch by batch, and sweeps orphans at the end.
        """
        from graphmem.store.owners import dead_owners, new_owner, release

        started = time.perf_counter()
        report = IngestReport(documents=len(documents))
        owner = new_owner()
        try:
            self.graph.ensure_schema(self.embedder.dim)
            swept = self.graph.sweep(owner)
            changed = any(swept.values())
            if changed:
                report.delta = None
                self._index = None  # the sweep may have removed entities the index holds
            elif self._index is not None and self.graph.revision() != self._index_revision:
                self._index = None  # another process changed the graph since the index was loaded
            dead = dead_owners(self.graph.writing_sources())
            todo = self._claim(documents, owner, dead, report, progress)
            created: list[str] = []
            referenced: set[str] = set()
            self._ingest_batches(self._batches(todo), report, progress, owner, created, referenced)
            # entities this run created that no mention or fact of it refers to (e.g. from a
            # triple with subject == object), checked by the store; other orphans are the
            # start sweep's
            unused = [uuid for uuid in created if uuid not in referenced]
            if unused and self.graph.delete_orphans(owner, dead, among=unused):
                self._index = None
                changed = True
            if todo or changed:
                revision = self.graph.bump_revision()
                if self._index is not None:
                    self._index_revision = revision
        finally:
            release(owner)
        report.seconds = time.perf_counter() - started
        return report

    def _claim(self, documents: Sequence[Document], owner: str, dead: list[str], report: IngestReport,
               progress: Progress | None) -> list[tuple[Document, str]]:
        """Claim every document's source; the ones this run must write, cleared of old content."""
        todo: list[tuple[Document, str]] = []
        sources = [{"name": d.name, "kind": "doc", "uri": d.uri, "content_hash": d.content_hash,
                    "metadata": d.metadata, "units": 1} for d in documents]
        for document, (source_uuid, claim) in zip(documents, self._claim_sources(sources, owner, dead, report,
                                                                                  progress)):
            if claim is None:
                continue
            if claim["was"] in ("writing", "complete"):
                report.delta = None
                self._clear(source_uuid, owner, dead)
                report.replaced += claim["was"] == "complete"
            todo.append((document, source_uuid))
        return todo

    def _claim_sources(self, sources: list[dict], owner: str, dead: list[str], report: IngestReport,
                       progress: Progress | None) -> list[tuple[str, dict | None]]:
        """Claim sources for this run (``sources``: name, kind, uri, content_hash, metadata,
        units): ``(uuid, claim)`` each, or ``(uuid, None)`` when it is skipped (complete with
        the same content, or being written by another live process), counted in ``report``
        and its ``units`` passed to ``progress``."""
        for source in sources:
            source["uuid"] = stable_uuid(self.graph.group_id, "source", source["name"])
        claims = self.graph.claim_sources([{k: v for k, v in s.items() if k != "units"} for s in sources],
                                          owner, dead)
        out: list[tuple[str, dict | None]] = []
        for source, claim in zip(sources, claims):
            if claim["mine"]:
                out.append((source["uuid"], claim))
                continue
            if claim["done"]:
                report.skipped += 1
            else:
                report.busy += 1
                report.errors.append(f"{source['name']}: being written by another process; skipped")
            if progress:
                progress(source["units"])
            out.append((source["uuid"], None))
        return out

    def _batches(self, todo: list[tuple[Document, str]]) -> list[list[tuple[Document, str]]]:
        """Batches of about ``batch_size`` passages: bounded memory, steady progress."""
        batches: list[list[tuple[Document, str]]] = [[]]
        expected = 0
        stride = max(1, self.settings.chunk_words - self.settings.chunk_overlap)
        for item in todo:
            batches[-1].append(item)
            expected += max(1, -(-len(item[0].text.split()) // stride))
            if expected >= self.settings.batch_size:
                batches.append([])
                expected = 0
        return [b for b in batches if b]

    def _ingest_batches(self, batches: list[list[tuple[Document, str]]], report: IngestReport,
                        progress: Progress | None, owner: str, created: list[str], referenced: set[str]) -> None:
        """Three stages, overlapped when there is more than one batch: batch k+1 is parsed
        (in the extractor's worker processes, when it has them) and embedded while batch
        k is written to the store (in a writer thread). Batches are written one after
        another, in order, and a batch's facts are planned only after the batch before
        it is written (the temporal plan reads the facts stored so far)."""
        import warnings
        from concurrent.futures import Future, ThreadPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        if not batches:
            return
        extractor = self.extractor
        if len(batches) > 2 and self.background_extractor is not None:
            extractor = self.background_extractor()
        concurrent = getattr(extractor, "concurrent", False) and len(batches) > 1
        with ThreadPoolExecutor(1, thread_name_prefix="graphmem-extract") as parsing, \
                ThreadPoolExecutor(1, thread_name_prefix="graphmem-write") as writing:
            passages = self._passages(batches[0])
            upcoming = parsing.submit(self._extract_and_embed, passages, extractor) if concurrent else None
            written: Future | None = None
            for k, batch in enumerate(batches):
                current = passages
                try:
                    extractions, vectors = (upcoming.result() if upcoming is not None
                                            else self._extract_and_embed(current, extractor))
                except BrokenProcessPool:
                    # e.g. a script without `if __name__ == "__main__":` cannot start spawned
                    # workers; parsing in this process is slower but gives the same graph
                    warnings.warn("spaCy worker processes stopped; parsing in this process instead (a script "
                                  "that ingests should guard its entry point with `if __name__ == '__main__':`)",
                                  RuntimeWarning, stacklevel=2)
                    extractor, concurrent = self.extractor, False
                    extractions, vectors = self._extract_and_embed(current, extractor)
                if k + 1 < len(batches):
                    passages = self._passages(batches[k + 1])
                    upcoming = parsing.submit(self._extract_and_embed, passages, extractor) if concurrent else None
                plan = self._prepare_batch(current, extractions, [p.embedding_text() for p in current],
                                           [p.text_map for p in current], vectors=vectors)
                if written is not None:
                    written.result()  # in order; and its facts must be stored before this batch's plan
                plan.plan_facts(self)
                created += [row["uuid"] for row in plan.entity_rows]
                referenced.update(plan.uuid_of[m.name] for ex in plan.extractions for m in ex.mentions
                                  if m.name in plan.uuid_of)
                referenced.update(u for row in plan.fact_rows for u in (row["subject"], row["object"]))
                written = writing.submit(self._write_batch, batch, plan, report, progress, owner)
            if written is not None:
                written.result()

    def _passages(self, batch: list[tuple[Document, str]]) -> list[Passage]:
        group = self.graph.group_id
        s = self.settings
        passages: list[Passage] = []
        for document, source_uuid in batch:
            for position, content in enumerate(chunk_text(document.text, s.chunk_words, s.chunk_overlap, s.max_passage_chars)):
                passage = Passage(document, source_uuid, position, content)
                passage.uuid = stable_uuid(group, "episode", document.name, str(position), content_hash(content))
                passages.append(passage)
        return passages

    def _extract(self, passages: list[Passage], extractor: Extractor | None = None) -> list[Extraction]:
        texts = []
        for passage in passages:
            text, passage.text_map = extraction_text_and_map(passage.content)
            passage.text_map.prefix = len(passage.embedding_text()) - len(passage.content)
            texts.append(text)
        return (extractor or self.extractor).extract(texts,
                                      reference_times=[p.document.date for p in passages],
                                      titles=[p.document.title for p in passages])

    def _extract_and_embed(self, passages: list[Passage],
                           extractor: Extractor | None = None) -> tuple[list[Extraction], UnitVectors]:
        """Parse a batch, then embed it (see :meth:`_embed_batch`): for long runs this runs
        in the parsing thread, a batch ahead of resolution and writes."""
        extractions = self._extract(passages, extractor)
        return extractions, self._embed_batch(extractions, [p.embedding_text() for p in passages],
                                              [p.text_map for p in passages])

    def _embed_batch(self, extractions: list[Extraction], texts: list[str], maps: list[TextMap]) -> UnitVectors:
        """The units' vectors, and those of every name and fact text resolution and fact
        planning may need: pooled from the units where the embedder can, the rest embedded
        in one call. Names already in the entity index need none (the index only grows
        between here and resolution, so this is a superset of what is asked for later)."""
        from graphmem.resolve.entities import entity_key

        with self.embedding:
            vectors = embed_units(self.embedder, texts, extractions, maps, pool=self.settings.context_vectors)
        known = self._index.by_key if self._index is not None else {}
        names = batch_names(extractions)
        facts = dict.fromkeys(triple.text for ex in extractions for triple in ex.triples)
        missing_names = [n for n in names if n not in vectors.names and (key := entity_key(n)) and key not in known]
        missing_facts = [t for t in facts if t not in vectors.facts]
        if missing_names or missing_facts:
            with self.embedding:
                fresh = self.embedder.embed(missing_names + missing_facts)
            vectors.names.update(zip(missing_names, fresh[: len(missing_names)]))
            vectors.facts.update(zip(missing_facts, fresh[len(missing_names):]))
        return vectors

    # -- one batch --------------------------------------------------------------
    def _prepare_batch(self, units: list[Any], extractions: list[Extraction], texts: list[str],
                       maps: list[TextMap], people: set[str] = frozenset(),  # type: ignore[assignment]
                       vectors: UnitVectors | None = None) -> "BatchPlan":
        """Embed a batch (``texts``: what the embedder reads of each unit; ``maps``: extraction
        offsets into them), unless ``vectors`` has it done, and resolve its names (no store
        access: for passages it runs while the batch before is written)."""
        if vectors is None:
            vectors = self._embed_batch(extractions, texts, maps)
        entity_rows, entity_vectors, alias_rows, synonyms, uuid_of = self._resolve(
            extractions, people=people, known=vectors.names)
        return BatchPlan(units, extractions, vectors.units, vectors.facts, entity_rows, entity_vectors,
                         alias_rows, synonyms, uuid_of)

    def _write_batch(self, batch: list[tuple[Document, str]], plan: "BatchPlan", report: IngestReport,
                     progress: Progress | None, owner: str) -> None:
        group = self.graph.group_id
        passages, extractions, passage_vectors = plan.units, plan.extractions, plan.unit_vectors
        entity_rows, entity_vectors, alias_rows = plan.entity_rows, plan.entity_vectors, plan.alias_rows
        synonyms, uuid_of = plan.synonyms, plan.uuid_of
        fact_rows, fact_vectors, timeline = plan.fact_rows, plan.fact_vectors, plan.timeline

        now = to_ms(utcnow())
        self.graph.renew(owner)  # the sources were claimed (state 'writing') in _claim
        self.graph.write_vectors("entities_upsert", entity_rows, entity_vectors)
        self.graph.write("entities_upsert", alias_rows)
        episode_rows = [{
            "uuid": p.uuid, "group_id": group, "source": "doc", "source_id": p.source_uuid,
            "source_uuid": p.source_uuid, "content": p.content, "content_hash": content_hash(p.content),
            "position": p.position, "title": p.document.title, "speaker": "",
            "occurred_at": to_ms(p.document.date), "ingested_at": now, "turn_id": "", "search_text": None,
        } for p in passages]
        self.graph.write("episodes_upsert", episode_rows)
        self.graph.write_vectors("episode_embeddings_set", [{"uuid": p.uuid} for p in passages], passage_vectors)
        mention_rows = [{"episode": p.uuid, "entity": uuid_of[m.name], "count": m.count}
                        for p, ex in zip(passages, extractions) for m in ex.mentions if m.name in uuid_of]
        self.graph.write("mentions_upsert", mention_rows)
        next_rows = [{"from": a.uuid, "to": b.uuid} for a, b in zip(passages, passages[1:])
                     if a.source_uuid == b.source_uuid]
        self.graph.write("next_upsert", next_rows)
        self._write_facts(fact_rows, fact_vectors, timeline, report)
        self.graph.write("synonyms_upsert", synonyms)
        self.graph.complete_owned([source_uuid for _, source_uuid in batch], owner)

        if report.delta is not None:  # stored facts whose validity changed go with it (the projection patches them)
            delta = report.delta
            delta.validity += timeline.validity
            delta.nexts += next_rows
            delta.entities += entity_rows
            delta.episodes += episode_rows
            delta.episode_vectors += list(passage_vectors)
            delta.mentions += mention_rows
            delta.facts += fact_rows
            delta.fact_vectors += list(fact_vectors)
            delta.synonyms += synonyms
        report.passages += len(passages)
        report.entities += len(entity_rows)
        if progress:
            progress(len(batch))

    def _write_facts(self, fact_rows: list[dict], fact_vectors: np.ndarray, timeline: temporal.TemporalPlan,
                     report: IngestReport) -> None:
        self.graph.write_vectors("facts_upsert", fact_rows, fact_vectors)
        temporal.write_validity(self.graph, timeline)
        report.facts += len(fact_rows)
        report.invalidated += timeline.ended

    # -- dialogues ------------------------------------------------------------------
    def ingest_conversations(self, conversations: Sequence[Conversation],
                             progress: Progress | None = None) -> IngestReport:
        """Ingest dialogues: one episode per turn, ``NEXT`` edges in order, speakers as entities.

        Unchanged conversations are skipped. One that grew (its stored turns are
        an exact prefix of the new ones) gets only its new turns appended; any
        other change rewrites the source. ``progress(n)``: ``n`` more turns done.
        """
        from graphmem.store.owners import dead_owners, new_owner, release

        started = time.perf_counter()
        # the projection is reloaded after dialogue ingestion (speaker roles, NEXT edges and
        # timelines change in place), so no delta is collected
        report = IngestReport(documents=len(conversations), unit="conversations", piece="turns", delta=None)
        owner = new_owner()
        try:
            self.graph.ensure_schema(self.embedder.dim)
            if any(self.graph.sweep(owner).values()):
                self._index = None
            dead = dead_owners(self.graph.writing_sources())
            for conversation in conversations:
                # claimed like a document (crash- and concurrency-safe); read the stored
                # state first: a grown conversation keeps its turns and gets only new ones
                stored = self.graph.source(conversation.name)
                [(source_uuid, claim)] = self._claim_sources(
                    [{"name": conversation.name, "kind": "dialogue", "uri": conversation.uri,
                      "content_hash": conversation.content_hash,
                      "metadata": {**conversation.metadata, "title": conversation.title},
                      "units": len(conversation.turns)}], owner, dead, report, progress)
                if claim is None:
                    continue
                start = 0
                if claim["was"] == "complete" and stored is not None:
                    n = stored.turn_count
                    if 0 < n < len(conversation.turns) and conversation.prefix_hash(n) == stored.content_hash:
                        start = n
                        report.appended += 1
                        if progress:
                            progress(n)
                if start == 0 and claim["was"] in ("writing", "complete"):
                    self._clear(source_uuid, owner, dead)
                    report.replaced += claim["was"] == "complete"
                self._ingest_turns(conversation, source_uuid, start, report, progress, owner)
                self.graph.bump_revision()
        finally:
            release(owner)
        report.seconds = time.perf_counter() - started
        return report

    def _clear(self, source_uuid: str, owner: str = "", dead: list[str] | None = None) -> None:
        """Remove a source's episodes and the facts only they support, then mend the timelines."""
        keys = self.graph.store.run("facts_keys_of_source", uuid=source_uuid, group_id=self.graph.group_id)
        self.graph.clear_source(source_uuid, owner, dead)
        self._index = None  # clearing may have removed orphaned entities
        temporal.retime(self.graph, keys, self.settings.temporal.relations(), to_ms(utcnow()))

    def _ingest_turns(self, conversation: Conversation, source_uuid: str, start: int, report: IngestReport,
                      progress: Progress | None, owner: str) -> None:
        group = self.graph.group_id
        units = [TurnUnit(turn, position, turn_uuid(group, conversation.name, position, turn))
                 for position, turn in enumerate(conversation.turns) if position >= start]
        turns = [u.turn for u in units]
        extractions = self.extractor.extract([t.text for t in turns], reference_times=[t.time for t in turns],
                                             speakers=[t.speaker for t in turns])
        for turn, ex in zip(turns, extractions):
            speaker = next((m for m in ex.mentions if m.name == turn.speaker), None)
            if speaker is None:
                ex.mentions.append(Mention(name=turn.speaker, type="PERSON", count=1))
            else:
                speaker.type = "PERSON"
        plan = self._prepare_batch(units, extractions, [t.embedding_text() for t in turns],
                                   [TextMap(prefix=len(t.embedding_prefix())) for t in turns],
                                   people=set(conversation.speakers))
        plan.plan_facts(self)
        turn_vectors, uuid_of = plan.unit_vectors, plan.uuid_of
        entity_rows, entity_vectors, alias_rows = plan.entity_rows, plan.entity_vectors, plan.alias_rows
        synonyms, fact_rows, fact_vectors, timeline = plan.synonyms, plan.fact_rows, plan.fact_vectors, plan.timeline

        now = to_ms(utcnow())
        self.graph.renew(owner)  # claimed (state 'writing') in ingest_conversations
        self.graph.set_turn_count(source_uuid, len(conversation.turns))
        self.graph.write_vectors("entities_upsert", entity_rows, entity_vectors)
        self.graph.write("entities_upsert", alias_rows)
        self.graph.write("episodes_upsert", [{
            "uuid": u.uuid, "group_id": group, "source": "dialogue", "source_id": source_uuid,
            "source_uuid": source_uuid, "content": u.turn.text, "content_hash": content_hash(u.turn.text),
            "position": u.position, "title": conversation.title, "speaker": u.turn.speaker,
            "occurred_at": to_ms(u.turn.time), "ingested_at": now, "turn_id": u.turn.turn_id,
            "search_text": u.turn.embedding_text(),
        } for u in units])
        self.graph.write_vectors("episode_embeddings_set", [{"uuid": u.uuid} for u in units], turn_vectors)
        self.graph.write("mentions_upsert", [{"episode": u.uuid, "entity": uuid_of[m.name], "count": m.count,
                                              "role": "speaker" if m.name == u.turn.speaker else None}
                                             for u, ex in zip(units, extractions) for m in ex.mentions
                                             if m.name in uuid_of])
        links = [{"from": a.uuid, "to": b.uuid} for a, b in zip(units, units[1:])]
        if start > 0:  # appending: link the last stored turn to the first new one
            previous = conversation.turns[start - 1]
            links.insert(0, {"from": turn_uuid(group, conversation.name, start - 1, previous), "to": units[0].uuid})
        self.graph.write("next_upsert", links)
        self._write_facts(fact_rows, fact_vectors, timeline, report)
        self.graph.write("synonyms_upsert", synonyms)
        self.graph.complete_owned([source_uuid], owner)
        report.passages += len(units)
        report.entities += len(entity_rows)
        if progress:
            progress(len(units))

    def _resolve(self, extractions: list[Extraction], people: set[str] = frozenset(),  # type: ignore[assignment]
                 known: dict[str, np.ndarray] | None = None):
        """Resolve the batch's names against the entity index; new names' vectors come
        from ``known`` (pooled from their passages) or are embedded here."""
        types = batch_names(extractions, people)
        from graphmem.resolve.entities import entity_key

        need = [name for name in types if entity_key(name) and entity_key(name) not in self.index.by_key]
        with self.embedding:
            vectors = dict(zip(need, vectors_for(need, known or {}, self.embedder))) if need else {}
        resolution = self.index.resolve(types, vectors)
        entity_vectors = np.vstack(resolution.new_vectors) if resolution.new_vectors else np.zeros((0, self.embedder.dim), np.float32)
        new_uuids = {row["uuid"] for row in resolution.new}
        alias_rows = [{"uuid": uuid, "group_id": self.graph.group_id, "name": sorted(names)[0], "name_key": "",
                       "type": "", "aliases": sorted(names)}
                      for uuid, names in resolution.aliases.items() if uuid not in new_uuids]
        return resolution.new, entity_vectors, alias_rows, resolution.synonyms, resolution.uuid_of

    def _facts(self, passages: Sequence[Passage | TurnUnit], extractions: list[Extraction],
               uuid_of: dict[str, str]) -> tuple[list[dict], temporal.TemporalPlan]:
        """Fact rows of a batch, and the temporal plan for its single-valued ones.

        A fact's ``valid_at`` is the date its sentence names, else the time of its
        episode (document date, turn or session time), else none.
        """
        group = self.graph.group_id
        now = to_ms(utcnow())
        relations = self.settings.temporal.relations()
        facts: dict[str, dict] = {}
        assertions: list[temporal.Assertion] = []
        for passage, ex in zip(passages, extractions):
            for triple in ex.triples:
                subject, obj = uuid_of.get(triple.subject), uuid_of.get(triple.object)
                if subject is None or obj is None or subject == obj:
                    continue
                if temporal.relation_of(triple.predicate, relations) is not None:
                    assertions.append(temporal.Assertion(
                        subject=subject, predicate=triple.predicate, object=obj, text=triple.text,
                        valid_at=to_ms(triple.valid_at or passage.date), episode=passage.uuid, seq=len(assertions)))
                    continue
                uuid = stable_uuid(group, "fact", subject, triple.predicate, obj)
                row = facts.get(uuid)
                if row is None:
                    valid_at: datetime | None = triple.valid_at or passage.date
                    facts[uuid] = {"uuid": uuid, "group_id": group, "subject": subject, "object": obj,
                                   "predicate": triple.predicate, "text": triple.text, "valid_at": to_ms(valid_at),
                                   "invalid_at": None, "created_at": now, "expired_at": None,
                                   "episodes": [passage.uuid]}
                else:
                    if passage.uuid not in row["episodes"]:
                        row["episodes"].append(passage.uuid)
                    valid_at = to_ms(triple.valid_at or passage.date)
                    if valid_at is not None and (row["valid_at"] is None or valid_at < row["valid_at"]):
                        row["valid_at"] = valid_at
        timeline = temporal.resolve(self.graph, assertions, relations, now)
        return list(facts.values()) + timeline.upserts, timeline

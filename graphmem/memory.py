"""The one facade: :class:`Memory` ingests, searches and answers Cypher.

>>> from graphmem import Memory
>>> with Memory(home=".graphmem") as memory:
...     memory.ingest(["examples/docs"])
...     for hit in memory.search("Who designed the library?", k=3):
...         print(hit.score, hit.content)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, Field

from graphmem import recipe
from graphmem.config import RetrievalSettings, Settings
from graphmem.errors import InputError
from graphmem.ingest.dialogue import Conversation, DialogueFormat, read_conversations
from graphmem.ingest.pipeline import Ingestor, IngestReport, Progress
from graphmem.ingest.readers import Document, read_documents
from graphmem.recipe import Recipe
from graphmem.store import GraphStore, open_store
from graphmem.store.graph import Graph
from graphmem.timeutil import ensure_utc, from_ms

if TYPE_CHECKING:
    import numpy as np

    from graphmem.embed.base import Embedder
    from graphmem.extract.parallel import ParallelSpacyExtractor
    from graphmem.extract.spacy_extractor import SpacyExtractor
    from graphmem.ingest.units import Source
    from graphmem.retrieve.retriever import Retriever

#: how :meth:`Memory.search` ranks: graph (PPR multi-hop), dense (vectors only) or bm25 (words only)
SearchMode = Literal["graph", "dense", "bm25"]


class SearchResult(BaseModel):
    """A retrieved passage with its score and provenance."""

    uuid: str
    rank: int
    score: float
    content: str
    title: str = ""
    source: str = ""
    occurred_at: datetime | None = None
    speaker: str = Field("", description="dialogue turns: who said it")
    turn_id: str = Field("", description="dialogue turns: the turn's id in its input (e.g. LoCoMo's D3:5)")
    entities: list[str] = Field(default_factory=list, description="seed entities the passage mentions")
    facts: list[str] = Field(default_factory=list, description="seed facts that led to the passage")


class FactRecord(BaseModel):
    """One fact of an entity's timeline (``Memory.facts``)."""

    uuid: str
    subject: str
    predicate: str
    object: str
    text: str
    valid_at: datetime | None = Field(None, description="world time it became true (None: unknown)")
    invalid_at: datetime | None = Field(None, description="world time it stopped being true (None: still true)")
    created_at: datetime | None = Field(None, description="system time graphmem recorded it")
    expired_at: datetime | None = Field(None, description="system time graphmem learned it had ended")
    episodes: list[str] = Field(default_factory=list, description="uuids of the episodes that assert it")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FactRecord:
        """A fact as the store returns it (times in epoch ms)."""
        return cls(
            uuid=row["uuid"],
            subject=row["subject"] or "",
            predicate=row["predicate"] or "",
            object=row["object"] or "",
            text=row["text"] or "",
            valid_at=from_ms(row.get("valid_at")),
            invalid_at=from_ms(row.get("invalid_at")),
            created_at=from_ms(row.get("created_at")),
            expired_at=from_ms(row.get("expired_at")),
            episodes=list(row.get("episodes") or []),
        )

    @property
    def current(self) -> bool:
        return self.invalid_at is None

    def valid_on(self, when: datetime) -> bool:
        when = ensure_utc(when)
        return (self.valid_at is None or self.valid_at <= when) and (self.invalid_at is None or when < self.invalid_at)


def _timeline(records: list[FactRecord], as_of: datetime | None, history: bool) -> list[FactRecord]:
    """The facts :meth:`Memory.facts` returns: those true now (or ``as_of``), or with ``history``
    every one (that had started by ``as_of``), oldest first."""
    if as_of is not None:
        when = ensure_utc(as_of)
        records = [f for f in records if (f.valid_at is None or f.valid_at <= when) and (history or f.valid_on(when))]
    elif not history:
        records = [f for f in records if f.current]
    floor = datetime.min.replace(tzinfo=ensure_utc(datetime(2000, 1, 1)).tzinfo)
    return sorted(records, key=lambda f: (f.valid_at or floor, f.created_at or floor, f.predicate, f.object))


def _source_path(name: str) -> str | None:
    """``name`` as ingest records a file source: the absolute path (resolved from the current
    directory), keeping a ``#id`` suffix; None when ``name`` is already absolute or empty."""
    path, sep, suffix = name.partition("#")
    if not path or Path(path).is_absolute():
        return None
    return str(Path(path).resolve()) + sep + suffix


class Memory:
    """graphmem's Python API over one store and one tenant group.

    Models load lazily: opening a Memory to run Cypher or read stats costs no
    model start-up; the first ingest or search loads the embedder (and spaCy).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: GraphStore | None = None,
        update_recipe: bool = False,
        **overrides: Any,
    ) -> None:
        """``store``: share an open store (the API server holds one Memory per group over
        one connection); it is then left open by :meth:`close`.

        The group's stored recipe (:mod:`graphmem.recipe`) fills every recipe field that
        ``settings`` does not set explicitly. ``update_recipe``: an ingestion whose recipe
        differs from the stored one replaces it (otherwise it raises
        :class:`~graphmem.recipe.RecipeConflict`)."""
        self._given = settings or Settings.from_env(**overrides)
        self._update_recipe = update_recipe
        self._settings: Settings | None = None  # _given over the stored recipe, read on first use
        self._recipe_text: str | None = None  # the stored recipe _settings was made from
        self._owns_store = store is None
        self._store = store if store is not None else open_store(self._given)
        self._graph = Graph(self._store, self._given.group_id)
        self._embedder: Embedder | None = None
        self._extractor: SpacyExtractor | ParallelSpacyExtractor | None = None
        # spaCy worker processes for long ingestions (extract_processes=0)
        self._background: ParallelSpacyExtractor | None = None
        self._ingestor: Ingestor | None = None
        self._retriever: Retriever | None = None

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        for extractor in (self._extractor, self._background):
            closer = getattr(extractor, "close", None)  # worker processes of a parallel extractor
            if closer is not None:
                closer()
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the recipe ------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The settings this memory runs with: the ones given explicitly over the group's
        stored recipe over the defaults (refreshed by each search and ingestion)."""
        if self._settings is None:
            self._use_recipe(self._graph.meta()[1])
        assert self._settings is not None
        return self._settings

    @property
    def recipe(self) -> Recipe | None:
        """The recipe stored in this group (None: nothing ingested with one yet)."""
        text = self._graph.meta()[1]
        return Recipe.from_json(text, self._given.group_id) if text else None

    def _use_recipe(self, text: str | None) -> None:
        """Run with the stored recipe ``text``; parts built from an older one are rebuilt."""
        if self._settings is not None and text == self._recipe_text:
            return
        stored = Recipe.from_json(text, self._given.group_id) if text else None
        self._settings = recipe.effective(self._given, stored)
        self._recipe_text = text
        self._ingestor = None
        if self._retriever is not None:
            self._retriever.settings = self._settings.retrieval

    def _store_recipe(self) -> None:
        """Before an ingestion: write its recipe to a group that has none, or replace a
        different one when asked to (``update_recipe``); refuse a different one otherwise."""
        self._use_recipe(self._graph.meta()[1])
        stored = Recipe.from_json(self._recipe_text, self._given.group_id) if self._recipe_text else None
        new = Recipe.of(self.settings, getattr(self.embedder, "name", ""), int(self.embedder.dim))
        if recipe.check(self._given.group_id, stored, new, self._update_recipe):
            text = new.to_json()
            self._graph.set_recipe(text)
            self._use_recipe(text)

    def _searcher(self, retrieval: RetrievalSettings | Mapping[str, Any] | None) -> Retriever:
        """The retriever, or for a per-call override a shallow copy of it with those settings
        (sharing its projection and indexes; the memory's own settings stay as they are)."""
        retriever = self.retriever
        if retrieval is None:
            return retriever
        searcher = copy.copy(retriever)
        searcher.settings = recipe.overridden(retriever.settings, retrieval)
        return searcher

    # -- components (lazy) ---------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from graphmem.embed import get_embedder

            self._embedder = get_embedder(self.settings.embedder, self.settings.device)
        return self._embedder

    @property
    def extractor(self) -> SpacyExtractor | ParallelSpacyExtractor:
        if self._extractor is None:
            if self.settings.extract_processes > 1:
                from graphmem.extract.parallel import ParallelSpacyExtractor

                self._extractor = ParallelSpacyExtractor(self.settings.spacy_model, self.settings.extract_processes)
            else:
                self._extractor = _cached_extractor(self.settings.spacy_model)
        return self._extractor

    def _background_extractor(self) -> ParallelSpacyExtractor:
        """spaCy in worker processes (all cores but one), started on the first long ingestion."""
        if self._background is None:
            from graphmem.extract.parallel import ParallelSpacyExtractor, default_processes

            self._background = ParallelSpacyExtractor(self.settings.spacy_model, default_processes())
        return self._background

    @property
    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            import os

            automatic = self.settings.extract_processes == 0 and (os.cpu_count() or 1) > 1
            self._ingestor = Ingestor(
                self._graph,
                lambda: self.embedder,
                lambda: self.extractor,
                self.settings,
                background_extractor=self._background_extractor if automatic else None,
            )
        return self._ingestor

    @property
    def retriever(self) -> Retriever:
        revision, text = self._graph.meta()
        self._use_recipe(text)
        if self._retriever is None or self._retriever.projection.revision != revision:
            from graphmem.embed.lazy import LazyEmbedder
            from graphmem.retrieve.projection import load_projection
            from graphmem.retrieve.retriever import Retriever

            stored = Recipe.from_json(text, self._given.group_id) if text else None
            projection = load_projection(self._graph, Path(self.settings.home) / "cache")
            # the model and spaCy load on the first query that needs them (a BM25 search never does)
            self._retriever = Retriever(
                projection,
                cast("Embedder", LazyEmbedder(lambda: self._query_embedder(stored))),
                self.settings.retrieval,
                query_entities=lambda query: self.extractor.query_mentions(query),
            )
        return self._retriever

    def _query_embedder(self, stored: Recipe | None) -> Embedder:
        """The embedder for queries, refused when the group's vectors came from another one."""
        embedder = self.embedder
        recipe.check_query_embedder(self._given.group_id, stored, getattr(embedder, "name", ""), int(embedder.dim))
        return embedder

    # -- ingestion ---------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IngestReport:
        """Ingest files, directories or globs (.txt, .md, .jsonl); the report's ``unsupported``
        lists the files of other types found in the directories (left out).

        Every file is read and validated before anything is written: one bad
        file raises :class:`~graphmem.errors.InputError` naming it, and the
        store is left as it was.
        """
        from graphmem.ingest.skipped import unsupported_files

        paths = list(paths)
        documents = read_documents(paths, self.settings.max_file_bytes)
        report = self.ingest_documents(documents, progress)
        report.unsupported = unsupported_files(paths)  # the files of other types the folders held
        return report

    def ingest_documents(
        self, documents: Sequence[Document], progress: Progress | None = None, *, ray: str | None = None
    ) -> IngestReport:
        """Ingest ``documents``; with ``ray`` (a cluster address, or "local" for a local
        instance) as a Ray job (:mod:`graphmem.ingest.ray_ingest`), building the same graph."""
        if ray is not None:
            from graphmem.ingest.ray_ingest import ingest_on_ray

            return ingest_on_ray(self, documents, address=ray, progress=progress)
        if documents:
            from graphmem.ingest.units import DocumentSource

            sources = [DocumentSource(d) for d in documents]
            unchanged = self._unchanged(sources, IngestReport(documents=len(documents)), progress)
            if unchanged is not None:  # nothing to write: no model loaded for it
                return unchanged
            self._store_recipe()
        before = self._graph.revision()
        report = self.ingestor.ingest(documents, progress)
        self._refresh_projection(report, before)
        return report

    def _unchanged(
        self, sources: Sequence[Source], report: IngestReport, progress: Progress | None
    ) -> IngestReport | None:
        """``report`` of an ingestion of ``sources`` that would write nothing, decided from the
        stored content hashes and recipe without loading a model; None: ingest the full way."""
        from graphmem.ingest.unchanged import unchanged_report

        self._use_recipe(self._graph.meta()[1])
        stored = Recipe.from_json(self._recipe_text, self._given.group_id) if self._recipe_text else None
        return unchanged_report(self._graph, self.settings, stored, sources, report, progress)

    def _refresh_projection(self, report: IngestReport, before: int) -> None:
        """Keep the projection current after an ingestion that took the store from revision
        ``before`` on: when it only added rows (and no other writer bumped the revision
        meanwhile), append them to the projection on disk, which every process then maps,
        and move a loaded one along in place; otherwise the next search rebuilds it."""
        after = self._graph.revision()
        if after == before:
            return  # nothing was written
        extended = False
        if report.delta is not None and after == before + 1:
            from graphmem.retrieve.projection import refresh_on_disk

            if self._retriever is not None and self._retriever.projection.revision == before:
                extended = self._retriever.projection.extend(report.delta, after)
                if extended:
                    self._retriever.reset_indexes()
            else:
                refresh_on_disk(Path(self.settings.home) / "cache", self._graph.group_id, report.delta, before, after)
        if not extended:
            self._retriever = None

    def ingest_text(self, text: str, *, name: str, title: str = "", date: datetime | None = None) -> IngestReport:
        """Ingest one document given as a string; ``name`` identifies it for re-ingestion."""
        return self.ingest_documents([Document(name=name, text=text, title=title, date=date)])

    def ingest_dialogues(
        self, paths: Iterable[str | Path], fmt: DialogueFormat = "auto", progress: Progress | None = None
    ) -> IngestReport:
        """Ingest chat logs (graphmem JSON chat, LoCoMo JSON, or ``Speaker: text`` transcripts).

        Every file is read and validated first: a bad turn raises
        :class:`~graphmem.errors.InputError` naming the file, line/turn and field,
        and nothing is written. See :mod:`graphmem.ingest.dialogue` for the formats.
        """
        conversations = read_conversations(paths, fmt, self.settings.max_file_bytes)
        return self.ingest_conversations(conversations, progress)

    def ingest_conversations(
        self, conversations: Sequence[Conversation], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest :class:`~graphmem.ingest.dialogue.Conversation` records (one episode per turn)."""
        if conversations:
            from graphmem.ingest.units import ConversationSource

            sources = [ConversationSource(c) for c in conversations]
            report = IngestReport(documents=len(conversations), unit="conversations", piece="turns", delta=None)
            unchanged = self._unchanged(sources, report, progress)
            if unchanged is not None:  # nothing to write: no model loaded for it
                return unchanged
            self._store_recipe()
        report = self.ingestor.ingest_conversations(conversations, progress)
        if report.passages:
            self._retriever = None  # reloaded (from the store) by the next search
        return report

    # -- time and forgetting -------------------------------------------------------------
    def facts(self, entity: str, *, as_of: datetime | None = None, history: bool = False) -> list[FactRecord]:
        """The facts about ``entity`` (a name, alias or uuid) as a timeline, oldest first.

        Default: the facts true now (not invalidated). ``as_of``: those true at
        that time. ``history``: all of them, current and superseded (with
        ``as_of`` too, the ones that had started by then). Raises
        :class:`~graphmem.errors.InputError` when no entity has that name.
        """
        from graphmem.model import entity_key

        found = self._graph.find_entity(entity, entity_key(entity))
        if found is None:
            raise InputError(f'no entity named {entity!r} (try `graphmem cypher "MATCH (n:Entity) RETURN n.name"`)')
        records = [FactRecord.from_row(row) for row in self._graph.entity_facts(found["uuid"])]
        return _timeline(records, as_of, history)

    def forget(self, *, source: str | None = None, episode: str | None = None) -> dict[str, int]:
        """Delete a source (by name or uuid) or one episode (by uuid), and every fact only it supports.

        Facts other episodes also assert keep them; the NEXT chain is relinked
        around a forgotten episode; entities nothing refers to any more go; the
        timelines of the affected single-valued facts are recomputed (a fact
        that the forgotten one had superseded becomes current again). Returns
        counts of what was removed. Raises InputError when nothing matches.
        """
        if (source is None) == (episode is None):
            raise InputError("forget takes a source or an episode (exactly one)")
        if source is not None:
            # ingest records file sources by their absolute path: a relative one is resolved from
            # the current directory, as ingest resolved it ("path#id" for a JSONL record or chat)
            resolved = _source_path(source)
            row = self._graph.find_source(source) or (self._graph.find_source(resolved) if resolved else None)
            if row is None:
                also = f" or {resolved!r}" if resolved else ""
                raise InputError(
                    f'no source named {source!r}{also} (see `graphmem cypher "MATCH (s:Source) RETURN s.name"`)'
                )
            return self.ingestor.forget(source=row["uuid"])
        removed = self.ingestor.forget(episode=str(episode))
        if not removed["episodes"]:
            raise InputError(f"no episode with uuid {episode!r}")
        return removed

    # -- retrieval ------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: SearchMode = "graph",
        as_of: datetime | None = None,
        retrieval: RetrievalSettings | Mapping[str, Any] | None = None,
    ) -> list[SearchResult]:
        """The ``k`` passages that best answer ``query`` (``mode``: graph, dense or bm25).

        ``retrieval``: knobs for this call only (the fields it sets, or a mapping's keys),
        over the group's recipe and this memory's settings."""
        return self.search_many([query], k, mode=mode, as_of=as_of, retrieval=retrieval)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 5,
        *,
        mode: SearchMode = "graph",
        as_of: datetime | None = None,
        query_vectors: np.ndarray | None = None,
        retrieval: RetrievalSettings | Mapping[str, Any] | None = None,
    ) -> list[list[SearchResult]]:
        """Search several queries at once (one batched PPR; faster per query than a loop).

        ``query_vectors`` (``(len(queries), dim)``, from :attr:`embedder`) skips
        embedding the queries again, e.g. when the same questions run in several modes.
        ``retrieval``: knobs for this call only, as in :meth:`search`.
        """
        hits = self._searcher(retrieval).search_many(
            list(queries),
            k,
            mode=mode,
            as_of=as_of,
            query_vectors=query_vectors,
        )
        episodes = self._graph.episodes(sorted({h.uuid for row in hits for h in row}))
        results = []
        for row in hits:
            results.append(
                [
                    SearchResult(
                        uuid=h.uuid,
                        rank=h.rank,
                        score=h.score,
                        content=episodes[h.uuid]["content"],
                        title=episodes[h.uuid].get("title") or "",
                        source=episodes[h.uuid].get("source_name") or "",
                        occurred_at=from_ms(episodes[h.uuid].get("occurred_at")),
                        speaker=episodes[h.uuid].get("speaker") or "",
                        turn_id=episodes[h.uuid].get("turn_id") or "",
                        entities=h.entities,
                        facts=h.facts,
                    )
                    for h in row
                    if h.uuid in episodes
                ]
            )
        return results

    # -- inspection --------------------------------------------------------------------
    @property
    def isolation(self) -> str:
        """How the store keeps this group apart from others: 'graph', 'database' or
        'property' (see :mod:`graphmem.store.base`)."""
        return self._store.isolation

    def stats(self) -> dict[str, int]:
        return self._graph.stats()

    def episodes(self, uuids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored episodes of ``uuids`` (content, title, source, time...), by uuid;
        uuids this group does not hold are left out."""
        return self._graph.episodes(list(uuids))

    def entity(self, uuid: str) -> dict[str, Any] | None:
        """One entity by uuid (name, type, aliases, summary, mentions); None when this group has none."""
        return self._graph.entity(uuid)

    def sources(self) -> list[dict[str, Any]]:
        """Every source of this group (name, uuid, state...)."""
        return self._graph.sources()

    def read(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Rows of the named read query ``query`` (a block of ``cypher/*.cypher``, e.g. the
        graph explorer's ``ui_*`` reads) run in this group; ``$group_id`` is bound here."""
        return self._store.run(query, **params, group_id=self._given.group_id)

    def cypher(
        self,
        text: str,
        params: dict[str, Any] | None = None,
        *,
        write: bool = False,
        timeout_ms: int = 30_000,
        max_rows: int | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        """Run Cypher in this memory's group (read-only unless ``write``; at most
        ``max_rows`` rows). It cannot see other groups: each lives apart in the store."""
        return self._graph.cypher(text, params, write=write, timeout_ms=timeout_ms, max_rows=max_rows)


_EXTRACTORS: dict[str, SpacyExtractor] = {}


def _cached_extractor(model: str) -> SpacyExtractor:
    from graphmem.extract.spacy_extractor import SpacyExtractor

    if model not in _EXTRACTORS:
        _EXTRACTORS[model] = SpacyExtractor(model)
    return _EXTRACTORS[model]

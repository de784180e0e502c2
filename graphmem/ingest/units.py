"""What documents and dialogues contribute to the graph, through one protocol.

A *source* (a document, a conversation) is what ingestion claims, replaces,
appends to or skips; it splits into *units* (a document's passages, a
conversation's turns), each of which becomes one episode. The pipeline
(:mod:`graphmem.ingest.pipeline`) handles both alike: it extracts, embeds,
resolves and writes units in batches without asking which kind they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from graphmem.config import Settings
from graphmem.extract.base import Extraction, Extractor, Mention
from graphmem.ingest.chunking import iter_spans
from graphmem.ingest.context_vectors import TextMap, extraction_text_and_map
from graphmem.ingest.dialogue import Conversation, Turn
from graphmem.ingest.readers import Document
from graphmem.model import content_hash, stable_uuid
from graphmem.store.graph import SourceState
from graphmem.timeutil import to_ms


class Unit(Protocol):
    """One episode to be: a passage of a document or a turn of a dialogue."""

    uuid: str
    source_uuid: str
    position: int
    #: offsets of the extracted text -> offsets of :meth:`embedding_text`
    text_map: TextMap
    #: uuid of the stored episode this one follows (the first new turn of a grown dialogue), else ""
    follows: str

    @property
    def date(self) -> datetime | None: ...

    def embedding_text(self) -> str: ...

    def episode_row(self, group_id: str, now: int) -> dict[str, Any]: ...

    def role_of(self, name: str) -> str | None: ...

    @staticmethod
    def extract(units: Sequence[Any], extractor: Extractor) -> list[Extraction]: ...


class Source(Protocol):
    """A document or a conversation: the thing claimed, replaced, appended to or skipped."""

    @property
    def name(self) -> str: ...

    def claim_row(self) -> dict[str, Any]:
        """``name, kind, uri, content_hash, metadata`` for :meth:`Graph.claim_sources`."""
        ...

    @property
    def size(self) -> int:
        """What the source counts for in progress reports."""
        ...

    @property
    def people(self) -> list[str]:
        """Names that are people whatever the extractor says (a dialogue's speakers)."""
        ...

    @property
    def turn_count(self) -> int | None:
        """Units to record on the Source node (dialogues: a grown log appends after them)."""
        ...

    def resume_at(self, stored: SourceState | None) -> int:
        """The first unit to write when ``stored`` (complete, other content) is an exact prefix
        of this source; 0 when it must be rewritten."""
        ...

    def expected(self, settings: Settings, start: int) -> int:
        """About how many units from ``start`` on (to size batches before chunking)."""
        ...

    def units(self, group_id: str, source_uuid: str, start: int, settings: Settings) -> Sequence[Unit]: ...

    @property
    def final(self) -> bool:
        """The source ends with this one's units (False: a slice of a long document, more follow)."""
        ...

    @property
    def stop(self) -> int | None:
        """The unit this one's units end before (a slice of a long document), else None."""
        ...

    def parts(self, settings: Settings, start: int, per: int) -> list[tuple[int, Source, int]]:
        """The source from unit ``start`` on, as ``(first unit, source or slice of it, units)``:
        one part, or (a long document) consecutive slices of ``per`` units, written one batch
        each so that memory stays bounded and an interrupted run keeps what it wrote."""
        ...


# -- documents ---------------------------------------------------------------------------
@dataclass
class Passage:
    document: Document
    source_uuid: str
    position: int
    content: str
    uuid: str = ""
    text_map: TextMap = field(default_factory=TextMap)
    follows: str = ""

    def embedding_text(self) -> str:
        title = self.document.title
        return f"{title}\n{self.content}" if title and title not in self.content[: len(title) + 10] else self.content

    @property
    def date(self) -> datetime | None:
        return self.document.date

    def episode_row(self, group_id: str, now: int) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "group_id": group_id,
            "source": "doc",
            "source_id": self.source_uuid,
            "source_uuid": self.source_uuid,
            "content": self.content,
            "content_hash": content_hash(self.content),
            "position": self.position,
            "title": self.document.title,
            "speaker": "",
            "occurred_at": to_ms(self.document.date),
            "ingested_at": now,
            "turn_id": "",
            "search_text": None,
        }

    def role_of(self, name: str) -> str | None:
        return None

    @staticmethod
    def extract(units: Sequence[Passage], extractor: Extractor) -> list[Extraction]:
        """Extract from the passages' text (see :func:`extraction_text_and_map`), anchored at
        their document's date and title; sets each passage's ``text_map``."""
        texts = []
        for passage in units:
            text, passage.text_map = extraction_text_and_map(passage.content)
            passage.text_map.prefix = len(passage.embedding_text()) - len(passage.content)
            texts.append(text)
        return extractor.extract(
            texts, reference_times=[p.document.date for p in units], titles=[p.document.title for p in units]
        )


_WORD = re.compile(r"\S+")


@dataclass
class DocumentSource:
    """A document, or a slice of a long one (see :meth:`parts`): its passages are chunked from
    character ``offset`` on (the start of passage ``offset_position``) and end before ``stop``."""

    document: Document
    stop: int | None = None
    offset: int = 0
    offset_position: int = 0

    @property
    def name(self) -> str:
        return self.document.name

    def claim_row(self) -> dict[str, Any]:
        d = self.document
        return {"name": d.name, "kind": "doc", "uri": d.uri, "content_hash": d.content_hash, "metadata": d.metadata}

    @property
    def size(self) -> int:
        return 1

    @property
    def people(self) -> list[str]:
        return []

    @property
    def turn_count(self) -> int | None:
        return None

    def resume_at(self, stored: SourceState | None) -> int:
        return 0

    @property
    def final(self) -> bool:
        return self.stop is None

    def expected(self, settings: Settings, start: int) -> int:
        stride = max(1, settings.chunk_words - settings.chunk_overlap)
        words = sum(1 for _ in _WORD.finditer(self.document.text))  # no list of a long text's words
        return max(1, -(-words // stride))

    def _spans(self, settings: Settings, offset: int = 0) -> Iterator[tuple[int, int]]:
        s = settings
        return iter_spans(self.document.text, s.chunk_words, s.chunk_overlap, s.max_passage_chars, start=offset)

    def units(self, group_id: str, source_uuid: str, start: int, settings: Settings) -> list[Passage]:
        """Passages ``start`` .. ``stop`` (the end); the first follows passage ``start - 1``."""
        d = self.document
        passages: list[Passage] = []
        before = ""  # uuid of the passage before the first one returned
        for position, (a, b) in enumerate(self._spans(settings, self.offset), start=self.offset_position):
            if self.stop is not None and position >= self.stop:
                break
            content = d.text[a:b]
            uuid = stable_uuid(group_id, "episode", d.name, str(position), content_hash(content))
            if position < start:
                before = uuid
                continue
            passages.append(Passage(d, source_uuid, position, content, uuid=uuid, follows="" if passages else before))
        return passages

    def parts(self, settings: Settings, start: int, per: int) -> list[tuple[int, Source, int]]:
        """One part when the document is expected to fill at most ``per`` passages; else slices
        of ``per`` passages, found in one pass over the text (each slice chunks from the
        passage before its first, whose uuid its first passage follows)."""
        if self.expected(settings, start) <= per:
            return [(start, self, self.expected(settings, start))]
        cuts: list[tuple[int, int, int]] = []  # (first passage, offset to chunk from, its position)
        previous = (0, 0)
        count = 0
        for position, (a, _) in enumerate(self._spans(settings)):
            if position >= start and (position - start) % per == 0:
                cuts.append((position, *previous))
            previous, count = (a, position), position + 1
        if not cuts:
            return [(start, self, 0)]
        slices: list[tuple[int, Source, int]] = []
        for k, (first, offset, offset_position) in enumerate(cuts):
            stop = cuts[k + 1][0] if k + 1 < len(cuts) else None
            part = replace(self, stop=stop, offset=offset, offset_position=offset_position)
            slices.append((first, part, (stop if stop is not None else count) - first))
        return slices


# -- dialogues --------------------------------------------------------------------------
def turn_uuid(group_id: str, conversation: str, position: int, turn: Turn) -> str:
    """Deterministic: the same turn at the same place of the same conversation keeps its uuid."""
    return stable_uuid(group_id, "turn", conversation, str(position), turn.digest())


@dataclass
class TurnUnit:
    """One dialogue turn on its way to becoming an episode."""

    turn: Turn
    position: int
    uuid: str
    source_uuid: str = ""
    title: str = ""
    follows: str = ""
    text_map: TextMap = field(default_factory=TextMap)

    @property
    def date(self) -> datetime | None:
        return self.turn.time

    def embedding_text(self) -> str:
        return self.turn.embedding_text()

    def episode_row(self, group_id: str, now: int) -> dict[str, Any]:
        turn = self.turn
        return {
            "uuid": self.uuid,
            "group_id": group_id,
            "source": "dialogue",
            "source_id": self.source_uuid,
            "source_uuid": self.source_uuid,
            "content": turn.text,
            "content_hash": content_hash(turn.text),
            "position": self.position,
            "title": self.title,
            "speaker": turn.speaker,
            "occurred_at": to_ms(turn.time),
            "ingested_at": now,
            "turn_id": turn.turn_id,
            "search_text": turn.embedding_text(),
        }

    def role_of(self, name: str) -> str | None:
        return "speaker" if name == self.turn.speaker else None

    @staticmethod
    def extract(units: Sequence[TurnUnit], extractor: Extractor) -> list[Extraction]:
        """Extract from the turns' text (first person is the speaker), anchored at their time;
        every turn mentions its speaker, as a PERSON."""
        turns = [u.turn for u in units]
        extractions = extractor.extract(
            [t.text for t in turns], reference_times=[t.time for t in turns], speakers=[t.speaker for t in turns]
        )
        for unit, ex in zip(units, extractions, strict=True):
            unit.text_map = TextMap(prefix=len(unit.turn.embedding_prefix()))
            speaker = next((m for m in ex.mentions if m.name == unit.turn.speaker), None)
            if speaker is None:
                ex.mentions.append(Mention(name=unit.turn.speaker, type="PERSON", count=1))
            else:
                speaker.type = "PERSON"
        return extractions


@dataclass
class ConversationSource:
    conversation: Conversation

    @property
    def name(self) -> str:
        return self.conversation.name

    def claim_row(self) -> dict[str, Any]:
        c = self.conversation
        return {
            "name": c.name,
            "kind": "dialogue",
            "uri": c.uri,
            "content_hash": c.content_hash,
            "metadata": {**c.metadata, "title": c.title},
        }

    @property
    def size(self) -> int:
        return len(self.conversation.turns)

    @property
    def people(self) -> list[str]:
        return self.conversation.speakers

    @property
    def turn_count(self) -> int:
        return len(self.conversation.turns)

    def resume_at(self, stored: SourceState | None) -> int:
        if stored is None:
            return 0
        c, n = self.conversation, stored.turn_count
        return n if 0 < n < len(c.turns) and c.prefix_hash(n) == stored.content_hash else 0

    def expected(self, settings: Settings, start: int) -> int:
        return len(self.conversation.turns) - start

    @property
    def final(self) -> bool:
        return True

    @property
    def stop(self) -> int | None:
        return None

    def parts(self, settings: Settings, start: int, per: int) -> list[tuple[int, Source, int]]:
        return [(start, self, self.expected(settings, start))]

    def units(self, group_id: str, source_uuid: str, start: int, settings: Settings) -> list[TurnUnit]:
        c = self.conversation
        units = [
            TurnUnit(turn, position, turn_uuid(group_id, c.name, position, turn), source_uuid, c.title)
            for position, turn in enumerate(c.turns)
            if position >= start
        ]
        if start > 0 and units:  # appending: the first new turn follows the last stored one
            units[0].follows = turn_uuid(group_id, c.name, start - 1, c.turns[start - 1])
        return units


def expected_passages(documents: Sequence[Document], settings: Settings) -> int:
    """About how many passages ``documents`` split into (the total a progress display counts
    towards; an estimate from word counts, read in one pass without chunking)."""
    return sum(DocumentSource(document).expected(settings, 0) for document in documents)

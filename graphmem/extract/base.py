"""What an extractor finds in a passage, and the interface extractors share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass
class Mention:
    """An entity named in a passage (surface form as written)."""

    name: str
    type: str = ""
    count: int = 1
    #: where it is named: (start, end) character offsets in the extracted text
    #: (the first occurrence), for pooling its vector from the passage's own
    #: token embeddings; empty when the name is not written out (a speaker, a title)
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Triple:
    """A subject-predicate-object statement between two mentions of one passage."""

    subject: str
    predicate: str
    object: str
    text: str
    valid_at: datetime | None = None
    #: the character ranges of the subject, predicate and object words in the
    #: extracted text (see :attr:`Mention.spans`)
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Extraction:
    mentions: list[Mention] = field(default_factory=list)
    triples: list[Triple] = field(default_factory=list)


class Extractor(Protocol):
    def extract(
        self,
        texts: Sequence[str],
        *,
        reference_times: Sequence[datetime | None] | None = None,
        speakers: Sequence[str] | None = None,
        titles: Sequence[str] | None = None,
    ) -> list[Extraction]:
        """One :class:`Extraction` per text. ``reference_times`` anchor relative dates;
        ``speakers`` (dialogue turns) resolve first-person pronouns; ``titles``
        (documents') are mentioned by their passages and back pronouns up."""
        ...

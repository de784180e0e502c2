"""What one ingestion run did: counts that add up across runs, and the rows it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SkipValidation


@dataclass
class GraphDelta:
    """Rows written by one ingestion run, with their vectors (see Projection.extend)."""

    entities: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    episode_vectors: list[np.ndarray] = field(default_factory=list)
    mentions: list[dict[str, Any]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)
    fact_vectors: list[np.ndarray] = field(default_factory=list)
    synonyms: list[dict[str, Any]] = field(default_factory=list)
    nexts: list[dict[str, Any]] = field(default_factory=list)
    #: valid_at / invalid_at of facts whose timeline this run recomputed (stored ones too), in write order
    validity: list[dict[str, Any]] = field(default_factory=list)


#: the counted fields, added field by field when reports are summed
COUNTS = ("documents", "skipped", "replaced", "busy", "passages", "entities", "facts", "invalidated", "appended")


class IngestReport(BaseModel):
    """Counts of one ingestion (or of several, summed with ``+``), as the API returns them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    documents: int = Field(0, description="documents or conversations given")
    skipped: int = Field(0, description="unchanged since they were last ingested")
    replaced: int = Field(0, description="stored with other content, rewritten")
    busy: int = Field(0, description="being written by another live process at the same time (left to it)")
    passages: int = Field(0, description="passages or turns written")
    entities: int = Field(0, description="new entities")
    facts: int = Field(0, description="facts written")
    invalidated: int = Field(0, description="older facts ended by newer single-valued ones")
    appended: int = Field(0, description="dialogues that only got new turns")
    seconds: float = Field(0.0, description="wall-clock time")
    errors: list[str] = Field(default_factory=list, description="what was skipped and why")
    unsupported: list[str] = Field(
        default_factory=list, description="files in the given folders left out: not a type graphmem reads"
    )
    unit: Literal["documents", "conversations"] = "documents"
    piece: Literal["passages", "turns"] = "passages"
    #: what was added, for updating an in-memory projection without a reload; None once
    #: anything was removed or replaced (then only a reload is right), and in any sum of runs
    delta: SkipValidation[GraphDelta | None] = Field(default_factory=GraphDelta, exclude=True, repr=False)

    def merge(self, other: IngestReport) -> IngestReport:
        """Add ``other`` into this report (counts, seconds, errors) and return it. A sum
        describes no single revision step, so it carries no delta."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.errors.extend(other.errors)
        self.unsupported.extend(other.unsupported)
        self.delta = None
        return self

    def __add__(self, other: IngestReport) -> IngestReport:
        return self._copy().merge(other)

    def __radd__(self, other: object) -> IngestReport:
        """``sum(reports)`` starts from 0."""
        if other == 0:
            return self._copy()
        return NotImplemented

    def __iadd__(self, other: IngestReport) -> IngestReport:
        return self.merge(other)

    def _copy(self) -> IngestReport:
        return self.model_copy(
            update={"errors": list(self.errors), "unsupported": list(self.unsupported), "delta": None}
        )

    def summary(self) -> str:
        rate = self.passages / self.seconds if self.seconds else 0.0
        appended = f", {self.appended} appended" if self.appended else ""
        busy = f", {self.busy} left to another writer" if self.busy else ""
        invalidated = f" ({self.invalidated} superseded)" if self.invalidated else ""
        left_out = f"; {len(self.unsupported)} file(s) of other types left out" if self.unsupported else ""
        return (
            f"{self.documents} {self.unit} ({self.skipped} unchanged, {self.replaced} replaced{appended}{busy}), "
            f"{self.passages} {self.piece}, {self.entities} new entities, {self.facts} facts{invalidated} "
            f"in {self.seconds:.1f} s ({rate:.1f} {self.piece}/s){left_out}"
        )

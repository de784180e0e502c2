"""Plain data: the nodes and relationships of the graph.

These models are what the Python API returns and what the store writes. Times
are timezone-aware ``datetime`` objects here; the store layer turns them into
UTC epoch milliseconds (see :mod:`graphmem.timeutil`).
"""

from __future__ import annotations

import hashlib
import uuid as _uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from graphmem.timeutil import ensure_utc, utcnow

# One namespace for every deterministic id, so the same content always gets
# the same uuid: that is what makes ingestion idempotent.
GRAPHMEM_NS = _uuid.UUID("5d8e0c1a-6a0f-4f57-9a3e-2f1f5b7c9d10")


def stable_uuid(*parts: str) -> str:
    """A uuid5 derived from ``parts`` (joined with a separator no text contains)."""
    return str(_uuid.uuid5(GRAPHMEM_NS, "\x1f".join(parts)))


def content_hash(text: str) -> str:
    """sha256 hex digest of ``text`` as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_name(name: str) -> str:
    """The key two entity mentions must share to be the same entity outright."""
    cleaned = "".join(ch if ch.isalnum() else " " for ch in name.casefold())
    words = cleaned.split()
    if words and words[0] in {"the", "a", "an"}:
        words = words[1:]
    return " ".join(words)


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    uuid: str = Field(min_length=1)
    group_id: str = Field(default="default", min_length=1, max_length=128)


class Source(_Node):
    """A document or a conversation: the unit that is ingested, replaced or forgotten."""

    kind: Literal["doc", "dialogue"] = "doc"
    name: str = Field(min_length=1)
    uri: str = ""
    content_hash: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)


class Episode(_Node):
    """A passage of a document or a turn of a dialogue, stored exactly as received."""

    source: Literal["doc", "dialogue"] = "doc"
    source_id: str = Field(min_length=1)
    content: str = Field(min_length=1)
    content_hash: str = ""
    position: int = Field(default=0, ge=0)
    title: str = ""
    speaker: str = ""
    turn_id: str = ""  # dialogue turns: the id the input gave the turn (e.g. LoCoMo's "D3:5")
    occurred_at: datetime | None = None
    ingested_at: datetime = Field(default_factory=utcnow)

    @field_validator("occurred_at", "ingested_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return ensure_utc(value) if value is not None else None

    @model_validator(mode="after")
    def _hash(self) -> "Episode":
        if not self.content_hash:
            object.__setattr__(self, "content_hash", content_hash(self.content))
        return self


class Entity(_Node):
    """A resolved thing: person, place, organisation, concept."""

    name: str = Field(min_length=1, max_length=512)
    aliases: list[str] = Field(default_factory=list)
    type: str = ""
    summary: str = ""


class Fact(BaseModel):
    """A bi-temporal statement ``subject -[predicate]-> object`` between two entities.

    World time: ``valid_at`` / ``invalid_at`` (when it was true).
    System time: ``created_at`` / ``expired_at`` (when graphmem believed it).
    A contradicted fact is never deleted; it gets ``invalid_at`` and ``expired_at``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    uuid: str = Field(min_length=1)
    group_id: str = Field(default="default", min_length=1, max_length=128)
    subject: str = Field(min_length=1, description="uuid of the subject entity")
    object: str = Field(min_length=1, description="uuid of the object entity")
    predicate: str = Field(min_length=1, max_length=256)
    text: str = Field(min_length=1)
    valid_at: datetime | None = None
    invalid_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    expired_at: datetime | None = None
    episodes: list[str] = Field(default_factory=list)

    @field_validator("valid_at", "invalid_at", "created_at", "expired_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return ensure_utc(value) if value is not None else None

    @model_validator(mode="after")
    def _interval(self) -> "Fact":
        if self.valid_at and self.invalid_at and self.invalid_at < self.valid_at:
            raise ValueError("invalid_at is before valid_at")
        return self

    def valid_on(self, when: datetime) -> bool:
        """True when the fact held in the world at ``when``."""
        when = ensure_utc(when)
        if self.valid_at is not None and when < self.valid_at:
            return False
        return self.invalid_at is None or when < self.invalid_at

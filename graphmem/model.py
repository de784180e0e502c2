"""The identities of the graph: deterministic uuids, content hashes and entity keys.

Every layer derives ids the same way from these, which is what makes ingestion
idempotent and lets retrieval look entities up by name.
"""

from __future__ import annotations

import hashlib
import uuid as _uuid
from functools import lru_cache

#: suffixes an entity key drops ("Orvalis Robotics Inc" is "Orvalis Robotics")
CORPORATE_SUFFIXES = {"inc", "ltd", "llc", "corp", "corporation", "co", "plc", "gmbh", "ag", "sa", "bv"}

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


@lru_cache(maxsize=1 << 18)
def entity_key(name: str) -> str:
    """The key two names share when they are the same entity outright: the normalised name
    without a corporate suffix or a trailing possessive."""
    words = normalize_name(name).split()
    while len(words) > 1 and words[-1] in CORPORATE_SUFFIXES:
        words = words[:-1]
    if len(words) > 1 and words[-1] == "s" and name.rstrip().endswith("'s"):
        words = words[:-1]
    return " ".join(words)

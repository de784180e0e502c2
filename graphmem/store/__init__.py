"""Graph persistence: the :class:`GraphStore` protocol and its implementations."""

from __future__ import annotations

from graphmem.config import Settings
from graphmem.errors import ConfigError
from graphmem.store.base import GraphStore


def open_store(settings: Settings) -> GraphStore:
    """Open the store ``settings.store`` names: 'falkordb' (embedded) or a Neo4j URI."""
    target = settings.store.strip()
    if target in {"falkordb", "embedded", ""}:
        from graphmem.store.falkordb import FalkorDBStore

        return FalkorDBStore(settings.home, settings.graph)
    scheme = target.split("://", 1)[0].lower()
    if scheme in {"neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"}:
        try:
            from graphmem.store.neo4j import Neo4jStore
        except ImportError as exc:
            raise ConfigError(f"the Neo4j store is not available: {exc}") from exc
        return Neo4jStore.from_uri(target, database_per_group=settings.neo4j_database_per_group)
    raise ConfigError(f"unknown store {settings.store!r}: use 'falkordb' or a neo4j:// URI")


__all__ = ["GraphStore", "open_store"]

"""graphmem: a temporal knowledge-graph memory for RAG pipelines and agents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Memory", "Client", "SearchResult", "Settings", "GraphmemError", "__version__"]

if TYPE_CHECKING:
    from graphmem.config import Settings
    from graphmem.errors import GraphmemError
    from graphmem.client import Client
    from graphmem.memory import Memory, SearchResult


def __getattr__(name: str) -> Any:
    # lazy, so `import graphmem` (and the CLI's --help) stays instant
    if name in {"Memory", "SearchResult"}:
        from graphmem import memory

        return getattr(memory, name)
    if name == "Client":
        from graphmem.client import Client

        return Client
    if name == "Settings":
        from graphmem.config import Settings

        return Settings
    if name == "GraphmemError":
        from graphmem.errors import GraphmemError

        return GraphmemError
    raise AttributeError(f"module 'graphmem' has no attribute {name!r}")

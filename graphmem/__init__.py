"""graphmem: a temporal knowledge-graph memory for RAG pipelines and agents."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Memory",
    "Client",
    "SearchResult",
    "SearchMode",
    "FactRecord",
    "Document",
    "Conversation",
    "IngestReport",
    "Settings",
    "GraphmemError",
    "__version__",
]

if TYPE_CHECKING:
    from graphmem.client import Client
    from graphmem.config import Settings
    from graphmem.errors import GraphmemError
    from graphmem.ingest.dialogue import Conversation
    from graphmem.ingest.readers import Document
    from graphmem.ingest.report import IngestReport
    from graphmem.memory import FactRecord, Memory, SearchMode, SearchResult

#: where each public name lives; imported on first use, so `import graphmem` (and the CLI's --help) stays instant
_HOMES = {
    "Memory": "graphmem.memory",
    "SearchResult": "graphmem.memory",
    "SearchMode": "graphmem.memory",
    "FactRecord": "graphmem.memory",
    "Client": "graphmem.client",
    "Settings": "graphmem.config",
    "GraphmemError": "graphmem.errors",
    "Document": "graphmem.ingest.readers",
    "Conversation": "graphmem.ingest.dialogue",
    "IngestReport": "graphmem.ingest.report",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'graphmem' has no attribute {name!r}")
    return getattr(import_module(home), name)

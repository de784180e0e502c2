"""A LangChain retriever over graphmem: ``GraphmemRetriever(memory=memory_or_client)``.

    >>> from graphmem import Client
    >>> from graphmem.integrations.langchain import GraphmemRetriever
    >>> retriever = GraphmemRetriever(memory=Client("http://127.0.0.1:8000", api_key=KEY), k=5)
    >>> docs = retriever.invoke("Which river flows past the town where the Halvard Library stands?")
    >>> docs = await retriever.ainvoke("Who built the Kessary Bridge?")

It works on anything with ``search(query, k, mode=, as_of=)``: an in-process
:class:`graphmem.Memory` or a :class:`graphmem.Client` of ``graphmem serve``, as the
llama-index retriever (:mod:`graphmem.integrations.llama_index`) does, with the same options.
Each result is a ``Document`` whose ``page_content`` is the passage, ``id`` its episode uuid,
and whose metadata carries its provenance: ``source``, ``title``, ``uuid``, ``rank``,
``score``, ``occurred_at`` (ISO), ``speaker`` and ``turn_id`` (dialogue turns), and the
``facts`` and ``entities`` that led to it.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, field_validator


class GraphmemRetriever(BaseRetriever):
    """Retrieve passages from a :class:`graphmem.Memory` or :class:`graphmem.Client`.

    ``k``: passages per query; ``mode``: graph (multi-hop, default), dense or bm25;
    ``as_of``: answer as the memory stood at that time. The async path runs the search in a
    worker thread; calls through one retriever run one at a time (a Memory is not shared
    between threads)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any = Field(description="a graphmem.Memory or graphmem.Client")
    k: int = Field(5, ge=1, le=100)
    mode: str = "graph"
    as_of: datetime | None = None
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        if mode not in {"graph", "dense", "bm25"}:
            raise ValueError(f"mode must be graph, dense or bm25, not {mode!r}")
        return mode

    @field_validator("memory")
    @classmethod
    def _searchable(cls, memory: Any) -> Any:
        if not callable(getattr(memory, "search", None)):
            raise ValueError(f"memory must be a graphmem.Memory or graphmem.Client, not {type(memory).__name__}")
        return memory

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self._search(query)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query)

    def _search(self, query: str) -> list[Document]:
        with self._lock:
            hits = self.memory.search(query, self.k, mode=self.mode, as_of=self.as_of)
        return [to_document(hit) for hit in hits]


def to_document(hit: Any) -> Document:
    """One :class:`graphmem.SearchResult` as a LangChain ``Document`` with its provenance."""
    metadata = {
        "source": hit.source,
        "title": hit.title,
        "uuid": hit.uuid,
        "rank": hit.rank,
        "score": float(hit.score),
        "occurred_at": hit.occurred_at.isoformat() if hit.occurred_at else None,
        "speaker": hit.speaker,
        "turn_id": hit.turn_id,
        "facts": list(hit.facts),
        "entities": list(hit.entities),
    }
    return Document(id=hit.uuid, page_content=hit.content, metadata=metadata)

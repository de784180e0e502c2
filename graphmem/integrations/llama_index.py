"""A llama-index retriever over graphmem: ``GraphMemRetriever(memory_or_client)``.

    >>> from llama_index.core.query_engine import RetrieverQueryEngine
    >>> from graphmem import Client
    >>> from graphmem.integrations.llama_index import GraphMemRetriever
    >>> retriever = GraphMemRetriever(Client("http://127.0.0.1:8000", api_key=KEY), k=5)
    >>> engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)
    >>> print(engine.query("Which river flows past the town where the Halvard Library stands?"))

Each result is a ``NodeWithScore`` whose node is a ``TextNode`` with the
passage text, ``id_`` = the episode uuid, and metadata ``source``, ``title``,
``occurred_at`` (ISO), ``facts`` (the facts that led to it) and ``entities``.
Metadata stays out of the LLM prompt and the embedding text except the source
and title, so the prompt holds the passage, not bookkeeping.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

_HIDDEN_FROM_LLM = ["occurred_at", "facts", "entities", "uuid", "rank"]


class GraphMemRetriever(BaseRetriever):
    """Retrieve passages from a :class:`graphmem.Memory` or :class:`graphmem.Client`
    (anything with ``search(query, k, mode=, as_of=)``)."""

    def __init__(
        self,
        memory: Any,
        k: int = 5,
        *,
        mode: str = "graph",
        as_of: datetime | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        if mode not in {"graph", "dense", "bm25"}:
            raise ValueError(f"mode must be graph, dense or bm25, not {mode!r}")
        self.memory, self.k, self.mode, self.as_of = memory, k, mode, as_of
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        results = self.memory.search(query_bundle.query_str, self.k, mode=self.mode, as_of=self.as_of)
        nodes = []
        for hit in results:
            metadata = {
                "source": hit.source,
                "title": hit.title,
                "uuid": hit.uuid,
                "rank": hit.rank,
                "occurred_at": hit.occurred_at.isoformat() if hit.occurred_at else None,
                "facts": list(hit.facts),
                "entities": list(hit.entities),
            }
            node = TextNode(
                id_=hit.uuid,
                text=hit.content,
                metadata=metadata,
                excluded_llm_metadata_keys=_HIDDEN_FROM_LLM,
                excluded_embed_metadata_keys=_HIDDEN_FROM_LLM,
            )
            nodes.append(NodeWithScore(node=node, score=float(hit.score)))
        return nodes

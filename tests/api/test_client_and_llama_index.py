"""graphmem.Client against a real server, next to the in-process Memory; the llama-index
retriever inside a real RetrieverQueryEngine (with llama-index's MockLLM)."""

from __future__ import annotations

from datetime import datetime

import pytest

from graphmem.errors import InputError
from tests.conftest import example_doc_name


@pytest.fixture(scope="module")
def client_a(api):
    from graphmem import Client

    with Client(api.url, api_key=api.key_a) as client:
        yield client


def test_client_and_memory_share_the_interface(client_a, sample_memory, sample_questions):
    from graphmem.client import MemoryInterface

    assert isinstance(client_a, MemoryInterface)
    question = sample_questions[0]["question"]
    remote = client_a.search(question, k=5)
    local = sample_memory.search(question, k=5)
    assert [h.uuid for h in remote] == [h.uuid for h in local]  # same store content, same ranking
    assert remote[0].content == local[0].content and remote[0].occurred_at == local[0].occurred_at
    assert isinstance(sample_memory, MemoryInterface)


def test_client_ingest_search_and_errors(api, tmp_path):
    from graphmem import Client

    (tmp_path / "fjord.txt").write_text(
        "The Velling glacier feeds the Norrfjord. Ingrid Solberg mapped the glacier in 1911."
    )
    with Client(api.url, api_key=api.key_b) as client:
        report = client.ingest([tmp_path / "fjord.txt"])
        assert report.documents == 1 and report.passages == 1
        hits = client.search("Who mapped the Velling glacier?", k=1, mode="dense")
        assert "Ingrid Solberg" in hits[0].content
        with pytest.raises(InputError):
            client.search("", k=1)
        with pytest.raises(InputError):
            client.ingest([tmp_path / "missing.txt"])  # read here first, like Memory.ingest
    from graphmem.client import ClientError

    with Client(api.url, api_key="gm_bad") as bad, pytest.raises(ClientError) as info:
        bad.search("x")
    assert info.value.status == 401


def test_retriever_in_a_query_engine(client_a, sample_questions):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from graphmem.integrations.llama_index import GraphMemRetriever

    engine = RetrieverQueryEngine.from_args(GraphMemRetriever(client_a, k=5), llm=MockLLM())
    hits = 0
    for question in sample_questions[:6]:
        response = engine.query(question["question"])
        nodes = response.source_nodes
        assert len(nodes) == 5 and all(n.score is not None for n in nodes)
        assert nodes[0].node.metadata["source"] and isinstance(nodes[0].node.metadata["facts"], list)
        expected = [h.uuid for h in client_a.search(question["question"], k=5)]
        assert [n.node.node_id for n in nodes] == expected  # the engine got exactly graphmem's ranking
        hits += bool({example_doc_name(n.node.metadata["source"]) for n in nodes} & set(question["supporting"]))
        assert nodes[0].node.get_content() in str(response)  # MockLLM echoes its prompt: the passages reached it
    assert hits >= 4


def test_retriever_metadata_with_memory(sample_memory):
    from llama_index.core.schema import QueryBundle

    from graphmem.integrations.llama_index import GraphMemRetriever

    nodes = GraphMemRetriever(sample_memory, k=3, mode="dense").retrieve(QueryBundle("Halvard Library"))
    meta = nodes[0].node.metadata
    assert set(meta) >= {"source", "title", "occurred_at", "facts", "entities"}
    if meta["occurred_at"]:
        datetime.fromisoformat(meta["occurred_at"])
    assert "facts" not in nodes[0].node.get_content(metadata_mode="llm")

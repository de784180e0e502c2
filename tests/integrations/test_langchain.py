"""The LangChain retriever, offline with langchain-core: in-process on a Memory and through a
real ``graphmem serve`` (uvicorn on 127.0.0.1) with graphmem.Client, sync and async."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from tests.api.conftest import api  # noqa: F401  (the module-scoped server fixture)
from tests.conftest import example_doc_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(api):  # noqa: F811
    from graphmem import Client

    with Client(api.url, api_key=api.key_a) as found:
        yield found


def test_through_the_rest_client_sync_and_async_give_graphmem_ranking(client, sample_questions):
    from graphmem.integrations.langchain import GraphmemRetriever

    retriever = GraphmemRetriever(memory=client, k=5)
    questions = [q["question"] for q in sample_questions[:4]]
    supported = 0
    for question, item in zip(questions, sample_questions, strict=False):
        docs = retriever.invoke(question)
        expected = client.search(question, k=5)
        assert [d.id for d in docs] == [h.uuid for h in expected]  # exactly graphmem's ranking
        assert [d.page_content for d in docs] == [h.content for h in expected]
        assert [d.metadata["rank"] for d in docs] == [1, 2, 3, 4, 5]
        supported += bool({example_doc_name(d.metadata["source"]) for d in docs} & set(item["supporting"]))
    assert supported >= 3

    async def all_at_once() -> list[list]:
        return await asyncio.gather(*(retriever.ainvoke(q) for q in questions))

    for question, docs in zip(questions, asyncio.run(all_at_once()), strict=True):
        assert [d.id for d in docs] == [d.id for d in retriever.invoke(question)]


def test_in_process_documents_carry_their_provenance(sample_memory):
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    from graphmem.integrations.langchain import GraphmemRetriever

    retriever = GraphmemRetriever(memory=sample_memory, k=3)
    docs = retriever.invoke("Who built the Kessary Bridge?")
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    meta = docs[0].metadata
    assert set(meta) == {
        "source",
        "title",
        "uuid",
        "rank",
        "score",
        "occurred_at",
        "speaker",
        "turn_id",
        "facts",
        "entities",
    }
    assert meta["uuid"] == docs[0].id and meta["source"] and isinstance(meta["facts"], list)
    assert any("Kessary Bridge" in d.metadata["entities"] for d in docs)
    for doc in docs:
        if doc.metadata["occurred_at"]:
            datetime.fromisoformat(doc.metadata["occurred_at"])
    assert [d.id for d in asyncio.run(retriever.ainvoke("Who built the Kessary Bridge?"))] == [d.id for d in docs]

    # a chain: retrieve, then join the passages into a context for a prompt
    chain = retriever | RunnableLambda(lambda found: "\n\n".join(d.page_content for d in found))
    assert docs[0].page_content in chain.invoke("Who built the Kessary Bridge?")

    dense = GraphmemRetriever(memory=sample_memory, k=2, mode="dense").invoke("Kessary Bridge")
    assert [d.id for d in dense] == [h.uuid for h in sample_memory.search("Kessary Bridge", 2, mode="dense")]


def test_bad_options_are_refused_at_construction(sample_memory):
    from pydantic import ValidationError

    from graphmem.integrations.langchain import GraphmemRetriever

    with pytest.raises(ValidationError, match="mode must be graph, dense or bm25"):
        GraphmemRetriever(memory=sample_memory, mode="fuzzy")
    with pytest.raises(ValidationError, match="graphmem.Memory or graphmem.Client"):
        GraphmemRetriever(memory="not a memory")
    with pytest.raises(ValidationError):
        GraphmemRetriever(memory=sample_memory, k=0)


def test_the_readme_example_runs(sample_home, tmp_path, monkeypatch):
    """The README's LangChain block, run as written in a folder laid out like `make demo` leaves it."""
    import re
    import shutil

    from tests.conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### LangChain") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shutil.copytree(sample_home, tmp_path / ".graphmem-demo", ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md (LangChain)", "exec"), namespace)
    try:
        titles = [d.metadata["title"] for d in namespace["docs"]]
        assert len(titles) == 3 and "Marigold Star" in titles, titles
    finally:
        namespace["retriever"].memory.close()

"""The whole-group sweep runs only when something may have left orphans: a clean run
lowers the mark it raised, a crash or a write that removes edges leaves it raised, and
the next ingestion then removes what was left and lowers it to 0."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphmem.memory import Memory
from graphmem.model import entity_key

WHOLE_GROUP = {"entities_delete_orphans", "facts_delete_unsupported"}


def _queries_of(memory: Memory, action: Any) -> set[str]:
    """Names of the store queries ``action()`` runs."""
    store = memory.ingestor.graph.store
    names: set[str] = set()
    inner = store.run

    def run(query: str, /, **params: Any) -> Any:
        names.add(query)
        return inner(query, **params)

    store.run = run
    try:
        action()
    finally:
        del store.run
    return names


def _orphan(memory: Memory, name: str) -> None:
    """An entity nothing mentions or relates, as a run killed between writes leaves one."""
    ingestor = memory.ingestor
    vector = np.asarray(ingestor.embedder.embed([name])[0], dtype=np.float32)
    row = {
        "uuid": f"{name}-left",
        "group_id": ingestor.graph.group_id,
        "name": name,
        "name_key": entity_key(name),
        "type": "",
        "aliases": [name],
    }
    ingestor.graph.write_vectors("entities_upsert", [row], vector[None, :])


def _names(memory: Memory) -> set[str]:
    _, rows = memory.cypher("MATCH (n:Entity) RETURN n.name")
    return {r[0] for r in rows}


def test_a_clean_run_leaves_nothing_for_the_next_sweep(memory: Memory) -> None:
    memory.ingest_text("Ana lives in Lisbon.", name="first")
    assert memory.ingestor.graph.unswept() == 0
    ran = _queries_of(memory, lambda: memory.ingest_text("Ben works at Acme.", name="second"))
    assert not ran & WHOLE_GROUP  # the start sweep did not check the whole group
    assert memory.ingestor.graph.unswept() == 0


def test_a_run_killed_after_its_claim_leaves_the_mark_and_the_next_run_sweeps(memory: Memory) -> None:
    memory.ingest_text("Ana lives in Lisbon.", name="first")
    graph = memory.ingestor.graph
    graph.mark_unswept()  # what a run does once it has claimed sources ...
    _orphan(memory, "Zorbatown")  # ... and then it is killed after writing an entity
    assert "Zorbatown" in _names(memory)
    ran = _queries_of(memory, lambda: memory.ingest_text("Ben works at Acme.", name="second"))
    assert "entities_delete_orphans" in ran
    assert "Zorbatown" not in _names(memory)
    assert graph.unswept() == 0


def test_a_user_write_that_removes_mentions_is_swept_next_time(memory: Memory) -> None:
    memory.ingest_text("Ana visited Quillmoor.", name="first")
    assert "Quillmoor" in _names(memory)
    memory.cypher("MATCH (:Episode)-[m:MENTIONS]->(n:Entity {name: 'Quillmoor'}) DELETE m", write=True)
    memory.cypher("MATCH (n:Entity {name: 'Quillmoor'})-[f:FACT]-() DELETE f", write=True)
    memory.cypher("MATCH (n:Entity {name: 'Quillmoor'})<-[f:FACT]-() DELETE f", write=True)
    memory.ingest_text("Ben works at Acme.", name="second")
    assert "Quillmoor" not in _names(memory)


def test_forgetting_a_source_sweeps_and_lowers_the_mark(memory: Memory) -> None:
    memory.ingest_text("Ana lives in Lisbon.", name="first")
    memory.ingest_text("Ben works at Acme.", name="second")
    memory.forget(source="second")
    assert "Acme" not in _names(memory)  # removed with its source (no other writer was busy)
    memory.ingest_text("Cleo sings in Porto.", name="third")
    assert memory.ingestor.graph.unswept() == 0

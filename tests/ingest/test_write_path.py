"""Documents and dialogues share one write path: the same facts, entities and timelines
from the same sentences; dialogues written in the same batches as documents; and an
entity index that is reloaded once invalidated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphmem.ingest.dialogue import Conversation, Turn
from graphmem.ingest.readers import Document
from graphmem.memory import Memory
from graphmem.model import entity_key
from tests.reliability.helpers import assert_same_graph, fingerprint

pytestmark = pytest.mark.slow
UTC = UTC
SAID = [
    ("Ana lives in Lisbon.", datetime(2021, 3, 1, 10, tzinfo=UTC)),
    ("Ana moved to Berlin.", datetime(2023, 6, 15, 18, tzinfo=UTC)),
]


def _facts(memory: Memory) -> list[tuple[str, str, str, datetime | None, datetime | None]]:
    return [(f.uuid, f.predicate, f.object, f.valid_at, f.invalid_at) for f in memory.facts("Ana", history=True)]


def test_a_dialogue_and_documents_saying_the_same_write_the_same_facts(tmp_path: Path) -> None:
    with Memory(home=tmp_path / "docs") as docs:
        report = docs.ingest_documents(
            [Document(name=f"said-{i}", text=text, date=when) for i, (text, when) in enumerate(SAID)]
        )
        assert report.passages == 2 and report.invalidated == 1
        from_documents = _facts(docs)
    with Memory(home=tmp_path / "chat") as chat:
        turns = [Turn(speaker="Ben", text=text, time=when) for text, when in SAID]
        report = chat.ingest_conversations([Conversation(name="ben", turns=turns)])
        assert report.passages == 2 and report.invalidated == 1
        from_dialogue = _facts(chat)
        _, rows = chat.cypher(
            "MATCH (e:Episode)-[m:MENTIONS]->(n:Entity) WHERE m.role = 'speaker' RETURN e.speaker, n.name, n.type"
        )
    # same fact uuids (from the same entities), same single-valued timeline: Lisbon ends where Berlin starts
    assert from_dialogue == from_documents
    assert [(p, o, end is None) for _, p, o, _, end in from_documents] == [
        ("live in", "Lisbon", False),
        ("move to", "Berlin", True),
    ]
    assert {tuple(r) for r in rows} == {("Ben", "Ben", "PERSON")}  # what a turn adds: its speaker


def _conversation(i: int) -> Conversation:
    when = datetime(2022, 1, 1 + i, 9, tzinfo=UTC)
    return Conversation(
        name=f"chat-{i}",
        turns=[
            Turn(speaker=f"Speaker{i}", text=f"I work at Orvalis Robotics in office {i}.", time=when),
            Turn(speaker="Dee", text=f"Speaker{i} lives in Lisbon, right?", time=when),
        ],
    )


def test_dialogues_go_through_the_shared_batches_and_write_what_one_at_a_time_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversations = [_conversation(i) for i in range(6)]
    with Memory(home=tmp_path / "once", batch_size=4) as memory:
        graph = memory.ingestor.graph
        completed: list[list[str]] = []
        complete = graph.complete_owned

        def observed(uuids: list[str], owner: str) -> int:
            completed.append(list(uuids))
            return complete(uuids, owner)

        monkeypatch.setattr(graph, "complete_owned", observed)
        report = memory.ingest_conversations(conversations)
        assert report.passages == 12 and report.documents == 6
        # 2 turns a conversation, batches of about 4 turns: conversations are written two to a batch
        assert [len(batch) for batch in completed] == [2, 2, 2]
    with Memory(home=tmp_path / "apart", batch_size=4) as memory:
        for conversation in conversations:
            memory.ingest_conversations([conversation])
    assert_same_graph(fingerprint(tmp_path / "once"), fingerprint(tmp_path / "apart"))


def test_invalidate_index_lets_the_next_ingestion_see_entities_written_elsewhere(memory: Memory) -> None:
    memory.ingest_text("Ana lives in Lisbon.", name="first")
    ingestor = memory.ingestor
    assert entity_key("Marwick") not in ingestor.index.by_key  # the index is loaded now
    # an entity written behind the ingestor's back (no revision bump), with a uuid of its own
    vector = np.asarray(ingestor.embedder.embed(["Marwick"])[0], dtype=np.float32)
    row: dict[str, Any] = {
        "uuid": "marwick-by-hand",
        "group_id": ingestor.graph.group_id,
        "name": "Marwick",
        "name_key": entity_key("Marwick"),
        "type": "PERSON",
        "aliases": ["Marwick"],
    }
    ingestor.graph.write_vectors("entities_upsert", [row], vector[None, :])
    _, [[episode]] = memory.cypher("MATCH (e:Episode) RETURN e.uuid")  # mentioned, so no sweep takes it
    ingestor.graph.write("mentions_upsert", [{"episode": episode, "entity": "marwick-by-hand", "count": 1}])
    assert entity_key("Marwick") not in ingestor.index.by_key  # still the index loaded before
    ingestor.invalidate_index()
    assert ingestor.index.by_key.get(entity_key("Marwick")) is not None
    memory.ingest_text("Marwick lives in Lisbon.", name="second")
    _, rows = memory.cypher("MATCH (n:Entity) WHERE n.name_key = 'marwick' RETURN n.uuid")
    assert rows == [["marwick-by-hand"]]  # resolved to the entity written elsewhere, not a second one

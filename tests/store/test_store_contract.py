"""The store contract: every GraphStore must pass these, on the same named queries.

Run on the embedded FalkorDB, on the Neo4j store through FalkorDB's Bolt
endpoint, and on a real Neo4j 5 when NEO4J_URI is set (see conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from graphmem.errors import GraphmemError, StoreError
from graphmem.retrieve.projection import load_projection
from graphmem.store.graph import Graph
from tests.store.synthetic import DIM, T0, build, unit, write

DAY = 86_400_000


@pytest.fixture
def data(case):
    g = build(case.group)
    write(case.store, g, case.batch_size)
    return g


def _indexed_reads(case, data) -> tuple:
    """What the schema's indexes serve: lookups by key, vector and full-text search, the counts."""
    query = (np.array(unit(1)) + 0.1 * np.array(unit(2))).tolist()
    graph = Graph(case.store, case.group)
    by_key = sorted(row["name"] for key in ("oslo", "ada lovelace") if (row := graph.find_entity(key, key)))
    vector = [r["uuid"] for r in case.store.run("episodes_vector_search", k=3, vector=query, group_id=case.group)]
    words = [r["uuid"] for r in case.store.run("episodes_fulltext_search", text="fjord", k=5, group_id=case.group)]
    return graph.stats(), by_key, vector, words


def test_schema_can_be_ensured_again(case, data):
    """Ensuring the schema of a group that has it (from this connection and from a new
    one, which does not know it was made) fails on nothing and leaves the data and
    every indexed read as they were."""
    case.require("schema_twice")
    before = _indexed_reads(case, data)
    assert before[1:] == (["Ada Lovelace", "Oslo"], [data.id("e2"), data.id("e3"), data.id("e1")], [data.id("e1")])
    case.store.ensure_schema(DIM)  # the fixture and the first write already made it
    case.store.ensure_schema(DIM, case.group)
    assert case.reopen is not None
    other = case.reopen()
    try:
        other.ensure_schema(DIM, case.group)
        other.ensure_schema(DIM)
        assert Graph(other, case.group).stats() == before[0]
    finally:
        other.close()
    assert _indexed_reads(case, data) == before


def test_writes_are_read_back_with_their_types(case, data):
    graph = Graph(case.store, case.group)
    assert graph.stats() == {"sources": 2, "episodes": 3, "entities": 4, "facts": 4, "mentions": 7, "synonyms": 1}
    episodes = graph.episodes([data.id("e1"), data.id("e3"), "missing"])
    assert set(episodes) == {data.id("e1"), data.id("e3")}
    e1 = episodes[data.id("e1")]
    assert e1["content"] == "Ada Lovelace lives in Oslo near the fjord."
    assert e1["occurred_at"] == T0 and isinstance(e1["occurred_at"], int)
    assert e1["position"] == 0 and e1["speaker"] is None and e1["source_name"] == "a.txt"
    found = [graph.find_entity(key, key) for key in ("oslo", "carl sagan", "nobody")]
    assert [r and r["name"] for r in found] == ["Oslo", "Carl Sagan", None]
    sources = graph.sources()
    assert [(s["name"], s["state"], s["episodes"]) for s in sources] == [
        ("a.txt", "complete", 2),
        ("b.txt", "complete", 1),
    ]
    assert graph.revision() == 1 and graph.bump_revision() == 2


def test_reads_are_confined_to_their_group(case, data):
    assert Graph(case.store, case.group + "-other").stats() == {
        "sources": 0,
        "episodes": 0,
        "entities": 0,
        "facts": 0,
        "mentions": 0,
        "synonyms": 0,
    }
    assert Graph(case.store, case.group + "-other").episodes([data.id("e1")]) == {}


def test_upserts_are_idempotent_and_merge_lists(case, data):
    graph = Graph(case.store, case.group)
    before = graph.stats()
    write(case.store, data, case.batch_size)  # replay everything
    assert graph.stats() == before
    ada = dict(data.entities[0], aliases=["Ada Lovelace", "Countess Lovelace"])
    case.store.run_rows("entities_upsert", [ada], case.batch_size, group_id=case.group)
    fact = dict(data.facts[0], episodes=[data.id("e1"), data.id("e3")])
    case.store.run_rows("facts_upsert", [fact], case.batch_size, group_id=case.group)
    entities = {e["uuid"]: e for e in graph.entities()}
    assert entities[data.id("ada")]["aliases"] == ["Ada Lovelace", "Countess Lovelace"]
    assert graph.stats() == before
    f1 = [f for f in graph.pages("projection_facts") if f["uuid"] == data.id("f1")][0]
    assert f1["episodes"] == [data.id("e1"), data.id("e3")]


def test_batched_writes_cover_every_row(case):
    rows = [
        {
            "uuid": f"{case.group}-n{i}",
            "group_id": case.group,
            "name": f"Name {i}",
            "name_key": f"name {i}",
            "type": "",
            "aliases": [],
        }
        for i in range(23)
    ]
    case.store.run_rows("entities_upsert", rows, batch_size=5, group_id=case.group)
    assert Graph(case.store, case.group).stats()["entities"] == 23


def _end(case, fact: str, subject: str, valid_at: int | None, invalid_at: int) -> None:
    """End a fact as ingestion's temporal step does (facts_set_validity)."""
    row = {"uuid": fact, "subject": subject, "valid_at": valid_at, "invalid_at": invalid_at, "expired_at": invalid_at}
    Graph(case.store, case.group).write("facts_set_validity", [row])


def test_temporal_invalidation_keeps_history(case, data):
    graph = Graph(case.store, case.group)
    f1, ada = data.id("f1"), data.id("ada")
    at = T0 + 5 * DAY
    _end(case, f1, ada, T0, at)
    assert graph.stats()["facts"] == 4  # never deleted

    facts = {r["uuid"]: r for r in graph.entity_facts(ada)}
    row = facts[f1]
    assert (row["subject"], row["predicate"], row["object"]) == ("Ada Lovelace", "lives_in", "Oslo")
    assert (row["valid_at"], row["invalid_at"], row["expired_at"]) == (T0, at, at)
    assert data.id("f3") in facts and facts[data.id("f3")]["invalid_at"] is None  # the others untouched
    projection = load_projection(graph)
    index = projection.fact_ids.index(f1)
    assert not projection.facts_valid_at(None)[index]
    assert projection.facts_valid_at(T0 + DAY)[index] and not projection.facts_valid_at(at)[index]
    assert not projection.facts_valid_at(at + 10 * DAY)[index]


def test_vector_search_ranks_by_cosine(case, data):
    query = (np.array(unit(1)) + 0.1 * np.array(unit(2))).tolist()  # close to e2
    rows = case.store.run("episodes_vector_search", k=3, vector=query, group_id=case.group)
    assert [r["uuid"] for r in rows][0] == data.id("e2")
    q = np.array(query) / np.linalg.norm(query)
    for r in rows:
        expected = float(np.dot(q, data.vectors[r["uuid"]]))
        assert r["score"] == pytest.approx(expected, abs=1e-3)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert case.store.run("episodes_vector_search", k=3, vector=query, group_id=case.group + "-other") == []


def test_fact_vector_search(case, data):
    if case.store.dialect == "falkordb":
        pytest.skip(
            "the FalkorDB dialect keeps fact vectors packed and unindexed (graphmem searches "
            "facts in memory; see cypher/falkordb/schema.cypher)"
        )
    facts = case.store.run("facts_vector_search", k=2, vector=unit(22), group_id=case.group)
    assert facts[0]["uuid"] == data.id("f3") and facts[0]["text"] == "ada works_with carl"
    assert facts[0]["score"] == pytest.approx(1.0, abs=1e-3)


def test_entity_and_fact_vectors_come_back_as_written(case, data):
    """Whatever a store's wire and storage form (FalkorDB packs unsearched vectors),
    the projection reads back the float32 vectors ingestion wrote."""
    rows = {r["uuid"]: r for r in Graph(case.store, case.group).entities_for_index()}
    facts = {r["uuid"]: r for r in case.store.run("projection_facts", group_id=case.group, skip=0, limit=100)}
    checked = 0
    for uuid, vector in data.vectors.items():
        row = rows.get(uuid) or facts.get(uuid)
        if row is None:
            continue
        got = np.asarray(row["embedding"], dtype=np.float32)
        tolerance = 1e-5 if "float_precision" in case.limits else 1e-7
        assert np.allclose(got, np.asarray(vector, dtype=np.float32), atol=tolerance), uuid
        checked += 1
    assert checked >= 3


def test_vector_search_survives_deletions(case, data, request):
    """k results must still come back after other nodes were deleted."""
    if case.store.dialect == "falkordb" and case.store.isolation == "property":
        # the embedded store keeps each group in its own graph, so another group's
        # deletions never reach this group's index; over Bolt the groups share one
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=(
                    "FalkorDB 4.16: deleted nodes keep their slots in the vector index, so a top-k query "
                    "returns fewer than k live nodes after deletions"
                ),
            )
        )
    other = build(case.group + "-old")
    write(case.store, other, case.batch_size)
    case.store.run("group_delete", group_id=other.group)
    query = (np.array(unit(1)) + 0.1 * np.array(unit(2))).tolist()
    rows = case.store.run("episodes_vector_search", k=3, vector=query, group_id=case.group)
    assert [r["uuid"] for r in rows] == [data.id("e2"), data.id("e3"), data.id("e1")]


def test_fulltext_search_finds_words(case, data):
    rows = case.store.run("episodes_fulltext_search", text="fjord", k=5, group_id=case.group)
    assert [r["uuid"] for r in rows] == [data.id("e1")]
    rows = case.store.run("episodes_fulltext_search", text="Lovelace", k=5, group_id=case.group)
    assert {r["uuid"] for r in rows} == {data.id("e1"), data.id("e3")}
    scores = [r["score"] for r in rows]
    assert all(isinstance(x, (int, float)) for x in scores) and scores == sorted(scores, reverse=True)


def test_deleting_a_source_keeps_what_others_support(case, data):
    graph = Graph(case.store, case.group)
    removed = graph.delete_source(data.id("b.txt"))
    # e3 goes; f3 (only e3) goes, f4 (e1 and e3) stays; Carl is still related by f4
    assert removed == {"episodes": 1, "facts": 1, "entities": 0}
    assert graph.stats() == {"sources": 1, "episodes": 2, "entities": 4, "facts": 3, "mentions": 4, "synonyms": 1}
    f4 = [f for f in graph.pages("projection_facts") if f["uuid"] == data.id("f4")][0]
    assert f4["episodes"] == [data.id("e1")]
    removed = graph.delete_source(data.id("a.txt"))
    assert removed == {"episodes": 2, "facts": 3, "entities": 4}
    assert graph.stats() == {"sources": 0, "episodes": 0, "entities": 0, "facts": 0, "mentions": 0, "synonyms": 0}


def test_projection_export_matches_what_was_written(case, data):
    projection = load_projection(Graph(case.store, case.group))
    assert sorted(projection.entity_ids) == sorted(e["uuid"] for e in data.entities)
    assert sorted(projection.episode_ids) == sorted(e["uuid"] for e in data.episodes)
    for i, uuid in enumerate(projection.episode_ids):
        np.testing.assert_allclose(projection.episode_vectors[i], data.vectors[uuid], atol=1e-6)
    for i, uuid in enumerate(projection.fact_ids):
        np.testing.assert_allclose(projection.fact_vectors[i], data.vectors[uuid], atol=1e-6)
    pairs = {(projection.episode_ids[p], projection.entity_ids[e]) for p, e in projection.mention_pairs}
    assert pairs == {(m["episode"], m["entity"]) for m in data.mentions}
    ends = {
        projection.fact_ids[i]: (projection.entity_ids[s], projection.entity_ids[o])
        for i, (s, o) in enumerate(projection.fact_ends)
    }
    assert ends == {f["uuid"]: (f["subject"], f["object"]) for f in data.facts}
    assert projection.episode_times.tolist() == [
        e["occurred_at"] for e in sorted(data.episodes, key=lambda e: e["uuid"])
    ]
    assert projection.synonym_scores.tolist() == pytest.approx([0.9])
    assert projection.transition().shape == (7, 7)


def test_parameters_and_values_round_trip(case):
    params = {
        "s": "Zoë — 東京",
        "i": T0,
        "neg": -3,
        "f": 0.25,
        "b": True,
        "n": None,
        "l": ["a", "b"],
        "m": {"k": [1, 2]},
    }
    columns, rows = case.store.cypher(
        "RETURN $s AS s, $i AS i, $neg AS neg, $f AS f, $b AS b, $n AS n, $l AS l, $m AS m", params, group_id=case.group
    )
    assert columns == ["s", "i", "neg", "f", "b", "n", "l", "m"]
    assert dict(zip(columns, rows[0], strict=True)) == params


def test_numpy_vectors_arrive_as_float_lists(case):
    """Ingestion hands vectors over as numpy arrays (FalkorDB writes them in a scaled-integer
    form); whatever the wire, the query must see the same floats, tiny and negative ones too."""
    case.require("float_precision")
    rng = np.random.default_rng(7)
    unit_vector = rng.standard_normal(384).astype(np.float32)
    unit_vector /= np.linalg.norm(unit_vector)
    unit_vector[:3] = [3.1e-7, -2.5e-5, 0.0]
    wide = np.array([1234.5, -0.001, 7.0], dtype=np.float32)
    zeros = np.zeros(4, dtype=np.float32)
    columns, rows = case.store.cypher(
        "RETURN $v AS v, $rows AS rows, $z AS z",
        {"v": unit_vector, "rows": [{"uuid": "a", "embedding": wide}], "z": zeros},
        group_id=case.group,
    )
    v, nested, z = rows[0]
    assert v == pytest.approx(unit_vector.tolist(), abs=1e-9)
    assert nested[0]["uuid"] == "a" and nested[0]["embedding"] == pytest.approx(wide.tolist(), rel=1e-7)
    assert z == [0.0] * 4


def test_user_cypher_returns_plain_values(case, data):
    columns, rows = case.store.cypher(
        "MATCH (e:Episode {group_id: $g}) RETURN e ORDER BY e.uuid", {"g": case.group}, group_id=case.group
    )
    assert columns == ["e"] and len(rows) == 3
    node = rows[0][0]
    assert isinstance(node, dict) and node["uuid"] == data.id("e1") and "embedding" not in node
    _, limited = case.store.cypher(
        "MATCH (e:Episode {group_id: $g}) RETURN e.uuid", {"g": case.group}, max_rows=2, group_id=case.group
    )
    assert len(limited) == 2


def test_user_cypher_is_read_only_by_default(case, data):
    case.require("read_only")
    with pytest.raises(GraphmemError, match="--write"):  # refused before the store sees it
        case.store.cypher("MATCH (e:Entity {group_id: $g}) SET e.flag = 1", {"g": case.group}, group_id=case.group)
    _, rows = case.store.cypher(
        "MATCH (e:Entity {group_id: $g}) WHERE e.flag = 1 RETURN count(e)", {"g": case.group}, group_id=case.group
    )
    assert rows == [[0]]
    case.store.cypher(
        "MATCH (e:Entity {group_id: $g}) SET e.flag = 1", {"g": case.group}, write=True, group_id=case.group
    )
    _, rows = case.store.cypher(
        "MATCH (e:Entity {group_id: $g}) WHERE e.flag = 1 RETURN count(e)", {"g": case.group}, group_id=case.group
    )
    assert rows == [[4]]


def test_user_cypher_times_out(case, data):
    case.require("timeout")
    with pytest.raises(StoreError, match="timeout"):
        case.store.cypher(
            "UNWIND range(1, 20000) AS x UNWIND range(1, 20000) AS y RETURN count(*)",
            timeout_ms=100,
            group_id=case.group,
        )


def test_bad_cypher_is_a_store_error(case, data):
    with pytest.raises(StoreError) as info:
        case.store.cypher("MATCH (n) RETRUN n", group_id=case.group)
    if "error_text" not in case.limits:
        assert "unknown error" not in str(info.value).lower()

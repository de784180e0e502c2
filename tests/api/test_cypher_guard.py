"""The /v1/cypher guard on its own: which queries pass, which are refused and why.

(The same guard is exercised end to end, against a real store, in test_isolation.py.)
"""

from __future__ import annotations

import pytest

from graphmem.api.cypher_guard import CypherRefused, check_query, check_result

REPO_EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "cypher" / "examples"

ALLOWED = [
    "MATCH (n:Entity {group_id: $group_id}) RETURN n.name LIMIT 5",
    "MATCH (n:Entity {group_id: $group_id})-[f:FACT]->(m:Entity) RETURN n.name, f.predicate, m.name",
    "MATCH (e:Episode {group_id: $group_id}) WITH e MATCH (e)-[:MENTIONS]->(x) RETURN x.name, count(*)",
    "MATCH p = (a:Entity {group_id: $group_id})-[:FACT*1..2]-(b) RETURN length(p)",
    "MATCH (e:Episode {group_id: $group_id}) WHERE e.content CONTAINS 'CREATE (n)' RETURN e.uuid",
    "MATCH (n:Entity {group_id: $group_id}) WHERE NOT (n)-[:FACT]-() RETURN toLower(n.name) // SET x",
    "MATCH (n:Entity {`group_id`: $group_id}) RETURN n" if False else
    "MATCH (n:Entity {name: 'x', group_id: $group_id}) RETURN [(n)-[:FACT]->(m) | m.name]",
]

REFUSED = [
    ("MATCH (n) RETURN n", "group_id"),
    ("MATCH (n) WHERE n.group_id = $group_id OR true RETURN n.content", "not confined"),
    ("MATCH (n:Entity {group_id: $group_id}), (m) RETURN m", "not confined"),
    ("MATCH ()-[f:FACT]->() WHERE $group_id = $group_id RETURN f.text", "not confined"),
    ("MATCH (n:Entity {group_id: $group_id}) WITH 1 AS one MATCH (n) RETURN n.name", "not confined"),
    ("MATCH (n:Entity {group_id: $group_id}) WITH n.name AS x MATCH (x) RETURN x", "not confined"),
    ("MATCH (n:Entity {group_id: $group_id}) RETURN n UNION MATCH (n) RETURN n", "not confined"),
    ("MATCH (n:!Entity) WHERE $group_id IS NOT NULL RETURN n.content", "cannot check"),
    ("MATCH (n:Entity {group_id: $group_id}) RETURN COUNT { MATCH (m) RETURN m } AS c", "not confined"),
    ("CREATE (n:Entity {group_id: $group_id})", "writes (CREATE)"),
    ("MERGE (n:Entity {group_id: $group_id}) RETURN n", "writes (MERGE)"),
    ("MATCH (n:Entity {group_id: $group_id}) SET n.name = 'x'", "writes (SET)"),
    ("MATCH (n:Entity {group_id: $group_id}) detach delete n", "writes (DETACH)"),
    ("MATCH (n:Entity {group_id: $group_id}) REMOVE n.name", "writes (REMOVE)"),
    ("CALL db.labels()", "procedures"),
    ("MATCH (n:Entity {group_id: $group_id}) CALL { MATCH (m) RETURN m } RETURN m", "procedures"),
    ("LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l", "LOAD CSV"),
    ("MATCH (n:Entity {group_id: $group_id}) FOREACH (x IN [1] | SET n.a = x)", "writes"),
    ("RETURN 'unterminated", "unterminated"),
    ("   ", "empty"),
]


@pytest.mark.parametrize("query", ALLOWED)
def test_confined_read_queries_pass(query):
    check_query(query)


@pytest.mark.parametrize("query", sorted(p.read_text() for p in REPO_EXAMPLES.glob("*.cypher")))
def test_shipped_example_queries_pass(query):
    check_query(query)


@pytest.mark.parametrize("query,reason", REFUSED)
def test_unsafe_queries_are_refused(query, reason):
    with pytest.raises(CypherRefused, match=__import__("re").escape(reason)):
        check_query(query)


def test_result_check_refuses_other_groups():
    check_result([[{"name": "a", "group_id": "g"}, 3]], "g")
    with pytest.raises(CypherRefused):
        check_result([[[{"name": "b", "group_id": "other"}]]], "g")

"""The budgets on user Cypher (graphmem/store/user_cypher.py), before any store sees a query."""

from __future__ import annotations

import contextlib
import time

import pytest

from graphmem.store.user_cypher import Budget, CypherRefused, check, limit_rows, prepare, tokenize

#: shapes that cost a regex guard cubic time or FalkorDB's parser exponential time
ADVERSARIAL = {
    "nested lists": lambda n: "RETURN " + "[" * (n // 2) + "1" + "]" * (n // 2),
    "nested parentheses": lambda n: "RETURN " + "(" * (n // 2) + "1" + ")" * (n // 2),
    "NOT chain": lambda n: "RETURN " + "NOT " * (n // 4) + "true",
    "unary minus chain": lambda n: "RETURN " + "-" * n + "1",
    "cubic for the old guard": lambda n: "MATCH (n {group_id: $group_id}) RETURN " + "a" * (n // 2) + "()" * (n // 8),
    "many small lists": lambda n: "RETURN " + "+".join(["[1]"] * (n // 4)),
    "unterminated string": lambda n: "RETURN '" + "a\\'" * (n // 3),
    "long comment": lambda n: "RETURN 1 /*" + "*" * n,
}


@pytest.mark.parametrize("shape", sorted(ADVERSARIAL))
def test_checking_is_linear_and_fast(shape):
    """A 20,000-character query of each shape is checked (accepted or refused) in well
    under 50 ms, and ten times the text costs about ten times the time, not a thousand."""
    make = ADVERSARIAL[shape]

    def cost(n: int) -> float:
        text = make(n)[:20_000]
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            with contextlib.suppress(CypherRefused):
                prepare(text, max_rows=10)
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(2_000), cost(20_000)
    assert large < 0.2, f"{shape}: {large * 1000:.1f} ms for 20,000 characters"
    assert large < max(small, 1e-4) * 40, f"{shape}: {small * 1000:.2f} ms -> {large * 1000:.2f} ms"


@pytest.mark.parametrize(
    "text",
    [
        "RETURN " + "[" * 11 + "1" + "]" * 11,
        "RETURN " + "NOT " * 11 + "true",
        "RETURN " + "- " * 11 + "1",
        "RETURN " + "CASE WHEN true THEN " * 11 + "1" + " END" * 11,
        "RETURN " + "[NOT " * 6 + "true" + "]" * 6,  # brackets and prefix operators add up
        "MATCH (n {group_id: $group_id}) WITH n LIMIT 1 RETURN [[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]] AS x",
    ],
)
def test_deep_nesting_is_refused(text):
    with pytest.raises(CypherRefused, match="levels deep"):
        check(text)


def test_depth_ten_and_flat_long_queries_pass():
    check("RETURN " + "[" * 10 + "1" + "]" * 10)
    check("RETURN NOT true AND NOT false AND " + " AND ".join(["NOT true"] * 200))
    check("MATCH (a)-[:FACT]->(b)-[:FACT]->(c) WHERE a.name = 'x' AND -1 < 2 RETURN a, b, c")


def test_size_budgets():
    with pytest.raises(CypherRefused, match="characters"):
        check("RETURN 1" + " " * 20_001)
    with pytest.raises(CypherRefused, match="tokens"):
        check("RETURN " + "+".join(["1"] * 3000))
    check("RETURN " + "+".join(["1"] * 100), budget=Budget(max_tokens=300))


@pytest.mark.parametrize(
    "text, word",
    [
        ("CREATE (n:Entity)", "CREATE"),
        ("MATCH (n) SET n.x = 1", "SET"),
        ("MATCH (n) DETACH DELETE n", "DETACH"),
        ("MERGE (n:X) RETURN n", "MERGE"),
        ("MATCH (n) REMOVE n.x", "REMOVE"),
        ("MATCH (n) FOREACH (x IN [1] | SET n.y = x)", "FOREACH"),
        ("MATCH (n) CALL { WITH n DELETE n } RETURN 1", "DELETE"),
        ("match (n) delete n", "DELETE"),
    ],
)
def test_writes_are_refused_unless_write(text, word):
    with pytest.raises(CypherRefused, match=f"writes \\({word}\\)"):
        check(text)
    check(text, write=True)


@pytest.mark.parametrize(
    "text",
    [
        "LOAD CSV FROM 'https://example.org/x.csv' AS row RETURN row",
        "load csv with headers from 'file:///etc/passwd' as r return r",
        "USE other MATCH (n) RETURN n",
        "SHOW DATABASES",
        "CALL dbms.procedures()",
        "CALL db.idx.fulltext.drop('Episode')",
        "CALL algo.BFS(null, 1, null) YIELD nodes RETURN nodes",
        "CALL `db`.`idx`.`fulltext`.`drop`('Episode')",
    ],
)
def test_reach_beyond_the_graph_is_refused(text):
    with pytest.raises(CypherRefused):
        check(text)


def test_keywords_inside_strings_names_and_comments_are_not_keywords():
    check("MATCH (n) WHERE n.name = 'CREATE (x) DELETE x' RETURN n // SET n.x = 1")
    check("MATCH (n:Entity) RETURN n.set, n.delete, n.case, {load: 1, use: 2, case: 3} AS m")
    check('MATCH (n) WHERE n.text = "LOAD CSV \\" DELETE" RETURN n')
    check("MATCH (n) RETURN n /* DELETE n */")
    check("MATCH (`CREATE`:Entity) RETURN `CREATE`.name")
    check("CALL db.labels() YIELD label RETURN label")
    check("CALL db.idx.vector.queryNodes('Episode', 'embedding', 3, vecf32([0.1, 0.2])) YIELD node RETURN node")
    check("MATCH (n) CALL { WITH n RETURN n.x AS x } RETURN x")


@pytest.mark.parametrize(
    "text",
    [
        "RETURN 'unterminated",
        "RETURN `unterminated",
        "RETURN 1 /* unterminated",
        "RETURN (1",
        "RETURN 1)",
        "RETURN [1)",
        "RETURN CASE WHEN true THEN 1",
        "RETURN 1 #",
    ],
)
def test_unreadable_queries_are_refused_with_a_reason(text):
    with pytest.raises(CypherRefused) as info:
        check(text)
    assert str(info.value)


def test_the_row_limit_is_written_into_the_query():
    def limited(text: str, params=None) -> str:
        return limit_rows(text, tokenize(text), 11, params)

    assert limited("UNWIND range(1, 3000000) AS i RETURN i") == "UNWIND range(1, 3000000) AS i RETURN i LIMIT 11"
    assert limited("MATCH (n) RETURN n LIMIT 5") == "MATCH (n) RETURN n LIMIT 5"
    assert limited("MATCH (n) RETURN n LIMIT 500;") == "MATCH (n) RETURN n LIMIT 11;"
    assert limited("MATCH (n) RETURN n LIMIT $k", {"k": 99}) == "MATCH (n) RETURN n LIMIT 11"
    assert limited("MATCH (n) RETURN n LIMIT $k", {"k": 3}) == "MATCH (n) RETURN n LIMIT $k"
    assert (
        limited("MATCH (n) RETURN n ORDER BY n.x SKIP 2 // tail")
        == "MATCH (n) RETURN n ORDER BY n.x SKIP 2 LIMIT 11 // tail"
    )
    assert (
        limited("MATCH (a) RETURN a.x AS x UNION ALL MATCH (b) RETURN b.x AS x")
        == "MATCH (a) RETURN a.x AS x LIMIT 11 UNION ALL MATCH (b) RETURN b.x AS x LIMIT 11"
    )
    # a subquery's own RETURN is not the query's
    assert (
        limited("MATCH (n) CALL { WITH n RETURN n.x AS x } RETURN x")
        == "MATCH (n) CALL { WITH n RETURN n.x AS x } RETURN x LIMIT 11"
    )
    assert limited("MATCH (n) RETURN n.limit") == "MATCH (n) RETURN n.limit LIMIT 11"
    with pytest.raises(CypherRefused, match="LIMIT"):
        limited("MATCH (n) RETURN n LIMIT 1 + 1")
    with pytest.raises(CypherRefused, match="LIMIT"):
        limited("MATCH (n) RETURN n LIMIT $k", {"k": "all"})

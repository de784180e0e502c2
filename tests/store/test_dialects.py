"""Both dialects run the same shared queries; only the dialect folders differ."""

from __future__ import annotations

from graphmem.store.queries import cypher_dir, load_queries, parse_blocks

#: Neo4j only: waiting for new indexes, and the databases of database_per_group
NEO4J_ONLY = {"indexes_await", "database_create", "database_drop", "databases_list"}
#: FalkorDB's own versions of shared queries: the entity index is read in pages of node ids, and
#: each group being its own graph there, they need no group filter
FALKORDB_OVERRIDES = {"entity_index_span", "entity_index_ids"}
DIALECT_SPECIFIC = {
    "entity_embeddings_set",
    "episode_embeddings_set",
    "fact_embeddings_set",
    "episodes_vector_search",
    "facts_vector_search",
    "episodes_fulltext_search",
}


def own_queries(dialect: str) -> set[str]:
    names: set[str] = set()
    for path in (cypher_dir() / dialect).glob("*.cypher"):
        names |= set(parse_blocks(path.read_text(encoding="utf-8"), str(path)))
    return names


def test_dialect_folders_hold_only_what_differs():
    for dialect in ("falkordb", "neo4j"):
        own = own_queries(dialect) - NEO4J_ONLY
        # the embedded store keeps fact vectors packed and unindexed: no fact vector search
        if dialect == "falkordb":
            expected = (DIALECT_SPECIFIC - {"facts_vector_search"}) | FALKORDB_OVERRIDES
        else:
            expected = DIALECT_SPECIFIC
        assert {n for n in own if not n.startswith("schema_")} == expected, dialect
    falkordb, neo4j = load_queries("falkordb"), load_queries("neo4j")
    shared = {n for n in falkordb if not n.startswith("schema_")}
    assert shared == {n for n in neo4j if not n.startswith("schema_")} - NEO4J_ONLY - {"facts_vector_search"}
    assert all(falkordb[n] == neo4j[n] for n in shared - DIALECT_SPECIFIC - FALKORDB_OVERRIDES)


def test_neo4j_schema_statements_can_rerun():
    for name, text in load_queries("neo4j").items():
        if name.startswith("schema_"):
            assert "IF NOT EXISTS" in text, name

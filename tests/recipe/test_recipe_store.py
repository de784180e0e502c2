"""The group-metadata queries of cypher/meta.cypher on every store of the contract suite:
the embedded FalkorDB, graphmem's Neo4j store over FalkorDB's Bolt endpoint, and a real
Neo4j when NEO4J_URI is set (see tests/store/conftest.py)."""

from __future__ import annotations

from graphmem.config import Settings
from graphmem.pipelines import load_pipeline
from graphmem.recipe import Recipe
from graphmem.store.graph import Graph
from tests.store.conftest import bolt_server, case, falkordb_home  # noqa: F401 (fixtures)


def test_a_groups_recipe_is_stored_read_and_replaced(case):  # noqa: F811
    graph = Graph(case.store, case.group)
    assert graph.meta() == (0, None)  # a group never written: no recipe, revision 0
    locomo = Recipe.of(Settings(**load_pipeline("locomo")["settings"]), "minilm", 384)
    graph.set_recipe(locomo.to_json())
    revision, text = graph.meta()
    assert text is not None and Recipe.from_json(text) == locomo
    assert graph.bump_revision() == revision + 1 and graph.meta() == (revision + 1, text)
    documents = Recipe.of(Settings(), "minilm", 384)
    graph.set_recipe(documents.to_json())  # replacing it leaves the revision alone
    assert graph.meta() == (revision + 1, documents.to_json())
    assert Graph(case.store, case.group + "-other").meta() == (0, None)  # per group

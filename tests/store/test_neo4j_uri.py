"""Neo4j connection strings, and the errors a user sees when Neo4j is not there."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from graphmem.cli import main
from graphmem.errors import ConfigError
from graphmem.store.neo4j import Neo4jTarget


def test_uri_parts(monkeypatch):
    monkeypatch.delenv("NEO4J_USERNAME", raising=False)
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    t = Neo4jTarget.parse("neo4j://neo4j:p%40ss@db.example:7687/memory")
    assert (t.uri, t.user, t.password, t.database) == ("neo4j://db.example:7687", "neo4j", "p@ss", "memory")
    assert "p@ss" not in t.display and t.display == "neo4j://neo4j@db.example:7687/memory"
    t = Neo4jTarget.parse("bolt+s://host")
    assert (t.uri, t.user, t.password, t.database) == ("bolt+s://host", None, None, None)
    monkeypatch.setenv("NEO4J_USERNAME", "u")
    monkeypatch.setenv("NEO4J_PASSWORD", "pw")
    t = Neo4jTarget.parse("neo4j://host:7687")
    assert (t.user, t.password) == ("u", "pw")


@pytest.mark.parametrize("uri", ["http://host:7474", "neo4j://", "neo4j://host:notaport", "neo4j://h/a/b"])
def test_bad_uris_are_config_errors(uri):
    with pytest.raises(ConfigError):
        Neo4jTarget.parse(uri)


def test_unreachable_neo4j_is_one_line_error(tmp_path):
    port = 1  # nothing listens there
    result = CliRunner().invoke(
        main, ["--home", str(tmp_path), "--store", f"neo4j://neo4j:secret@127.0.0.1:{port}", "stats"]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot connect to Neo4j at neo4j://neo4j@127.0.0.1:1")
    assert "secret" not in result.output and "Traceback" not in result.output

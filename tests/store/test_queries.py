"""Named Cypher queries: parsing, loading, dialect overrides."""

from __future__ import annotations

import pytest

from graphmem.errors import ConfigError
from graphmem.store.queries import cypher_dir, load_queries, parse_blocks


def test_blocks_split_at_name_lines_and_drop_comments():
    text = "// header\n// name: a\nMATCH (n)\n// a comment\nRETURN n\n\n// name: b\nRETURN 1\n"
    assert parse_blocks(text, "x") == {"a": "MATCH (n)\nRETURN n", "b": "RETURN 1"}


def test_duplicate_names_are_an_error():
    with pytest.raises(ConfigError, match="defined twice"):
        parse_blocks("// name: a\nRETURN 1\n// name: a\nRETURN 2\n", "x")


def test_falkordb_dialect_has_every_query_the_code_runs():
    queries = load_queries("falkordb")
    import re
    from pathlib import Path

    used = set()
    for path in (Path(__file__).resolve().parents[2] / "graphmem").rglob("*.py"):
        used |= set(re.findall(r'(?:run|run_rows|write|write_vectors|pages)\(\s*"([a-z_]+)"', path.read_text()))
    missing = sorted(name for name in used if name not in queries)
    assert not missing, f"queries used in code but missing from cypher/: {missing}"
    assert any(name.startswith("schema_") for name in queries)


def test_unknown_dialect_is_a_clear_error():
    with pytest.raises(ConfigError, match="no Cypher folder"):
        load_queries("nosuchdb")


def test_no_cypher_strings_in_python_outside_tests():
    """Queries live in cypher/: Python under graphmem/ holds no MATCH/MERGE statements."""
    import re
    from pathlib import Path

    offenders = []
    for path in (Path(__file__).resolve().parents[2] / "graphmem").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "graphmem cypher" not in line and re.search(
                r"[\"'](MATCH|MERGE|CREATE|UNWIND)\s*\(|[\"']\s*(MATCH|MERGE|UNWIND) \(", line
            ):
                offenders.append(f"{path.name}:{number}")
    assert not offenders, offenders
    assert cypher_dir().is_dir()

"""Load the named Cypher queries of ``cypher/`` (shared, then per dialect)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

from graphmem.errors import ConfigError

_NAME_LINE = re.compile(r"^//\s*name:\s*([A-Za-z0-9_]+)\s*$")


def cypher_dir() -> Path:
    """The folder of query files (``cypher/`` in a checkout, ``graphmem/cypher`` in a wheel)."""
    checkout = Path(__file__).resolve().parents[2] / "cypher"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("graphmem.cypher")))


def parse_blocks(text: str, origin: str) -> dict[str, str]:
    """Split a query file into ``{name: statement}`` at ``// name:`` lines."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _NAME_LINE.match(line)
        if match:
            current = match.group(1)
            if current in blocks:
                raise ConfigError(f"{origin}: query {current!r} is defined twice")
            blocks[current] = []
        elif current is not None and not line.lstrip().startswith("//"):
            blocks[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in blocks.items() if "".join(lines).strip()}


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """All queries for ``dialect`` ('falkordb' or 'neo4j'): shared ones overridden by the dialect's."""
    root = cypher_dir()
    queries: dict[str, str] = {}
    for path in sorted(root.glob("*.cypher")):
        for name, text in parse_blocks(path.read_text(encoding="utf-8"), str(path)).items():
            if name in queries:
                raise ConfigError(f"{path}: query {name!r} is defined twice")
            queries[name] = text
    dialect_dir = root / dialect
    if not dialect_dir.is_dir():
        raise ConfigError(f"no Cypher folder for store dialect {dialect!r} in {root}")
    for path in sorted(dialect_dir.glob("*.cypher")):
        queries.update(parse_blocks(path.read_text(encoding="utf-8"), str(path)))
    return queries

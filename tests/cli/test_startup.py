"""Commands that need no model do not load one.

Each command runs in a fresh Python process, as the shell runs it; afterwards the
process reports which heavy modules it imported. Loading torch, sentence-transformers
and spaCy is what made every command wait seconds: stats, a BM25 search, Cypher, an
unchanged re-ingest and --help must not import them (nor fastapi, which only the
REST server needs). What is checked is the import, not a time: it fails the same on
any machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import EXAMPLES, REPO

HEAVY = ("torch", "sentence_transformers", "spacy", "transformers", "fastapi")

#: runs one command (argv after the report path) and writes the heavy modules it imported
PROBE = """
import json, sys
report, argv = sys.argv[1], sys.argv[2:]
try:
    if argv == ["--import-only"]:
        import graphmem.cli
    else:
        from graphmem.cli import main
        main(argv, standalone_mode=False)
finally:
    with open(report, "w") as out:
        json.dump(sorted(name for name in HEAVY if name in sys.modules), out)
"""


def probe(argv: list[str], tmp_path: Path) -> tuple[list[str], str]:
    """(heavy modules imported, stdout) of ``graphmem ARGV`` in a fresh process."""
    report = tmp_path / "modules.json"
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(report), *argv], cwd=REPO, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(report.read_text()), done.stdout


@pytest.fixture(scope="module")
def home(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the ingested sample corpus (its own store: the commands may write caches)."""
    copy = tmp_path_factory.mktemp("startup") / "home"
    shutil.copytree(sample_home, copy, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    return copy


def test_importing_the_cli_and_the_package_loads_no_model(tmp_path: Path) -> None:
    modules, _ = probe(["--import-only"], tmp_path)
    assert modules == []


def test_help_loads_no_model(tmp_path: Path) -> None:
    modules, out = probe(["--help"], tmp_path)
    assert "ingest" in out and modules == []


@pytest.mark.parametrize(
    ("argv", "shows"),
    [
        (["stats"], "episodes"),
        (["search", "Marigold Star", "--mode", "bm25", "--json"], "marigold"),
        (["cypher", "MATCH (s:Source) RETURN count(s) AS sources"], "45"),
        (["ingest", "-q", str(EXAMPLES / "docs")], "45 unchanged"),
    ],
    ids=["stats", "bm25-search", "cypher", "unchanged-reingest"],
)
def test_model_free_commands_load_no_model(argv: list[str], shows: str, home: Path, tmp_path: Path) -> None:
    modules, out = probe(["--home", str(home), *argv], tmp_path)
    assert shows in out.lower(), out  # the command did its work (a real hit, the real counts)
    assert modules == [], f"graphmem {' '.join(argv)} imported {modules}"

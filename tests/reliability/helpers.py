"""Shared helpers of the reliability tests: run the real CLI in a subprocess,
and fingerprint a store so two graphs can be compared exactly."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted((REPO / "examples" / "docs").iterdir())

#: properties that record *when* something was written or *who* wrote it: they
#: legitimately differ between a clean run and a crashed-and-resumed one
VOLATILE = {"ingested_at", "created_at", "lease_at", "touched_at", "owner", "revision"}
#: list properties whose order depends on write order, not content
UNORDERED = {"aliases", "episodes"}


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        GRAPHMEM_BATCH_SIZE="4",  # several write batches even on a small corpus
    )
    env.update(extra)
    return env


def cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "graphmem.cli", "--home", str(home), *args]


def run_cli(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli(home, *args), env=cli_env(), capture_output=True, text=True, timeout=timeout)


def stop_server(home: Path) -> None:
    """Stop the embedded server a subprocess left running (a killed CLI cannot stop it)."""
    from graphmem.store.falkordb_server import EmbeddedServer

    EmbeddedServer(home).stop()


def open_store(home: Path):
    from graphmem.store.falkordb import FalkorDBStore

    return FalkorDBStore(home)


def fingerprint(home: Path) -> dict:
    """Counts per kind, a content hash per kind, and the embeddings, of the whole store."""
    from graphmem.store import transfer

    store = open_store(home)
    try:
        records = list(transfer.records(store))
    finally:
        store.close()
    canonical: dict[str, list[str]] = {}
    embeddings: dict[str, list[float]] = {}
    for record in records:
        if record["label"] == "GraphMeta":
            continue
        # scores computed from vectors (synonym edges) carry the same float noise as the vectors
        props = {
            k: (sorted(v) if k in UNORDERED and isinstance(v, list) else round(v, 5) if isinstance(v, float) else v)
            for k, v in record["properties"].items()
            if k not in VOLATILE
        }
        key = f"{record['label']}:{record['key']}"
        canonical.setdefault(record["label"], []).append(
            json.dumps([key, props, "embedding" in record], sort_keys=True)
        )
        if "embedding" in record:
            embeddings[key] = record["embedding"]
    return {
        "counts": {label: len(rows) for label, rows in sorted(canonical.items())},
        "hashes": {
            label: hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()[:16]
            for label, rows in sorted(canonical.items())
        },
        "rows": {label: sorted(rows) for label, rows in canonical.items()},
        "embeddings": embeddings,
    }


def assert_same_graph(actual: dict, expected: dict) -> None:
    """Equal counts and content per kind; embeddings equal up to float noise of batching."""
    import numpy as np

    for label in expected["rows"]:
        missing = set(expected["rows"][label]) - set(actual["rows"].get(label, []))
        extra = set(actual["rows"].get(label, [])) - set(expected["rows"][label])
        assert not missing and not extra, (label, sorted(missing)[:3], sorted(extra)[:3])
    assert actual["counts"] == expected["counts"]
    assert actual["hashes"] == expected["hashes"]
    assert actual["embeddings"].keys() == expected["embeddings"].keys()
    for key, vector in expected["embeddings"].items():
        assert np.allclose(actual["embeddings"][key], vector, atol=1e-4), key


def invariants(home: Path) -> dict:
    """What must hold of any settled store; returns the violations found (empty when fine)."""
    fp = fingerprint(home)
    rows = {label: [json.loads(r) for r in rs] for label, rs in fp["rows"].items()}
    problems: dict[str, object] = {}
    sources = rows.get("Source", [])
    not_complete = [r[0] for r in sources if r[1].get("state") != "complete"]
    if not_complete:
        problems["sources not complete"] = not_complete
    keys = Counter(r[1].get("name_key") for r in rows.get("Entity", []) if r[1].get("name_key"))
    duplicates = [k for k, n in keys.items() if n > 1]
    if duplicates:
        problems["entities with one key twice"] = duplicates
    facts = Counter((r[1].get("predicate"), r[0]) for r in rows.get("FACT", []))
    if any(n > 1 for n in facts.values()):
        problems["facts twice"] = [k for k, n in facts.items() if n > 1]
    episodes = {r[0].split(":", 1)[1] for r in rows.get("Episode", [])}
    for r in rows.get("FACT", []):
        support = r[1].get("episodes") or []
        if not support or not set(support) <= episodes:
            problems.setdefault("facts without their episodes", []).append(r[0])
    linked = {r[0].split(":", 1)[1].split(">")[1] for r in rows.get("HAS_EPISODE", [])}
    if episodes - linked:
        problems["episodes without a source"] = sorted(episodes - linked)
    return problems

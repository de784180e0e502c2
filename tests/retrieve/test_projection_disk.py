"""The projection on disk (graphmem/retrieve/projection.py): columns mapped from
``<home>/cache/<group>/``, extended in place by ingestion, shared by processes,
robust to a crash mid-write, no pickle, no passage texts in memory. Real
embedded FalkorDB, real models, the sample corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from graphmem.config import RetrievalSettings
from graphmem.retrieve.bm25 import tokenize
from graphmem.retrieve.ppr import transition_matrix
from graphmem.retrieve.projection import MANIFEST, Projection, group_dir_of, load_projection, open_projection
from graphmem.retrieve.retriever import Retriever

REPO = Path(__file__).resolve().parents[2]
QUERIES = [
    "Who designed the Kessary Bridge?",
    "Which river does the bridge cross?",
    "What did the Dorrow Gazette report about the looms?",
    "Caskmere art gallery founder",
]


def _cache(memory) -> Path:
    return Path(memory.settings.home) / "cache"


def _results(projection: Projection, vectors: np.ndarray, mode: str = "graph") -> list[list[tuple[str, float]]]:
    retriever = Retriever(projection, embedder=None, settings=RetrievalSettings())  # type: ignore[arg-type]
    hits = retriever.search_many(QUERIES, 8, mode=mode, query_vectors=vectors)  # type: ignore[arg-type]
    return [[(h.uuid, h.score) for h in row] for row in hits]


def _same_results(a, b) -> None:
    """Equal rankings: the same passages with the same scores (to float rounding: rows in
    another order sum in another order), in the same order except among exact ties."""
    for row_a, row_b in zip(a, b, strict=True):
        assert len(row_a) == len(row_b)
        np.testing.assert_allclose([s for _, s in row_a], [s for _, s in row_b], rtol=1e-5, atol=1e-7)
        by_score_a: dict[float, set] = {}
        by_score_b: dict[float, set] = {}
        for (ua, sa), (ub, _) in zip(row_a, row_b, strict=True):
            by_score_a.setdefault(round(sa, 6), set()).add(ua)
            by_score_b.setdefault(round(sa, 6), set()).add(ub)
        last = round(row_a[-1][1], 6) if row_a else None
        for score, uuids in by_score_a.items():
            if score != last:  # a tie at the cut may keep different members
                assert uuids == by_score_b[score]


def _same_graph(p: Projection, q: Projection) -> None:
    """The same nodes, edges and vectors, whatever the row order."""
    assert sorted(p.entity_ids) == sorted(q.entity_ids)
    assert sorted(p.episode_ids) == sorted(q.episode_ids)
    assert sorted(p.fact_ids) == sorted(q.fact_ids)

    def edges(x: Projection):
        ent, epi = list(x.entity_ids), list(x.episode_ids)
        return {
            "mentions": sorted(
                (epi[a], ent[b], bool(s)) for (a, b), s in zip(x.mention_pairs.tolist(), x.mention_speaker, strict=True)
            ),
            "facts": sorted(
                (f, ent[a], ent[b], tuple(v), tuple(sorted(x.fact_episodes[i])), x.fact_texts[i])
                for i, (f, (a, b), v) in enumerate(
                    zip(x.fact_ids, x.fact_ends.tolist(), x.fact_validity().tolist(), strict=True)
                )
            ),
            "synonyms": sorted(
                (ent[a], ent[b], round(float(s), 6))
                for (a, b), s in zip(x.synonym_pairs.tolist(), x.synonym_scores, strict=True)
            ),
            "next": sorted((epi[a], epi[b]) for a, b in x.next_pairs.tolist()),
            "names": sorted(zip(ent, x.entity_names, strict=True)),
            "episodes": sorted(zip(epi, x.episode_times.tolist(), x.episode_questions.tolist(), strict=True)),
        }

    assert edges(p) == edges(q)
    # (an extension appends the vectors ingestion computed; the store gives them back rounded
    # in the last digits)
    vectors_p = dict(zip(p.episode_ids, p.episode_vectors, strict=True))
    for uuid, vector in zip(q.episode_ids, q.episode_vectors, strict=True):
        np.testing.assert_allclose(vectors_p[uuid], vector, atol=1e-6)
    vectors_p = dict(zip(p.fact_ids, p.fact_vectors, strict=True))
    for uuid, vector in zip(q.fact_ids, q.fact_vectors, strict=True):
        np.testing.assert_allclose(vectors_p[uuid], vector, atol=1e-6)


@pytest.fixture(scope="module")
def vectors(embedder) -> np.ndarray:
    return np.asarray(embedder.embed(QUERIES), dtype=np.float32)


def test_round_trip_built_and_reopened_search_alike(sample_memory, vectors):
    cache = _cache(sample_memory)
    built = load_projection(sample_memory._graph, cache)
    group = group_dir_of(cache, sample_memory._graph.group_id)
    assert built.cache_dir is not None and built.cache_dir.parent.parent == group
    reopened = open_projection(group)
    assert reopened is not None and reopened is not built and reopened.revision == built.revision
    in_memory = load_projection(sample_memory._graph, cache_dir=None)
    assert in_memory.cache_dir is None
    for mode in ("graph", "dense", "bm25"):
        expected = _results(built, vectors, mode)
        assert expected[0], mode
        assert _results(reopened, vectors, mode) == expected
        assert _results(in_memory, vectors, mode) == expected
    # opening again maps the same files: no rebuild while the revision stands
    assert load_projection(sample_memory._graph, cache)._disk.manifest["build"] == built._disk.manifest["build"]


def test_bm25_scores_equal_bm25s_over_the_stored_texts(sample_memory):
    import bm25s

    projection = load_projection(sample_memory._graph, _cache(sample_memory))
    texts = {row["uuid"]: row["content"] or "" for row in sample_memory._graph.pages("projection_episodes")}
    ordered = [texts[u] for u in projection.episode_ids]
    reference = bm25s.BM25()
    reference.index(bm25s.tokenize(ordered, stopwords="en", show_progress=False), show_progress=False)
    assert tokenize(ordered) == bm25s.tokenize(ordered, stopwords="en", show_progress=False, return_ids=False)
    for query in QUERIES + ["the of and", "bridge bridge river"]:
        tokens = tokenize([query])[0]
        expected = (
            np.asarray(reference.get_scores(tokens), np.float32) if tokens else np.zeros(len(ordered), np.float32)
        )
        np.testing.assert_allclose(projection.bm25.scores(query), expected, rtol=1e-6, atol=0, err_msg=query)


# new entities and facts, a question, and a paragraph of the sample corpus again (its facts are
# stored already: they gain this document's passage as another supporting episode)
SECOND = (
    (REPO / "examples/docs/lantern_tide_festival.md").read_text(encoding="utf-8") + "\n\n"
    "Quill Harbour lies north of the Kessary Bridge; Dana Orm runs its ferry. "
    "The harbour master Ilse Varn says it runs daily. Is the ferry still running?"
)


def test_extension_in_place_equals_a_full_rebuild(sample_memory, vectors):
    sample_memory.search("warm up", k=1)
    projection = sample_memory.retriever.projection
    before = projection._disk.manifest
    before_dir = projection.cache_dir
    projection.transition(), projection.episode_entities(), projection.entity_passage_counts()  # saved with r
    sample_memory.ingest_text(SECOND, name="delta-1")
    # carried to the new revision by the extension (new nodes and edges added), equal to a build from scratch
    carried = {d.name for d in projection.cache_dir.iterdir() if d.is_dir()}
    assert {"adjacency_0_1", "transition_0_1", "incidence", "entity-counts"} <= carried, carried
    fresh = transition_matrix(projection.adjacency(projection.facts_valid_at(None)))
    np.testing.assert_allclose(projection.transition().toarray(), fresh.toarray(), rtol=1e-6, atol=1e-9)
    m = projection.mention_pairs
    assert (
        projection.episode_entities().toarray()
        == sp.csr_matrix((np.ones(len(m)), (m[:, 0], m[:, 1])), shape=projection.episode_entities().shape).toarray()
    ).all()
    assert np.array_equal(projection.entity_passage_counts(), np.bincount(m[:, 1], minlength=projection.n_entities))
    assert sample_memory.retriever.projection is projection  # moved along in place
    assert not before_dir.exists() and projection.cache_dir.exists()  # the old revision's files are gone
    after = projection._disk.manifest
    assert after["build"] == before["build"]  # appended to the same files, not rebuilt
    assert after["counts"]["episodes"] > before["counts"]["episodes"]
    assert after["counts"]["fact_episode_extra"] > before["counts"]["fact_episode_extra"]  # known facts, new support
    assert projection.episode_questions.sum() > 0
    assert projection.revision == sample_memory._graph.revision()
    rebuilt = load_projection(sample_memory._graph, cache_dir=None)
    _same_graph(projection, rebuilt)
    for mode in ("graph", "dense", "bm25"):
        _same_results(_results(projection, vectors, mode), _results(rebuilt, vectors, mode))
    # the BM25 index of the extended projection is the one a rebuild computes (global N, df, lengths)
    rows = {u: i for i, u in enumerate(rebuilt.episode_ids)}
    order = [rows[u] for u in projection.episode_ids]
    for query in ("Who runs the ferry?", "Kessary Bridge harbour"):
        assert np.array_equal(projection.bm25.scores(query), rebuilt.bm25.scores(query)[order])
    # a process that opens the files now maps the extended columns
    reopened = open_projection(group_dir_of(_cache(sample_memory), sample_memory._graph.group_id))
    assert reopened.revision == projection.revision
    _same_results(_results(reopened, vectors), _results(projection, vectors))


def test_ingestion_extends_the_files_without_a_loaded_projection(sample_memory, vectors):
    cache = _cache(sample_memory)
    load_projection(sample_memory._graph, cache)  # as another process (an API worker) would have
    group = group_dir_of(cache, sample_memory._graph.group_id)
    build = json.loads((group / MANIFEST).read_text())["build"]
    assert sample_memory._retriever is None
    sample_memory.ingest_text(SECOND, name="delta-2")
    manifest = json.loads((group / MANIFEST).read_text())
    assert manifest["build"] == build and manifest["revision"] == sample_memory._graph.revision()
    extended = open_projection(group)
    _same_graph(extended, load_projection(sample_memory._graph, cache_dir=None))
    # replacing a document is not an addition: the next load rebuilds from the store
    sample_memory.ingest_text(SECOND + " Changed.", name="delta-2")
    assert json.loads((group / MANIFEST).read_text())["revision"] < sample_memory._graph.revision()
    rebuilt = load_projection(sample_memory._graph, cache)
    assert rebuilt._disk.manifest["build"] != build
    assert len(list(group.glob("b-*"))) == 1  # the superseded build is gone


CHILD = """
import json, sys
import numpy as np
from pathlib import Path
from graphmem.config import RetrievalSettings
from graphmem.retrieve.projection import open_projection
from graphmem.retrieve.retriever import Retriever

group, queries, vectors = Path(sys.argv[1]), json.loads(sys.argv[2]), np.load(sys.argv[3])
projection = open_projection(group)
retriever = Retriever(projection, embedder=None, settings=RetrievalSettings())
hits = retriever.search_many(queries, 8, query_vectors=vectors)
maps = Path("/proc/self/maps").read_text()
mapped = sorted({line.split()[-1] for line in maps.splitlines() if str(group) in line})
print(json.dumps({"hits": [[[h.uuid, h.score] for h in row] for row in hits], "mapped": mapped,
                  "build": projection._disk.manifest["build"]}))
"""


def test_a_second_process_maps_the_same_files(sample_memory, vectors, tmp_path):
    cache = _cache(sample_memory)
    projection = load_projection(sample_memory._graph, cache)
    group = group_dir_of(cache, sample_memory._graph.group_id)
    np.save(tmp_path / "vectors.npy", vectors)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(group), json.dumps(QUERIES), str(tmp_path / "vectors.npy")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.returncode == 0, child.stderr
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["build"] == projection._disk.manifest["build"]
    assert [[tuple(h) for h in row] for row in out["hits"]] == _results(projection, vectors)
    mapped = {Path(p).name for p in out["mapped"]}
    assert {"episode_vectors.bin", "fact_vectors.bin", "mention_pairs.bin"} <= mapped  # mapped, not read into memory
    # what a graph query derives (the transition matrix, the incidence) is saved once for all processes
    derived = {Path(p).parent.name for p in out["mapped"] if p.endswith(".npy")}
    assert {"adjacency_0_1", "transition_0_1", "incidence", "entity-counts"} <= derived, derived
    assert (projection.cache_dir / "transition_0_1" / "data.npy").exists()


def test_a_crash_mid_write_does_not_break_the_next_open(sample_memory, vectors):
    cache = _cache(sample_memory)
    projection = load_projection(sample_memory._graph, cache)
    expected = _results(projection, vectors)
    group = group_dir_of(cache, sample_memory._graph.group_id)
    build = group / projection._disk.manifest["build"]
    # a build that died before its rename, an append that died before its manifest, a half-written manifest
    (group / "tmp-crashed").mkdir()
    (group / "tmp-crashed" / "episode_vectors.bin").write_bytes(b"\0" * 1000)
    with open(build / "episode_vectors.bin", "ab") as handle:
        handle.write(b"\x7f" * 1536)
    with open(build / "entity_names.off", "ab") as handle:
        handle.write(b"\x01" * 24)
    (group / f".{MANIFEST}.999.tmp").write_text('{"format": 1, "revis')
    reopened = open_projection(group)
    assert reopened is not None
    assert _results(reopened, vectors) == expected
    # the next ingestion appends past the leftovers (cut back to the manifest first) and clears them
    sample_memory.search("warm up", k=1)
    sample_memory.ingest_text(SECOND, name="delta-3")
    assert not (group / "tmp-crashed").exists() and not (group / f".{MANIFEST}.999.tmp").exists()
    extended = open_projection(group)
    assert extended.revision == sample_memory._graph.revision()
    _same_graph(extended, load_projection(sample_memory._graph, cache_dir=None))
    # a manifest naming files that are gone: the next load rebuilds from the store
    manifest = json.loads((group / MANIFEST).read_text())
    (group / MANIFEST).write_text(json.dumps({**manifest, "build": "b-missing"}))
    assert open_projection(group) is None
    rebuilt = load_projection(sample_memory._graph, cache)
    assert rebuilt.revision == sample_memory._graph.revision()
    _same_graph(rebuilt, extended)


def test_no_pickle_and_no_passage_texts(sample_memory):
    cache = _cache(sample_memory)
    cache.mkdir(parents=True, exist_ok=True)
    old = cache / f"projection-{sample_memory._graph.group_id}.pkl"  # the format before this one
    old.write_bytes(b"\x80\x05old")
    sample_memory.search("Kessary Bridge", k=3)
    projection = sample_memory.retriever.projection
    sample_memory.ingest_text(SECOND, name="delta-4")
    hits = sample_memory.search("Who runs the ferry of Quill Harbour?", k=3)
    assert "Dana Orm" in hits[0].content  # texts come from the store, for the hits only
    assert not list(cache.rglob("*.pkl")) and not list(cache.rglob("*.pickle"))
    for path in cache.rglob("*"):
        if path.is_file():
            assert path.read_bytes()[:2] not in (b"\x80\x04", b"\x80\x05") or path.suffix == ".bin", path
    # no passage texts: no attribute holds them, neither the projection nor its BM25 index
    assert not hasattr(projection, "episode_texts")
    texts = {row["content"] for row in sample_memory._graph.pages("projection_episodes")}

    def holds_texts(value) -> bool:
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            return bool(texts & set(value))
        if (
            hasattr(value, "__len__")
            and hasattr(value, "__getitem__")
            and not isinstance(value, (str, bytes, np.ndarray, dict))
        ):
            try:
                return (
                    len(value) > 0 and isinstance(value[0], str) and any(value[i] in texts for i in range(len(value)))
                )
            except Exception:
                return False
        return False

    for owner in (projection, projection.bm25):
        for name, value in vars(owner).items():
            assert not holds_texts(value), name


def test_an_ingestion_that_ends_a_stored_fact_still_extends_in_place(memory):
    """A newer value of a single-valued fact ends the stored one: the extension records the
    stored fact's new validity (and takes its edge out of the saved adjacency) instead of
    leaving the next search to rebuild everything from the store."""
    from datetime import datetime

    memory.ingest_text(
        "Ana Vell lives in Lisbon. She works at Orvalis Robotics.",
        name="ana-1",
        date=datetime(2021, 3, 1, tzinfo=UTC),
    )
    memory.search("warm up", k=1)
    projection = memory.retriever.projection
    build = projection._disk.manifest["build"]
    projection.transition()
    lisbon = [i for i, t in enumerate(projection.fact_texts) if "Lisbon" in t]
    assert lisbon and projection.facts_valid_at(None)[lisbon].all()
    memory.ingest_text("Ana Vell lives in Berlin.", name="ana-2", date=datetime(2023, 6, 15, tzinfo=UTC))
    assert memory.retriever.projection is projection and projection._disk.manifest["build"] == build
    assert projection._disk.manifest["counts"]["fact_valid_updates"] >= 1
    assert not projection.facts_valid_at(None)[lisbon].any()  # ended now ...
    assert projection.facts_valid_at(int(datetime(2022, 1, 1, tzinfo=UTC).timestamp() * 1000))[lisbon].all()
    rebuilt = load_projection(memory._graph, cache_dir=None)  # ... as the store says
    _same_graph(projection, rebuilt)
    fresh = transition_matrix(projection.adjacency(projection.facts_valid_at(None)))
    np.testing.assert_allclose(projection.transition().toarray(), fresh.toarray(), rtol=1e-6, atol=1e-9)
    assert projection.transition().nnz == fresh.nnz  # the ended fact's edge is gone, not left at 0


def test_the_push_operator_is_saved_with_the_projection_and_mapped(sample_memory, vectors):
    """Forward push's operator for the current graph is built once, saved beside the projection
    and mapped by later processes; it ranks exactly as one built from the transition matrix."""
    from graphmem.retrieve.ppr import push_operator

    cache = _cache(sample_memory)
    settings = RetrievalSettings(ppr="push")
    first = Retriever(load_projection(sample_memory._graph, cache), embedder=None, settings=settings)  # type: ignore[arg-type]
    hits = first.search_many(QUERIES, 8, query_vectors=vectors)
    saved = first.projection.cache_dir / "push_0_1"
    assert {p.name for p in saved.glob("*.npy")} == {"indptr.npy", "indices.npy", "data.npy", "degree.npy"}

    reopened = Retriever(load_projection(sample_memory._graph, cache), embedder=None, settings=settings)  # type: ignore[arg-type]
    operator = reopened.push_operator(None)
    assert isinstance(operator.data, np.memmap) or isinstance(getattr(operator.data, "base", None), np.memmap)
    built = push_operator(reopened.projection.transition(None, 0.0, 1.0))
    for name, array in built.arrays().items():
        assert np.array_equal(np.asarray(operator.arrays()[name]), array), name
    again = reopened.search_many(QUERIES, 8, query_vectors=vectors)
    assert [[(h.uuid, h.score) for h in row] for row in again] == [[(h.uuid, h.score) for h in row] for row in hits]

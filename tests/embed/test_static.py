"""The static (model2vec) embedder: distilled offline from the packaged MiniLM, usable
end to end through ``GRAPHMEM_EMBEDDER=minilm-static``, and kept apart from MiniLM
query vectors by the group's recipe."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphmem.errors import ConfigError

from ..conftest import EXAMPLES, example_doc_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def static() -> Any:
    """The real minilm-static, built once into the user's model cache (the first run on a
    machine distils it: ~35 s on 2 cores) and shared by the session."""
    from graphmem.embed import get_embedder

    return get_embedder("minilm-static")


@pytest.fixture(scope="module")
def static_home(tmp_path_factory: pytest.TempPathFactory, static: Any, extractor: Any) -> Path:
    """examples/docs ingested with GRAPHMEM_EMBEDDER=minilm-static (settings from the environment)."""
    from graphmem import Memory
    from graphmem.config import Settings

    home = tmp_path_factory.mktemp("static") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("GRAPHMEM_EMBEDDER", "minilm-static")
    mp.setenv("GRAPHMEM_HOME", str(home))
    try:
        with Memory(Settings.from_env()) as memory:
            memory.ingest([EXAMPLES / "docs"])
    finally:
        mp.undo()
    return home


def test_loads_offline_with_its_recorded_name_and_size(static: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphmem.embed.static import StaticEmbedder, model_dir

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = StaticEmbedder("minilm-static")  # a fresh load from the cache folder, no network
    assert (again.name, again.dim) == ("minilm-static", 256)
    assert again.path == model_dir("minilm-static") and (again.path / "model.safetensors").is_file()
    vectors = again.embed(["Halvane Steelworks built the Kessary Bridge."])
    assert vectors.shape == (1, 256) and vectors.dtype == np.float32


def test_vectors_are_deterministic_unit_rows(static: Any) -> None:
    texts = ["The Kessary Bridge crosses the river.", "Ilsa Varrow played the cello.", "x"]
    first, second = static.embed(texts), static.embed(list(reversed(texts)))[::-1]
    assert np.array_equal(first, second)  # no batch effects: a text's vector is its own
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert static.embed([]).shape == (0, 256)


def test_similar_texts_score_above_unrelated_ones(static: Any) -> None:
    a, b, c = static.embed(
        [
            "The steelworks in Ostrelby built the bridge over the river.",
            "A bridge across the river was constructed by the Ostrelby steel company.",
            "She played the cello at the summer music festival.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2, (float(a @ b), float(a @ c))


def test_ingest_and_search_with_the_static_embedder(
    static_home: Path, sample_questions: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphmem import Memory

    with Memory(home=static_home) as memory:  # no embedder named: the group's recipe gives it
        assert memory.settings.embedder == "minilm-static"
        assert memory.recipe is not None and memory.recipe.ingestion.embedder == "minilm-static"
        demo = [q for q in sample_questions if q.get("demo")]
        results = memory.search_many([q["question"] for q in demo], 5, mode="graph")
    for question, hits in zip(demo, results, strict=True):
        found = [example_doc_name(h.source) for h in hits]
        assert question["supporting"][0] in found, (question["id"], found)


def test_a_static_group_refuses_minilm_queries(static_home: Path, tmp_path: Path, embedder: Any) -> None:
    from graphmem import Memory

    home = tmp_path / "home"
    shutil.copytree(static_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    with Memory(home=home, embedder="minilm") as memory, pytest.raises(ConfigError) as refused:
        memory.search("Who built the Kessary Bridge?", k=3)
    message = str(refused.value)
    assert "'minilm-static'" in message and "'minilm'" in message and "not comparable" in message


def test_an_unknown_static_name_is_a_clear_error() -> None:
    from graphmem.embed.static import model_dir

    with pytest.raises(ConfigError, match="unknown static embedder 'nope'"):
        model_dir("nope")

"""Entity and fact vectors pooled from the passage's forward pass (late chunking)."""

from __future__ import annotations

import numpy as np

from graphmem.ingest.context_vectors import embed_units, extraction_text_and_map
from graphmem.ingest.pipeline import load_entity_index
from graphmem.model import entity_key

TEXT = "Anselm Vey founded Orvalis Robotics in Porto. He later moved to Lisbon."


def test_extraction_offsets_map_back_to_the_content():
    content = "# Anselm Vey\n\nAnselm Vey was born.\n## Early life.\nHe moved."
    text, text_map = extraction_text_and_map(content)
    assert text == "Anselm Vey.\n\nAnselm Vey was born.\nEarly life.\nHe moved."
    for word, start in [
        ("Anselm Vey", 0),
        ("Anselm Vey", 13),
        ("born", text.index("born")),
        ("Early life", text.index("Early")),
        ("moved", text.index("moved")),
    ]:
        assert content[text_map(start) : text_map(start + len(word))] == word
    # the "." the heading gained maps to the end of the heading's name
    assert content[text_map(0) : text_map(len("Anselm Vey."))] == "Anselm Vey"
    text_map.prefix = 6  # a title line put before the content
    assert text_map(0) == 6 + content.index("Anselm")


def test_pooled_vectors_come_from_the_texts_own_tokens(embedder):
    texts = [TEXT, "Short one."]
    name = TEXT.index("Orvalis Robotics")
    vectors, pooled = embedder.embed_in_context(texts, [[[(name, name + 16)], [(0, 10)]], []])
    assert np.allclose(vectors, embedder.embed(texts), atol=1e-5)  # the texts' vectors are unchanged
    assert pooled[0].shape == (2, embedder.dim) and pooled[1].shape == (0, embedder.dim)
    assert np.allclose(np.linalg.norm(pooled[0], axis=1), 1.0, atol=1e-5)
    names = embedder.embed(["Orvalis Robotics", "Anselm Vey"])
    # each pooled row is nearest to the name it covers
    assert pooled[0][0] @ names[0] > pooled[0][0] @ names[1]
    assert pooled[0][1] @ names[1] > pooled[0][1] @ names[0]


def test_words_past_the_input_limit_get_no_pooled_vector(embedder):
    long = " ".join(["filler"] * 400) + " Kessary Bridge"
    at = long.index("Kessary")
    _, pooled = embedder.embed_in_context([long], [[[(at, at + 14)], [(0, 6)]]])
    assert not pooled[0][0].any()  # truncated away: the caller embeds the name on its own
    assert pooled[0][1].any()


def test_names_and_facts_found_by_the_extractor_get_pooled_vectors(embedder, extractor):
    from graphmem.ingest.context_vectors import TextMap

    extraction = extractor.extract([TEXT])[0]
    vectors = embed_units(embedder, [TEXT], [extraction], [TextMap()])
    assert {"Anselm Vey", "Orvalis Robotics", "Porto", "Lisbon"} <= set(vectors.names)
    assert {t.text for t in extraction.triples} == set(vectors.facts)
    off = embed_units(embedder, [TEXT], [extraction], [TextMap()], pool=False)
    assert not off.names and not off.facts
    assert np.allclose(off.units, vectors.units, atol=1e-5)


def test_ingestion_stores_pooled_entity_vectors_only_when_enabled(tmp_path, embedder, extractor):
    from graphmem import Memory

    stored = {}
    for enabled in (True, False):
        with Memory(home=tmp_path / str(enabled), context_vectors=enabled) as memory:
            memory.ingest_text(TEXT, name="vey.txt")
            index = load_entity_index(memory._graph, embedder.dim, memory.settings)
            stored[enabled] = index.vectors[index.by_key[entity_key("Orvalis Robotics")]].copy()
    standalone = embedder.embed(["Orvalis Robotics"])[0]
    assert np.allclose(stored[False], standalone, atol=1e-5)
    assert not np.allclose(stored[True], standalone, atol=1e-3)  # pooled from the passage instead
    assert stored[True] @ standalone > 0.5

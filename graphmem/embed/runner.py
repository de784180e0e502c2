"""A sentence-transformers model replica on one device, as a batching :class:`~graphmem.embed.batcher.Encoder`.

On CUDA the model runs in fp16 (or bf16) under ``torch.inference_mode``;
:meth:`ModelEncoder.start` tokenizes, launches the forward pass and an
asynchronous copy of the result into pinned host memory, and returns at once,
so the batcher can prepare the next batch while the GPU works.

Tokenization goes straight to the Rust ``tokenizers.Tokenizer.encode_batch``
(:class:`FastTokenizer`): it releases the GIL and spreads a batch over all
cores, while ``SentenceTransformer.tokenize`` then converts every token id to a
Python int and back, which on the H100 machine cost more host time per text
than the whole forward pass of MiniLM (benchmarks/README.md). The fast path is
used only after it produced exactly the features of ``model.tokenize`` on a
probe set; otherwise the encoder falls back to ``model.tokenize``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from graphmem.embed.local import PACKAGED_MODELS, resolve_model_path
from graphmem.errors import ConfigError


def visible_devices(device: str) -> list[str]:
    """``cuda`` -> every visible GPU (``cuda:0``, ``cuda:1``...), ``cuda:N``/``cpu`` -> itself,
    ``auto`` -> the GPUs if there are any, else ``cpu``."""
    import torch

    if device in ("auto", "cuda"):
        n = torch.cuda.device_count()
        if n == 0:
            if device == "cuda":
                raise ConfigError("--device cuda: no CUDA GPU is visible (use --device cpu)")
            return ["cpu"]
        return [f"cuda:{i}" for i in range(n)]
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA GPU is visible (use --device cpu)")
    return [device]


def model_display_name(model: str) -> str:
    return model if model in PACKAGED_MODELS else Path(model.rstrip("/")).name


#: probe texts for checking the fast tokenizer against sentence-transformers' own: mixed case,
#: accents, CJK, punctuation, surrounding whitespace, and one far past any max_seq_length
_PROBES = [
    "Hello world",
    "  The Halvard Library stands in Brightwater.  ",
    "Ünïcödé café, naïve résumé!",
    "数据 and 日本語 text",
    "x",
    "tabs\tand\nnewlines  here",
    "[SEP] literal [CLS] tokens",
    " ".join(f"word{i}" for i in range(3000)),
]


class FastTokenizer:
    """``texts -> features`` through the Rust tokenizer directly (GIL released, all cores).

    Built by :meth:`for_model`, which returns None unless the result is identical
    to ``model.tokenize`` for this model (same ids, mask and keys) on :data:`_PROBES`.
    """

    def __init__(self, backend: Any, pad_id: int, keys: tuple[str, ...], extra: dict) -> None:
        self.backend, self.pad_id, self.keys, self.extra = backend, pad_id, keys, extra

    @classmethod
    def for_model(cls, model: Any) -> FastTokenizer | None:
        import torch

        tokenizer = getattr(model, "tokenizer", None)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        max_len = getattr(model, "max_seq_length", None)
        if (
            tokenizer is None
            or backend is None
            or not max_len
            or getattr(tokenizer, "padding_side", "right") != "right"
        ):
            return None
        try:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(backend.to_str())  # a copy: the HF tokenizer keeps its own settings
            backend.no_padding()
            backend.enable_truncation(int(max_len))
            reference = model.tokenize(_PROBES)
            keys = tuple(k for k, v in reference.items() if isinstance(v, torch.Tensor))
            if not {"input_ids", "attention_mask"} <= set(keys) or not set(keys) <= {
                "input_ids",
                "attention_mask",
                "token_type_ids",
            }:
                return None
            extra = {k: v for k, v in reference.items() if not isinstance(v, torch.Tensor)}
            fast = cls(backend, int(tokenizer.pad_token_id or 0), keys, extra)
            mine = fast(_PROBES)
            if all(torch.equal(mine[k], reference[k]) for k in keys):
                return fast
        except Exception:  # noqa: BLE001 - any surprise: use sentence-transformers' path
            pass
        return None

    def __call__(self, texts: list[str]) -> dict:
        import torch

        # sentence-transformers strips each text before tokenizing; so do we (same ids).
        encodings = self.backend.encode_batch([t.strip() for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        flat = np.fromiter(
            itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=int(lengths.sum())
        )
        width = int(lengths.max()) if len(lengths) else 0
        mask = np.arange(width)[None, :] < lengths[:, None]
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        ids[mask] = flat
        features = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}
        if "token_type_ids" in self.keys:  # single sentences: all type 0
            features["token_type_ids"] = torch.zeros_like(features["input_ids"])
        return {**features, **self.extra}


class _CudaPending:
    def __init__(self, host: Any, event: Any, tokens: np.ndarray) -> None:
        self.host, self.event, self.tokens = host, event, tokens

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self.event.synchronize()
        return self.host.numpy(), self.tokens

    def done(self) -> bool:
        return bool(self.event.query())


class _CpuPending:
    def __init__(self, vectors: np.ndarray, tokens: np.ndarray) -> None:
        self.vectors, self.tokens = vectors, tokens

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vectors, self.tokens

    def done(self) -> bool:
        return True


class ModelEncoder:
    """One replica of a sentence-transformers model on ``device`` (``cpu`` or ``cuda:N``).

    ``dtype``: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp16``, ``bf16`` or ``fp32``.
    ``model_obj`` reuses an already loaded ``SentenceTransformer`` (tests share one).
    """

    def __init__(self, model: str = "minilm", device: str = "cpu", dtype: str = "auto", model_obj: Any = None) -> None:
        import torch

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.device = device
        self.name = model_display_name(model)
        if model_obj is None:
            from sentence_transformers import SentenceTransformer  # slow import: keep it lazy

            model_obj = SentenceTransformer(resolve_model_path(model), device=device)
        self.model = model_obj
        self.cuda = device.startswith("cuda")
        if dtype == "auto":
            dtype = "fp16" if self.cuda else "fp32"
        torch_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(dtype)
        if torch_dtype is None:
            raise ConfigError(f"dtype must be auto, fp16, bf16 or fp32, not {dtype!r}")
        self.model.to(torch_dtype)  # also back to fp32 on CPU for weights saved in fp16
        self.model.eval()
        self.dtype = dtype
        self.dim = int(self.model.get_embedding_dimension())
        self._torch = torch
        self.fast_tokenizer = FastTokenizer.for_model(self.model)

    def tokenize(self, texts: list[str]) -> dict:
        """The model's input features for ``texts`` (fast path when verified, see :class:`FastTokenizer`)."""
        if self.fast_tokenizer is not None:
            return self.fast_tokenizer(texts)
        return self.model.tokenize(texts)

    def start(self, texts: list[str]) -> _CudaPending | _CpuPending:
        torch = self._torch
        with torch.inference_mode():
            features = self.tokenize(texts)
            tokens = (
                features["attention_mask"].sum(dim=1).numpy()
                if "attention_mask" in features
                else np.array([len(t.split()) for t in texts])
            )
            if self.cuda:
                with torch.cuda.device(self.device):
                    features = {
                        k: v.to(self.device, non_blocking=True) if hasattr(v, "to") else v for k, v in features.items()
                    }
                    out = self.model(features)["sentence_embedding"]
                    out = torch.nn.functional.normalize(out.float(), dim=1)
                    host = torch.empty(out.shape, dtype=torch.float32, pin_memory=True)
                    host.copy_(out, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record()
                return _CudaPending(host, event, tokens)
            out = self.model(features)["sentence_embedding"]
            out = torch.nn.functional.normalize(out.float(), dim=1)
            return _CpuPending(out.numpy().astype(np.float32, copy=False), tokens)

    def memory_bytes(self) -> int:
        """GPU memory this process holds on the device (torch's reserved pool); 0 on CPU."""
        if not self.cuda:
            return 0
        return int(self._torch.cuda.memory_reserved(self.device))

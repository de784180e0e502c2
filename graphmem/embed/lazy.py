"""An embedder made on first use: a retriever holds one, and a search that needs no
vectors (BM25 mode) never loads the model behind it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from graphmem.embed.base import Embedder


class LazyEmbedder:
    """Stands for the :class:`Embedder` that ``load`` returns, calling it on the first use
    of :attr:`name`, :attr:`dim` or :meth:`embed` (once: the result is kept)."""

    def __init__(self, load: Callable[[], Embedder]) -> None:
        self._load = load
        self._embedder: Embedder | None = None

    @property
    def loaded(self) -> Embedder:
        """The real embedder (loaded now if it was not yet)."""
        if self._embedder is None:
            self._embedder = self._load()
        return self._embedder

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def dim(self) -> int:
        return self.loaded.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.loaded.embed(texts)

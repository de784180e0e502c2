"""The embedder interface: texts in, L2-normalised float32 rows out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    #: a short identifier of the model (stored with the graph to catch mix-ups)
    name: str
    #: vector length
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: shape ``(len(texts), dim)``, float32, unit length."""
        ...


@runtime_checkable
class ContextEmbedder(Embedder, Protocol):
    """An embedder that can also pool vectors for pieces of a text from the text's own
    forward pass ("late chunking"): names and facts get vectors at no extra model cost."""

    def embed_in_context(
        self, texts: Sequence[str], spans: Sequence[Sequence[Sequence[tuple[int, int]]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(vectors, pooled)``: ``vectors`` as :meth:`embed` gives them; ``pooled[i]`` has one
        unit-length row per span group ``spans[i][g]`` (a list of ``(start, end)`` character
        ranges in ``texts[i]``): the mean of the token embeddings those ranges cover. A group
        the model did not see (past its input limit) is a row of zeros."""
        ...

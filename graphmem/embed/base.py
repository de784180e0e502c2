"""The embedder interface: texts in, L2-normalised float32 rows out."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

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

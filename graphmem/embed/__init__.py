"""Embedding: the :class:`Embedder` protocol and the ways to get one."""

from __future__ import annotations

from functools import lru_cache

from graphmem.embed.base import Embedder


@lru_cache(maxsize=4)
def get_embedder(spec: str = "minilm", device: str = "cpu") -> Embedder:
    """An embedder for ``spec``: a packaged model name, a static model name
    (``minilm-static``, :mod:`graphmem.embed.static`), a local folder, or an http(s) service URL.

    Cached per process: loading a model takes seconds.
    """
    if spec.startswith(("http://", "https://")):
        from graphmem.embed.http import HTTPEmbedder

        return HTTPEmbedder(spec)
    from graphmem.embed.static import STATIC_MODELS

    if spec in STATIC_MODELS:
        from graphmem.embed.static import StaticEmbedder

        return StaticEmbedder(spec)
    from graphmem.embed.local import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(spec, device=device)


__all__ = ["Embedder", "get_embedder"]

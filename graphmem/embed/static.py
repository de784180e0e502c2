"""Static (model2vec) embedding: a token-vector table distilled from a packaged model.

``minilm-static`` is distilled from the shipped all-MiniLM-L6-v2 by the
``model2vec`` package: every token of MiniLM's vocabulary is run through
MiniLM once, the outputs are reduced by PCA and weighted by token rank, and a
text's vector is then the mean of its tokens' rows (no transformer at run
time: thousands of texts per second on one core).

The table is built on first use (about 35 s on 2 cores) and cached under
:func:`cache_root`; nothing is downloaded. The build is a pure function of the
source model's files and the model2vec version (the cache folder is named by
both), and writes its result under a temporary name that is renamed into place,
so processes that start at once never read a half-written model.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graphmem.errors import ConfigError

#: Static models known by name: the packaged model each is distilled from and its vector size.
STATIC_MODELS: dict[str, tuple[str, int]] = {"minilm-static": ("minilm", 256)}
#: Bump when the build recipe below changes: older caches are then ignored, not reused.
BUILD_VERSION = 1
_NEEDS = "pip install 'graphmem[static]' (model2vec, skeletoken)"


def cache_root() -> Path:
    """Where built static models live: ``$GRAPHMEM_MODEL_CACHE``, else ``$XDG_CACHE_HOME/graphmem/models``,
    else ``~/.cache/graphmem/models`` (shared by every store on the machine)."""
    given = os.environ.get("GRAPHMEM_MODEL_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphmem" / "models"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"the static embedder needs the pip package {dist!r}: {_NEEDS}") from None


def model_dir(name: str) -> Path:
    """The cache folder of static model ``name`` for the installed source model and model2vec."""
    from graphmem.embed.local import PACKAGED_MODELS

    if name not in STATIC_MODELS:
        raise ConfigError(f"unknown static embedder {name!r}; known: {', '.join(STATIC_MODELS)}")
    source, dims = STATIC_MODELS[name]
    source_version = _version(PACKAGED_MODELS[source][2])
    return cache_root() / f"{name}-{source_version}-m2v{_version('model2vec')}-pca{dims}-b{BUILD_VERSION}"


def build(name: str, target: Path, quiet: bool = False) -> Path:
    """Distil static model ``name`` into ``target`` (replaced if there); returns ``target``.

    Deterministic: the same source model and model2vec version give the same table
    (PCA is an eigendecomposition, no random start; vectors are rounded to float16)."""
    from graphmem.embed.local import resolve_model_path

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    source, dims = STATIC_MODELS[name]
    path = resolve_model_path(source)
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise ConfigError(
            f"building the static embedder {name!r} needs model2vec's distiller ({exc}): {_NEEDS}"
        ) from None
    if not quiet:
        print(
            f"graphmem: building the static embedder {name!r} from {source} (once, ~1 min on 2 cores) into {target}",
            file=sys.stderr,
            flush=True,
        )
    model = distill(path, device="cpu", pca_dims=dims)  # shows a per-token progress bar
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(str(scratch))
        scratch.chmod(0o755)  # mkdtemp's folder is private; the cache is shared like any model folder
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch, target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not (target / "model.safetensors").is_file():  # another process did not finish it either
            raise
    return target


def ensure_model(name: str, quiet: bool = False) -> Path:
    """The folder of static model ``name``, built first if the cache lacks it."""
    target = model_dir(name)
    if not (target / "model.safetensors").is_file():
        build(name, target, quiet=quiet)
    return target


class StaticEmbedder:
    """:class:`~graphmem.embed.base.Embedder` over a model2vec table: a text's vector is the
    normalised mean of its tokens' rows (no context, no truncation)."""

    def __init__(self, name: str = "minilm-static", path: str | Path | None = None) -> None:
        """``name``: a key of :data:`STATIC_MODELS` (built on first use); ``path``: load this
        model2vec folder instead (``name`` is then only the name recorded with the vectors)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        folder = Path(path) if path is not None else ensure_model(name)
        try:
            from model2vec import StaticModel
        except ImportError:
            raise ConfigError(f"the static embedder needs model2vec: {_NEEDS}") from None
        try:
            self._model = StaticModel.from_pretrained(str(folder), normalize=True, force_download=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"static embedder {name!r}: cannot load {folder} ({exc}); delete it to rebuild") from None
        self.name = name
        self.dim = int(self._model.dim)
        self.path = folder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(
            self._model.encode(list(texts), max_length=None, use_multiprocessing=False), dtype=np.float32
        )
        # Renormalised in float32: the table is stored in float16. A text with no known token is a zero row.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)

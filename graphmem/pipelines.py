"""Declarative pipeline specs (``pipelines/*.yaml``) -> settings.

A spec names a reader, a chunker, an extractor, an embedder and a store; see
``pipelines/documents.yaml``. Keys it does not know are an error, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphmem.errors import ConfigError

if TYPE_CHECKING:
    from graphmem.ingest.dialogue import DialogueFormat
    from graphmem.ingest.readers import Document

KNOWN = {"name", "description", "reader", "chunker", "extractor", "embedder", "store", "retrieval", "temporal"}
# reader name -> what it reads; `read_with` dispatches on it (dialogue readers: `read_conversations`)
READERS = {
    "documents": "text/Markdown files and JSONL records (graphmem.ingest.readers)",
    "hipporag": "HippoRAG-format dataset folders: one document per corpus.jsonl passage (graphmem.eval.datasets)",
    "dialogue": "chat logs: graphmem JSON chat, LoCoMo JSON (detected), or transcripts (graphmem.ingest.dialogue)",
    "transcript": "'Speaker: text' transcripts (graphmem.ingest.dialogue)",
    "locomo": "LoCoMo JSON conversations (graphmem.ingest.dialogue)",
}
DIALOGUE_READERS: dict[str, DialogueFormat] = {
    "dialogue": "auto",
    "transcript": "transcript",
    "locomo": "locomo",
}  # reader -> dialogue format


def pipelines_dir() -> Path:
    checkout = Path(__file__).resolve().parents[1] / "pipelines"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("graphmem.pipelines_data")))


def available() -> list[str]:
    return sorted(p.stem for p in pipelines_dir().glob("*.yaml"))


def load_pipeline(name_or_path: str) -> dict[str, Any]:
    """Read a spec by shipped name or file path -> ``{"reader": ..., "settings": {...}}``."""
    import yaml

    path = Path(name_or_path)
    if not path.is_file():
        path = pipelines_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"no pipeline {name_or_path!r}: give a YAML file or one of {', '.join(available())}")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: a pipeline spec is a mapping")
    unknown = set(spec) - KNOWN
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN))}")
    reader = spec.get("reader", "documents")
    if reader not in READERS:
        raise ConfigError(f"{path}: field 'reader': unknown reader {reader!r}; known: {', '.join(sorted(READERS))}")
    name = spec.get("name", path.stem)
    return {"name": name, "reader": reader, "settings": _settings(spec, name, path), "path": str(path)}


def _settings(spec: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    """The spec as ``Settings`` fields. Its recipe is whole: the chunker, extractor, retrieval and
    temporal knobs it leaves out take the defaults (set explicitly), not a group's stored recipe."""
    from pydantic import ValidationError

    from graphmem.config import RetrievalSettings, Settings, TemporalSettings

    chunker = spec.get("chunker") or {}
    settings: dict[str, Any] = {
        "pipeline": name,
        "chunk_words": chunker.get("words", Settings.model_fields["chunk_words"].default),
        "chunk_overlap": chunker.get("overlap", Settings.model_fields["chunk_overlap"].default),
        "spacy_model": (spec.get("extractor") or {}).get("spacy_model") or Settings.model_fields["spacy_model"].default,
        "context_vectors": Settings.model_fields["context_vectors"].default,
    }
    for key in ("embedder", "store"):
        if spec.get(key):
            settings[key] = spec[key]
    for key, model in (("retrieval", RetrievalSettings), ("temporal", TemporalSettings)):
        try:
            settings[key] = model.model_validate({**model().model_dump(), **(spec.get(key) or {})})
        except ValidationError as exc:
            raise ConfigError(f"{path}: field {key!r}: {exc}") from None
    return settings


def read_with(
    reader: str, paths: Iterable[str | Path], max_file_bytes: int, errors: list[Any] | None = None, max_errors: int = 0
) -> list[Document]:
    """Documents from ``paths`` read by the pipeline's ``reader`` (one of :data:`READERS`);
    ``errors``/``max_errors``: skip up to that many bad records (documents reader only)."""
    if reader == "hipporag":
        from graphmem.eval.datasets import read_hipporag_documents

        return read_hipporag_documents(list(paths))
    if reader == "documents":
        from graphmem.ingest.readers import read_documents

        return read_documents(paths, max_file_bytes, errors, max_errors)
    raise ConfigError(f"unknown reader {reader!r}; known: {', '.join(sorted(READERS))}")

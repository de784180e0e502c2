"""The recipe a group was ingested with, stored in the group and used by default.

A recipe is the pipeline name, the :class:`~graphmem.config.IngestionSettings`
(chunking, extraction, the embedding model), the
:class:`~graphmem.config.RetrievalSettings` and the
:class:`~graphmem.config.TemporalSettings`. The first ingestion into a group
writes it (as JSON on the group's ``GraphMeta`` node, ``cypher/meta.cypher``);
searches, later ingestions and ``forget`` of that group then run with it.

Precedence, lowest first: the built-in defaults, the group's recipe, the fields
a user sets explicitly on :class:`~graphmem.config.Settings` (Python, ``GRAPHMEM_*``
variables, command-line options, ``--pipeline``), and a per-call
:class:`~graphmem.config.RetrievalSettings` passed to ``Memory.search``.

A later ingestion whose recipe differs from the stored one (an explicit setting
or a pipeline that disagrees with it, or another embedding model) is refused
with :class:`RecipeConflict` naming each difference, unless it is asked to
replace the recipe (``Memory(update_recipe=True)``, ``--update-recipe``).
Groups without a stored recipe (stores written before recipes existed) search
with the given settings, and their next ingestion stores its recipe.

The embedding model is part of the recipe too: a search that does not name an
embedder uses the group's (when it is one known by name, e.g. ``minilm`` or
``minilm-static``), and one that names another is refused
(:func:`check_query_embedder`): query and passage vectors must come from the
same model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from graphmem.config import INGESTION_FIELDS, IngestionSettings, RetrievalSettings, Settings, TemporalSettings
from graphmem.errors import ConfigError

VERSION = 1


class RecipeConflict(ConfigError):
    """An ingestion would change a group's stored recipe without being asked to."""


class Recipe(BaseModel):
    """What a group was ingested with and is searched with. Immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = VERSION
    pipeline: str = ""
    ingestion: IngestionSettings
    retrieval: RetrievalSettings
    temporal: TemporalSettings

    @classmethod
    def of(cls, settings: Settings, embedder: str = "", embedder_dim: int = 0) -> Recipe:
        """The recipe of ``settings``; ``embedder``/``embedder_dim``: the loaded model's name and size."""
        return cls(
            pipeline=settings.pipeline,
            ingestion=settings.ingestion(embedder, embedder_dim),
            retrieval=settings.retrieval,
            temporal=settings.temporal,
        )

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, group_id: str = "") -> Recipe:
        """Read a stored recipe; retrieval knobs this version does not know are ignored."""
        try:
            data = json.loads(text)
            known = RetrievalSettings.model_fields
            data["retrieval"] = {k: v for k, v in (data.get("retrieval") or {}).items() if k in known}
            return cls.model_validate(data)
        except (json.JSONDecodeError, ValidationError, TypeError, AttributeError) as exc:
            raise ConfigError(f"group {group_id!r}: its stored recipe is unreadable ({exc})") from None


def whole(model: BaseModel) -> BaseModel:
    """``model`` with every field marked as set explicitly (a pipeline's recipe: its
    unset knobs mean the defaults, not the group's)."""
    return type(model).model_validate(model.model_dump())


def pinned(settings: Settings) -> Settings:
    """``settings`` with its whole recipe set explicitly, so no stored recipe changes any of it
    (``graphmem eval`` measures exactly the settings it reports)."""
    update: dict[str, Any] = {name: getattr(settings, name) for name in (*INGESTION_FIELDS, "pipeline")}
    return settings.model_copy(
        update={**update, "retrieval": whole(settings.retrieval), "temporal": whole(settings.temporal)}
    )


def overridden(base: BaseModel, over: BaseModel | Mapping[str, Any] | None) -> Any:
    """``base`` with the fields ``over`` sets explicitly (a mapping: its keys) replaced."""
    if over is None:
        return base
    if isinstance(over, Mapping):
        try:
            over = type(base).model_validate(dict(over))
        except ValidationError as exc:
            raise ConfigError(f"invalid {type(base).__name__}: {exc}") from None
    update = {name: getattr(over, name) for name in over.model_fields_set}
    return base.model_copy(update=update) if update else base


def effective(given: Settings, stored: Recipe | None) -> Settings:
    """The settings a group runs with: ``given``'s explicit fields over ``stored`` over the defaults."""
    if stored is None:
        return given
    explicit = given.model_fields_set
    update: dict[str, Any] = {
        name: getattr(stored.ingestion, name) for name in INGESTION_FIELDS if name not in explicit
    }
    update["retrieval"] = overridden(stored.retrieval, given.retrieval if "retrieval" in explicit else None)
    update["temporal"] = overridden(stored.temporal, given.temporal if "temporal" in explicit else None)
    if "pipeline" not in explicit:
        update["pipeline"] = stored.pipeline
    if "embedder" not in explicit and stored.ingestion.embedder in _named_embedders():
        update["embedder"] = stored.ingestion.embedder  # queries need the model the group's vectors came from
    settings = given.model_copy(update=update)
    if settings.chunk_overlap >= settings.chunk_words:
        raise ConfigError(
            f"chunk_overlap ({settings.chunk_overlap}) must be smaller than chunk_words "
            f"({settings.chunk_words}; group {given.group_id!r} stores its recipe's)"
        )
    return settings


def _named_embedders() -> set[str]:
    """The embedders ``Settings.embedder`` can name without a path or address (packaged and static models)."""
    from graphmem.embed.local import PACKAGED_MODELS
    from graphmem.embed.static import STATIC_MODELS

    return {*PACKAGED_MODELS, *STATIC_MODELS}


def check_query_embedder(group_id: str, stored: Recipe | None, name: str, dim: int) -> None:
    """Refuse to search a group with an embedder other than the one its vectors came from
    (``name``/``dim``: the loaded query embedder): its query vectors would be compared with
    vectors of another space (or size). Groups whose recipe records no embedder are not checked."""
    if stored is None or not stored.ingestion.embedder:
        return
    want, size = stored.ingestion.embedder, stored.ingestion.embedder_dim
    if name != want or (size and dim != size):
        raise ConfigError(
            f"group {group_id!r} was embedded with {want!r} ({size or '?'} dimensions) but this search embeds "
            f"queries with {name!r} ({dim} dimensions): their vectors are not comparable. Leave the embedder "
            f"unset (GRAPHMEM_EMBEDDER, --embedder) to use the group's, or set it to {want!r} "
            "(or an embedding service serving it)"
        )


def differences(stored: Recipe, new: Recipe) -> list[str]:
    """What ``new`` changes in ``stored``, one ``field: stored X, given Y`` line each
    (an embedding model that either recipe does not record is not compared)."""
    old, now = _flat(stored.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    lines = []
    for key in sorted(set(old) | set(now)):
        if key in ("ingestion.embedder", "ingestion.embedder_dim") and not (old.get(key) and now.get(key)):
            continue
        if old.get(key) != now.get(key):
            lines.append(f"{key}: stored {_short(old.get(key))}, given {_short(now.get(key))}")
    return lines


def check(group_id: str, stored: Recipe | None, new: Recipe, replace: bool) -> bool:
    """Whether ``new`` must be written to the group: yes when it has none or when it differs
    and ``replace``; a difference without ``replace`` raises :class:`RecipeConflict`."""
    if stored is None:
        return True
    changes = differences(stored, new)
    if changes and not replace:
        raise RecipeConflict(
            f"group {group_id!r} was ingested with another recipe (pipeline {stored.pipeline or '(none)'}); "
            f"this ingestion differs in {'; '.join(changes)}. Drop the differing settings to ingest with "
            f"the group's recipe, or replace it (--update-recipe, Memory(update_recipe=True))"
        )
    return bool(changes)


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and key in ("ingestion", "retrieval", "temporal"):
            out.update(_flat(value, f"{prefix}{key}."))
        elif key != "version":
            out[f"{prefix}{key}"] = value
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."

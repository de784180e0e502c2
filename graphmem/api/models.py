"""Request and response bodies of the REST API (they make the OpenAPI schema at /docs)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from graphmem.ingest.report import IngestReport
from graphmem.memory import SearchMode, SearchResult
from graphmem.query_limits import QUERY_MAX_CHARS, query_problem

#: pydantic checks patterns with Rust's regex engine, where "$" matches only at the very
#: end (Python's re would also accept a trailing newline: graphmem.api.auth uses fullmatch)
GROUP_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$"  # graphmem.store.base.GROUP_ID
#: the integers the stores hold (64-bit signed); larger ones would be clamped or refused there
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: path parameters: uuids or source names, without NUL characters
ID_PATTERN = r"^[^\x00]{1,1000}$"
Group = Field(None, pattern=GROUP_PATTERN, description="tenant group; may be left out when the key has one group")


def _to_utc(value: datetime) -> datetime:
    """Naive = UTC; aware values converted to UTC here, so a time that leaves the calendar
    when converted (0001-01-01T00:00+14:00) is a 422 naming the field, not a 500 later."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{value.isoformat()} is out of range: in UTC it falls outside the years 1-9999") from None


#: a datetime in UTC (see _to_utc)
UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
GroupName = Annotated[str, Field(pattern=GROUP_PATTERN)]


def _check_numbers(value: Any, path: str) -> None:
    """Refuse integers outside int64 and non-finite floats anywhere in a JSON value (iteratively:
    nesting depth is not limited here)."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            raise ValueError(
                f"{where}: the integer {item} is outside the 64-bit range the store holds ({INT64_MIN} to {INT64_MAX})"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{where}: {item} is not a finite number")
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """NUL characters cannot be stored (the embedded store's protocol ends strings at them)."""
        where = _find_nul(data, "")
        if where is not None:
            raise ValueError(f"{where or 'body'}: NUL characters (\\u0000) are not allowed")
        return data


def _find_nul(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = (
                _find_nul(k, f"{path}.{k}".lstrip("."))
                if isinstance(k, str) and "\x00" in k
                else _find_nul(v, f"{path}.{k}".lstrip("."))
            )
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_nul(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _searchable(text: str) -> str:
    """The CLI's limits and words for a query (graphmem.query_limits), not pydantic's own."""
    problem = query_problem(text)
    if problem is not None:
        raise PydanticCustomError("query", problem)
    return text


class SearchRequest(_Strict):
    query: Annotated[str, AfterValidator(_searchable)] = Field(
        ..., description="the question", json_schema_extra={"minLength": 1, "maxLength": QUERY_MAX_CHARS}
    )
    k: int = Field(5, ge=1, le=100, description="passages to return")
    mode: SearchMode = Field("graph", description="graph: PPR multi-hop; dense; bm25")
    as_of: UtcDatetime | None = Field(None, description="only facts valid at this time count (naive = UTC)")
    group: str | None = Group


class Hit(SearchResult):
    """One search result: :class:`graphmem.memory.SearchResult`, as the API documents it."""

    uuid: str = Field(..., description="episode uuid (GET /v1/episodes/{uuid})")
    source: str = Field("", description="source name")


class SearchResponse(BaseModel):
    group: str
    mode: SearchMode
    took_ms: float
    results: list[Hit]


class DocumentIn(_Strict):
    name: str = Field(..., min_length=1, max_length=1000, description="unique source name (re-ingesting replaces it)")
    text: str = Field(..., min_length=1, description="the document text")
    title: str = Field("", max_length=1000)
    date: UtcDatetime | None = Field(None, description="when the document was written (facts' default valid_at)")
    metadata: dict[str, str] = Field(default_factory=dict)


class TurnIn(_Strict):
    speaker: str = Field(..., min_length=1, max_length=80)
    text: str = Field(..., min_length=1)
    time: UtcDatetime | None = None
    id: str = Field("", max_length=100, description="turn id kept on the episode")
    session: int = Field(0, ge=0, le=1_000_000, description="session number (turns of one sitting)")


class ConversationIn(_Strict):
    name: str = Field(..., min_length=1, max_length=1000, description="unique source name of the dialogue")
    title: str = Field("", max_length=1000)
    turns: list[TurnIn] = Field(..., min_length=1)


class IngestRequest(_Strict):
    documents: list[DocumentIn] = Field(default_factory=list, max_length=10_000)
    conversations: list[ConversationIn] = Field(
        default_factory=list, max_length=10_000, description="dialogues: one episode per turn"
    )
    background: bool | None = Field(None, description="run as a job (default: when the request is large)")
    group: str | None = Group


class IngestResponse(BaseModel):
    group: str
    job: str | None = Field(None, description="job id when the ingestion runs in the background")
    report: IngestReport | None = Field(None, description="what was ingested (absent for a background job)")


class JobView(BaseModel):
    id: str
    group: str
    state: Literal["queued", "running", "succeeded", "failed"]
    done: int
    total: int
    error: str | None = None
    report: IngestReport | None = Field(None, description="what was ingested, once the job succeeded")
    created_at: float
    finished_at: float | None = None


class CypherRequest(_Strict):
    query: str = Field(
        ...,
        min_length=1,
        max_length=20_000,
        description="read-only Cypher; every pattern anchored with {group_id: $group_id}",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="query parameters ($group_id is set by the server)"
    )
    limit: int = Field(1000, ge=1, le=10_000, description="maximum rows returned")
    timeout_ms: int = Field(5000, ge=1, le=60_000)
    group: str | None = Group

    @field_validator("params")
    @classmethod
    def _params_fit_the_store(cls, params: dict[str, Any]) -> dict[str, Any]:
        _check_numbers(params, "params")
        return params


class CypherResponse(BaseModel):
    group: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class KeyCreate(_Strict):
    groups: list[GroupName] = Field(default_factory=list, max_length=100)
    admin: bool = False
    name: str = Field("", max_length=200)


class KeyView(BaseModel):
    id: str
    name: str
    groups: list[str]
    admin: bool
    created_at: str
    key: str | None = Field(None, description="the plain key: shown once, when it is created")


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None

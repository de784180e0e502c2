"""Writing: ``POST /v1/ingest`` (documents and dialogues, large ones as background jobs),
``GET /v1/jobs/{id}``, and forgetting sources and episodes."""

import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from graphmem.api.errors import ApiError
from graphmem.api.models import (
    GROUP_PATTERN,
    ID_PATTERN,
    ConversationIn,
    DocumentIn,
    IngestRequest,
    IngestResponse,
    JobView,
)
from graphmem.api.server import ApiConfig, Principal, Server, principal, server
from graphmem.api.values import utc
from graphmem.errors import InputError
from graphmem.ingest.dialogue import Conversation, Turn
from graphmem.ingest.readers import Document
from graphmem.ingest.report import IngestReport
from graphmem.memory import Memory

router = APIRouter(tags=["ingestion"])
GroupQuery = Query(None, pattern=GROUP_PATTERN)


@router.post(
    "/v1/ingest",
    response_model=IngestResponse,
    responses={202: {"model": IngestResponse, "description": "accepted as a background job"}},
)
def ingest(
    body: IngestRequest, request: Request, who: Principal = Depends(principal), served: Server = Depends(server)
) -> IngestResponse | JSONResponse:
    """Ingest documents and/or dialogues. Large requests (or ``background: true``) run as a job:
    the answer is 202 with a job id to poll at ``GET /v1/jobs/{id}``."""
    group, memory, lock = served.scoped(request, who, body.group)
    if not body.documents and not body.conversations:
        raise ApiError(422, "nothing to ingest: give 'documents' and/or 'conversations'")
    _check_unique([d.name for d in body.documents] + [c.name for c in body.conversations])
    documents = [_document(d) for d in body.documents]
    conversations = [_conversation(c) for c in body.conversations]
    work = _work(memory, lock, documents, conversations, served.config.job_step)
    if not _in_background(body, documents, conversations, served.config):
        return IngestResponse(group=group, report=work(lambda n: None))
    job = served.jobs.submit(group, len(documents) + sum(len(c.turns) for c in conversations), work)
    return JSONResponse(
        IngestResponse(group=group, job=job.id).model_dump(),
        status_code=202,
        headers={"Location": f"/v1/jobs/{job.id}"},
    )


def _in_background(
    body: IngestRequest, documents: list[Document], conversations: list[Conversation], config: ApiConfig
) -> bool:
    """As the request asks, else when it is large (items or characters)."""
    if body.background is not None:
        return body.background
    items = len(documents) + sum(len(c.turns) for c in conversations)
    chars = sum(len(d.text) for d in documents) + sum(len(t.text) for c in conversations for t in c.turns)
    return items > config.background_items or chars > config.background_chars


def _work(
    memory: Memory, lock: threading.RLock, documents: list[Document], conversations: list[Conversation], step: int
) -> Callable[[Callable[[int], None]], IngestReport]:
    """The ingestion as steps of ``step`` documents (or one conversation) under the group's lock,
    so searches of the group run between steps."""

    def work(progress: Callable[[int], None]) -> IngestReport:
        total = IngestReport()
        for start in range(0, len(documents), step):
            chunk = documents[start : start + step]
            with lock:
                total += memory.ingest_documents(chunk)
            progress(len(chunk))
        for conversation in conversations:
            with lock:
                total += memory.ingest_conversations([conversation])
            progress(len(conversation.turns))
        return total

    return work


@router.get("/v1/jobs/{job_id}", response_model=JobView)
def job_status(
    job_id: Annotated[str, Path(pattern=ID_PATTERN)],
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """Progress of a background ingestion (``done``/``total`` documents and turns) and its report."""
    job = served.jobs.get(job_id)
    if job is None or (who.groups is not None and job.group not in who.groups):
        raise ApiError(404, f"no job {job_id!r} (jobs are kept for an hour after they finish)")
    return job.view()


@router.delete("/v1/sources/{uuid:path}")
def delete_source(
    uuid: Annotated[str, Path(pattern=ID_PATTERN)],
    request: Request,
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """Forget a source (by uuid or name): its episodes, the facts only they support, orphaned entities."""
    group, memory, lock = served.scoped(request, who, group)
    with lock:
        removed = _forget(memory, source=uuid)
    return {"group": group, "source": uuid, "removed": removed}


@router.delete("/v1/episodes/{uuid}")
def delete_episode(
    uuid: Annotated[str, Path(pattern=ID_PATTERN)],
    request: Request,
    group: str | None = GroupQuery,
    who: Principal = Depends(principal),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """Forget one episode and the facts only it supports."""
    group, memory, lock = served.scoped(request, who, group)
    with lock:
        removed = _forget(memory, episode=uuid)
    return {"group": group, "episode": uuid, "removed": removed}


def _forget(memory: Memory, *, source: str | None = None, episode: str | None = None) -> dict[str, int]:
    try:
        return memory.forget(source=source, episode=episode)
    except InputError as exc:
        raise ApiError(404, str(exc)) from None


def _check_unique(names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ApiError(422, f"source name {name!r} appears twice in one request; names identify sources")
        seen.add(name)


def _document(d: DocumentIn) -> Document:
    return Document(
        name=d.name, text=d.text, title=d.title, date=utc(d.date), metadata=dict(d.metadata), uri=f"api:{d.name}"
    )


def _conversation(c: ConversationIn) -> Conversation:
    turns = [Turn(speaker=t.speaker, text=t.text, time=utc(t.time), turn_id=t.id, session=t.session) for t in c.turns]
    return Conversation(name=c.name, turns=turns, title=c.title, uri=f"api:{c.name}")

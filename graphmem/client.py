"""``graphmem.Client``: the REST API with the same interface as :class:`graphmem.Memory`.

    >>> from graphmem import Client
    >>> with Client("http://127.0.0.1:8000", api_key="gm_...") as memory:
    ...     memory.ingest(["examples/docs"])
    ...     for hit in memory.search("Who designed the library?", k=3):
    ...         print(hit.score, hit.content)

Both implement :class:`MemoryInterface` (``ingest``, ``search``, ``facts``,
``forget``), so a RAG pipeline can start in-process and move to a server by
changing one line. Errors raise the same :class:`~graphmem.errors.GraphmemError`
subclasses as in-process: :class:`~graphmem.errors.InputError` for bad input or
something not found, :class:`ClientError` (with ``status`` and the problem
body) for the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from graphmem.errors import GraphmemError, InputError
from graphmem.ingest.readers import Document, read_documents
from graphmem.ingest.report import IngestReport

if TYPE_CHECKING:
    from graphmem.ingest.dialogue import Conversation
    from graphmem.memory import FactRecord, SearchMode, SearchResult


@runtime_checkable
class MemoryInterface(Protocol):
    """What :class:`graphmem.Memory` and :class:`graphmem.Client` both offer."""

    def ingest(self, paths: Iterable[str | Path]) -> IngestReport: ...

    def search(
        self, query: str, k: int = 5, *, mode: SearchMode = "graph", as_of: datetime | None = None
    ) -> list[SearchResult]: ...

    def facts(self, entity: str, *, as_of: datetime | None = None, history: bool = False) -> list[FactRecord]: ...

    def forget(self, *, source: str | None = None, episode: str | None = None) -> dict[str, int]: ...


class ClientError(GraphmemError):
    """The server refused or failed a request: ``status`` and its problem+json body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        super().__init__(f"HTTP {status}: {problem.get('detail') or problem.get('title') or 'error'}")


class Client:
    """An HTTP client of ``graphmem serve`` confined to one group (the key's, unless ``group`` names one)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        group: str | None = None,
        timeout: float = 120.0,
        batch_documents: int = 256,
    ) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.group = group
        self.batch_documents = batch_documents

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            detail = f"cannot reach the graphmem server at {self._http.base_url}: {exc}"
            raise ClientError(0, {"detail": detail}) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:500]}
            if response.status_code in (404, 422):
                raise InputError(body.get("detail") or "invalid request")
            raise ClientError(response.status_code, body)
        return response.json()

    def _body(self, **values: Any) -> dict[str, Any]:
        body = {k: v for k, v in values.items() if v is not None}
        if self.group is not None:
            body["group"] = self.group
        return body

    def _params(self, **values: Any) -> dict[str, Any]:
        return self._body(**values)

    # -- ingestion ---------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], progress: Any = None) -> IngestReport:
        """Read files, directories or globs here (validated first, as Memory.ingest) and send them."""
        return self.ingest_documents(read_documents(paths), progress)

    def ingest_documents(self, documents: Sequence[Document], progress: Any = None) -> IngestReport:
        """Send documents in batches; large batches run as server jobs that this call waits for."""
        total = IngestReport()
        for start in range(0, len(documents), self.batch_documents):
            chunk = documents[start : start + self.batch_documents]
            payload = [
                {
                    "name": d.name,
                    "text": d.text,
                    "title": d.title,
                    "metadata": dict(d.metadata),
                    **({"date": d.date.isoformat()} if d.date else {}),
                }
                for d in chunk
            ]
            total += self._ingest(self._body(documents=payload))
            if progress is not None:
                progress(len(chunk))
        return total

    def ingest_text(self, text: str, *, name: str, title: str = "", date: datetime | None = None) -> IngestReport:
        return self.ingest_documents([Document(name=name, text=text, title=title, date=date)])

    def ingest_conversations(self, conversations: Sequence[Conversation], progress: Any = None) -> IngestReport:
        """Send dialogues (:class:`graphmem.ingest.dialogue.Conversation`): one episode per turn."""
        payload = [
            {
                "name": c.name,
                "title": c.title,
                "turns": [
                    {
                        "speaker": t.speaker,
                        "text": t.text,
                        "id": t.turn_id,
                        **({"time": t.time.isoformat()} if t.time else {}),
                    }
                    for t in c.turns
                ],
            }
            for c in conversations
        ]
        return self._ingest(self._body(conversations=payload))

    def _ingest(self, body: dict[str, Any]) -> IngestReport:
        answer = self._request("POST", "/v1/ingest", json=body)
        if answer.get("job") is None:
            return IngestReport.model_validate(answer["report"])
        while True:  # a background job: poll until it ends
            job = self.job(answer["job"])
            if job["state"] == "succeeded":
                return IngestReport.model_validate(job["report"])
            if job["state"] == "failed":
                raise ClientError(500, {"detail": f"ingestion job {job['id']} failed: {job['error']}"})
            time.sleep(0.5)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}")

    # -- retrieval ---------------------------------------------------------------------------------
    def search(
        self, query: str, k: int = 5, *, mode: SearchMode = "graph", as_of: datetime | None = None
    ) -> list[SearchResult]:
        """The ``k`` passages that best answer ``query``, as :class:`graphmem.SearchResult`."""
        from graphmem.memory import SearchResult

        body = self._body(query=query, k=k, mode=mode, as_of=as_of.isoformat() if as_of else None)
        answer = self._request("POST", "/v1/search", json=body)
        known = set(SearchResult.model_fields)
        return [SearchResult(**{k: v for k, v in hit.items() if k in known}) for hit in answer["results"]]

    def facts(self, entity: str, *, as_of: datetime | None = None, history: bool = False) -> list[FactRecord]:
        """The facts about ``entity`` as a timeline (``FactRecord`` objects, as Memory.facts)."""
        from graphmem.memory import FactRecord

        params = self._params(
            entity=entity, as_of=as_of.isoformat() if as_of else None, history="true" if history else None
        )
        rows = self._request("GET", "/v1/facts", params=params)["facts"]
        return [FactRecord(**row) for row in rows]

    def forget(self, *, source: str | None = None, episode: str | None = None) -> dict[str, int]:
        """Delete a source (uuid or name) or one episode and the facts only it supports."""
        if (source is None) == (episode is None):
            raise InputError("forget takes a source or an episode (exactly one)")
        from urllib.parse import quote

        if source is not None:
            path = f"/v1/sources/{quote(source, safe='')}"
        else:
            path = f"/v1/episodes/{quote(str(episode), safe='')}"
        return self._request("DELETE", path, params=self._params())["removed"]

    # -- inspection ------------------------------------------------------------------------------------
    def cypher(
        self, text: str, params: dict[str, Any] | None = None, *, limit: int = 1000, timeout_ms: int = 5000
    ) -> tuple[list[str], list[list[Any]]]:
        """Read-only Cypher confined to the group (see ``POST /v1/cypher``)."""
        answer = self._request(
            "POST", "/v1/cypher", json=self._body(query=text, params=params or {}, limit=limit, timeout_ms=timeout_ms)
        )
        return answer["columns"], answer["rows"]

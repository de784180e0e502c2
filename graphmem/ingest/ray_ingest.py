"""Ingestion as a Ray job: parsing and embedding spread over a cluster, one writer.

Stages, for batches of sources (:meth:`Ingestor._batches`, the same batches a
single-process run makes):

1. **read** — the driver reads the files (workers need not see the driver's disk);
2. **chunk and parse** — :class:`ParseWorker` actors (one CPU each) cut a batch's
   sources into units and run spaCy on them;
3. **embed** — :class:`EmbedWorker` actors embed the parsed batch (one GPU each
   when the cluster has GPUs and the embedder is local; with an ``http://``
   embedder they call the embedding service instead);
4. **resolve and write** — the driver resolves each batch's names and writes it
   through the one write path of :class:`~graphmem.ingest.pipeline.Ingestor`
   (claim, ``_prepare_batch``, ``BatchPlan.plan_facts``, ``_write_batch``, the
   closing sweep), batch after batch in source order, the write of batch k
   overlapping the resolution of batch k+1.

Why resolution is not spread over workers: an entity's identity is its name key
(its uuid is derived from the key), so that part needs no coordination at all —
each key resolves to one uuid wherever it is seen. But the other two tests of
:mod:`graphmem.resolve.entities` are order-dependent and cross keys: a
near-identical spelling merges into whichever entity with *another* key came
first, and SYNONYM edges join entities of different keys by embedding
similarity. Resolving keys in separate partitions would give a different graph
from a single-process run; resolving in the driver, in source order, gives the
identical one (tests/ray). It is also the stage that holds the entity index,
whose lookups cost the same at any store size.

Why the driver writes: the embedded FalkorDB listens on a unix socket of the
driver's machine, which workers on other machines cannot reach; and one writer
keeps the write protocol (claims, owner tokens, sweeps) exactly as it is. So the
driver must run where the store is reachable (the machine of the embedded
store, or any machine that reaches a FalkorDB/Neo4j server).

Failures: the actors restart when their process or node dies, and Ray retries
the batch they held (``max_task_retries``), so a killed worker costs no data;
the sources stay claimed by this run and are finished by it. If the driver
dies, its sources stay ``writing`` under a dead owner and the next run sweeps
and rewrites them; re-running is idempotent (unchanged sources are skipped).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from graphmem.errors import GraphmemError
from graphmem.ingest.readers import Document
from graphmem.ingest.report import IngestReport
from graphmem.ingest.units import DocumentSource

if TYPE_CHECKING:
    from graphmem.config import Settings
    from graphmem.extract.base import Extraction
    from graphmem.ingest.context_vectors import UnitVectors
    from graphmem.ingest.pipeline import Claimed, Ingestor, Progress, WriteRun
    from graphmem.ingest.units import Unit
    from graphmem.memory import Memory

__all__ = ["RayIngestion", "StageTimes", "connect", "ingest_on_ray"]

#: a batch whose worker died this many times more is an error (a deterministic crash
#: would otherwise be retried forever)
TASK_RETRIES = 3
#: seconds to wait for one batch from the workers before the run stops with an error (a
#: batch whose actor cannot be placed again, e.g. its node left, would wait forever)
BATCH_TIMEOUT_S = float(os.environ.get("GRAPHMEM_RAY_BATCH_TIMEOUT_S", "1800"))
#: environment of every worker: models are installed packages, nothing downloads
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@dataclass
class StageTimes:
    """Seconds each stage was busy, summed over its workers, since the workers were ready."""

    parse_workers: int
    embed_workers: int
    started: float = field(default_factory=time.perf_counter)
    parse: float = 0.0
    embed: float = 0.0
    resolve: float = 0.0
    write: float = 0.0
    #: the driver waited for a batch from the workers
    waited: float = 0.0
    passages: int = 0

    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def rate(self) -> float:
        """Passages written per second."""
        return self.passages / self.elapsed

    def busy(self) -> dict[str, float]:
        """Per stage, the share of the elapsed time each of its workers was busy (0..1)."""
        wall = self.elapsed
        return {
            "parse": self.parse / (self.parse_workers * wall),
            "embed": self.embed / (self.embed_workers * wall),
            "resolve": self.resolve / wall,
            "write": self.write / wall,
        }

    def bottleneck(self) -> tuple[str, float]:
        """The stage whose workers are busiest, and how busy (the one more workers would not help
        when it is resolve or write: those run once, in the driver)."""
        return max(self.busy().items(), key=lambda item: item[1])

    def describe(self) -> str:
        stage, share = self.bottleneck()
        return f"{self.rate():.1f} passages/s, bottleneck {stage} ({share:.0%} busy)"


# -- workers (plain classes; made Ray actors in RayIngestion._start) ---------------------
class _Group:
    """The one thing a worker's ingestor reads of the store: the group id (workers never
    touch the store)."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id


def _worker_ingestor(group_id: str, embedder: Any, settings: Settings) -> Ingestor:
    """An ingestor for the store-free steps (cutting units, embedding) on a worker."""
    from graphmem.ingest.pipeline import Ingestor
    from graphmem.store.graph import Graph

    return Ingestor(cast(Graph, _Group(group_id)), embedder, cast(Any, None), settings)


class ParseWorker:
    """Chunks a batch's sources into units and parses them with spaCy."""

    def __init__(self, settings: Settings) -> None:
        from graphmem.extract.spacy_extractor import SpacyExtractor

        self.settings = settings
        self.extractor = SpacyExtractor(settings.spacy_model)

    def pid(self) -> int:
        return os.getpid()

    def parse(self, group_id: str, batch: list[Claimed]) -> tuple[list[Unit], list[Extraction], float]:
        """The batch's units (with their text maps set) and extractions, and the seconds it took."""
        started = time.perf_counter()
        units = _worker_ingestor(group_id, None, self.settings)._units(batch)
        extractions = type(units[0]).extract(units, self.extractor) if units else []
        return units, extractions, time.perf_counter() - started


class EmbedWorker:
    """Embeds a parsed batch: its units, and every name and fact text resolution may need."""

    def __init__(self, settings: Settings) -> None:
        from graphmem.embed import get_embedder

        self.embedder = get_embedder(settings.embedder, settings.device)
        self.ingestor = _worker_ingestor("", self.embedder, settings)

    def pid(self) -> int:
        return os.getpid()

    def embed(
        self, parsed: tuple[list[Unit], list[Extraction], float]
    ) -> tuple[list[Unit], list[Extraction], UnitVectors, float, float]:
        """``parsed`` and its vectors, with the parse and embed seconds."""
        units, extractions, parse_seconds = parsed
        started = time.perf_counter()
        texts = [u.embedding_text() for u in units]
        vectors = self.ingestor._embed_batch(extractions, texts, [u.text_map for u in units])
        return units, extractions, vectors, parse_seconds, time.perf_counter() - started


# -- connecting ---------------------------------------------------------------------------
def connect(address: str | None = None) -> bool:
    """Connect to Ray: ``None`` or ``"local"`` starts a local instance (or joins the one
    ``RAY_ADDRESS`` names), ``"auto"`` joins the cluster running on this machine, any other
    value is a cluster address (``host:port`` or ``ray://host:port``). Reuses a connection this
    process already has. Returns True when this call connected (the caller disconnects)."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {
        "runtime_env": {"env_vars": WORKER_ENV},
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if address in (None, "", "local") and not os.environ.get("RAY_ADDRESS"):
        ray.init(include_dashboard=False, **options)
    else:
        ray.init(address=None if address in (None, "", "local") else address, **options)
    return True


class RayIngestion:
    """One ingestion of a :class:`~graphmem.memory.Memory` as a Ray job (see the module doc).

    ``parse_workers``: spaCy actors (default: the cluster's CPUs less the embedding actors'
    and one for the driver and the store);
    ``embed_workers``: embedding actors (default: one per GPU, else one); ``embed_gpus``:
    GPUs per embedding actor (default: 1 when the cluster has GPUs and the embedder is a
    local model, else 0). After :meth:`ingest` started its workers, :attr:`parse_pids` and
    :attr:`embed_pids` are their process ids (a test kills one) and :attr:`stats` their times.
    """

    def __init__(
        self,
        memory: Memory,
        *,
        address: str | None = None,
        parse_workers: int | None = None,
        embed_workers: int | None = None,
        embed_gpus: float | None = None,
    ) -> None:
        self.memory = memory
        self.address = address
        self.parse_workers = parse_workers
        self.embed_workers = embed_workers
        self.embed_gpus = embed_gpus
        self.parse_actors: list[Any] = []
        self.embed_actors: list[Any] = []
        self.parse_pids: list[int] = []
        self.embed_pids: list[int] = []
        self.stats = StageTimes(1, 1)

    def ingest(
        self,
        documents: Sequence[Document],
        progress: Progress | None = None,
        on_stats: Callable[[StageTimes], None] | None = None,
    ) -> IngestReport:
        """Ingest ``documents`` (the contract of :meth:`Memory.ingest_documents`, same graph);
        ``progress`` is called as :meth:`Ingestor.ingest` calls it; ``on_stats`` after each
        written batch, with the stages' times so far."""
        memory = self.memory
        if documents:
            memory._store_recipe()
        before = memory._graph.revision()
        report = IngestReport(documents=len(documents))
        ingestor = memory.ingestor
        # the ingestor's own run (sweep, claims, resumption, closing sweep), with its batch
        # stage done here: parse and embed on Ray, resolve and write through its methods
        ingestor._ingest_batches = lambda batches, run, report, progress: self._batches(  # type: ignore[method-assign]
            ingestor, batches, run, report, progress, on_stats
        )
        try:
            ingestor._ingest([DocumentSource(d) for d in documents], report, progress)
        finally:
            del ingestor._ingest_batches
        memory._refresh_projection(report, before)
        return report

    def _batches(
        self,
        ingestor: Ingestor,
        batches: list[list[Claimed]],
        run: WriteRun,
        report: IngestReport,
        progress: Progress | None,
        on_stats: Callable[[StageTimes], None] | None,
    ) -> None:
        """The claimed ``batches`` through the Ray stages (no cluster is joined when there
        are none: everything was unchanged)."""
        if not batches:
            return
        disconnect = self._connect()
        try:
            self._start(ingestor.settings)
            self._run(ingestor, batches, run, report, progress, on_stats)
        finally:
            self._stop(disconnect)

    def _connect(self) -> bool:
        """Connect to the cluster (see :func:`connect`); True: disconnect when done."""
        return connect(self.address)

    def _start(self, settings: Settings) -> None:
        """Start the actors and wait until every one has loaded its model."""
        import ray

        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        remote_embedder = settings.embedder.startswith(("http://", "https://"))
        per_gpu = self.embed_gpus if self.embed_gpus is not None else (1.0 if gpus and not remote_embedder else 0.0)
        embed_cpus = 0.0 if remote_embedder else 1.0
        n_embed = self.embed_workers or (max(1, int(gpus / per_gpu)) if per_gpu else 1)
        # one core stays with the driver (resolution, writes) and the store it writes to
        n_parse = self.parse_workers or max(1, cpus - int(n_embed * embed_cpus) - 1)
        embed_settings = settings.model_copy(update={"device": "cuda"}) if per_gpu else settings
        retry = {"max_restarts": -1, "max_task_retries": TASK_RETRIES}
        parse_cls = ray.remote(ParseWorker).options(num_cpus=1, **retry)
        embed_cls = ray.remote(EmbedWorker).options(num_cpus=embed_cpus, num_gpus=per_gpu, **retry)
        self.parse_actors = [parse_cls.remote(settings) for _ in range(n_parse)]
        self.embed_actors = [embed_cls.remote(embed_settings) for _ in range(n_embed)]
        self.parse_pids = ray.get([a.pid.remote() for a in self.parse_actors])
        self.embed_pids = ray.get([a.pid.remote() for a in self.embed_actors])
        self.stats = StageTimes(n_parse, n_embed)

    def _stop(self, disconnect: bool) -> None:
        import ray

        for actor in self.parse_actors + self.embed_actors:
            ray.kill(actor, no_restart=True)
        self.parse_actors, self.embed_actors = [], []
        if disconnect:
            ray.shutdown()

    def _run(
        self,
        ingestor: Ingestor,
        batches: list[list[Claimed]],
        run: WriteRun,
        report: IngestReport,
        progress: Progress | None,
        on_stats: Callable[[StageTimes], None] | None,
    ) -> None:
        """Feed the batches to the actors (a bounded window ahead) and resolve and write their
        results in order, as :meth:`Ingestor._ingest_batches` does with its threads."""
        pending: dict[int, Any] = {}
        window = 2 * (len(self.parse_actors) + len(self.embed_actors))
        submitted = 0
        written: Future[None] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="graphmem-write") as writing:
            for k, batch in enumerate(batches):
                while submitted < len(batches) and submitted <= k + window:
                    pending[submitted] = self._submit(ingestor.graph.group_id, submitted, batches[submitted])
                    submitted += 1
                units, extractions, vectors = self._result(pending.pop(k), batch)
                started = time.perf_counter()
                plan = ingestor._prepare_batch(batch, units, extractions, vectors)
                resolving = time.perf_counter() - started
                if written is not None:
                    written.result()  # in order; and its facts must be stored before this batch's plan
                started = time.perf_counter()
                plan.plan_facts(ingestor)
                self.stats.resolve += resolving + time.perf_counter() - started
                run.created += [row["uuid"] for row in plan.entity_rows]
                run.referenced |= plan.references()
                written = writing.submit(self._write, ingestor, plan, report, progress, run.owner, on_stats)
            if written is not None:
                written.result()

    def _submit(self, group_id: str, k: int, batch: list[Claimed]) -> Any:
        parsed = self.parse_actors[k % len(self.parse_actors)].parse.remote(group_id, batch)
        return self.embed_actors[k % len(self.embed_actors)].embed.remote(parsed)

    def _result(self, ref: Any, batch: list[Claimed]) -> tuple[list[Unit], list[Extraction], UnitVectors]:
        import ray

        started = time.perf_counter()
        try:
            units, extractions, vectors, parse_s, embed_s = ray.get(ref, timeout=BATCH_TIMEOUT_S)
        except ray.exceptions.RayError as error:
            names = ", ".join(item.source.name for item in batch[:3])
            raise GraphmemError(
                f"Ray ingestion failed on the batch of {names}{' ...' if len(batch) > 3 else ''}: its "
                f"worker died {TASK_RETRIES + 1} times, raised, or gave nothing in {BATCH_TIMEOUT_S:.0f} s "
                f"(GRAPHMEM_RAY_BATCH_TIMEOUT_S); a re-run resumes: {error}"
            ) from error
        self.stats.waited += time.perf_counter() - started
        self.stats.parse += parse_s
        self.stats.embed += embed_s
        return units, extractions, vectors

    def _write(
        self,
        ingestor: Ingestor,
        plan: Any,
        report: IngestReport,
        progress: Progress | None,
        owner: str,
        on_stats: Callable[[StageTimes], None] | None,
    ) -> None:
        started = time.perf_counter()
        ingestor._write_batch(plan, report, progress, owner)
        self.stats.write += time.perf_counter() - started
        self.stats.passages += len(plan.units)
        if on_stats is not None:
            on_stats(self.stats)


def ingest_on_ray(
    memory: Memory,
    documents: Sequence[Document],
    *,
    address: str | None = None,
    parse_workers: int | None = None,
    embed_workers: int | None = None,
    progress: Progress | None = None,
    on_stats: Callable[[StageTimes], None] | None = None,
) -> IngestReport:
    """Ingest ``documents`` into ``memory`` as a Ray job (see :class:`RayIngestion`): the same
    graph as ``memory.ingest_documents(documents)``. ``address``: see :func:`connect`."""
    job = RayIngestion(memory, address=address, parse_workers=parse_workers, embed_workers=embed_workers)
    return job.ingest(documents, progress, on_stats)


def ingest_with_progress(
    memory: Memory, documents: Sequence[Document], address: str | None, parse_workers: int | None, quiet: bool
) -> IngestReport:
    """``graphmem ingest --ray``: :func:`ingest_on_ray` with a progress bar on stderr that shows
    passages per second and the bottleneck stage."""
    if quiet or not documents:
        return ingest_on_ray(memory, documents, address=address, parse_workers=parse_workers)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("ingesting passages on Ray"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        transient=True,
    )
    # passages written out of those expected (skipped documents are not written)
    total = sum(DocumentSource(d).expected(memory.settings, 0) for d in documents)
    with bar:
        task = bar.add_task("ingesting", total=total, status="starting workers")
        return ingest_on_ray(
            memory,
            documents,
            address=address,
            parse_workers=parse_workers,
            on_stats=lambda stats: bar.update(task, completed=stats.passages, status=stats.describe()),
        )

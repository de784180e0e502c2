"""Embedding throughput: naive per-request encode vs one big encode vs the batching service,
and end-to-end ingestion with the service vs CPU embedding. All rows in one run.

Rows (per model):
  naive    SentenceTransformer.encode once per request of --request-size texts, sequentially
  ceiling  one encode over all passages, batch --ceiling-batch (fp16 on CUDA)
  service  `graphmem embed-serve` (subprocess, uvicorn) with --clients concurrent clients,
           requests of --request-size texts, spread over client processes
and once:
  ingest   Memory.ingest_documents (chunking, parallel spaCy extraction, entity resolution,
           embedding of passages/entities/facts, writes to the embedded FalkorDB) with the
           service as embedder, against the same pipeline embedding on CPU in-process.

Passages (~100 tokens) are built from the sample corpus' sentences, shuffled.

    # CPU, small (anyone):
    python benchmarks/embed_service.py --passages 2000 --naive-passages 400 --ingest-passages 300 \\
        --ingest-cpu-passages 150
    # GPU machine (weights random from config; throughput does not depend on their values):
    python benchmarks/embed_service.py --passages 100000 --model-config .weights/minilm-config --bert-large
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# -- data ------------------------------------------------------------------------------------
def make_passages(n: int, words: int = 75, seed: int = 0) -> list[str]:
    """``n`` passages of about ``words`` words (~100 tokens) from the sample corpus' sentences."""
    sentences: list[str] = []
    for path in sorted(p for p in (ROOT / "examples" / "docs").rglob("*") if p.is_file()):
        text = re.sub(r"^#.*$", "", path.read_text(encoding="utf-8"), flags=re.M)
        sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        parts, count = [], 0
        while count < words:
            s = sentences[rng.integers(len(sentences))]
            parts.append(s)
            count += len(s.split())
        out.append(" ".join(parts))
    return out


# -- models ------------------------------------------------------------------------------------
BERT_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}


def random_weight_model(config_dir: Path, dest: Path, overrides: dict | None = None) -> Path:
    """A sentence-transformers folder with ``config_dir``'s architecture (optionally changed by
    ``overrides``), tokenizer and pooling, and random weights (saved in fp16)."""
    import torch
    from transformers import AutoConfig, AutoModel

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(config_dir, dest, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.pt"))
    config = AutoConfig.from_pretrained(str(config_dir))
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = AutoModel.from_config(config).to(torch.float16)
    model.save_pretrained(str(dest))
    pooling = dest / "1_Pooling" / "config.json"
    if pooling.exists():
        spec = json.loads(pooling.read_text())
        spec["word_embedding_dimension"] = config.hidden_size
        pooling.write_text(json.dumps(spec, indent=2))
    return dest


def load_st(path: str, device: str):
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    model.to(torch.float16 if device.startswith("cuda") else torch.float32)  # CPU fp16 matmuls crawl
    model.eval()
    return model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def row_naive(path: str, device: str, texts: list[str], size: int) -> dict:
    model = load_st(path, device)
    model.encode(texts[: size * 4], batch_size=size, normalize_embeddings=True)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for i in range(0, len(texts), size):
        model.encode(
            texts[i : i + size],
            batch_size=size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    sync(device)
    seconds = time.perf_counter() - t0
    del model
    return {"texts": len(texts), "seconds": seconds, "rate": len(texts) / seconds}


def row_ceiling(path: str, device: str, texts: list[str], batch: int) -> dict:
    import torch

    model = load_st(path, device)
    model.encode(texts[:batch], batch_size=batch, normalize_embeddings=True)  # warm-up
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"texts": len(texts), "seconds": seconds, "rate": len(texts) / seconds, "gpu_peak_bytes": peak}


def row_pipeline(path: str, device: str, texts: list[str], batch: int) -> dict:
    """The service's own encoder (fast tokenizer, one batch launched while the last one is
    collected) in one process with no HTTP: what the service could reach if serving cost nothing."""
    import torch

    from graphmem.embed.runner import ModelEncoder

    encoder = ModelEncoder(path, device)
    # as the batcher does: sort by length so batches pad little
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches = [[texts[i] for i in order[k : k + batch]] for k in range(0, len(order), batch)]
    encoder.start(batches[0]).result()  # warm-up
    sync(device)
    t0 = time.perf_counter()
    pending = None
    for chunk in batches:
        started = encoder.start(chunk)
        if pending is not None:
            pending.result()
        pending = started
    pending.result()
    sync(device)
    seconds = time.perf_counter() - t0
    fast = encoder.fast_tokenizer is not None
    del encoder
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"texts": len(texts), "seconds": seconds, "rate": len(texts) / seconds, "fast_tokenizer": fast}


# -- the service and its load ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """`graphmem embed-serve` in a subprocess; stopped with SIGTERM (graceful)."""

    def __init__(
        self,
        model: str,
        device: str,
        max_batch: int,
        max_wait_ms: float,
        log: Path,
        worker: str = "auto",
        switch_interval: float | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        cmd = [
            sys.executable,
            "-m",
            "graphmem.cli",
            "embed-serve",
            "--model",
            model,
            "--device",
            device,
            "--port",
            str(self.port),
            "--max-batch",
            str(max_batch),
            "--max-wait-ms",
            str(max_wait_ms),
            "--max-queue",
            "65536",
            "--worker",
            worker,
            "--log-level",
            "warning",
        ]
        if switch_interval:
            cmd += ["--switch-interval", str(switch_interval)]
        self.log = open(log, "w")  # noqa: SIM115 (held while the server runs, closed by stop())
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> dict:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.flush()
                tail = Path(self.log.name).read_text(errors="replace")[-1500:]
                raise RuntimeError(f"embed-serve exited with {self.proc.returncode}: {tail}")
            try:
                return httpx.get(self.url + "/healthz", timeout=2).json()
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.3)
        raise RuntimeError("embed-serve did not become ready")

    def metrics(self) -> dict[str, float]:
        import httpx

        values = {}
        for line in httpx.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                values[key] = float(value)
        return values

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _client_process(url: str, requests: list[list[str]], concurrency: int, start_at: float) -> dict:
    """One load-generating process: ``concurrency`` clients, each sending its next request
    as soon as the last one came back (base64, as OpenAI's client does)."""
    import httpx

    async def main() -> dict:
        latencies: list[float] = []
        errors = 0
        next_index = 0
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def worker() -> None:
                nonlocal next_index, errors
                while next_index < len(requests):
                    texts = requests[next_index]
                    next_index += 1
                    t0 = time.perf_counter()
                    response = await client.post("/v1/embeddings", json={"input": texts, "encoding_format": "base64"})
                    if response.status_code != 200 or len(response.json()["data"]) != len(texts):
                        errors += 1
                    latencies.append(time.perf_counter() - t0)

            await asyncio.sleep(max(0.0, start_at - time.time()))
            t_start = time.time()
            await asyncio.gather(*[worker() for _ in range(concurrency)])
            return {"latencies": latencies, "errors": errors, "start": t_start, "end": time.time()}

    return asyncio.run(main())


def row_service(
    model: str,
    device: str,
    texts: list[str],
    size: int,
    clients: int,
    client_procs: int,
    max_batch: int,
    max_wait_ms: float,
    log: Path,
    worker: str = "auto",
    switch_interval: float | None = None,
) -> dict:
    service = ServiceProcess(model, device, max_batch, max_wait_ms, log, worker, switch_interval)
    try:
        info = service.wait_ready()
        requests = [texts[i : i + size] for i in range(0, len(texts), size)]
        procs = max(1, min(client_procs, clients))
        shares = [requests[k::procs] for k in range(procs)]
        per_proc = [clients // procs + (k < clients % procs) for k in range(procs)]
        with ProcessPoolExecutor(procs) as pool:
            # warm-up: every client process connects and the service compiles its kernels
            list(pool.map(_client_process, [service.url] * procs, [s[:50] for s in shares], per_proc, [0.0] * procs))
            before = service.metrics()
            start_at = time.time() + 2.0
            results = list(pool.map(_client_process, [service.url] * procs, shares, per_proc, [start_at] * procs))
        after = service.metrics()
        seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
        latencies = np.array([x for r in results for x in r["latencies"]])
        batches = after["graphmem_embed_batches_total"] - before["graphmem_embed_batches_total"]
        done = after["graphmem_embed_texts_total"] - before["graphmem_embed_texts_total"]
        gpu = sum(v for k, v in after.items() if k.startswith("graphmem_embed_gpu_memory_bytes"))
        return {
            "texts": len(texts),
            "seconds": seconds,
            "rate": len(texts) / seconds,
            "errors": sum(r["errors"] for r in results),
            "requests": len(requests),
            "p50_ms": float(np.percentile(latencies, 50) * 1000),
            "p95_ms": float(np.percentile(latencies, 95) * 1000),
            "mean_batch": done / max(batches, 1),
            "batches": batches,
            "service_gpu_bytes": gpu,
            "worker": worker,
            "devices": info["devices"],
            "nvidia_smi_mib": nvidia_smi_used(),
        }
    finally:
        service.stop()


def nvidia_smi_used() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
        return out.replace("\n", "+")
    except Exception:  # noqa: BLE001 - no GPU tools here
        return ""


# -- ingestion ---------------------------------------------------------------------------------------
class StageTimer:
    """Exclusive wall time per ingestion stage, by wrapping the pipeline's own calls on one
    instance (no edits to graphmem.ingest). Nested calls count for the innermost stage only
    (the entity-name embedding inside resolution counts as ``embed``); calls from other
    threads (extraction of the next batch, overlapped) are kept apart under their own name."""

    def __init__(self) -> None:
        import threading

        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._local = threading.local()
        self._main = threading.get_ident()

    def wrap(self, obj, attr: str, stage: str) -> None:
        import threading

        inner = getattr(obj, attr)

        def timed(*args, **kwargs):
            stack = getattr(self._local, "stack", None)
            if stack is None:
                stack = self._local.stack = []
            name = stage if threading.get_ident() == self._main else f"{stage} (other thread)"
            stack.append(0.0)  # time spent in nested timed calls
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                total = time.perf_counter() - t0
                nested = stack.pop()
                self.seconds[name] = self.seconds.get(name, 0.0) + total - nested
                self.calls[name] = self.calls.get(name, 0) + 1
                if stack:
                    stack[-1] += total

        setattr(obj, attr, timed)


def ingest_documents_for(passages: list[str], dataset: str | None, data_dir: str | None, n: int):
    """``n`` passages as documents: the first ``n`` entries of a real corpus (one passage each),
    or generated passages in documents of 20. Returns (documents, chunk settings)."""
    from graphmem.ingest.readers import Document

    if dataset:
        from graphmem.eval import load_dataset

        docs = list(load_dataset(dataset, data_dir=data_dir).documents())[:n]
        return docs, {"chunk_words": 10000, "chunk_overlap": 0}  # one passage per corpus entry
    passages = passages[:n]
    docs = [
        Document(name=f"doc{k}", text="\n\n".join(passages[i : i + 20]), title=f"Document {k}")
        for k, i in enumerate(range(0, len(passages), 20))
    ]
    return docs, {"chunk_words": 80, "chunk_overlap": 0}  # ~100 tokens per passage, as the embedding rows


def row_extract(docs: list, chunking: dict, processes: int, batch_size: int) -> dict:
    """spaCy alone on the passages ingestion would parse, in the same worker processes and
    batches: the most ingestion can reach on this machine with this extractor."""
    from graphmem.extract.parallel import ParallelSpacyExtractor
    from graphmem.ingest.chunking import chunk_text
    from graphmem.ingest.pipeline import extraction_text

    texts = [
        extraction_text(c) for d in docs for c in chunk_text(d.text, chunking["chunk_words"], chunking["chunk_overlap"])
    ]
    with ParallelSpacyExtractor(processes=processes) as extractor:
        extractor.warm_up()
        t0 = time.perf_counter()
        for start in range(0, len(texts), batch_size):
            extractor.extract(texts[start : start + batch_size])
        seconds = time.perf_counter() - t0
    return {"passages": len(texts), "seconds": seconds, "rate": len(texts) / seconds}


def row_ingest(
    embedder: str, device: str, docs: list, chunking: dict, processes: int, batch_size: int, home: Path
) -> dict:
    """Memory.ingest_documents over ``docs``, with the time of each stage on the ingesting thread."""
    from graphmem.ingest.readers import Document
    from graphmem.memory import Memory

    with Memory(
        home=home, embedder=embedder, device=device, extract_processes=processes, batch_size=batch_size, **chunking
    ) as memory:
        extractor = memory.extractor
        if hasattr(extractor, "warm_up"):
            extractor.warm_up()
        memory.embedder.embed(["warm up"])
        # a first small document warms the store and the caches, not counted
        memory.ingest_documents([Document(name="warm", text=docs[0].text[:400])])
        ingestor = memory.ingestor
        timer = StageTimer()
        timer.wrap(ingestor.embedder, "embed", "embed (service or model)")
        timer.wrap(ingestor.extractor, "extract", "extract (spaCy workers)")
        timer.wrap(ingestor, "_claim", "claim sources")
        report, seconds, queries = timed_ingestion(memory, docs, timer)
        stats = memory.stats()
    stages = {k: round(v, 3) for k, v in sorted(timer.seconds.items(), key=lambda kv: -kv[1])}
    counted = sum(v for k, v in timer.seconds.items() if "other thread" not in k)
    # the rest of the main thread: waiting for the next batch's extraction, chunking, glue
    stages["other (mostly waiting for extraction)"] = round(seconds - counted, 3)
    return {
        "passages": report.passages,
        "seconds": seconds,
        "rate": report.passages / seconds,
        "entities": stats.get("entities"),
        "facts": stats.get("facts"),
        "stages_s": stages,
        "store_queries_s": queries.table(),
    }


def timed_ingestion(memory, docs: list, timer: StageTimer):
    """``memory.ingest_documents(docs)`` with resolution, fact planning, store writes and
    each resolution step timed into ``timer``, and every store query by a
    :class:`QueryTimer`: ``(report, seconds, queries)``."""
    from graphmem.resolve.entities import EntityIndex

    ingestor = memory.ingestor
    timer.wrap(ingestor, "_resolve", "entity resolution")
    timer.wrap(ingestor, "_facts", "facts + temporal plan")
    for attr in ("write", "write_vectors", "renew", "complete_owned"):
        timer.wrap(ingestor.graph, attr, "store writes")
    originals = {attr: getattr(EntityIndex, attr) for attr in ("_neighbours", "_spellings_of", "_batch_spellings")}
    for attr in originals:
        timer.wrap(EntityIndex, attr, f"resolution: {attr.strip('_')}")
    queries = QueryTimer(memory._store)
    try:
        t0 = time.perf_counter()
        report = memory.ingest_documents(docs)
        seconds = time.perf_counter() - t0
    finally:
        queries.unwrap()
        for attr, inner in originals.items():
            setattr(EntityIndex, attr, inner)
    return report, seconds, queries


class QueryTimer:
    """Per named store query (any thread): wall seconds, calls, and on FalkorDB the seconds
    the server itself reported (the rest is this process: formatting, parsing, the GIL)."""

    def __init__(self, store) -> None:
        import threading

        self.store, self.seconds, self.calls, self.server = store, {}, {}, {}
        self._orig, self._current = {}, threading.local()
        for attr in ("run", "run_rows"):
            inner = self._orig[attr] = getattr(store, attr)

            def timed(query, *args, _inner=inner, **kwargs):
                self._current.name = query
                t0 = time.perf_counter()
                try:
                    return _inner(query, *args, **kwargs)
                finally:
                    self.seconds[query] = self.seconds.get(query, 0.0) + time.perf_counter() - t0
                    self.calls[query] = self.calls.get(query, 0) + 1

            setattr(store, attr, timed)
        # server seconds only where the store holds one graph object; a store with a graph per
        # group (the embedded FalkorDB: _graph is a method) reports wall seconds alone
        graph = getattr(store, "_graph", None)
        self._wrapped_graph = graph is not None and hasattr(graph, "query")
        if self._wrapped_graph:
            query = self._graph_query = graph.query

            def server_timed(*args, **kwargs):
                result = query(*args, **kwargs)
                name = getattr(self._current, "name", "?")
                self.server[name] = self.server.get(name, 0.0) + float(result.run_time_ms) / 1000
                return result

            graph.query = server_timed

    def unwrap(self) -> None:
        for attr, inner in self._orig.items():
            setattr(self.store, attr, inner)
        if self._wrapped_graph:
            del self.store._graph.query

    def table(self) -> dict[str, list]:
        """query -> [wall s, calls, server s]"""
        return {
            k: [round(v, 3), self.calls[k], round(self.server.get(k, 0.0), 3)]
            for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        }


# -- main ---------------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--passages", type=int, default=2000)
    p.add_argument("--naive-passages", type=int, default=None, help="naive row over this many [min(passages, 20000)]")
    p.add_argument("--model", default="minilm", help="packaged name or sentence-transformers folder (real weights)")
    p.add_argument(
        "--model-config",
        type=Path,
        default=None,
        help="a model folder without weights: build the architecture with random weights",
    )
    p.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval for this process (the ingesting threads share one GIL) [Python's 0.005]",
    )
    p.add_argument(
        "--serve-switch-interval",
        type=float,
        default=None,
        help="embed-serve --switch-interval for the service rows [Python's 0.005]",
    )
    p.add_argument("--model-label", default=None, help="how the table names --model [its path, '(real weights)']")
    p.add_argument("--bert-large", action="store_true", help="also time a BERT-large-sized encoder (random weights)")
    p.add_argument("--bert-large-passages", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--request-size", type=int, default=8)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--client-procs", type=int, default=8)
    p.add_argument("--ceiling-batch", type=int, default=512)
    p.add_argument("--max-batch", type=int, default=512)
    p.add_argument("--max-wait-ms", type=float, default=2.0)
    p.add_argument(
        "--worker",
        default="auto",
        choices=["auto", "thread", "process"],
        help="embed-serve --worker: model replicas in worker processes or in the serving process",
    )
    p.add_argument("--ingest-passages", type=int, default=None, help="[min(passages, 20000)]")
    p.add_argument("--ingest-cpu-passages", type=int, default=None, help="[min(passages, 2000)]")
    p.add_argument("--ingest-processes", type=int, default=None, help="spaCy processes [cores - 1]")
    p.add_argument("--ingest-batch", type=int, default=256, help="passages per ingestion batch")
    p.add_argument(
        "--skip",
        default="",
        help="comma list of rows to skip: naive,ceiling,pipeline,service,extract,ingest,ingest_cpu",
    )
    p.add_argument(
        "--ingest-dataset",
        default=None,
        help="ingest this corpus (graphmem eval name or folder, one passage per entry) "
        "instead of generated passages: real text, so entity resolution works as on real data",
    )
    p.add_argument("--ingest-data-dir", default=None, help="--data-dir for --ingest-dataset")
    p.add_argument("--out", type=Path, default=None, help="write results JSON here")
    p.add_argument("--log-dir", type=Path, default=None, help="keep the services' logs here [a temp dir]")
    args = p.parse_args()

    import torch

    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    dev0 = "cuda:0" if device == "cuda" else device
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="graphmem-bench-"))
    logs = args.log_dir or work
    logs.mkdir(parents=True, exist_ok=True)
    texts = make_passages(args.passages)
    tokens = np.mean([len(t.split()) for t in texts[:2000]]) * 1.3
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    print(
        f"# {args.passages} passages (~{tokens:.0f} tokens), device {device} ({gpu}), "
        f"{os.cpu_count()} cores, torch {torch.__version__}",
        flush=True,
    )

    models: list[tuple[str, str]] = []  # (label, path)
    if args.model_config:
        models.append(
            (
                "MiniLM-L6 (random weights, fp16)" if device != "cpu" else "MiniLM-L6 (random weights)",
                str(random_weight_model(args.model_config, work / "minilm-random")),
            )
        )
        config_dir = args.model_config
    else:
        from graphmem.embed.local import resolve_model_path

        path = resolve_model_path(args.model)
        label = args.model_label or f"{args.model} (real weights)"
        models.append((label[:-1] + ", fp16)" if device != "cpu" and label.endswith(")") else label, path))
        config_dir = Path(path)
    if args.bert_large:
        models.append(
            (
                "BERT-large-size (random weights" + (", fp16)" if device != "cpu" else ")"),
                str(random_weight_model(config_dir, work / "bert-large-random", BERT_LARGE)),
            )
        )

    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "device": gpu, "rows": []}

    def record(row: dict) -> None:
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))

    for k, (label, path) in enumerate(models):
        n_all = args.passages if k == 0 else (args.bert_large_passages or args.passages)
        subset = texts[:n_all]
        n_naive = args.naive_passages or min(n_all, 20000)
        for name, fn in [
            ("naive", functools.partial(row_naive, path, dev0, subset[:n_naive], args.request_size)),
            ("ceiling", functools.partial(row_ceiling, path, dev0, subset, args.ceiling_batch)),
            ("pipeline", functools.partial(row_pipeline, path, dev0, subset, args.max_batch)),
            (
                "service",
                functools.partial(
                    row_service,
                    path,
                    device,
                    subset,
                    args.request_size,
                    args.clients,
                    args.client_procs,
                    args.max_batch,
                    args.max_wait_ms,
                    logs / f"serve-{k}.log",
                    args.worker,
                    args.serve_switch_interval,
                ),
            ),
        ]:
            if name in skip:
                continue
            try:
                record({"row": name, "model": label, **fn()})
            except Exception as exc:  # noqa: BLE001 - keep the other rows
                record({"row": name, "model": label, "error": f"{type(exc).__name__}: {exc}"})

    label, path = models[0]
    processes = args.ingest_processes or max(1, (os.cpu_count() or 2) - 1)
    corpus = f" on {args.ingest_dataset}" if args.ingest_dataset else ""
    if "extract" not in skip:
        n = args.ingest_passages or min(args.passages, 20000)
        docs, chunking = ingest_documents_for(texts, args.ingest_dataset, args.ingest_data_dir, n)
        record(
            {
                "row": "extract",
                "embedder": f"none: spaCy only{corpus}",
                "processes": processes,
                **row_extract(docs, chunking, processes, args.ingest_batch),
            }
        )
    if "ingest" not in skip:
        service = ServiceProcess(
            path,
            device,
            args.max_batch,
            args.max_wait_ms,
            logs / "serve-ingest.log",
            args.worker,
            args.serve_switch_interval,
        )
        try:
            service.wait_ready()
            n = args.ingest_passages or min(args.passages, 20000)
            docs, chunking = ingest_documents_for(texts, args.ingest_dataset, args.ingest_data_dir, n)
            record(
                {
                    "row": "ingest",
                    "embedder": f"service ({label}){corpus}",
                    "processes": processes,
                    **row_ingest(service.url, "cpu", docs, chunking, processes, args.ingest_batch, work / "home-svc"),
                }
            )
        except Exception as exc:  # noqa: BLE001
            record({"row": "ingest", "embedder": f"service ({label})", "error": f"{type(exc).__name__}: {exc}"})
        finally:
            service.stop()
    if "ingest_cpu" not in skip:
        try:
            n = args.ingest_cpu_passages or min(args.passages, 2000)
            docs, chunking = ingest_documents_for(texts, args.ingest_dataset, args.ingest_data_dir, n)
            record(
                {
                    "row": "ingest_cpu",
                    "embedder": f"in-process CPU ({label.replace(', fp16', '')}){corpus}",
                    "processes": processes,
                    **row_ingest(path, "cpu", docs, chunking, processes, args.ingest_batch, work / "home-cpu"),
                }
            )
        except Exception as exc:  # noqa: BLE001
            record({"row": "ingest_cpu", "embedder": "cpu", "error": f"{type(exc).__name__}: {exc}"})

    print_table(results)
    shutil.rmtree(work, ignore_errors=True)


def print_table(results: dict) -> None:
    rows = results["rows"]
    print("\n| row | model / embedder | items | seconds | items/s | vs naive | vs ceiling | notes |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    base: dict[str, dict] = {}
    for r in rows:
        if "error" in r:
            print(f"| {r['row']} | {r.get('model') or r.get('embedder')} | | | | | | error: {r['error']} |")
            continue
        if r["row"] in ("naive", "ceiling", "pipeline"):
            base.setdefault(r["model"], {})[r["row"]] = r["rate"]
        ref = base.get(r.get("model"), {})
        vs_naive = f"{r['rate'] / ref['naive']:.1f}x" if "naive" in ref and r["row"] != "naive" else ""
        vs_ceiling = ""
        if r["row"] in ("service", "pipeline") and "ceiling" in ref:
            vs_ceiling = f"{r['rate'] / ref['ceiling']:.0%}"
            if r["row"] == "service" and "pipeline" in ref:
                vs_ceiling += f" ({r['rate'] / ref['pipeline']:.0%} of pipeline)"
        notes = ""
        if r["row"] == "naive":
            notes = "encode() per request of 8, sequential"
        elif r["row"] == "ceiling":
            notes = (
                f"one encode(), peak GPU alloc {r['gpu_peak_bytes'] / 2**20:.0f} MiB"
                if r["gpu_peak_bytes"]
                else "one encode()"
            )
        elif r["row"] == "pipeline":
            notes = "service's encoder in-process, no HTTP" + (
                ", fast tokenizer" if r.get("fast_tokenizer") else ", sentence-transformers tokenizer"
            )
        elif r["row"] == "service":
            notes = (
                f"p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms; mean batch {r['mean_batch']:.0f}; "
                f"service GPU {r['service_gpu_bytes'] / 2**20:.0f} MiB reserved "
                f"(nvidia-smi {r['nvidia_smi_mib']} MiB); "
                f"{r['errors']} errors"
            )
        elif r["row"] == "extract":
            notes = f"{r['processes']} spaCy processes, batches of the ingestion's size: the ceiling for ingestion"
        elif r["row"].startswith("ingest"):
            notes = (
                f"{r['processes']} spaCy processes; {r['entities']} entities, {r['facts']} facts; stages (s): "
                + ", ".join(f"{k} {v:.1f}" for k, v in r.get("stages_s", {}).items())
            )
        label = r.get("model") or r.get("embedder")
        items = r.get("texts") or r.get("passages")
        print(
            f"| {r['row']} | {label} | {items} | {r['seconds']:.1f} | {r['rate']:.0f} | {vs_naive} | {vs_ceiling} "
            f"| {notes} |"
        )
    ingest = {r["row"]: r for r in rows if r["row"].startswith("ingest") and "error" not in r}
    if "ingest" in ingest and "ingest_cpu" in ingest:
        print(
            f"\ningestion: service {ingest['ingest']['rate']:.0f} passages/s vs CPU embedding "
            f"{ingest['ingest_cpu']['rate']:.0f} passages/s "
            f"({ingest['ingest']['rate'] / ingest['ingest_cpu']['rate']:.1f}x)"
        )
    extract = next((r for r in rows if r["row"] == "extract" and "error" not in r), None)
    if extract and "ingest" in ingest:
        print(
            f"ingestion via the service at {ingest['ingest']['rate'] / extract['rate']:.0%} of spaCy alone "
            f"({extract['rate']:.0f} passages/s, same processes)"
        )


if __name__ == "__main__":
    main()

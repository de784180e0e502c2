"""Ray ingestion's scaling curve, against today's multiprocessing path, same run.

Rows, each a fresh embedded store ingesting the same first N passages:

  multiprocessing (baseline)   ``Memory.ingest_documents`` with ``extract_processes``
                               spaCy worker processes (``graphmem ingest --processes``),
                               embedding in the main process
  ray, W parse workers         :class:`graphmem.ingest.ray_ingest.RayIngestion` on a local
                               Ray instance: W spaCy actors, one embedding actor (on a GPU
                               when there is one), resolution and writes in the driver
  serial part alone            the same batches' resolution and store writes, replayed from
                               the parsed and embedded batches the last Ray row cached:
                               the rate no number of workers can pass

Each Ray row gives passages/s once its workers are ready (model loading is timed
apart, as ``startup s``), the ratio to the baseline, the scaling efficiency against
the 1-worker row (rate / (W x rate at 1)), and each stage's share of its workers'
time: parse and embed summed over their actors (divided by the actor count), resolve
and write in the driver; the largest is the bottleneck.

On the 2-core VM (what benchmarks/README.md reports as the CPU rows)::

    python benchmarks/ray_scaling.py --dataset musique --passages 300 --workers 1,2 --baseline-processes 2

On the 16-core GPU machine (the issue's curve)::

    python benchmarks/ray_scaling.py --dataset musique --passages 3000 --workers 1,2,4,8,14 \\
        --baseline-processes 14 --out benchmarks/results/ray-scaling-h100.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load(dataset: str, passages: int) -> tuple[list[Any], dict[str, int]]:
    """The first ``passages`` documents, and the chunking that keeps one passage per entry."""
    if dataset == "sample":
        from graphmem.ingest.readers import read_documents

        return read_documents([str(Path(__file__).resolve().parents[1] / "examples" / "docs")])[:passages], {}
    from graphmem.eval import load_dataset

    return list(load_dataset(dataset).documents())[:passages], {"chunk_words": 10000, "chunk_overlap": 0}


def baseline(docs: list[Any], settings: dict[str, Any], processes: int) -> dict[str, Any]:
    from graphmem import Memory

    with tempfile.TemporaryDirectory() as home, Memory(home=home, extract_processes=processes, **settings) as memory:
        memory.embedder.embed(["warm up"])
        # start the spaCy processes before the clock, as the Ray rows start their actors
        pool = memory._background_extractor() if processes == 0 else memory.extractor
        pool.extract(["Warm up the spaCy processes."])
        started = time.perf_counter()
        report = memory.ingest_documents(docs)
        seconds = time.perf_counter() - started
    return {
        "row": f"multiprocessing, {processes} spaCy processes (baseline)",
        "passages": report.passages,
        "seconds": seconds,
        "rate": report.passages / seconds,
    }


def ray_row(
    docs: list[Any], settings: dict[str, Any], workers: int, embedders: int | None, cache: list[Any] | None
) -> dict[str, Any]:
    """One Ray ingestion with ``workers`` parse actors; ``cache`` (when given) receives every
    batch's parsed and embedded result, in order, for the serial-part row."""
    from graphmem import Memory
    from graphmem.ingest.ray_ingest import RayIngestion

    class Recording(RayIngestion):
        def _result(self, ref: Any, batch: Any) -> Any:
            result = super()._result(ref, batch)
            if cache is not None:
                cache.append(result)
            return result

    with tempfile.TemporaryDirectory() as home, Memory(home=home, **settings) as memory:
        memory.embedder.embed(["warm up"])  # the driver's model, as the baseline's
        job = Recording(memory, parse_workers=workers, embed_workers=embedders)
        started = time.perf_counter()
        report = job.ingest(docs)
        total = time.perf_counter() - started
    stats = job.stats
    return {
        "row": f"ray, {workers} parse workers",
        "workers": workers,
        "passages": report.passages,
        "seconds": stats.elapsed,
        "startup_s": total - stats.elapsed,
        "rate": report.passages / stats.elapsed,
        "rate_with_startup": report.passages / total,
        "busy": stats.busy(),
        "bottleneck": stats.bottleneck()[0],
    }


def serial_row(docs: list[Any], settings: dict[str, Any], cache: list[Any]) -> dict[str, Any]:
    """Resolution and writes alone: the Ray path with its workers replaced by the cached batches."""
    from graphmem import Memory
    from graphmem.ingest.ray_ingest import RayIngestion, StageTimes

    class Replay(RayIngestion):
        def _connect(self) -> bool:
            return False

        def _start(self, settings: Any) -> None:
            self.stats = StageTimes(1, 1)
            self.parse_actors = self.embed_actors = [None]

        def _stop(self, disconnect: bool) -> None:
            self.parse_actors, self.embed_actors = [], []

        def _submit(self, group_id: str, k: int, batch: Any) -> Any:
            return k

        def _result(self, ref: Any, batch: Any) -> Any:
            return cache[ref]

    with tempfile.TemporaryDirectory() as home, Memory(home=home, **settings) as memory:
        memory.embedder.embed(["warm up"])
        job = Replay(memory)
        report = job.ingest(docs)
    stats = job.stats
    return {
        "row": "serial part alone (resolve + write, driver)",
        "passages": report.passages,
        "seconds": stats.elapsed,
        "rate": report.passages / stats.elapsed,
        "busy": stats.busy(),
        "resolve_rate": report.passages / max(stats.resolve, 1e-9),
        "write_rate": report.passages / max(stats.write, 1e-9),
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]["rate"]
    one = next((r["rate"] for r in rows if r.get("workers") == 1), None)
    lines = [
        "| row | passages/s | vs baseline | efficiency vs 1 worker | parse | embed | resolve | write | "
        "bottleneck | startup s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        busy = r.get("busy", {})
        share = [f"{busy[s]:.0%}" if s in busy else "" for s in ("parse", "embed", "resolve", "write")]
        efficiency = f"{r['rate'] / (r['workers'] * one):.0%}" if one and r.get("workers") else ""
        startup = f"{r['startup_s']:.1f}" if "startup_s" in r else ""
        lines.append(
            f"| {r['row']} | {r['rate']:.1f} | {r['rate'] / base:.2f}x | {efficiency} | "
            f"{' | '.join(share)} | {r.get('bottleneck', '')} | {startup} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="musique", help="sample, or a dataset name/path for graphmem.eval")
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--workers", default="1,2", help="parse-worker counts, comma-separated")
    parser.add_argument("--baseline-processes", type=int, default=0, help="spaCy processes of the baseline row")
    parser.add_argument("--batch-size", type=int, default=64, help="passages per write batch")
    parser.add_argument(
        "--embed-workers", type=int, default=None, help="embedding actors (default: one per GPU, else 1)"
    )
    parser.add_argument("--embedder", default=None, help="minilm (default), a folder, or http://... of embed-serve")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()

    import ray

    from graphmem.ingest.ray_ingest import WORKER_ENV

    workers = [int(w) for w in args.workers.split(",")]
    docs, settings = load(args.dataset, args.passages)
    settings = {**settings, "batch_size": args.batch_size, **({"embedder": args.embedder} if args.embedder else {})}
    try:
        import torch

        settings["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        pass
    rows = [baseline(docs, settings, args.baseline_processes)]
    print(rows[-1], flush=True)
    # one local instance for every row: the parse workers, one embedding actor, the driver
    ray.init(
        num_cpus=max(workers) + (args.embed_workers or 1),
        include_dashboard=False,
        runtime_env={"env_vars": WORKER_ENV},
        log_to_driver=False,
    )
    cache: list[Any] = []
    for count in workers:
        cache.clear()
        rows.append(ray_row(docs, settings, count, args.embed_workers, cache))
        print(rows[-1], flush=True)
    ray.shutdown()
    rows.append(serial_row(docs, settings, cache))
    print(rows[-1], flush=True)
    print(
        f"\n{len(docs)} {args.dataset} passages, batch {args.batch_size}, device {settings.get('device', 'cpu')}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(table(rows))
    serial = rows[-1]
    print(
        f"\nserial part: resolution alone {serial['resolve_rate']:.0f} passages/s, "
        f"store writes alone {serial['write_rate']:.0f} passages/s"
    )
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

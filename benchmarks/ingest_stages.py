"""Ingestion, stage by stage: parse, embed, resolve, write per passage, for each embedder.

For each embedder (default: MiniLM, the baseline, and minilm-static) two ingestions
of the same first N passages of a development corpus, each into a fresh embedded
FalkorDB store, in one run:

  staged      spaCy in-process (``extract_processes=1``) with a timer around each
              stage, so each stage's seconds are its own:
                parse    the extractor's ``extract`` calls
                embed    every embedder call (passages, then names and facts)
                resolve  entity resolution and fact planning (temporal reads of the
                         store included), less the embedding inside them
                write    the writer thread's batch writes (``Ingestor._write_batch``)
  end to end  the default settings (spaCy worker processes when there are cores to
              spare, stages overlapped), no timers: passages/s as a user gets it; and
              with each other ``--processes`` count asked for.

The target rows: with minilm-static, end to end >= 30 passages/s on 2 cores, and
resolve + write per passage below parse per passage.

    python benchmarks/ingest_stages.py --dataset musique --passages 1000 --out stages.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STAGES = ("parse", "embed", "resolve", "write")


class Clock:
    """Seconds per stage, summed over threads; ``embed`` inside ``resolve`` is subtracted from it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._local = threading.local()
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Any:
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - started
            stack.pop()
            with self._lock:
                self.seconds[name] += spent
                if stack:  # time of a nested stage is not its parent's own
                    self.seconds[stack[-1]] -= spent

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed


class TimedEmbedder:
    """The embedder with its calls timed as ``embed`` (no ``embed_in_context``: see :func:`timed_embedder`)."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.embed = clock.wrap("embed", inner.embed)


def timed_embedder(inner: Any, clock: Clock) -> Any:
    """A timing proxy that is a ContextEmbedder exactly when ``inner`` is one (the pipeline checks)."""
    proxy = TimedEmbedder(inner, clock)
    if hasattr(inner, "embed_in_context"):

        class TimedContextEmbedder(TimedEmbedder):
            def embed_in_context(self, texts: Sequence[str], spans: Any) -> Any:
                with clock.stage("embed"):
                    return inner.embed_in_context(texts, spans)

        proxy = TimedContextEmbedder(inner, clock)
    return proxy


class TimedExtractor:
    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner = inner
        self.extract = clock.wrap("parse", inner.extract)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def ingest(docs: list, settings: Any, clock: Clock | None) -> dict[str, Any]:
    """Ingest ``docs`` into a fresh store under ``settings`` (timed per stage when ``clock``)."""
    from graphmem import Memory
    from graphmem.embed import get_embedder
    from graphmem.ingest import pipeline

    embedder = get_embedder(settings.embedder, settings.device)
    embedder.embed(["warm up"])  # model loading is not ingestion
    # patched on the classes: the memory makes a new ingestor once it has stored the recipe
    patched = {
        (pipeline.Ingestor, "_prepare_batch"): "resolve",
        (pipeline.Ingestor, "_write_batch"): "write",
        (pipeline.BatchPlan, "plan_facts"): "resolve",
    }
    originals = {key: getattr(*key) for key in patched}
    with tempfile.TemporaryDirectory() as home, Memory(settings.model_copy(update={"home": Path(home)})) as memory:
        memory.extractor.extract(["Warm up the parser."])
        memory._embedder = embedder
        if clock is not None:
            memory._embedder = timed_embedder(embedder, clock)
            memory._extractor = TimedExtractor(memory.extractor, clock)
            for (owner, name), stage in patched.items():
                setattr(owner, name, clock.wrap(stage, originals[(owner, name)]))
        try:
            started = time.perf_counter()
            report = memory.ingest_documents(docs)
            seconds = time.perf_counter() - started
        finally:
            for (owner, name), original in originals.items():
                setattr(owner, name, original)
    return {"passages": report.passages, "seconds": seconds, "passages_per_s": report.passages / seconds}


def measure(docs: list, base: Any, embedder: str, processes: Sequence[int]) -> dict[str, Any]:
    """The staged run, then one end-to-end run per spaCy process count in ``processes``."""
    clock = Clock()
    staged = ingest(docs, base.model_copy(update={"embedder": embedder, "extract_processes": 1}), clock)
    n = max(staged["passages"], 1)
    per = {name: clock.seconds.get(name, 0.0) * 1000 / n for name in STAGES}
    runs = {
        str(p): ingest(docs, base.model_copy(update={"embedder": embedder, "extract_processes": p}), None)
        for p in processes
    }
    return {"embedder": embedder, "ms_per_passage": per, "staged": staged, "end_to_end": runs}


def table(rows: list[dict[str, Any]]) -> str:
    counts = list(rows[0]["end_to_end"])
    lines = [
        "| embedder | parse | embed | resolve | write | resolve + write vs parse | staged passages/s | "
        + " | ".join(f"end to end, processes={p}: passages/s" for p in counts)
        + " | end to end vs first row |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | " + "---: | " * len(counts) + "---: |",
    ]
    base = rows[0]["end_to_end"][counts[0]]["passages_per_s"]
    for row in rows:
        ms = row["ms_per_passage"]
        ratio = (ms["resolve"] + ms["write"]) / ms["parse"] if ms["parse"] else float("nan")
        rates = [row["end_to_end"][p]["passages_per_s"] for p in counts]
        lines.append(
            f"| {row['embedder']} | {ms['parse']:.1f} | {ms['embed']:.1f} | {ms['resolve']:.1f} | {ms['write']:.1f} "
            f"| {ratio:.2f}x | {row['staged']['passages_per_s']:.1f} | "
            + " | ".join(f"{r:.1f}" for r in rates)
            + f" | {rates[0] / base:.2f}x |"
        )
    return "\n".join(lines) + "\n\n(stage columns: ms per passage of the staged run, spaCy in-process)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="musique", help="a development set name or path (graphmem.eval)")
    parser.add_argument("--passages", type=int, default=1000, help="the first N corpus passages")
    parser.add_argument(
        "--embedders", default="minilm,minilm-static", help="comma-separated; the first is the baseline"
    )
    parser.add_argument("--device", default="cpu", help="torch device of MiniLM")
    parser.add_argument(
        "--processes", default="0", help="comma-separated spaCy process counts of the end-to-end runs (0: automatic)"
    )
    parser.add_argument("--out", type=Path, help="write the rows as JSON")
    args = parser.parse_args()

    import os

    from graphmem.config import Settings
    from graphmem.eval import load_dataset

    docs = list(load_dataset(args.dataset).documents())[: args.passages]
    # one passage per corpus entry, as `graphmem eval` ingests them (pipelines/musique.yaml)
    base = Settings(chunk_words=10000, chunk_overlap=0, device=args.device)
    processes = [int(p) for p in args.processes.split(",")]
    rows = [measure(docs, base, name.strip(), processes) for name in args.embedders.split(",") if name.strip()]
    print(f"{args.dataset}, first {len(docs)} passages, {os.cpu_count()} cores\n")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"dataset": args.dataset, "passages": len(docs), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

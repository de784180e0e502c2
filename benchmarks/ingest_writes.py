"""Ingestion without its models: entity resolution, fact planning and store writes.

On a GPU machine the models are cheap and ingestion is bound by what runs around
them. This script takes the model cost out so those stages can be measured on any
machine: spaCy's output for the passages is computed once and cached under
``--cache`` (later runs reuse it), and vectors come from a deterministic hash of each
text (unit vectors, so resolution does the same work as with a model, minus the
merges a model's similar vectors would cause). Everything else is graphmem's own
ingestion into a fresh embedded FalkorDB.

Two modes:

* one run (default): one table of end-to-end passages/s and the time per passage of
  each stage and store query, against the same run's baseline, one spaCy process
  parsing the same passages (the ratio says how many spaCy worker processes these
  stages keep up with)::

      python benchmarks/ingest_writes.py --dataset musique --passages 2500

* ``--grow``: passages of the scale corpus (``../shared/data/scale/corpus.jsonl.gz``)
  ingested chunk after chunk into one store, one row per chunk with each stage's and
  each store query's ms per passage, so a step whose cost grows with the store shows
  as a rising column. ``--code DIR`` (repeatable) runs the same growth once per
  graphmem source tree (e.g. a checkout of the previous commit, made with
  ``git archive``), each in a fresh process and store, so two code paths compare in
  one run on one machine (``--together``: at the same time, so on a machine shared
  with other work both see the same load)::

      mkdir -p .bench/base && git archive COMMIT graphmem cypher | tar -x -C .bench/base
      python benchmarks/ingest_writes.py --grow --passages 16000 --chunk 2000 \\
          --code .bench/base --code . --together --fingerprint
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT.parent / "shared" / "data" / "scale" / "corpus.jsonl.gz"


def _use_code(code: Path | None) -> None:
    """Import graphmem (and the benchmark helpers) from ``code`` instead of this checkout."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str((code or ROOT).resolve()))


class HashEmbedder:
    """Unit vectors seeded by a hash of the text: the same text, the same vector."""

    name = "hash"

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class NgramEmbedder:
    """Hashed character trigrams (signed, into ``dim`` slots), normalised: texts that share
    most trigrams get close vectors, so resolution finds merges and synonyms and the
    neighbour indexes see clustered data, as with a model (unlike :class:`HashEmbedder`'s
    uniform random vectors, the worst case for an HNSW graph)."""

    name = "ngram"

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            padded = f" {text.lower()} "
            codes = np.fromiter(
                (zlib.crc32(padded[j : j + 3].encode()) for j in range(max(1, len(padded) - 2))), np.uint32
            )
            signs = np.where(codes & (1 << 31), -1.0, 1.0).astype(np.float32)
            np.add.at(out[i], (codes % self.dim).astype(np.intp), signs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


EMBEDDERS = {"hash": HashEmbedder, "ngram": NgramEmbedder}


class CachedExtractor:
    """spaCy's extractions replayed from a cache (each handed out as a fresh copy, as
    worker processes would); texts not in it are parsed (``processes`` spaCy worker
    processes) and the cache file rewritten."""

    concurrent = False

    def __init__(self, path: Path, processes: int = 1) -> None:
        self.path = path
        self.processes = processes
        self.memo: dict[str, Any] = pickle.loads(gzip.decompress(path.read_bytes())) if path.exists() else {}

    def extract(self, texts, *, reference_times=None, speakers=None, titles=None):  # noqa: ANN001, ANN201
        missing = [i for i, t in enumerate(texts) if t not in self.memo]
        if missing:
            self._parse(texts, missing, reference_times, titles)
        return [pickle.loads(pickle.dumps(self.memo[t])) for t in texts]

    def _parse(self, texts: Sequence[str], missing: list[int], reference_times, titles) -> None:  # noqa: ANN001
        if self.processes > 1:
            from graphmem.extract.parallel import ParallelSpacyExtractor

            spacy: Any = ParallelSpacyExtractor(processes=self.processes)
        else:
            from graphmem.extract.spacy_extractor import SpacyExtractor

            spacy = SpacyExtractor()
        got = spacy.extract(
            [texts[i] for i in missing],
            reference_times=[reference_times[i] for i in missing] if reference_times else None,
            titles=[titles[i] for i in missing] if titles else None,
        )
        if hasattr(spacy, "close"):
            spacy.close()
        self.memo.update((texts[i], e) for i, e in zip(missing, got, strict=True))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(gzip.compress(pickle.dumps(self.memo), 3))

    def query_mentions(self, text: str) -> list[str]:
        return []


class Timers:
    """Exclusive wall seconds per pipeline stage (see embed_service.StageTimer) and, per named
    store query, wall seconds and the seconds the FalkorDB server reported: cumulative, so a
    chunk's cost is the difference of two :meth:`snapshot` s."""

    RESOLUTION = ("_neighbours", "_spellings_of", "_batch_spellings")

    def __init__(self, memory: Any) -> None:
        from embed_service import StageTimer

        from graphmem.resolve.entities import EntityIndex

        self.stages = StageTimer()
        ingestor = memory.ingestor
        self.stages.wrap(ingestor, "_resolve", "resolve")
        self.stages.wrap(ingestor, "_facts", "facts + temporal plan")
        for attr in self.RESOLUTION:
            if hasattr(EntityIndex, attr):
                self.stages.wrap(EntityIndex, attr, f"resolve: {attr.strip('_')}")
        self.wall: dict[str, float] = {}
        self.server: dict[str, float] = {}
        self._local = threading.local()
        self._wrap_store(memory._store)

    def _wrap_store(self, store: Any) -> None:
        for attr in ("run", "run_rows"):
            inner = getattr(store, attr)

            def timed(query: str, *args: Any, _inner: Callable[..., Any] = inner, **kwargs: Any) -> Any:
                self._local.name = query
                t0 = time.perf_counter()
                try:
                    return _inner(query, *args, **kwargs)
                finally:
                    self.wall[query] = self.wall.get(query, 0.0) + time.perf_counter() - t0

            setattr(store, attr, timed)
        if hasattr(store, "_graph"):  # FalkorDB: the server's own time per query
            graph_of = store._graph

            def wrapped_graph(group_id: str) -> Any:
                graph = graph_of(group_id)
                if not getattr(graph, "_timed", False):
                    query, ro_query = graph.query, graph.ro_query
                    graph.query = lambda *a, **k: self._server_time(query(*a, **k))
                    graph.ro_query = lambda *a, **k: self._server_time(ro_query(*a, **k))
                    graph._timed = True
                return graph

            store._graph = wrapped_graph

    def _server_time(self, result: Any) -> Any:
        name = getattr(self._local, "name", "?")
        self.server[name] = self.server.get(name, 0.0) + float(result.run_time_ms) / 1000
        return result

    def snapshot(self) -> dict[str, float]:
        out = {f"stage: {k}": v for k, v in self.stages.seconds.items()}
        out.update({f"query: {k}": v for k, v in self.wall.items()})
        out.update({f"server: {k}": v for k, v in self.server.items()})
        return out


def scale_documents(path: Path, n: int) -> list[Any]:
    from graphmem.ingest.readers import Document

    documents = []
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as handle:
        for line in handle:
            if len(documents) >= n:
                break
            record = json.loads(line)
            documents.append(Document(name=f"scale#{record['id']}", text=record["text"], title=record.get("title", "")))
    return documents


def new_memory(home: str, batch_size: int, extractor: Any, vectors: str = "hash") -> Any:
    from graphmem.config import Settings
    from graphmem.memory import Memory

    memory = Memory(Settings(home=home, extract_processes=1, chunk_words=10000, chunk_overlap=0, batch_size=batch_size))
    memory._embedder, memory._extractor = EMBEDDERS[vectors](), extractor
    return memory


def fill_cache(memory: Any, docs: list[Any], extractor: CachedExtractor) -> None:
    """Parse every passage the run will ingest, once (not timed)."""
    from graphmem.ingest.units import DocumentSource

    units = [u for d in docs for u in DocumentSource(d).units(memory._graph.group_id, "warm", 0, memory.settings)]
    if units:
        type(units[0]).extract(units, extractor)


# -- --grow --------------------------------------------------------------------------------
def grow(args: argparse.Namespace) -> dict[str, Any]:
    """Ingest ``args.passages`` scale passages in chunks of ``args.chunk`` into one fresh store;
    per chunk: seconds, stage and query seconds (differences of cumulative timers), counts."""
    docs = scale_documents(args.corpus, args.passages)
    extractor = CachedExtractor(args.cache / f"{args.corpus.name.split('.')[0]}.pkl.gz", args.processes)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as home:
        memory = new_memory(home, args.batch_size, extractor, args.vectors)
        fill_cache(memory, docs, extractor)
        if args.parse_only:
            return {"rows": rows}
        timers = Timers(memory)
        for lo in range(0, len(docs), args.chunk):
            before = timers.snapshot()
            t0 = time.perf_counter()
            report = memory.ingest_documents(docs[lo : lo + args.chunk])
            seconds = time.perf_counter() - t0
            after = timers.snapshot()
            row = {
                "from": lo,
                "passages": report.passages,
                "seconds": seconds,
                "entities": report.entities,
                "facts": report.facts,
                "times": {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0},
                "stats": memory.stats(),
            }
            rows.append(row)
            if args.json:  # after every chunk: a run stopped by a time limit keeps its rows
                Path(args.json).write_text(json.dumps({"rows": rows}))
            top = sorted(row["times"].items(), key=lambda kv: -kv[1])[:6]
            print(
                f"{lo:,}: {1000 * seconds / max(1, report.passages):.2f} ms/passage; "
                + ", ".join(f"{k} {1000 * v / max(1, report.passages):.2f}" for k, v in top),
                flush=True,
            )
        memory.close()
        result: dict[str, Any] = {"rows": rows}
        if args.fingerprint:  # a hash per kind of record: equal graphs, equal hashes
            sys.path.append(str(ROOT))
            from tests.reliability.helpers import fingerprint

            result["fingerprint"] = fingerprint(Path(home))["hashes"]
            print(f"fingerprint: {result['fingerprint']}", flush=True)
    return result


def print_grow(label: str, result: dict[str, Any], top: int) -> None:
    rows = result["rows"]
    if not rows:
        return
    total: dict[str, float] = {}
    for row in rows:
        for k, v in row["times"].items():
            total[k] = total.get(k, 0.0) + v
    walls = [k for k in total if not k.startswith("server: ")]
    columns = sorted(walls, key=lambda k: -total[k])[:top]
    print(f"\n{label}: ms per passage per chunk (store size = passages before the chunk)\n")
    print("| store | total | " + " | ".join(columns) + " |")
    print("| ---: | ---: |" + " ---: |" * len(columns))
    for row in rows:
        n = max(1, row["passages"])
        cells = [f"{1000 * row['times'].get(k, 0.0) / n:.2f}" for k in columns]
        print(f"| {row['from']:,} | {1000 * row['seconds'] / n:.2f} | " + " | ".join(cells) + " |")
    first, last = rows[0], rows[-1]
    ratio = (last["passages"] / last["seconds"]) / (first["passages"] / first["seconds"])
    print(f"\nlast chunk's rate / first chunk's rate: {ratio:.2f}; after: {last['stats']}")
    if "fingerprint" in result:
        print(f"graph fingerprint: {result['fingerprint']}")


def run_grow_codes(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The growth run once per code tree, each in a fresh process importing graphmem from it:
    one after another, or with ``--together`` all at once (on a machine shared with other
    work, both then see the same load at the same store size)."""
    with tempfile.TemporaryDirectory() as folder:
        outs = {str(code): Path(folder) / f"{i}.json" for i, code in enumerate(args.code)}
        running = []
        for code, out in outs.items():
            command = [sys.executable, __file__, "--grow", "--child", "--json", str(out), *args.forward]
            print(f"-- code: {code}", flush=True)
            child = subprocess.Popen(command, env={**os.environ, "GRAPHMEM_BENCH_CODE": code})
            if not args.together:
                child.wait()
            running.append(child)
        if any(child.wait() for child in running):
            raise SystemExit("a growth run failed")
        return {code: json.loads(out.read_text()) for code, out in outs.items()}


def main_grow(args: argparse.Namespace) -> None:
    if args.child or not args.code:
        result = grow(args)
        if args.json:
            Path(args.json).write_text(json.dumps(result))
        if not args.child:
            print_grow("this checkout", result, args.top)
        return
    results = run_grow_codes(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    for code, result in results.items():
        print_grow(f"code: {code}", result, args.top)


# -- one run -------------------------------------------------------------------------------
def main_once(args: argparse.Namespace) -> None:
    from graphmem.eval import load_dataset
    from graphmem.extract.spacy_extractor import SpacyExtractor
    from graphmem.ingest.pipeline import extraction_text

    docs = list(load_dataset(args.dataset, data_dir=args.data_dir).documents())[: args.passages]
    extractor = CachedExtractor(args.cache / f"{Path(args.dataset).name}-{len(docs)}.pkl.gz")

    spacy = SpacyExtractor()
    sample = [extraction_text(d.text) for d in docs[: args.baseline_passages]]
    spacy.extract(sample[:8])  # warm up
    t0 = time.perf_counter()
    spacy.extract(sample)
    baseline = len(sample) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as home:
        memory = new_memory(home, args.batch_size, extractor)
        fill_cache(memory, docs, extractor)
        memory.ingest_documents(docs[:1])
        timers = Timers(memory)
        t0 = time.perf_counter()
        report = memory.ingest_documents(docs[1:])
        seconds = time.perf_counter() - t0
        times = timers.snapshot()
        memory.close()

    n = report.passages
    rate = n / seconds
    print(f"{n} {args.dataset} passages, batches of {args.batch_size}: {report.summary()}")
    print("\n| row | seconds | ms per passage | passages/s | vs baseline |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| baseline: one spaCy process, {len(sample)} passages | | {1000 / baseline:.2f} | {baseline:.0f} | 1.0x |")
    print(
        f"| ingestion without models, end to end | {seconds:.1f} | {seconds / n * 1000:.2f} | {rate:.0f} | "
        f"{rate / baseline:.1f}x |"
    )
    for name, value in sorted(times.items(), key=lambda kv: -kv[1]):
        if value >= 0.01 * seconds and not name.startswith("server: "):
            server = times.get(name.replace("query: ", "server: ", 1), 0.0) if name.startswith("query: ") else None
            note = f" (server {server / n * 1000:.2f} ms/passage)" if server is not None else ""
            print(f"| {name}{note} | {value:.1f} | {value / n * 1000:.2f} | | |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="musique", help="graphmem eval name or folder (one-run mode)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--passages", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=64, help="passages per ingestion batch")
    parser.add_argument("--baseline-passages", type=int, default=200, help="passages for the spaCy baseline")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench" / "extractions", help="spaCy output cache folder")
    parser.add_argument("--grow", action="store_true", help="chunk after chunk into one store, a row per chunk")
    parser.add_argument("--corpus", type=Path, default=SCALE, help="--grow: the scale corpus (JSON lines, gzip)")
    parser.add_argument("--chunk", type=int, default=3000, help="--grow: passages per ingest call")
    parser.add_argument("--processes", type=int, default=1, help="spaCy processes for filling the cache")
    parser.add_argument("--parse-only", action="store_true", help="--grow: fill the cache and stop")
    parser.add_argument("--code", type=Path, action="append", default=[], help="--grow: graphmem tree(s) to compare")
    parser.add_argument("--together", action="store_true", help="--grow: run the --code trees at the same time")
    parser.add_argument("--top", type=int, default=12, help="--grow: columns shown (the costliest)")
    parser.add_argument("--vectors", choices=sorted(EMBEDDERS), default="ngram", help="--grow: the stand-in embedder")
    parser.add_argument("--fingerprint", action="store_true", help="--grow: hash the final graph (slow)")
    parser.add_argument("--json", default=None, help="write the raw results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    # what a per-code child process is given: everything but the code trees and the output
    args.forward, skip = [], False
    for token in sys.argv[1:]:
        if skip:
            skip = False
        elif token in ("--code", "--json"):
            skip = True
        elif token not in ("--grow", "--child") and not token.startswith(("--code=", "--json=")):
            args.forward.append(token)
    return args


def main() -> None:
    args = parse_args()
    _use_code(Path(os.environ["GRAPHMEM_BENCH_CODE"]) if os.environ.get("GRAPHMEM_BENCH_CODE") else None)
    if args.grow:
        main_grow(args)
    else:
        main_once(args)


if __name__ == "__main__":
    main()

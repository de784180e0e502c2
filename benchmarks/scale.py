"""Scale: query cost, memory, load time and recall from 10k to 1M passages, the flat query
path (ANN vector search + forward-push PPR) against today's exact path (exact vector
search + power-iteration PPR) in the same run.

Three commands:

``build``: fill one store with the three development corpora (``../shared/data/{musique,
hotpotqa,2wikimultihopqa}``, every passage one document, as ``graphmem eval`` ingests them)
followed by the distractor paragraphs of ``../shared/data/scale/corpus.jsonl.gz`` (69,444 real
Wikipedia paragraphs none of which is a gold passage; see its README), or the first
``--passages`` of them. About 84,400 passages in all. Resumable: progress is kept in
``<home>/scale-build.json`` after every chunk, and a re-run continues from there
(``--deadline`` stops between chunks, so a run fits a time limit; ``--stop-at`` stops once the
store holds that many passages of the build list, e.g. 10,000 for a 10k measurement).
Once every passage of the build list is in, the **ingestion-rate test** runs: the last
``--heldout`` distractors (held out of the build, after ``--warmup`` more for warming up
models, worker processes and per-process indexes) are ingested into an empty store
(``<home>-empty``, made afresh) and then into the full one, timed the same way in the same
process (the warm-up slice first, then the projection opened, then the held-out slice timed
with its projection extension). The store then holds every passage. Last, the projection is
opened (built from the store when an ingestion left it stale: one that changed stored facts'
validity has no append-only delta) and the ANN indexes of the flat path are built (or
extended) with every core and saved next to it, so the measurement below, pinned to 2 cores,
loads them instead of building them.

``measure``: on that store, pinned to ``--cores`` cores (2: the target machine), with
the questions' vectors embedded beforehand:

* projection open time and search-process memory, each in a fresh process with no store,
  no model and no torch (``probe`` below): open the projection (map its files), the first
  graph query (which maps the ANN index, builds the PPR operator etc.), then queries; RSS
  (``VmRSS``/``RssAnon``/``RssFile``/``VmHWM``). Once with a cold page cache for the
  projection's files (``--cold drop``: ``sync; echo 3 > /proc/sys/vm/drop_caches``, needs
  root; ``fadvise``: ``posix_fadvise(DONTNEED)`` on the cache files only; ``none``), then
  warm, for each path;
* in the measuring process: query p50/p95/mean, one query at a time, retrieval only
  (``Retriever.search_many`` with the query vector given), and the mean and p50 ms per step
  (passage scoring, query entities, seeds, PPR, bridge; ``other`` = fusion, ranking and the
  rest); the fetch of the hits' texts from the store (``Graph.episodes``) timed apart;
  for ``flat`` and ``exact`` and dense retrieval;
* Recall@2/5/10 on every development question against that store (batched search through
  ``Memory.search_many``, scored by ``graphmem.eval.runner.score``) for graph search on both
  paths, dense retrieval through the same ANN index (``dense (ann)``) and exact dense.

``synthetic``: the same latency, memory and open-time probes on a projection generated
straight into the column format by ``benchmarks/projection_open.py`` (its ``generate``: the
method is documented there: clustered random vectors, Zipf words and entities, the real 10k
store's per-passage counts of mentions and facts, entities growing as N^0.77). No store and no
models: the store-write path and the fetch are not in these numbers, and recall has no
meaning there. Used for 1M passages (writing 1M passages through the store would take about
1 h 40 min of GPU-machine ingestion at ~168 passages/s, past its limits).

Exact commands (``--cores 2`` is the default; the GPU machine's recipe is in
``benchmarks/results/DEVICE_RUN.md``)::

    # the ~84k real store (GPU machine: GRAPHMEM_DEVICE=cuda GRAPHMEM_EXTRACT_PROCESSES=14)
    python benchmarks/scale.py build --home /tmp/scale/h --deadline 540       # repeat until it says complete
    python benchmarks/scale.py measure --home /tmp/scale/h --cold drop --out scale-84k.json
    # a 10k store: the same build stopped at 10,000 passages (the development corpora's first)
    python benchmarks/scale.py build --home /tmp/scale/h --stop-at 10000
    python benchmarks/scale.py measure --home /tmp/scale/h --no-recall --queries 100 --out scale-10k.json
    # synthetic projections (10k, 100k: both paths; 1M: 13 GB of files, and --paths exact skips
    # the ANN indexes, which take about two hours to build on 2 cores at that size)
    python benchmarks/scale.py synthetic --dir /tmp/scale/syn-100k --passages 100000 --queries 100 \
        --exact-queries 20 --out scale-syn-100k.json
    python benchmarks/scale.py synthetic --dir /tmp/scale/syn-1m --passages 1000000 --paths exact \
        --queries 20 --exact-queries 5 --out scale-syn-1m-exact.json
    # a small local check (this CPU ingests ~8 passages/s)
    python benchmarks/scale.py build --home /tmp/scale/small --datasets musique --limit 20 --corpus-limit 200 \\
        --passages 400 --heldout 100 --warmup 20
    python benchmarks/scale.py measure --home /tmp/scale/small --queries 20
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEV_SETS = ("musique", "hotpotqa", "2wikimultihopqa")
#: the two query paths compared in one run
PATHS = {"flat": {"vector_index": "ann", "ppr": "push"}, "exact": {"vector_index": "exact", "ppr": "power"}}
STATE = "scale-build.json"
QUERIES = "scale-queries.npz"
KS = (2, 5, 10)


# -- process set-up -----------------------------------------------------------------------
def pin(cores: int) -> list[int]:
    """Pin this process, and every thread and child it starts afterwards, to ``cores`` CPUs, and
    size the BLAS/OpenMP pools to match. Call before numpy is imported (a pool started earlier
    keeps its threads on every core)."""
    available = sorted(os.sched_getaffinity(0))
    chosen = available[:cores]
    os.sched_setaffinity(0, chosen)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(cores)
    return chosen


def rss() -> dict:
    """This process's memory (MiB): resident, of it anonymous (private) and file-backed
    (mapped files, shared through the page cache), and the peak resident."""
    lines = Path("/proc/self/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines if ":" in line)

    def mib(key: str) -> float:
        return round(int(status[key].split()[0]) / 1024, 1)

    return {"rss_mib": mib("VmRSS"), "anon_mib": mib("RssAnon"), "file_mib": mib("RssFile"), "peak_mib": mib("VmHWM")}


def evict(path: Path, how: str) -> str:
    """Empty the page cache of ``path``'s files: ``drop`` (every file, as root), ``fadvise``
    (these files only), ``none``. Returns what was done (``drop`` falls back to ``fadvise``)."""
    if how == "none":
        return "none"
    if how == "drop":
        try:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as handle:
                handle.write("3\n")
            return "drop_caches"
        except OSError as error:
            print(f"  drop_caches not possible ({error}); posix_fadvise(DONTNEED) instead", flush=True)
    import projection_open  # benchmarks/projection_open.py: the same eviction, file by file

    projection_open.evict(path)
    return "fadvise"


def warm_files(path: Path) -> float:
    """Read every file under ``path`` once, so the page cache holds them (the steady state of a
    serving machine); returns MiB read. Without it the timed queries after a cold probe read the
    fact and passage vectors they touch from disk, query by query."""
    total = 0
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as handle:
                while chunk := handle.read(1 << 24):
                    total += len(chunk)
    return round(total / 2**20, 1)


def resident_mib(path: Path) -> float | None:
    """How much of ``path``'s files is in the page cache (``fincore``; None where it is missing)."""
    files = [str(f) for f in path.rglob("*") if f.is_file() and f.stat().st_size]
    total = 0
    for start in range(0, len(files), 200):
        try:
            result = subprocess.run(
                ["fincore", "--bytes", "--noheadings", "--output", "RES", *files[start : start + 200]],
                capture_output=True,
                text=True,
            )
        except OSError:
            return None
        total += sum(int(x) for x in result.stdout.split() if x.isdigit())
    return round(total / 2**20, 1)


def size_mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def percentile(values, q):
    import numpy as np

    return round(float(np.percentile(values, q)), 3) if len(values) else None


# -- the build list -------------------------------------------------------------------------
def load_sets(config: dict):
    from graphmem.eval import load_dataset

    return [
        load_dataset(name, data_dir=config["data_dir"], limit=config["limit"], corpus_limit=config["corpus_limit"])
        for name in config["datasets"]
    ]


def distractors(config: dict) -> list:
    """The first ``passages`` scale paragraphs as documents named ``scale#<id>``."""
    from graphmem.ingest.readers import Document

    path = Path(config["scale"])
    documents = []
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as handle:
        for line in handle:
            if config["passages"] is not None and len(documents) >= config["passages"]:
                break
            record = json.loads(line)
            documents.append(
                Document(
                    name=f"scale#{record['id']}",
                    text=record["text"],
                    title=record.get("title", ""),
                    metadata={"id": record["id"]},
                )
            )
    return documents


def build_lists(config: dict):
    """(build list, warm-up slice, held-out slice): the development corpora then the
    distractors, less the last ``warmup + heldout`` distractors kept for the rate test."""
    sets = load_sets(config)
    extra = distractors(config)
    tail = config["warmup"] + config["heldout"]
    if tail > len(extra):
        raise SystemExit(f"--warmup + --heldout ({tail}) is more than the {len(extra)} distractors")
    main = [d for ds in sets for d in ds.documents()] + extra[: len(extra) - tail]
    warm = extra[len(extra) - tail : len(extra) - config["heldout"]]
    held = extra[len(extra) - config["heldout"] :]
    return main, warm, held


def store_settings(home: Path, embedder: str | None, **overrides):
    from graphmem.config import Settings

    return Settings.from_env(home=home, chunk_words=10000, chunk_overlap=0, embedder=embedder, **overrides)


# -- build ------------------------------------------------------------------------------------
def cmd_build(args) -> None:
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "datasets": args.datasets.split(","),
        "data_dir": args.data_dir,
        "limit": args.limit,
        "corpus_limit": args.corpus_limit,
        "scale": str(args.scale),
        "passages": args.passages,
        "heldout": args.heldout,
        "warmup": args.warmup,
    }
    state_path = home / STATE
    state = (
        json.loads(state_path.read_text()) if state_path.exists() else {"config": config, "ingested": 0, "chunks": []}
    )
    if state["config"] != config:
        raise SystemExit(
            f"{home} was built from another selection: {state['config']} (this run: {config}); use another --home"
        )
    started = time.monotonic()
    main, warm, held = build_lists(config)
    stop = min(len(main), args.stop_at or len(main))
    print(
        f"build list: {len(main):,} passages ({state['ingested']:,} in the store); rate test: "
        f"{len(warm)} warm-up + {len(held)} held-out distractors",
        flush=True,
    )
    from graphmem import Memory

    settings = store_settings(home, args.embedder)
    out_of_time = False
    with Memory(settings) as memory:
        while state["ingested"] < stop:
            if args.deadline and time.monotonic() - started > args.deadline:
                print(f"deadline: stopping at {state['ingested']:,} / {len(main):,}", flush=True)
                out_of_time = True
                break
            lo, hi = state["ingested"], min(stop, state["ingested"] + args.chunk)
            t = time.perf_counter()
            report = memory.ingest_documents(main[lo:hi])  # extends a projection on disk when it can
            ingest_s = time.perf_counter() - t
            # The projection is built once, after the first chunk (O(store) while the store is
            # small); every later chunk extends it on disk in place, as a user's ingestions do.
            # Without it the first search after the build would rebuild it from the whole store.
            if lo == 0:
                memory.retriever  # noqa: B018
            state["ingested"] = hi
            state["chunks"].append(
                {
                    "from": lo,
                    "to": hi,
                    "seconds": round(ingest_s, 2),
                    "passages_per_s": round((hi - lo) / ingest_s, 1),
                    "append_only": report.delta is not None,
                    "report": report.summary(),
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            write_json(state_path, state)
            print(
                f"  {hi:,} / {len(main):,}: {(hi - lo) / ingest_s:.1f} passages/s "
                f"{'' if report.delta is not None else '(no append-only delta: the projection needs a rebuild) '}"
                f"[{time.monotonic() - started:.0f} s]",
                flush=True,
            )
        state["stats_after_build"] = memory.stats()
        write_json(state_path, state)
        done = state["ingested"] >= len(main)
        if (
            done
            and "rate" not in state
            and config["heldout"]
            and not (args.deadline and time.monotonic() - started > args.deadline - args.rate_reserve)
        ):
            state["rate"] = rate_test(home, memory, warm, held, args.embedder)
            write_json(state_path, state)
        elif done and "rate" not in state and config["heldout"]:
            print("deadline: the rate test runs next time", flush=True)
            out_of_time = True
    quiet = store_settings(home, args.embedder, extract_processes=1)  # no ingestion below: no spaCy pool
    if args.deadline and time.monotonic() - started > args.deadline - args.index_reserve:
        out_of_time = True  # the indexes are built (or extended) next time
    if not args.no_indexes and not out_of_time:
        state.setdefault("indexes", []).append(warm_indexes(quiet))
        write_json(state_path, state)
    complete = done and ("rate" in state or not config["heldout"])
    state["complete"] = complete
    if "rate" in state and "stats_final" not in state:
        with Memory(quiet) as memory:
            state["stats_final"] = memory.stats()
    write_json(state_path, state)
    print(
        f"{'complete' if complete else 'not complete'}: {state.get('stats_final') or state.get('stats_after_build')}",
        flush=True,
    )


def rate_test(home: Path, full, warm: list, held: list, embedder: str | None) -> dict:
    """Ingestion rate of ``held`` into an empty store (a new Memory) and into the full one
    (``full``: the build's open Memory, so the per-process state it built while ingesting,
    such as the entity index, is not built again), in this process. Each first ingests
    ``warm`` (models, worker processes, per-process indexes) and opens its projection, so
    both timed runs extend a projection in place."""
    import shutil

    from graphmem import Memory

    empty = Path(str(home) + "-empty")
    shutil.rmtree(empty, ignore_errors=True)
    result = {}

    def timed(label, memory):
        before = memory.stats()
        t = time.perf_counter()
        memory.ingest_documents(warm)
        memory.retriever  # noqa: B018
        warm_s = time.perf_counter() - t
        t = time.perf_counter()
        report = memory.ingest_documents(held)
        seconds = time.perf_counter() - t
        result[label] = {
            "passages": len(held),
            "seconds": round(seconds, 2),
            "passages_per_s": round(len(held) / seconds, 1),
            "warmup_s": round(warm_s, 2),
            "store_before": before,
            "report": report.summary(),
        }
        print(
            f"  rate into the {label} store ({before.get('episodes', 0):,} passages before): "
            f"{len(held) / seconds:.1f} passages/s (warm-up {warm_s:.1f} s)",
            flush=True,
        )

    with Memory(store_settings(empty, embedder)) as memory:
        timed("empty", memory)
    timed("full", full)
    result["full_vs_empty"] = round(result["full"]["passages_per_s"] / result["empty"]["passages_per_s"], 3)
    shutil.rmtree(empty, ignore_errors=True)
    return result


def warm_indexes(settings) -> dict:
    """Build or extend the flat path's ANN indexes with every core, saved next to the projection."""
    from graphmem import Memory

    with Memory(settings) as memory:
        t = time.perf_counter()
        retriever = memory.retriever
        open_s = time.perf_counter() - t
        retriever.settings = retriever.settings.model_copy(update=PATHS["flat"])
        out = {
            "projection_open_or_build_s": round(open_s, 2),
            "episodes": len(retriever.projection.episode_ids),
            "facts": len(retriever.projection.fact_ids),
        }
        for name in ("episodes", "facts"):
            t = time.perf_counter()
            retriever.vector_index(name)
            out[f"{name}_index_s"] = round(time.perf_counter() - t, 2)
        print(f"  ANN indexes: {out}", flush=True)
        return out


# -- timing queries ---------------------------------------------------------------------------
STEP_NAMES = ("passage scores", "query entities", "seeds", "PPR", "bridge")


def install_step_timers() -> dict:
    """Wrap the retrieval steps so each query's time per step adds up in the returned dict
    (seconds; the caller clears it between queries)."""
    import functools

    import graphmem.retrieve.retriever as module
    from graphmem.retrieve.retriever import Retriever

    current: dict = {}

    def wrap(owner, name, label):
        original = getattr(owner, name, None)
        if original is None or getattr(original, "_scale_timed", False):
            return

        @functools.wraps(original)
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                current[label] = current.get(label, 0.0) + time.perf_counter() - t

        timed._scale_timed = True
        setattr(owner, name, timed)

    wrap(Retriever, "passage_scores", "passage scores")
    wrap(Retriever, "entities_in", "query entities")
    wrap(module, "build_seeds", "seeds")
    wrap(module, "add_fact_episode_seeds", "seeds")
    wrap(module, "push_pagerank", "PPR")
    wrap(module, "personalized_pagerank", "PPR")
    wrap(Retriever, "push_operator", "PPR")
    wrap(module, "apply_bridge", "bridge")
    wrap(module, "apply_bridge_local", "bridge")
    wrap(Retriever, "_bridge_dense", "bridge")
    return current


def time_queries(retriever, texts, vectors, mode: str, steps: dict, fetch=None) -> dict:
    """One query at a time: p50/p95/mean ms of ``retriever.search_many`` (retrieval only) and
    per step; ``fetch(uuids)`` timed apart when given."""
    import statistics

    import numpy as np

    totals, fetches, per_step = [], [], {name: [] for name in (*STEP_NAMES, "other")}
    for i in range(len(texts)):
        steps.clear()
        t = time.perf_counter()
        hits = retriever.search_many([texts[i]], 10, mode=mode, query_vectors=vectors[i : i + 1])
        total = time.perf_counter() - t
        totals.append(total * 1000)
        if mode == "graph":
            for name in STEP_NAMES:
                per_step[name].append(steps.get(name, 0.0) * 1000)
            per_step["other"].append((total - sum(steps.values())) * 1000)
        if fetch is not None:
            t = time.perf_counter()
            fetch(sorted({h.uuid for h in hits[0]}))
            fetches.append((time.perf_counter() - t) * 1000)
    out = {
        "queries": len(texts),
        "p50_ms": percentile(totals, 50),
        "p95_ms": percentile(totals, 95),
        "mean_ms": round(statistics.fmean(totals), 3) if totals else None,
        "max_ms": round(max(totals), 3) if totals else None,
    }
    if mode == "graph":
        out["steps_mean_ms"] = {k: round(float(np.mean(v)), 3) for k, v in per_step.items() if v}
        out["steps_p50_ms"] = {k: percentile(v, 50) for k, v in per_step.items() if v}
    if fetches:
        out["fetch_p50_ms"] = percentile(fetches, 50)
        out["fetch_mean_ms"] = round(statistics.fmean(fetches), 3)
    return out


def run_probe(group_dir: Path, queries: Path, path: str, n: int, cold: str, cores: int) -> dict:
    """The ``probe`` command in a fresh process (pinned like this one), after emptying the page
    cache of ``group_dir`` if ``cold`` is not ``none``."""
    done = evict(group_dir, cold)
    resident = resident_mib(group_dir)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "probe",
        "--group-dir",
        str(group_dir),
        "--queries",
        str(queries),
        "--path",
        path,
        "--n",
        str(n),
        "--cores",
        str(cores),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"probe failed:\n{result.stderr[-4000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out.update({"cache": done, "resident_before_mib": resident})
    return out


def cmd_probe(args) -> None:
    """Open the projection in this fresh process and query it: open time, first query, RSS."""
    chosen = pin(args.cores)
    out = {"cores": chosen, "start": None}
    import numpy as np

    from graphmem.config import RetrievalSettings
    from graphmem.retrieve.projection import open_projection
    from graphmem.retrieve.retriever import Retriever

    data = np.load(args.queries, allow_pickle=False)
    texts, vectors = [str(t) for t in data["texts"]], np.asarray(data["vectors"], dtype=np.float32)
    out["start"] = rss()
    t = time.perf_counter()
    projection = open_projection(Path(args.group_dir))
    out["open_s"] = round(time.perf_counter() - t, 4)
    if projection is None:
        raise SystemExit(f"no projection in {args.group_dir}")
    out["after_open"] = rss()
    retriever = Retriever(projection, None, RetrievalSettings(**PATHS[args.path]))  # type: ignore[arg-type]
    steps = install_step_timers()
    t = time.perf_counter()
    retriever.search_many(texts[:1], 10, query_vectors=vectors[:1])
    out["first_query_s"] = round(time.perf_counter() - t, 4)
    out["first_query_steps_s"] = {k: round(v, 4) for k, v in steps.items()}
    out["after_first_query"] = rss()
    n = min(args.n, len(texts) - 1)
    out["queries"] = time_queries(retriever, texts[1 : n + 1], vectors[1 : n + 1], "graph", steps)
    out["after_queries"] = rss()
    print(json.dumps(out))


# -- measure ------------------------------------------------------------------------------------
def interleave(per_set: list[list[int]], n: int) -> list[tuple[int, int]]:
    """Up to ``n`` (set, question) pairs taken round-robin over the sets."""
    out, depth = [], 0
    while len(out) < n and any(depth < len(q) for q in per_set):
        for s, questions in enumerate(per_set):
            if depth < len(questions) and len(out) < n:
                out.append((s, questions[depth]))
        depth += 1
    return out


def cmd_measure(args) -> None:
    chosen = pin(args.cores)
    import numpy as np

    from graphmem import Memory
    from graphmem.eval.runner import score
    from graphmem.retrieve.projection import group_dir_of

    home = Path(args.home)
    state = json.loads((home / STATE).read_text())
    config = state["config"]
    sets = load_sets(config)
    # spaCy in-process: a search needs no worker pool (query entities are looked up by name)
    settings = store_settings(home, args.embedder, extract_processes=1)
    result: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": chosen,
        "cpu": _cpu_name(),
        "build": {
            k: state.get(k)
            for k in ("config", "ingested", "complete", "rate", "indexes", "stats_after_build", "stats_final")
        },
    }
    with Memory(settings) as memory:
        try:
            import torch

            torch.set_num_threads(len(chosen))
        except ImportError:
            pass
        stats = memory.stats()
        result["stats"] = stats
        texts = [q.text for ds in sets for q in ds.questions]
        t = time.perf_counter()
        vectors = np.asarray(memory.embedder.embed(texts), dtype=np.float32)
        result["query_embedding_s"] = round(time.perf_counter() - t, 2)
        offsets = np.cumsum([0] + [len(ds.questions) for ds in sets])
        sample = interleave([list(range(offsets[i], offsets[i + 1])) for i in range(len(sets))], args.queries)
        order = [q for _, q in sample]
        q_texts, q_vectors = [texts[i] for i in order], vectors[order]
        queries_file = home / QUERIES
        np.savez(queries_file, texts=np.array(q_texts), vectors=q_vectors)
        group_dir = group_dir_of(home / "cache", settings.group_id)
        memory.retriever  # noqa: B018 (the projection at the store's revision, before the probes map it)
        memory._retriever = None  # and unmapped again: mapped pages would stay in the page cache
        gc.collect()
        result["projection_files_mib"] = size_mib(group_dir)
        print(
            f"store: {stats}; projection files {result['projection_files_mib']:,} MiB; pinned to cores {chosen}",
            flush=True,
        )

        # fresh processes: open time (cold, then warm) and memory of a search process
        result["probes"] = {}
        for label, path, cold in (
            ()
            if args.no_probes
            else (("flat, cold", "flat", args.cold), ("flat, warm", "flat", "none"), ("exact, warm", "exact", "none"))
        ):
            n = args.probe_queries if path == "flat" else min(args.probe_queries, args.exact_queries)
            result["probes"][label] = probe = run_probe(group_dir, queries_file, path, n, cold, args.cores)
            print(
                f"  probe {label}: open {probe['open_s'] * 1000:.1f} ms, first query {probe['first_query_s']:.2f} s, "
                f"RSS {probe['after_queries']['rss_mib']:.0f} MiB (anon {probe['after_queries']['anon_mib']:.0f}), "
                f"p50 {probe['queries']['p50_ms']} ms",
                flush=True,
            )

        # in this process: latency per step, and recall, with the projection in the page cache
        result["warmed_mib"] = warm_files(group_dir)
        t = time.perf_counter()
        retriever = memory.retriever
        result["open_in_process_s"] = round(time.perf_counter() - t, 3)
        base = retriever.settings
        steps = install_step_timers()
        fetch = memory.episodes
        result["latency"], result["recall"], result["first_query_s"] = {}, {}, {}
        systems = [
            ("graph, flat", "flat", "graph"),
            ("graph, exact", "exact", "graph"),
            ("dense (ann)", "flat", "dense"),
            ("dense (exact)", "exact", "dense"),
        ]
        for label, path, mode in systems:
            retriever.settings = base.model_copy(update=PATHS[path])
            t = time.perf_counter()
            retriever.search_many(q_texts[:1], 10, mode=mode, query_vectors=q_vectors[:1])
            result["first_query_s"][label] = round(time.perf_counter() - t, 3)
            n = len(q_texts) if path == "flat" or mode == "dense" else min(len(q_texts), args.exact_queries)
            row = time_queries(retriever, q_texts[:n], q_vectors[:n], mode, steps, fetch)
            result["latency"][label] = row
            print(
                f"  {label:<14} p50 {row['p50_ms']:8.2f} ms  p95 {row['p95_ms']:8.2f} ms  "
                f"fetch p50 {row.get('fetch_p50_ms')} ms  ({row['queries']} queries)",
                flush=True,
            )
            if args.no_recall:
                continue
            started = time.perf_counter()
            for i, ds in enumerate(sets):
                lo, hi = offsets[i], offsets[i + 1]
                rows = []
                for start in range(lo, hi, args.batch):
                    end = min(hi, start + args.batch)
                    hits = memory.search_many(texts[start:end], 10, mode=mode, query_vectors=vectors[start:end])
                    rows += [[ds.passage_id(h) for h in row] for row in hits]
                _, summary, _ = score(ds.questions, {label: rows}, {}, KS)
                result["recall"].setdefault(ds.name, {})[label] = {
                    k: v for k, v in summary[label].items() if k.startswith("recall") or k == "questions"
                }
            print(
                "    recall@5: "
                + ", ".join(f"{ds.name} {result['recall'][ds.name][label]['recall@5']:.3f}" for ds in sets)
                + f" ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        retriever.settings = base
        result["measuring_process"] = rss()
        result["measuring_process_note"] = (
            "holds the embedder (torch) and the store client too; see probes for a search process"
        )
    summarize(result)
    if args.out:
        write_json(Path(args.out), result)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def summarize(result: dict) -> None:
    latency = result.get("latency") or {}
    if latency:
        flat, exact = latency.get("graph, flat"), latency.get("graph, exact")
        print(f"\n{'system':<16} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'fetch p50':>10}")
        for label, row in latency.items():
            print(
                f"{label:<16} {row['p50_ms']:>9.2f} {row['p95_ms']:>9.2f} {row['mean_ms']:>9.2f} "
                f"{row.get('fetch_p50_ms') or 0:>10.2f}"
            )
        if flat and exact:
            print(f"exact / flat p50: {exact['p50_ms'] / flat['p50_ms']:.1f}x")
            print(f"\n{'step (mean ms)':<18} {'flat':>9} {'exact':>9} {'exact/flat':>11}")
            for name in (*STEP_NAMES, "other"):
                f, e = flat["steps_mean_ms"].get(name, 0.0), exact["steps_mean_ms"].get(name, 0.0)
                print(f"{name:<18} {f:>9.2f} {e:>9.2f} {(e / f if f else float('nan')):>10.1f}x")
    for label, probe in (result.get("probes") or {}).items():
        print(
            f"probe {label:<12} open {probe['open_s']:.3f} s  first query {probe['first_query_s']:.3f} s  "
            f"RSS {probe['after_queries']['rss_mib']:.0f} MiB (peak {probe['after_queries']['peak_mib']:.0f}, "
            f"anon {probe['after_queries']['anon_mib']:.0f})  p50 {probe['queries']['p50_ms']} ms  [{probe['cache']}]"
        )
    recall = result.get("recall") or {}
    if recall:
        systems = list(next(iter(recall.values())))
        print(f"\n{'R@2 / R@5':<18}" + "".join(f"{s:>18}" for s in systems))
        for name, rows in recall.items():
            print(f"{name:<18}" + "".join(f"{rows[s]['recall@2']:>9.3f}{rows[s]['recall@5']:>9.3f}" for s in systems))


# -- synthetic ----------------------------------------------------------------------------------
def cmd_synthetic(args) -> None:
    """Generate (once) a synthetic projection of ``--passages`` passages and probe it."""
    directory = Path(args.dir)
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import projection_open  # helper's generator: benchmarks/projection_open.py
    except ImportError as error:
        raise SystemExit(f"benchmarks/projection_open.py (the synthetic generator) does not import: {error}") from error
    from graphmem.retrieve.projection import group_dir_of

    group_dir = group_dir_of(directory / "cache", projection_open.GROUP)
    result: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": _cpu_name(),
        "passages": args.passages,
        "generator": "benchmarks/projection_open.py generate(seed=7)",
    }
    if not (group_dir / "manifest.json").exists():
        t = time.perf_counter()
        projection_open.generate(directory, args.passages)
        result["generate_s"] = round(time.perf_counter() - t, 1)
    # indexes with every core (saved beside the projection), then queries drawn from the passages
    t = time.perf_counter()
    paths = args.paths.split(",")
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "_synthetic_prepare",
            "--dir",
            str(directory),
            "--group-dir",
            str(group_dir),
            "--n",
            str(args.queries),
            *(["--indexes"] if "flat" in paths else []),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"preparing the synthetic projection failed:\n{out.stderr[-4000:]}")
    result["prepare"] = json.loads(out.stdout.strip().splitlines()[-1])
    result["prepare_s"] = round(time.perf_counter() - t, 1)
    result["projection_files_mib"] = size_mib(group_dir)
    print(
        f"synthetic {args.passages:,} passages: {result['prepare']}; {result['projection_files_mib']:,} MiB", flush=True
    )
    queries = directory / QUERIES
    pin(args.cores)  # the probes inherit it
    result["cores"] = sorted(os.sched_getaffinity(0))
    result["probes"] = {}
    runs = [(f"{paths[0]}, cold", paths[0], args.cold), *((f"{p}, warm", p, "none") for p in paths)]
    for label, path, cold in runs:
        n = args.queries if path == "flat" else args.exact_queries
        result["probes"][label] = probe = run_probe(group_dir, queries, path, n, cold, args.cores)
        print(
            f"  probe {label}: open {probe['open_s'] * 1000:.1f} ms, first query {probe['first_query_s']:.2f} s, "
            f"RSS {probe['after_queries']['rss_mib']:.0f} MiB, p50 {probe['queries']['p50_ms']} ms, "
            f"steps {probe['queries']['steps_mean_ms']}",
            flush=True,
        )
    summarize(result)
    if args.out:
        write_json(Path(args.out), result)


def cmd_synthetic_prepare(args) -> None:
    """(every core) the flat path's ANN indexes of a synthetic projection, and its query set:
    ``--n`` passages drawn at random, each query the passage's vector plus noise of the
    generator's own spread, and its text ten of the passage's words plus the names of two
    entities it mentions (so the query-entity lookup finds them)."""
    import numpy as np

    from graphmem.config import RetrievalSettings
    from graphmem.retrieve.projection import open_projection
    from graphmem.retrieve.retriever import Retriever

    projection = open_projection(Path(args.group_dir))
    retriever = Retriever(projection, None, RetrievalSettings(**PATHS["flat"]))  # type: ignore[arg-type]
    out = {
        "episodes": len(projection.episode_ids),
        "facts": len(projection.fact_ids),
        "entities": projection.n_entities,
    }
    for name in ("episodes", "facts") if args.indexes else ():
        t = time.perf_counter()
        retriever.vector_index(name)
        out[f"{name}_index_s"] = round(time.perf_counter() - t, 1)
    rng = np.random.default_rng(11)
    P = len(projection.episode_ids)
    picks = np.sort(rng.choice(P, size=min(args.n + 1, P), replace=False))
    wanted = {int(p): None for p in picks}
    with open(Path(args.dir) / "texts.txt", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i in wanted:
                wanted[i] = line.split()[:10]
            if i >= picks[-1]:
                break
    incidence = projection.episode_entities()
    texts, vectors = [], []
    for p in picks:
        entities = incidence[int(p)].indices[:2]
        names = [projection.entity_names[int(e)] for e in entities]
        texts.append(" ".join((wanted[int(p)] or []) + names) + "?")
        v = np.asarray(projection.episode_vectors[int(p)], dtype=np.float32)
        v = v + rng.standard_normal(len(v)).astype(np.float32) * 0.05
        vectors.append(v / np.linalg.norm(v))
    order = rng.permutation(len(texts))
    np.savez(
        Path(args.dir) / QUERIES,
        texts=np.array([texts[i] for i in order]),
        vectors=np.stack([vectors[i] for i in order]),
    )
    print(json.dumps(out))


# -- command line -------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="fill (or continue filling) the scale store, then the rate test")
    b.add_argument("--home", required=True, help="store folder (created, or continued)")
    b.add_argument("--datasets", default=",".join(DEV_SETS), help="development corpora, in build order")
    b.add_argument("--data-dir", default=None, help="folder of the datasets [default: ../shared/data]")
    b.add_argument("--limit", type=int, default=None, help="questions per dataset (with --corpus-limit: small checks)")
    b.add_argument("--corpus-limit", type=int, default=None, help="keep gold passages + this many others per dataset")
    b.add_argument("--scale", default=None, help="distractor file [default: <data-dir>/scale/corpus.jsonl.gz]")
    b.add_argument("--passages", type=int, default=None, help="distractors to use (a prefix) [default: all 69,444]")
    b.add_argument("--heldout", type=int, default=2000, help="distractors held out for the ingestion-rate test")
    b.add_argument("--warmup", type=int, default=64, help="distractors ingested before each timed rate run")
    b.add_argument("--chunk", type=int, default=4000, help="passages per ingest call (progress is saved after each)")
    b.add_argument("--stop-at", type=int, default=None, help="stop once this many of the build list are in")
    b.add_argument("--deadline", type=float, default=None, help="seconds after which no new chunk starts")
    b.add_argument("--rate-reserve", type=float, default=90, help="seconds before --deadline the rate test needs")
    b.add_argument("--index-reserve", type=float, default=120, help="seconds before --deadline the indexes need")
    b.add_argument("--no-indexes", action="store_true", help="do not build the ANN indexes at the end")
    b.add_argument("--embedder", default=None, help="embedder (a model folder) [default: GRAPHMEM_EMBEDDER or minilm]")

    m = sub.add_parser("measure", help="latency, memory, open time and recall on a built store")
    m.add_argument("--home", required=True)
    m.add_argument("--queries", type=int, default=200, help="questions timed one at a time (round-robin over the sets)")
    m.add_argument("--exact-queries", type=int, default=200, help="at most this many for the exact path")
    m.add_argument("--probe-queries", type=int, default=50, help="queries in each fresh-process probe")
    m.add_argument("--cores", type=int, default=2)
    m.add_argument(
        "--cold",
        choices=("drop", "fadvise", "none"),
        default="fadvise",
        help="how the first probe empties the page cache (drop: every file, needs root)",
    )
    m.add_argument("--batch", type=int, default=32, help="questions per batched search for recall")
    m.add_argument("--no-recall", action="store_true")
    m.add_argument("--no-probes", action="store_true", help="skip the fresh-process open/memory probes")
    m.add_argument("--embedder", default=None)
    m.add_argument("--out", default=None, help="write the results as JSON")

    s = sub.add_parser("synthetic", help="latency, memory and open time on a generated projection")
    s.add_argument("--dir", required=True, help="where the projection is generated (reused if there)")
    s.add_argument("--passages", type=int, default=1_000_000)
    s.add_argument("--queries", type=int, default=100)
    s.add_argument("--exact-queries", type=int, default=10)
    s.add_argument("--cores", type=int, default=2)
    s.add_argument("--cold", choices=("drop", "fadvise", "none"), default="fadvise")
    s.add_argument(
        "--paths",
        default="flat,exact",
        help="paths to probe (the first also cold); 'exact' alone skips building the ANN indexes",
    )
    s.add_argument("--out", default=None)

    p = sub.add_parser("probe", help="(internal) open a projection in a fresh process and query it")
    p.add_argument("--group-dir", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--path", choices=tuple(PATHS), default="flat")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--cores", type=int, default=2)

    sp = sub.add_parser("_synthetic_prepare", help="(internal) indexes and queries of a synthetic projection")
    sp.add_argument("--dir", required=True)
    sp.add_argument("--group-dir", required=True)
    sp.add_argument("--n", type=int, default=100)
    sp.add_argument("--indexes", action="store_true", help="build the flat path's ANN indexes")

    args = parser.parse_args()
    if args.command == "build":
        if args.scale is None:
            base = Path(args.data_dir) if args.data_dir else REPO.parent / "shared" / "data"
            args.scale = base / "scale" / "corpus.jsonl.gz"
            if not args.scale.exists() and (base / "scale" / "corpus.jsonl").exists():
                args.scale = base / "scale" / "corpus.jsonl"
        cmd_build(args)
    elif args.command == "measure":
        cmd_measure(args)
    elif args.command == "synthetic":
        cmd_synthetic(args)
    elif args.command == "probe":
        cmd_probe(args)
    else:
        cmd_synthetic_prepare(args)


if __name__ == "__main__":
    main()

"""Query latency at a given store size, graph search against its own baselines.

The target: on CPU, after the embedding of the query, graph search takes
p50 < 30 ms on a corpus of 10,000 passages. This script fills a store (or tops
up an existing one, e.g. a `graphmem eval --home` store) with passages of one
or more development corpora until it holds ``--passages``, then times
retrieval one query at a time, in the same run, for:

  dense    the passages' vectors against the query vector (the baseline)
  bm25     BM25 over the passages
  graph    graphmem's search (seeds, PPR, fusion, bridge)
  graph, NER query entities   the same with ``query_entities: ner`` (spaCy on the query)

and prints one table (p50/p95/mean ms, ratio to dense) plus where graph search
spends its time (per step, mean ms).

    python benchmarks/query_latency.py --home /tmp/lat10k --passages 10000 \\
        --datasets 2wikimultihopqa,musique --queries 200
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="store folder (created, or topped up and reused)")
    parser.add_argument("--passages", type=int, default=10000, help="passages the store should hold")
    parser.add_argument("--datasets", default="2wikimultihopqa,musique", help="corpora to draw passages from, in order")
    parser.add_argument("--data-dir", default=None, help="folder holding the datasets [default: ../shared/data]")
    parser.add_argument("--queries", type=int, default=200, help="questions to time (from the same datasets)")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args()

    import numpy as np

    from graphmem import Memory
    from graphmem.config import Settings
    from graphmem.eval import load_dataset

    datasets = [load_dataset(name, data_dir=args.data_dir) for name in args.datasets.split(",")]
    documents = [d for ds in datasets for d in ds.documents()][: args.passages]
    questions = [q.text for ds in datasets for q in ds.questions][: args.queries]
    settings = Settings.from_env(home=args.home, chunk_words=10000, chunk_overlap=0)
    with Memory(settings) as memory:
        started = time.perf_counter()
        report = memory.ingest_documents(documents)
        print(f"store: {report.summary()} ({time.perf_counter() - started:.0f} s)")
        stats = memory.stats()
        retriever = memory.retriever
        projection = retriever.projection
        vectors = memory.embedder.embed(questions)
        steps = _time_steps()
        rows = {}
        defaults = retriever.settings
        for mode in ("dense", "bm25", "graph", "graph, NER query entities"):
            retriever.settings = defaults
            if mode.startswith("graph,"):  # the other way to find the query's entities, same store
                retriever.settings = defaults.model_copy(update={"query_entities": "ner"})
            mode, label = mode.split(",")[0], mode
            retriever.search_many(questions[:2], 10, mode=mode, query_vectors=vectors[:2])  # warm caches
            steps.clear()
            times = []
            for i in range(len(questions)):
                t = time.perf_counter()
                retriever.search_many([questions[i]], 10, mode=mode, query_vectors=vectors[i : i + 1])
                times.append((time.perf_counter() - t) * 1000)
            rows[label] = {
                "p50_ms": float(np.percentile(times, 50)),
                "p95_ms": float(np.percentile(times, 95)),
                "mean_ms": statistics.fmean(times),
            }
            if mode == "graph":
                rows[label]["steps_mean_ms"] = {k: v * 1000 / len(questions) for k, v in steps.items()}
        retriever.settings = defaults

    base = rows["dense"]["p50_ms"]
    print(
        f"{stats.get('episodes')} passages, {projection.n_entities} entities, {len(projection.fact_ids)} facts, "
        f"{projection.n_nodes} PPR nodes; {len(questions)} queries, one at a time, query embedding excluded"
    )
    print(f"{'system':<26} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'p50 vs dense':>13}")
    for mode, row in rows.items():
        print(
            f"{mode:<26} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {row['mean_ms']:>8.1f} "
            f"{row['p50_ms'] / base:>12.0f}x"
        )
    for label in ("graph", "graph, NER query entities"):
        print(f"{label}: mean ms per query by step:")
        for name, ms in sorted(rows[label]["steps_mean_ms"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:<28} {ms:6.1f}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"stats": stats, "queries": len(questions), "systems": rows}, handle, indent=2)


def _time_steps() -> collections.Counter:
    """Wrap the retrieval steps to add up their time (seconds) per step name."""
    import graphmem.retrieve.retriever as retriever_module
    from graphmem.retrieve.retriever import Retriever

    totals: collections.Counter = collections.Counter()

    def wrap(owner, name, label):
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                totals[label] += time.perf_counter() - t

        setattr(owner, name, timed)

    wrap(Retriever, "passage_scores", "passage scores (dense+bm25)")
    wrap(Retriever, "entities_in", "query entities")
    for name in ("build_seeds", "personalized_pagerank", "add_fact_episode_seeds", "apply_bridge"):
        if hasattr(retriever_module, name):
            wrap(retriever_module, name, name)
    return totals


if __name__ == "__main__":
    main()

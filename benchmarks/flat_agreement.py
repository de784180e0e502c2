"""How far the flat query path (ANN vector search + forward-push PPR) moves the rankings
from the exact path (exact dense scores + power iteration), on the development sets.

For each ``DATASET=HOME`` (a store made by ``graphmem eval DATASET --home HOME``), the
same projection is searched by four retrievers that differ only in
``vector_index`` / ``ppr``: exact+power (today's path), ann+power, exact+push and
ann+push (the flat path). Reported per dataset and path: Recall@2/5/10 of graph
search, the mean overlap of its top 5 passages with exact+power's top 5, the
Recall@5 difference, the dense baseline with the same vector search, and the
retrieval latency one query at a time (query vectors precomputed).

    python benchmarks/flat_agreement.py hotpotqa=/tmp/h-hotpotqa musique=/tmp/h-musique \\
        2wikimultihopqa=/tmp/h-2wiki --out flat-agreement.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

PATHS = {
    "exact+power": ("exact", "power", None),
    "ann+power": ("ann", "power", None),
    "exact+push": ("exact", "push", None),
    "ann+push": ("ann", "push", None),
    "auto (the defaults)": ("auto", "auto", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", help="DATASET=HOME pairs")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    parser.add_argument("--retrieval", action="append", default=[], help="KNOB=VALUE for every path")
    parser.add_argument("--push-epsilons", default="", help="also run ann+push at these push_epsilon values")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from graphmem import Memory
    from graphmem.config import RetrievalSettings, Settings
    from graphmem.eval import load_dataset
    from graphmem.eval.metrics import recall_at_k
    from graphmem.retrieve.retriever import Retriever

    extra = {}
    for item in args.retrieval:
        key, _, value = item.partition("=")
        extra[key] = json.loads(value) if value[:1] in "0123456789-[{tfn" else value
    paths = dict(PATHS)
    for eps in filter(None, args.push_epsilons.split(",")):
        paths[f"exact+push eps={eps}"] = ("exact", "push", float(eps))
        paths[f"ann+push eps={eps}"] = ("ann", "push", float(eps))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()} {__import__('os').cpu_count()} cores",
        "datasets": {},
    }
    for spec in args.stores:
        name, _, home = spec.partition("=")
        dataset = load_dataset(name, data_dir=args.data_dir)
        questions = [q for q in dataset.questions if q.gold][: args.limit]
        texts = [q.text for q in questions]
        with Memory(Settings.from_env(home=home)) as memory:
            base = memory.retriever
            projection = base.projection
            vectors = np.asarray(memory.embedder.embed(texts), dtype=np.float32)
            sizes = {
                "passages": len(projection.episode_ids),
                "entities": projection.n_entities,
                "facts": len(projection.fact_ids),
                "questions": len(texts),
            }
            rankings: dict[str, list[list[str]]] = {}
            timing: dict[str, dict] = {}
            for label, (vector_index, ppr, eps) in paths.items():
                knobs = {**extra, "vector_index": vector_index, "ppr": ppr}
                if eps is not None:
                    knobs["push_epsilon"] = eps
                settings = RetrievalSettings(**knobs)
                retriever = Retriever(projection, memory.embedder, settings)
                started = time.perf_counter()
                retriever.search_many(texts[:1], 10, query_vectors=vectors[:1])  # builds the indexes
                warm_s = time.perf_counter() - started
                for mode in ("graph", "dense"):
                    rows = []
                    for start in range(0, len(texts), 32):
                        chunk = slice(start, start + 32)
                        rows += retriever.search_many(texts[chunk], 10, mode=mode, query_vectors=vectors[chunk])
                    rankings[f"{label}:{mode}"] = [[h.uuid for h in row] for row in rows]
                ms = []
                for i in range(len(texts)):
                    started = time.perf_counter()
                    retriever.search_many(texts[i : i + 1], 10, query_vectors=vectors[i : i + 1])
                    ms.append((time.perf_counter() - started) * 1000)
                timing[label] = {
                    "first_query_s": round(warm_s, 2),
                    "p50_ms": round(float(np.percentile(ms, 50)), 2),
                    "p95_ms": round(float(np.percentile(ms, 95)), 2),
                }
            uuids = sorted({u for rows in rankings.values() for row in rows for u in row})
            episodes = memory.episodes(uuids)

        def ids(row: list[str], episodes: dict = episodes, dataset: Any = dataset) -> list[str | None]:
            return [
                dataset.passage_id(SimpleNamespace(source=episodes[u].get("source_name") or ""))
                if u in episodes
                else None
                for u in row
            ]

        recall = {
            key: {
                k: float(np.mean([recall_at_k(ids(row), q.gold, k) for row, q in zip(rows, questions, strict=True)]))
                for k in (2, 5, 10)
            }
            for key, rows in rankings.items()
        }
        reference = rankings["exact+power:graph"]
        rows_out = {}
        for label in paths:
            got = rankings[f"{label}:graph"]
            overlap = float(
                np.mean(
                    [len(set(a[:5]) & set(b[:5])) / max(1, len(b[:5])) for a, b in zip(got, reference, strict=True)]
                )
            )
            rows_out[label] = {
                "recall": recall[f"{label}:graph"],
                "dense_recall": recall[f"{label}:dense"],
                "top5_overlap": overlap,
                "recall5_minus_exact": recall[f"{label}:graph"][5] - recall["exact+power:graph"][5],
                **timing[label],
            }
        report["datasets"][name] = {"sizes": sizes, "paths": rows_out}
        print(f"\n{name}: {sizes}")
        print(
            "| path | R@2 | R@5 | R@10 | top-5 overlap with exact+power | R@5 - exact+power | dense R@5 "
            "| p50 / p95 ms |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for label, r in rows_out.items():
            print(
                f"| {label} | {r['recall'][2]:.3f} | {r['recall'][5]:.3f} | {r['recall'][10]:.3f} | "
                f"{r['top5_overlap']:.3f} | {100 * r['recall5_minus_exact']:+.1f} pts | {r['dense_recall'][5]:.3f} | "
                f"{r['p50_ms']} / {r['p95_ms']} |",
                flush=True,
            )
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()

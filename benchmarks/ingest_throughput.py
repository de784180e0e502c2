"""Ingestion throughput against its own baseline: embedding the same passages alone.

The target: end-to-end ingestion (extraction, embedding, store writes) at
>= 70% of the throughput of embedding the passages alone, same model, same
machine, same run. This script measures, on the first N passages of a
development corpus (or the bundled sample):

  embed only        the embedder on the passages' text (the baseline)
  spaCy only        the extractor on the same text
  graphmem ingest   Memory.ingest_documents into a fresh embedded store

and prints one table with each row's ratio to the baseline.

    python benchmarks/ingest_throughput.py --dataset musique --passages 400
    python benchmarks/ingest_throughput.py --dataset musique --passages 400 --processes 1 --no-context-vectors
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sample", help="sample, or a dataset name/path for graphmem.eval")
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument(
        "--processes", type=int, default=0, help="spaCy worker processes for ingestion (0: automatic, 1: in-process)"
    )
    parser.add_argument(
        "--no-context-vectors",
        action="store_true",
        help="embed every new name and fact text on its own instead of pooling from the passage",
    )
    args = parser.parse_args()

    from graphmem import Memory
    from graphmem.config import Settings
    from graphmem.ingest.pipeline import extraction_text

    if args.dataset == "sample":
        from graphmem.ingest.readers import read_documents

        docs = read_documents([str(Path(__file__).resolve().parents[1] / "examples" / "docs")])
        chunking = {}
    else:
        from graphmem.eval import load_dataset

        docs = list(load_dataset(args.dataset).documents())
        chunking = {"chunk_words": 10000, "chunk_overlap": 0}  # one passage per corpus entry
    docs = docs[: args.passages]
    texts = [d.text for d in docs]
    words = sum(len(t.split()) for t in texts)

    with tempfile.TemporaryDirectory() as home:
        memory = Memory(
            Settings(
                home=home, extract_processes=args.processes, context_vectors=not args.no_context_vectors, **chunking
            )
        )
        embedder, extractor = memory.embedder, memory.extractor
        embedder.embed(["warm up"])
        extractor.extract(["Warm up the pipeline."])

        rows = []
        started = time.perf_counter()
        embedder.embed(texts)
        rows.append(("embed only (baseline)", time.perf_counter() - started))
        started = time.perf_counter()
        extractor.extract([extraction_text(t) for t in texts])
        rows.append(("spaCy only", time.perf_counter() - started))
        started = time.perf_counter()
        report = memory.ingest_documents(docs)
        rows.append(("graphmem ingest (end to end)", time.perf_counter() - started))
        memory.close()

    base = len(texts) / rows[0][1]
    print(f"{len(texts)} passages ({words} words) from {args.dataset}; ingest: {report.summary()}")
    print(f"{'stage':<30} {'seconds':>8} {'passages/s':>11} {'vs embed only':>14}")
    for name, seconds in rows:
        rate = len(texts) / seconds
        print(f"{name:<30} {seconds:>8.1f} {rate:>11.1f} {rate / base:>13.0%}")


if __name__ == "__main__":
    main()

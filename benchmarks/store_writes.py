"""Vector writes into the embedded FalkorDB: what one stored vector costs as the store grows.

Ingestion stores a vector per passage, per new entity and per fact (about 18 per
MuSiQue passage). This script writes N unit vectors of the embedder's size onto
N existing nodes, in the batches ingestion uses, four ways:

  client params + HNSW index   the falkordb client's parameter text (repr of every
                               float) and a vector index on the label: how graphmem
                               wrote entity vectors before (the baseline)
  client params, no index      the same text, no vector index on the label
  graphmem params + index      graphmem's scaled-integer vector text
                               (graphmem/store/falkordb.py), with the index
  graphmem params, no index    what entity vectors cost now

and prints ms per vector row, overall and over the last fifth of the rows (the
HNSW insert cost grows with the index), each with its ratio to the baseline.

    python benchmarks/store_writes.py --rows 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

QUERY = "UNWIND $rows AS r MATCH (n:{label} {{uuid: r.uuid}}) SET n.embedding = vecf32(r.embedding)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=125, help="rows per query (ingestion's vector batch)")
    args = parser.parse_args()

    from graphmem.store.falkordb import FalkorDBStore

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ways = [
        ("client params + HNSW index", "A", True, True),
        ("client params, no index", "B", True, False),
        ("graphmem params + index", "C", False, True),
        ("graphmem params, no index", "D", False, False),
    ]
    results = []
    with tempfile.TemporaryDirectory() as home:
        store = FalkorDBStore(home)
        graph = store._graph  # the client's own query path, for the baseline rows
        try:
            for name, label, client, index in ways:
                graph.query(f"UNWIND range(0, {args.rows - 1}) AS i CREATE (:{label} {{uuid: toString(i)}})")
                graph.query(f"CREATE INDEX FOR (n:{label}) ON (n.uuid)")
                if index:
                    graph.query(
                        f"CREATE VECTOR INDEX FOR (n:{label}) ON (n.embedding) "
                        f"OPTIONS {{dimension: {args.dim}, similarityFunction: 'cosine'}}"
                    )
                text = QUERY.format(label=label)
                tail_from = args.rows - args.rows // 5
                started = time.perf_counter()
                tail_started = started
                for start in range(0, args.rows, args.batch):
                    if start >= tail_from and tail_started == started:
                        tail_started = time.perf_counter()
                    stop = min(args.rows, start + args.batch)
                    if client:
                        rows = [{"uuid": str(i), "embedding": vectors[i].tolist()} for i in range(start, stop)]
                        graph.query(text, {"rows": rows})
                    else:
                        rows = [{"uuid": str(i), "embedding": vectors[i]} for i in range(start, stop)]
                        store._query(text, {"rows": rows})
                ended = time.perf_counter()
                results.append(
                    (
                        name,
                        (ended - started) / args.rows * 1000,
                        (ended - tail_started) / (args.rows - tail_from) * 1000,
                    )
                )
        finally:
            store.close()

    base_all, base_tail = results[0][1], results[0][2]
    print(f"{args.rows} vectors of {args.dim} floats, {args.batch} per query, embedded FalkorDB")
    print(f"{'way':<30} {'ms/row':>8} {'vs base':>8} {'last 20% ms/row':>16} {'vs base':>8}")
    for name, overall, tail in results:
        print(f"{name:<30} {overall:>8.3f} {base_all / overall:>7.1f}x {tail:>16.3f} {base_tail / tail:>7.1f}x")


if __name__ == "__main__":
    main()

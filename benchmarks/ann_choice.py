"""Which approximate-nearest-neighbour library: hnswlib, usearch or faiss-cpu, measured here.

For each candidate and store size: build time (all rows at once, then the same
index extended by 1% more rows, as ingestion does), single-query latency for
k = 30 (p50 / p95, one query at a time, one thread: the retriever's path),
recall@30 and recall@10 against exact search (numpy, the same vectors), the
index file size and its load time. Exact numpy search is timed as the baseline.

Vectors. Real MiniLM (all-MiniLM-L6-v2) vectors of ``--real`` paragraphs of
``../shared/data/scale/corpus.jsonl.gz`` (embedded once, cached in ``--cache``)
and of the development questions, which are the queries. Sizes beyond the real
rows are made from them, so the set keeps the real vectors' shape (one narrow
cone, topic clusters): each synthetic row is ``normalise(r_i + u * r_j + s * g)``
for random real rows ``i, j``, ``u`` uniform in [0, 0.5] and ``g`` Gaussian with
``s = 0.03`` per dimension (the row's cosine to ``r_i`` is about 0.8, close to
what a paraphrase scores). Queries come from the same real distribution, so
their neighbours lie in the dense part of the set, which is the hard case.

    python benchmarks/ann_choice.py --sizes 84000,500000 --queries 300
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_vectors(count: int, cache: Path, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(paragraph vectors, question vectors), embedded once and cached."""
    if cache.exists():
        saved = np.load(cache)
        if len(saved["passages"]) >= count:
            return saved["passages"][:count], saved["questions"]
    from graphmem.embed import get_embedder

    embedder = get_embedder("minilm")
    texts = []
    with gzip.open(data_dir / "scale" / "corpus.jsonl.gz", "rt") as handle:
        for line, _ in zip(handle, range(count), strict=False):
            row = json.loads(line)
            texts.append(f"{row['title']}: {row['text']}")
    questions = []
    for name in ("hotpotqa", "musique", "2wikimultihopqa"):
        with open(data_dir / name / "questions.jsonl") as handle:
            questions += [json.loads(line)["question"] for line in handle]
    passages = embedder.embed(texts)
    queries = embedder.embed(questions)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, passages=passages, questions=queries)
    return passages, queries


def synthetic(real: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """``size`` rows: the real ones first, then mixtures of real rows plus noise (see the module doc)."""
    rng = np.random.default_rng(seed)
    out = np.empty((size, real.shape[1]), dtype=np.float32)
    n = min(size, len(real))
    out[:n] = real[:n]
    for start in range(n, size, 65536):
        stop = min(size, start + 65536)
        m = stop - start
        i = rng.integers(0, len(real), m)
        j = rng.integers(0, len(real), m)
        u = rng.uniform(0, 0.5, (m, 1)).astype(np.float32)
        block = real[i] + u * real[j] + 0.03 * rng.standard_normal((m, real.shape[1]), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ matrix.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
    return np.take_along_axis(top, order, 1)


def exact_one(matrix: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    scores = matrix @ query
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(
        np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth, strict=True)])
    )


# -- candidates: build(matrix) -> handle; add(handle, rows, first_id); search(handle, q, k) -> ids;
#    save(handle, path); load(path, dim, n) -> handle


class Hnswlib:
    name = "hnswlib 0.8.0 (HNSW M=16, ef_construction=100)"

    def build(self, matrix):
        import hnswlib

        index = hnswlib.Index(space="ip", dim=matrix.shape[1])
        index.init_index(max_elements=int(len(matrix) * 1.02) + 16, ef_construction=100, M=16)
        index.add_items(matrix, np.arange(len(matrix)), num_threads=os.cpu_count())
        index.set_num_threads(1)
        return index

    def set_ef(self, index, ef):
        index.set_ef(ef)

    def add(self, index, rows, first):
        if index.get_current_count() + len(rows) > index.get_max_elements():
            index.resize_index(index.get_current_count() + len(rows))
        index.set_num_threads(os.cpu_count())
        index.add_items(rows, np.arange(first, first + len(rows)))
        index.set_num_threads(1)

    def search(self, index, query, k):
        return index.knn_query(query, k=k)[0][0]

    def save(self, index, path):
        index.save_index(str(path))

    def load(self, path, dim, n):
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(path), max_elements=n)
        index.set_num_threads(1)
        return index


class Usearch:
    def __init__(self, dtype: str = "f32") -> None:
        self.dtype = dtype
        self.name = f"usearch 2.26 (HNSW {dtype}, connectivity=16, expansion_add=128)"

    def build(self, matrix):
        from usearch.index import Index

        index = Index(ndim=matrix.shape[1], metric="ip", dtype=self.dtype, connectivity=16, expansion_add=128)
        index.add(np.arange(len(matrix)), matrix, threads=os.cpu_count())
        return index

    def add(self, index, rows, first):
        index.add(np.arange(first, first + len(rows)), rows, threads=os.cpu_count())

    def search(self, index, query, k):
        return index.search(query, k, threads=1).keys

    def set_ef(self, index, ef):
        index.expansion_search = ef

    def save(self, index, path):
        index.save(str(path))

    def load(self, path, dim, n):
        from usearch.index import Index

        return Index.restore(str(path), view=True)  # memory-mapped: shared through the page cache


class FaissHNSW:
    name = "faiss-cpu 1.15.1 (IndexHNSWFlat M=32, efConstruction=80)"

    def build(self, matrix):
        import faiss

        faiss.omp_set_num_threads(os.cpu_count())
        index = faiss.IndexHNSWFlat(matrix.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(matrix)
        faiss.omp_set_num_threads(1)
        return index

    def set_ef(self, index, ef):
        index.hnsw.efSearch = ef

    def add(self, index, rows, first):
        import faiss

        faiss.omp_set_num_threads(os.cpu_count())
        index.add(rows)
        faiss.omp_set_num_threads(1)

    def search(self, index, query, k):
        return index.search(query.reshape(1, -1), k)[1][0]

    def save(self, index, path):
        import faiss

        faiss.write_index(index, str(path))

    def load(self, path, dim, n):
        import faiss

        return faiss.read_index(str(path))


class FaissIVF:
    name = "faiss-cpu 1.15.1 (IndexIVFFlat nlist=4*sqrt(n))"

    def build(self, matrix):
        import faiss

        faiss.omp_set_num_threads(os.cpu_count())
        nlist = int(4 * np.sqrt(len(matrix)))
        quantizer = faiss.IndexFlatIP(matrix.shape[1])
        index = faiss.IndexIVFFlat(quantizer, matrix.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        sample = matrix[np.random.default_rng(0).choice(len(matrix), min(len(matrix), 64 * nlist), replace=False)]
        index.train(sample)
        index.add(matrix)
        faiss.omp_set_num_threads(1)
        return index

    def set_ef(self, index, ef):
        index.nprobe = ef // 2  # the knob that trades speed for recall: lists probed

    add = FaissHNSW.add
    search = FaissHNSW.search
    save = FaissHNSW.save

    def load(self, path, dim, n):
        import faiss

        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP)


CANDIDATES = {
    "hnswlib": Hnswlib,
    "usearch": Usearch,
    "usearch-f16": lambda: Usearch("f16"),
    "usearch-i8": lambda: Usearch("i8"),
    "faiss-hnsw": FaissHNSW,
    "faiss-ivf": FaissIVF,
}


def timed_queries(search, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[float]]:
    found, times = [], []
    for q in queries:
        started = time.perf_counter()
        ids = search(q, k)
        times.append((time.perf_counter() - started) * 1000)
        found.append(np.asarray(ids, dtype=np.int64)[:k])
    return np.stack(found), times


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="84000,500000", help="rows of the indexed matrix")
    parser.add_argument("--queries", type=int, default=300, help="query vectors (development questions)")
    parser.add_argument("--real", type=int, default=4000, help="real paragraphs embedded (the rest is synthetic)")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument(
        "--ef",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[64, 128],
        help="search efforts: HNSW ef (expansion_search); IVF probes ef/2 lists",
    )
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "graphmem-ann-vectors.npz")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args()

    real, questions = real_vectors(args.real, args.cache, args.data_dir)
    queries = questions[np.random.default_rng(1).permutation(len(questions))[: args.queries]]
    rows = []
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print(f"real vectors {real.shape}, queries {queries.shape}, k={args.k}")
    for size in (int(s) for s in args.sizes.split(",")):
        matrix = synthetic(real, size)
        extra = synthetic(real, size // 100, seed=size)  # 1% more, added in place afterwards
        both = np.vstack([matrix, extra])
        truth = exact_top(both, queries, args.k)
        _, exact_ms = timed_queries(functools.partial(exact_one, both), queries, args.k)
        row = {
            "size": size,
            "candidate": "exact numpy (matrix-vector + argpartition)",
            "ef": None,
            "build_s": 0.0,
            "add_1pct_s": 0.0,
            "p50_ms": pct(exact_ms, 50),
            "p95_ms": pct(exact_ms, 95),
            "recall@30": 1.0,
            "recall@10": 1.0,
            "file_mb": both.nbytes / 2**20,
            "load_s": None,
        }
        rows.append(row)
        print(json.dumps(row))
        for key in args.candidates.split(","):
            candidate = CANDIDATES[key]()
            started = time.perf_counter()
            index = candidate.build(matrix)
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            candidate.add(index, extra, len(matrix))
            add_s = time.perf_counter() - started
            with tempfile.TemporaryDirectory(prefix="ann-choice-") as tmp:
                path = Path(tmp) / "index.bin"
                candidate.save(index, path)
                mb = path.stat().st_size / 2**20
                candidate.set_ef(index, 64)
                before, _ = timed_queries(functools.partial(candidate.search, index), queries[:20], args.k)
                del index
                started = time.perf_counter()
                index = candidate.load(path, both.shape[1], len(both))
                load_s = time.perf_counter() - started
                candidate.set_ef(index, 64)
                after, _ = timed_queries(functools.partial(candidate.search, index), queries[:20], args.k)
                assert np.array_equal(before, after), f"{key}: results changed after save/load"
                for ef in args.ef:
                    candidate.set_ef(index, ef)
                    found, ms = timed_queries(functools.partial(candidate.search, index), queries, args.k)
                    row = {
                        "size": size,
                        "candidate": candidate.name,
                        "ef": ef,
                        "build_s": build_s,
                        "add_1pct_s": add_s,
                        "p50_ms": pct(ms, 50),
                        "p95_ms": pct(ms, 95),
                        "recall@30": recall(found, truth, 30),
                        "recall@10": recall(found, truth, 10),
                        "file_mb": mb,
                        "load_s": load_s,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                del index
    print()
    print(
        "| rows | library (parameters) | ef | build s | +1% add s | p50 ms | p95 ms | recall@10 | recall@30 "
        "| file MiB | load s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        load = "" if r["load_s"] is None else f"{r['load_s']:.2f}"
        print(
            f"| {r['size']:,} | {r['candidate']} | {r['ef'] or ''} | {r['build_s']:.1f} | {r['add_1pct_s']:.2f} "
            f"| {r['p50_ms']:.2f} | "
            f"{r['p95_ms']:.2f} | {r['recall@10']:.3f} | {r['recall@30']:.3f} | {r['file_mb']:.0f} | {load} |"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "machine": f"{platform.node()} {os.cpu_count()} cores",
                    "rows": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()

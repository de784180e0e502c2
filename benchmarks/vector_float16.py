"""Would float16 passage vectors in the projection keep dense recall? Exact dense search over
the development corpora with the vectors stored as float32 and as float16 (rounded, then
scored in float32 as the projection would), same query vectors.

    python benchmarks/vector_float16.py --data-dir ../shared/data --cache /tmp/f16

Reports, per dataset: passage Recall@5 / @10 of each, how many of the float32 top 10 the
float16 top 10 keeps, and the share of questions whose top 10 is identical in order. The
passages are embedded as ``title\\ntext`` with the default MiniLM (cached in ``--cache``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _embed(embedder, texts: list[str], path: Path) -> np.ndarray:
    if path.exists():
        return np.load(path)
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    np.save(path, vectors)
    return vectors


def _top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ matrix.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--datasets", default="hotpotqa,musique,2wikimultihopqa")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from graphmem.embed import get_embedder

    embedder = get_embedder("minilm", "cpu")
    args.cache.mkdir(parents=True, exist_ok=True)
    report = {}
    for name in args.datasets.split(","):
        corpus = [json.loads(line) for line in (args.data_dir / name / "corpus.jsonl").open(encoding="utf-8")]
        questions = [json.loads(line) for line in (args.data_dir / name / "questions.jsonl").open(encoding="utf-8")]
        ids = [p["id"] for p in corpus]
        matrix = _embed(
            embedder, [f"{p.get('title') or ''}\n{p['text']}" for p in corpus], args.cache / f"{name}-p.npy"
        )
        queries = _embed(embedder, [q["question"] for q in questions], args.cache / f"{name}-q.npy")
        half = matrix.astype(np.float16).astype(np.float32)
        full_top, half_top = _top(matrix, queries, 10), _top(half, queries, 10)
        row = {"passages": len(ids), "questions": len(questions)}
        for label, top in (("float32", full_top), ("float16", half_top)):
            for k in (5, 10):
                recall = [
                    len({ids[i] for i in t[:k]} & set(q["supporting_ids"])) / len(q["supporting_ids"])
                    for t, q in zip(top, questions, strict=True)
                ]
                row[f"{label}_recall@{k}"] = round(float(np.mean(recall)), 4)
        row["top10_kept"] = round(
            float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(full_top, half_top, strict=True)])), 4
        )
        row["top10_identical"] = round(
            float(np.mean([list(a) == list(b) for a, b in zip(full_top, half_top, strict=True)])), 4
        )
        row["max_abs_score_change"] = float(np.abs(queries @ matrix.T - queries @ half.T).max())
        report[name] = row
        print(name, json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Ingestion without its models: entity resolution, fact planning and store writes.

On a GPU machine the models are cheap and ingestion is bound by what runs around
them. This script takes the model cost out so those stages can be measured on any
machine: spaCy's output for the passages is computed once and cached under
``--cache`` (later runs reuse it), and vectors come from a deterministic hash of each
text (unit vectors, so resolution does the same work as with a model, minus the
merges a model's similar vectors would cause). Everything else is graphmem's own
ingestion into a fresh embedded FalkorDB.

It prints one table: end-to-end passages/s and the time per passage of each stage
and store query, against the same run's baseline, one spaCy process parsing the
same passages (the ratio says how many spaCy worker processes these stages keep up
with).

    python benchmarks/ingest_writes.py --dataset musique --passages 2500
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


class HashEmbedder:
    """Unit vectors seeded by a hash of the text: the same text, the same vector."""

    name = "hash"

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def embed(self, texts):
        out = np.empty((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class CachedExtractor:
    """spaCy's extractions replayed from a cache (each handed out as a fresh copy, as
    worker processes would); texts not in it are parsed and added."""

    concurrent = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.memo = pickle.loads(path.read_bytes()) if path.exists() else {}
        self._spacy = None

    def extract(self, texts, *, reference_times=None, speakers=None, titles=None):
        missing = [i for i, t in enumerate(texts) if t not in self.memo]
        if missing:
            from graphmem.extract.spacy_extractor import SpacyExtractor

            self._spacy = self._spacy or SpacyExtractor()
            got = self._spacy.extract(
                [texts[i] for i in missing],
                reference_times=[reference_times[i] for i in missing] if reference_times else None,
                titles=[titles[i] for i in missing] if titles else None,
            )
            self.memo.update((texts[i], e) for i, e in zip(missing, got, strict=True))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(pickle.dumps(self.memo))
        return [pickle.loads(pickle.dumps(self.memo[t])) for t in texts]

    def query_mentions(self, text: str) -> list[str]:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="musique", help="graphmem eval name or folder")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--passages", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=256, help="passages per ingestion batch")
    parser.add_argument("--baseline-passages", type=int, default=200, help="passages for the spaCy baseline")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench" / "extractions", help="spaCy output cache folder")
    args = parser.parse_args()

    from embed_service import StageTimer, timed_ingestion

    from graphmem.config import Settings
    from graphmem.eval import load_dataset
    from graphmem.extract.spacy_extractor import SpacyExtractor
    from graphmem.ingest.pipeline import extraction_text
    from graphmem.memory import Memory

    docs = list(load_dataset(args.dataset, data_dir=args.data_dir).documents())[: args.passages]
    extractor = CachedExtractor(args.cache / f"{Path(args.dataset).name}-{len(docs)}.pkl")

    spacy = SpacyExtractor()
    sample = [extraction_text(d.text) for d in docs[: args.baseline_passages]]
    spacy.extract(sample[:8])  # warm up
    t0 = time.perf_counter()
    spacy.extract(sample)
    baseline = len(sample) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as home:
        memory = Memory(
            Settings(home=home, extract_processes=1, chunk_words=10000, chunk_overlap=0, batch_size=args.batch_size)
        )
        memory._embedder, memory._extractor = HashEmbedder(), extractor
        ingestor = memory.ingestor
        ingestor._extract(ingestor._passages([(d, "warm") for d in docs]))  # fill the cache (not timed)
        memory.ingest_documents(docs[:1])
        report, seconds, queries = timed_ingestion(memory, docs[1:], timer := StageTimer())
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
    for stage, value in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
        print(f"| stage: {stage} | {value:.1f} | {value / n * 1000:.2f} | | |")
    for query, (wall, calls, server) in queries.table().items():
        if wall >= 0.01 * seconds:
            print(
                f"| query: {query} ({calls} calls; server {server / n * 1000:.2f} ms/passage) | {wall:.1f} | "
                f"{wall / n * 1000:.2f} | | |"
            )


if __name__ == "__main__":
    main()

"""Projection open time and search-process memory: the on-disk columns against the pickle of before.

    python benchmarks/projection_open.py --passages 100000 --dir /tmp/projopen-100k
    python benchmarks/projection_open.py --passages 1000000 --dir /tmp/projopen-1m --out results.json

What is measured, each in a fresh Python process (imports excluded from the times):

* ``columns``: :func:`graphmem.retrieve.projection.open_projection` (read the manifest,
  map the files), then the first BM25 query, the first exact dense query (a pass over
  every passage vector) and the structures a graph query builds in the process (the
  transition matrix, the passage-entity incidence, the entity passage counts, an entity
  key lookup). RSS is read after each step (``VmRSS``, and ``RssAnon``: what the process
  holds privately; the rest is file pages shared through the page cache).
* ``pickle``: the format before this one, replicated: ``pickle.load`` of
  ``(3, state)`` with the same fields as the old ``Projection`` (ids, names, passage
  texts, fact texts and fact episodes as Python lists, arrays in memory), then the bm25s
  index that every process built from the texts on its first search.

Each is run cold (every file of the format evicted from the page cache first, with
``posix_fadvise(DONTNEED)``; ``fincore`` confirms it; no root and no effect on other
files) and warm (right after the cold run).

The synthetic projection is generated straight into the column format (no store, no
models), with a fixed seed:

* passages: 384-d float32 vectors around ``max(16, N / 200)`` random unit centres
  (clusters), normalised; ~95 words each drawn from a Zipf(1.0) vocabulary of
  ``50k * (N / 10k) ** 0.6`` words, 2% ending with a question; half with a date;
* entities: ``87,150 * (N / 10k) ** 0.77`` of them (the two real stores measured here:
  5,021 passages -> 50,981 entities, 10,000 -> 87,150), with two-word synthetic names;
* mentions: Poisson(17.4) per passage (174,300 in the real 10k store), half drawn from a
  global Zipf(1.05) over the entities, half from the same Zipf shifted by the passage's
  cluster (so a cluster has its own frequent entities), duplicates in a passage dropped;
* facts: Poisson(6.64) per passage (66,406 at 10k), between two entities the passage
  mentions, vector = the passage's plus noise, 10% asserted by a second passage, 10%
  with a start date and 5% of those ended;
* synonyms: 0.46 per passage (4,594 at 10k), random entity pairs; no NEXT edges (the real
  10k store of single-passage documents had none).

The BM25 index goes through the real build path (bm25s's tokenizer over the generated
texts). The texts are kept in ``<dir>/texts.txt`` for the pickle (which held them) and
for its bm25s baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DIM = 384
GROUP = "default"


# -- generation ----------------------------------------------------------------------------
def _uuids(rng: np.random.Generator, n: int, sort: bool) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x50  # uuid5-shaped, as the store's are
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = np.array([str(uuidlib.UUID(bytes=row.tobytes())).encode() for row in raw], dtype="S36")
    return np.sort(text) if sort else text


def _zipf_sampler(rng: np.random.Generator, n: int, exponent: float):
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return lambda size: np.minimum(np.searchsorted(cdf, rng.random(size)), n - 1)


SYLLABLES = [a + b for a in "bdfghklmnprstvz" for b in "aeiou"]  # 75


def _name(i: int) -> str:
    s = SYLLABLES
    first = s[i % 75] + s[(i // 75) % 75]
    last = s[(i // 5625) % 75] + s[(i // 421875) % 75] + s[(i * 7) % 75]
    return f"{first.capitalize()} {last.capitalize()}"


def _word(i: int) -> str:
    s = SYLLABLES
    return s[i % 75] + s[(i // 75) % 75] + (s[(i // 5625) % 75] if i >= 5625 else "") + ("x" if i >= 421875 else "")


def generate(directory: Path, n: int, seed: int = 7, chunk: int = 50_000) -> dict:
    """Write the synthetic projection of ``n`` passages as ``<directory>/cache/default``."""
    from graphmem.model import entity_key
    from graphmem.retrieve.bm25 import BM25Builder
    from graphmem.retrieve.columns import key_hashes, order_of
    from graphmem.retrieve.projection import (
        FAR_FUTURE,
        FORMAT,
        OFFSETS,
        STRINGS,
        ColumnWriter,
        ends_with_question,
        group_dir_of,
        write_build,
        write_orders,
    )

    rng = np.random.default_rng(seed)
    n_entities = int(round(87_150 * (n / 10_000) ** 0.77))
    n_words = int(round(50_000 * (n / 10_000) ** 0.6))
    n_clusters = max(16, n // 200)
    centres = rng.standard_normal((n_clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    entity_rank = _zipf_sampler(rng, n_entities, 1.05)
    word_rank = _zipf_sampler(rng, n_words, 1.0)
    entity_of_rank = rng.permutation(n_entities)
    cluster_shift = rng.integers(0, n_entities, size=n_clusters)
    words = np.array([_word(i) for i in range(n_words)], dtype=object)
    directory.mkdir(parents=True, exist_ok=True)
    revision = 1

    def fill(build: Path) -> dict:
        manifest = {
            "format": FORMAT,
            "revision": revision,
            "build": build.name,
            "dim": DIM,
            "vector_dtype": "float32",
            "counts": {},
            "bm25": [],
        }
        out = ColumnWriter(build, manifest)
        build.mkdir(parents=True)
        for name in (*STRINGS, *OFFSETS):
            out.csr(name, [])
        started = time.perf_counter()
        entity_ids = _uuids(rng, n_entities, sort=True)
        for lo in range(0, n_entities, 200_000):
            names = [_name(int(i)) for i in range(lo, min(n_entities, lo + 200_000))]
            out.strings("entity_names", names)
            out.array("entity_key_hash", key_hashes(entity_key(x) for x in names))
        episode_ids = _uuids(rng, n, sort=True)
        bm25 = BM25Builder()
        fact_ids = []
        for lo in range(0, n, chunk):
            size = min(chunk, n - lo)
            cluster = rng.integers(0, n_clusters, size=size)
            vectors = centres[cluster] + rng.standard_normal((size, DIM)).astype(np.float32) * 0.05
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            # texts: Zipf words, 2% questions
            lengths = rng.poisson(95, size=size)
            flat = words[word_rank(int(lengths.sum()))]
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            texts = [" ".join(flat[bounds[i] : bounds[i + 1]]) for i in range(size)]
            asks = rng.random(size) < 0.02
            texts = [t + "?" if a else t + "." for t, a in zip(texts, asks, strict=True)]
            for t in texts:
                texts_file.write(t.replace("\n", " ") + "\n")
            times = np.where(rng.random(size) < 0.5, rng.integers(946_684_800_000, 1_735_689_600_000, size=size), -1)
            out.array("episode_times", times)
            out.array("episode_vectors", vectors)
            out.array("episode_questions", [ends_with_question(t) for t in texts])
            out.array("episode_doc_len", bm25.add(texts))
            # mentions
            counts = rng.poisson(17.4, size=size)
            passage = np.repeat(np.arange(size), counts)
            ranks = entity_rank(len(passage))
            local = rng.random(len(passage)) < 0.5
            ranks = np.where(local, (ranks + cluster_shift[cluster[passage]]) % n_entities, ranks)
            entity = entity_of_rank[ranks]
            keys = np.unique(passage.astype(np.int64) * n_entities + entity)
            pairs = np.stack([keys // n_entities + lo, keys % n_entities], 1)
            out.array("mention_pairs", pairs)
            out.array("mention_speaker", np.zeros(len(pairs), bool))
            # facts between entities the passage mentions
            starts = np.searchsorted(pairs[:, 0], np.arange(lo, lo + size))
            ends = np.searchsorted(pairs[:, 0], np.arange(lo, lo + size), side="right")
            n_facts = np.where(ends - starts >= 2, rng.poisson(6.64, size=size), 0)
            owner = np.repeat(np.arange(size), n_facts)
            width = (ends - starts)[owner]
            a = starts[owner] + (rng.random(len(owner)) * width).astype(np.int64)
            b = (
                starts[owner]
                + (a - starts[owner] + 1 + (rng.random(len(owner)) * (width - 1)).astype(np.int64)) % width
            )
            subject, obj = pairs[a, 1], pairs[b, 1]
            fvec = vectors[owner] + rng.standard_normal((len(owner), DIM)).astype(np.float32) * 0.05
            fvec /= np.linalg.norm(fvec, axis=1, keepdims=True)
            dated = rng.random(len(owner)) < 0.1
            valid_at = np.where(dated, rng.integers(946_684_800_000, 1_735_689_600_000, size=len(owner)), -FAR_FUTURE)
            invalid_at = np.where(dated & (rng.random(len(owner)) < 0.5), valid_at + 86_400_000 * 365, FAR_FUTURE)
            second = rng.random(len(owner)) < 0.1
            episodes_of = [
                [int(o) + lo] + ([int(x) + lo] if s else [])
                for o, s, x in zip(owner, second, rng.integers(0, size, size=len(owner)), strict=True)
            ]
            predicates = rng.integers(0, 40, size=len(owner))
            out.strings(
                "fact_texts",
                [f"{_name(int(s))} rel{p} {_name(int(o))}" for s, p, o in zip(subject, predicates, obj, strict=True)],
            )
            out.array("fact_ends", np.stack([subject, obj], 1))
            out.array("fact_valid", np.stack([valid_at, invalid_at], 1))
            out.array("fact_vectors", fvec)
            out.csr("fact_episode_offsets", [len(e) for e in episodes_of])
            out.array("fact_episode_rows", np.array([e for es in episodes_of for e in es], dtype=np.int32))
            fact_ids.append(_uuids(rng, len(owner), sort=False))
            print(f"  generated {lo + size:,} / {n:,} passages ({time.perf_counter() - started:.0f} s)", flush=True)
        n_syn = int(0.46 * n)
        syn = rng.integers(0, n_entities, size=(n_syn, 2))
        syn = syn[syn[:, 0] != syn[:, 1]]
        out.array("synonym_pairs", syn)
        out.array("synonym_scores", rng.uniform(0.85, 0.99, size=len(syn)))
        fact_ids_all = np.concatenate(fact_ids) if fact_ids else np.zeros(0, "S36")
        for name, values in (("entity_ids", entity_ids), ("episode_ids", episode_ids), ("fact_ids", fact_ids_all)):
            out.ids(name, values)
        manifest["id_width"] = {"entity_ids": 36, "episode_ids": 36, "fact_ids": 36}
        out.strings("terms", bm25.new_terms)
        out.array("term_hash", key_hashes(bm25.new_terms))
        manifest["bm25"] = [bm25.segment().save(build / "bm25-0")]
        manifest["counts"] = out.counts()
        hashes = np.fromfile(build / "entity_key_hash.bin", dtype=np.uint64)
        write_orders(
            build / f"r{revision}",
            {
                "entity_ids": order_of(entity_ids),
                "episode_ids": order_of(episode_ids),
                "fact_ids": order_of(fact_ids_all),
                "entity_key_hash": order_of(hashes),
                "term_hash": order_of(key_hashes(bm25.new_terms)),
            },
        )
        return manifest

    with open(directory / "texts.txt", "w", encoding="utf-8") as texts_file:  # fill() writes the passage texts
        return write_build(group_dir_of(directory / "cache", GROUP), revision, fill)


def write_pickle(directory: Path) -> Path:
    """The same projection in the format before this one: ``pickle.dump((3, state))`` with the
    old Projection's fields (lists of str for ids, names, passage and fact texts, one list of
    episode uuids per fact: fresh strings each, as rows from the store were)."""
    from graphmem.retrieve.projection import group_dir_of, open_projection

    p = open_projection(group_dir_of(directory / "cache", GROUP))
    texts = (directory / "texts.txt").read_text(encoding="utf-8").split("\n")[: len(p.episode_ids)]
    episode_ids = list(p.episode_ids)
    fe = p.fact_episodes
    state = {
        "entity_ids": list(p.entity_ids),
        "entity_names": list(p.entity_names),
        "episode_ids": episode_ids,
        "episode_texts": texts,
        "episode_times": p.episode_times,
        "episode_vectors": p.episode_vectors,
        "mention_pairs": p.mention_pairs,
        "fact_ids": list(p.fact_ids),
        "fact_texts": list(p.fact_texts),
        "fact_ends": p.fact_ends,
        "fact_valid": p.fact_valid,
        "fact_episodes": [fe[i] for i in range(len(fe))],  # decoded anew: one str object per entry
        "fact_vectors": p.fact_vectors,
        "synonym_pairs": p.synonym_pairs,
        "synonym_scores": p.synonym_scores,
        "revision": p.revision,
        "next_pairs": p.next_pairs,
        "mention_speaker": p.mention_speaker,
    }
    path = directory / "pickle" / f"projection-{GROUP}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump((3, state), handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


# -- measurement ---------------------------------------------------------------------------------
CHILD = r"""
import json, os, pickle, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
kind, target, queries_path = sys.argv[2], sys.argv[3], sys.argv[4]
queries = json.load(open(queries_path))
vectors = np.asarray(queries["vectors"], dtype=np.float32)

def rss():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    mib = lambda k: int(status[k].split()[0]) / 1024
    return {"rss_mib": round(mib("VmRSS"), 1), "anon_mib": round(mib("RssAnon"), 1),
            "file_mib": round(mib("RssFile"), 1)}

out = {"start": rss()}
if kind == "columns":
    from graphmem.retrieve.projection import open_projection
    from graphmem.model import entity_key
    import scipy.sparse
    t = time.perf_counter()
    p = open_projection(target)
    out["open_s"] = time.perf_counter() - t
    out["after_open"] = rss()
    bm25 = p.bm25
    t = time.perf_counter(); bm25.scores(queries["texts"][0]); out["first_bm25_s"] = time.perf_counter() - t
    t = time.perf_counter(); np.asarray(p.episode_vectors @ vectors[0]); out["first_dense_s"] = time.perf_counter() - t
    out["after_first_queries"] = rss()
    times = []
    for q, v in zip(queries["texts"][1:], vectors[1:]):
        t = time.perf_counter(); bm25.scores(q); times.append(time.perf_counter() - t)
    out["bm25_p50_ms"] = 1000 * float(np.median(times))
    times = []
    for v in vectors[1:]:
        t = time.perf_counter(); p.episode_vectors @ v; times.append(time.perf_counter() - t)
    out["dense_exact_p50_ms"] = 1000 * float(np.median(times))
    t = time.perf_counter()
    p.entity_key_index().get(entity_key(p.entity_names[len(p.entity_ids) // 2]))
    out["key_lookup_first_s"] = time.perf_counter() - t
    t = time.perf_counter(); p.entity_passage_counts(); out["entity_counts_s"] = time.perf_counter() - t
    t = time.perf_counter(); p.episode_speakers(); p.facts_valid_at(None)
    out["speakers_valid_s"] = time.perf_counter() - t
    t = time.perf_counter(); p.episode_entities(); out["incidence_s"] = time.perf_counter() - t
    out["after_incidence"] = rss()
    if os.environ.get("BENCH_TRANSITION", "1") == "1":
        # saved with the projection by the first process that needs it, mapped by the others
        saved = p.cache_dir is not None and (p.cache_dir / "transition_0_1").exists()
        t = time.perf_counter(); p.transition(None, 0.0, 1.0)
        out["transition_mapped_s" if saved else "transition_built_s"] = time.perf_counter() - t
        out["after_transition"] = rss()
else:
    t = time.perf_counter()
    with open(target, "rb") as handle:
        version, state = pickle.load(handle)
    out["open_s"] = time.perf_counter() - t
    out["after_open"] = rss()
    if os.environ.get("BENCH_BM25S", "1") == "1":
        import bm25s
        t = time.perf_counter()
        index = bm25s.BM25()
        index.index(bm25s.tokenize(state["episode_texts"], stopwords="en", show_progress=False), show_progress=False)
        out["bm25s_build_s"] = time.perf_counter() - t
        out["after_bm25s"] = rss()
    t = time.perf_counter(); np.asarray(state["episode_vectors"] @ vectors[0])
    out["first_dense_s"] = time.perf_counter() - t
print(json.dumps(out))
"""


def evict(path: Path) -> None:
    """Drop ``path``'s files (or the file) from the page cache."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_mib(path: Path) -> float:
    """How much of ``path``'s files is in the page cache (fincore)."""
    files = [str(path)] if path.is_file() else [str(f) for f in path.rglob("*") if f.is_file() and f.stat().st_size]
    total = 0
    for start in range(0, len(files), 200):
        result = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES", *files[start : start + 200]],
            capture_output=True,
            text=True,
        )
        total += sum(int(x) for x in result.stdout.split() if x.isdigit())
    return total / 2**20


def size_mib(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def measure(kind: str, target: Path, queries: Path, cold: bool, env: dict | None = None) -> dict:
    if cold:
        evict(target)
    resident = resident_mib(target)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), kind, str(target), str(queries)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{result.stderr[-3000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["resident_before_mib"] = round(resident, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, required=True, help="where the synthetic projection goes (reused if there)")
    parser.add_argument("--no-pickle", action="store_true", help="skip the pickle baseline")
    parser.add_argument("--no-bm25s", action="store_true", help="pickle baseline without its bm25s rebuild")
    parser.add_argument("--no-transition", action="store_true", help="skip building the transition matrix")
    parser.add_argument("--queries", type=int, default=21)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    from graphmem.retrieve.projection import MANIFEST, group_dir_of

    group = group_dir_of(args.dir / "cache", GROUP)
    report: dict = {"passages": args.passages}
    if not (group / MANIFEST).exists():
        t = time.perf_counter()
        generate(args.dir, args.passages)
        report["generate_s"] = round(time.perf_counter() - t, 1)
    manifest = json.loads((group / MANIFEST).read_text())
    report["counts"] = manifest["counts"]
    report["columns_mib"] = round(size_mib(group), 1)
    pickle_path = args.dir / "pickle" / f"projection-{GROUP}.pkl"
    if not args.no_pickle and not pickle_path.exists():
        t = time.perf_counter()
        write_pickle(args.dir)
        report["pickle_write_s"] = round(time.perf_counter() - t, 1)
    if pickle_path.exists():
        report["pickle_mib"] = round(size_mib(pickle_path), 1)

    rng = np.random.default_rng(99)
    vectors = rng.standard_normal((args.queries, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lines = (args.dir / "texts.txt").open(encoding="utf-8")
    sample = [next(lines) for _ in range(200)]
    texts = [" ".join(line.split()[:8]) for line in sample[: args.queries]]
    queries = args.dir / "queries.json"
    queries.write_text(json.dumps({"vectors": vectors.tolist(), "texts": texts}))

    env = {"BENCH_TRANSITION": "0" if args.no_transition else "1", "BENCH_BM25S": "0" if args.no_bm25s else "1"}
    # first: the first process after a build (cold, and it builds the derived arrays); cold: a
    # later process with nothing in the page cache; warm: one more, right after
    revision_dir = group / manifest["build"] / f"r{manifest['revision']}"
    for derived in [d for d in revision_dir.iterdir() if d.is_dir()]:
        shutil.rmtree(derived)
    for label, cold in (("first", True), ("cold", True), ("warm", False)):
        report[f"columns_{label}"] = measure("columns", group, queries, cold, env)
        print(label, "columns", json.dumps(report[f"columns_{label}"]), flush=True)
    if pickle_path.exists() and not args.no_pickle:
        for label, cold in (("cold", True), ("warm", False)):
            report[f"pickle_{label}"] = measure("pickle", pickle_path, queries, cold, env)
            print(label, "pickle", json.dumps(report[f"pickle_{label}"]), flush=True)
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

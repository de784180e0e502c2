"""One huge single-line file: time, passages/s, peak memory and what it adds to the graph.

Generates a deterministic text of ``--mb`` megabytes on one line with no sentence end
(a transcript without punctuation, a dump of word salad: the kind of input that once
ran as one silent batch), ingests it with ``Memory.ingest`` in a fresh process and
home, and prints one row: wall time, passages/s, the peak RSS of the ingesting
process and the largest of its waited-for children (spaCy workers;
``resource.getrusage``), and the episodes, entities, facts and synonym edges stored.
``--code DIR`` (repeatable) runs the same ingestion once per graphmem source tree, so
the current code and a baseline checkout compare in one run on one machine::

    mkdir -p .bench/base && git archive REV graphmem cypher | tar -x -C .bench/base
    python benchmarks/huge_file.py --mb 5 --code .bench/base --code .
    python benchmarks/huge_file.py --mb 0.5 --code .bench/base --code .   # a smaller baseline

``--write-only PATH`` only writes the generated text (for tests and by-hand runs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_NAMES = [
    "Mara Quell", "Harlow County", "Tobin Vance", "Osric Lane", "the Verdant Company", "Kessary",
    "Lina Doubt", "Port Emmer", "Greyford", "the Salt Board", "Ada Renner", "North Ferry",
]  # fmt: skip
_ADJECTIVES = ["old", "new", "red", "quiet", "northern", "broken", "final", "small", "public", "wet"]
_NOUNS = [
    "budget", "river", "bridge", "market", "committee", "project", "ledger", "harbour", "report",
    "tower", "festival", "engine", "contract", "road", "district", "council", "boat", "mill",
]  # fmt: skip
_VERBS = ["approved", "moved", "built", "sold", "visited", "opened", "signed", "closed", "repaired", "funded"]
_PREPS = ["for", "in", "near", "with", "to", "from", "under", "beside"]


def _phrase(rng: random.Random) -> str:
    """A noun phrase: a name, or the/a + adjectives + nouns (sometimes a runaway run of them)."""
    if rng.random() < 0.3:
        return rng.choice(_NAMES)
    words = [rng.choice(["the", "a", "their"])]
    words += rng.sample(_ADJECTIVES, rng.randint(0, 2))
    run = rng.randint(1, 12) if rng.random() < 0.1 else rng.randint(1, 2)  # runaway noun compounds
    words += [rng.choice(_NOUNS) for _ in range(run)]
    return " ".join(words)


def generate(size_bytes: int, seed: int = 19) -> str:
    """``size_bytes`` (about) of text on one line, with no sentence end: clauses of
    subject, verb, object and prepositional phrases joined by 'and', 'then', commas."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size_bytes:
        clause = f"{_phrase(rng)} {rng.choice(_VERBS)} {_phrase(rng)}"
        if rng.random() < 0.6:
            clause += f" {rng.choice(_PREPS)} {_phrase(rng)}"
        clause += rng.choice([" and", " then", ",", " and then", " while"])
        parts.append(clause)
        total += len(clause) + 1
    return " ".join(parts)[:size_bytes].rstrip() + "\n"


def _run_one(code: Path, text_file: Path, processes: int) -> dict[str, float]:
    """Ingest ``text_file`` with the graphmem of ``code`` in a fresh process and home."""
    home = Path(tempfile.mkdtemp(prefix="graphmem-huge-")) / "home"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH", "")) if p),
        "GRAPHMEM_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GRAPHMEM_EXTRACT_PROCESSES": str(processes),
    }
    script = (
        "import json, resource, sys, time\n"
        "from graphmem import Memory\n"
        "started = time.perf_counter()\n"
        "with Memory() as mem:\n"
        "    report = mem.ingest([sys.argv[1]])\n"
        "    stats = mem._graph.stats()\n"
        "seconds = time.perf_counter() - started\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'seconds': seconds, 'peak_mb': peak, 'children_mb': children, **stats}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(text_file)], env=env, cwd=code, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"ingestion with {code} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=5.0, help="size of the generated file in MB [5]")
    parser.add_argument("--code", type=Path, action="append", help="graphmem source tree (repeatable) [.]")
    parser.add_argument("--processes", type=int, default=1, help="spaCy processes (GRAPHMEM_EXTRACT_PROCESSES) [1]")
    parser.add_argument("--write-only", type=Path, help="only write the generated text to this path")
    args = parser.parse_args()
    text = generate(int(args.mb * 1_000_000))
    if args.write_only:
        args.write_only.write_text(text, encoding="utf-8")
        return
    text_file = Path(tempfile.mkdtemp(prefix="graphmem-huge-")) / "huge.txt"
    text_file.write_text(text, encoding="utf-8")
    print(f"input: {len(text.encode()) / 1e6:.2f} MB on one line, {len(text.split())} words, no sentence end\n")
    print(
        "| code | time (s) | passages/s | peak RSS (MB) | children's peak (MB) "
        "| episodes | entities | facts | synonym edges |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for code in args.code or [ROOT]:
        row = _run_one(code.resolve(), text_file, args.processes)
        print(
            f"| {code} | {row['seconds']:.0f} | {row['episodes'] / row['seconds']:.1f} | {row['peak_mb']:.0f} "
            f"| {row['children_mb']:.0f} "
            f"| {row['episodes']:.0f} | {row['entities']:.0f} | {row['facts']:.0f} | {row['synonyms']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""minilm-static against MiniLM: embedding throughput and retrieval recall, same run.

Throughput (``throughput``): both embedders on the same texts of a development corpus,
one call per text set as ingestion makes them, after a warm-up: passages (whole corpus
entries) and sentences (each passage's first sentence, about the length of the name
and fact texts ingestion also embeds). Texts/s, texts per CPU-second (steadier on a
machine shared with other jobs) and the ratio to MiniLM.

Recall (``recall``): ``graphmem eval`` runs, one per dataset and embedder, on the same
subset for both (``--limit`` questions, ``--corpus-limit`` extra passages; LoCoMo: the
first ``--locomo-conversations`` conversations), graph and dense rows, with the points
minilm-static loses or gains. ``--reports DIR`` reads ``{dataset}-{embedder}.json``
files written earlier by the same commands instead of running them.

    python benchmarks/static_embedder.py throughput --passages 2000
    python benchmarks/static_embedder.py recall --limit 100 --corpus-limit 1500 --out-dir results/static
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EMBEDDERS = ("minilm", "minilm-static")
DATASETS = ("musique", "2wikimultihopqa", "hotpotqa", "locomo")


def throughput(args: argparse.Namespace) -> None:
    import os

    from graphmem.embed import get_embedder
    from graphmem.eval import load_dataset

    docs = list(load_dataset(args.dataset).documents())[: args.passages]
    passages = [f"{d.title}\n{d.text}" if d.title else d.text for d in docs]
    sentences = [re.split(r"(?<=[.!?])\s", d.text, maxsplit=1)[0] for d in docs]
    rows = []
    for name in EMBEDDERS:
        embedder = get_embedder(name)
        embedder.embed(passages[:32])  # warm-up: lazy allocations, caches
        row: dict[str, Any] = {"embedder": name, "dim": embedder.dim}
        for label, texts in (("passages", passages), ("sentences", sentences)):
            started, cpu = time.perf_counter(), time.process_time()
            embedder.embed(texts)
            row[f"{label}_per_s"] = len(texts) / (time.perf_counter() - started)
            # per CPU-second of this process (all its threads): less sensitive to other jobs on the machine
            row[f"{label}_per_cpu_s"] = len(texts) / max(time.process_time() - cpu, 1e-9)
        rows.append(row)
    print(f"{args.dataset}: {len(passages)} passages, {os.cpu_count()} cores\n")
    print(
        "| embedder | dim | passages/s | sentences/s | passages per CPU-s | sentences per CPU-s "
        "| passages vs MiniLM | sentences vs MiniLM |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['embedder']} | {row['dim']} | {row['passages_per_s']:.0f} | {row['sentences_per_s']:.0f} "
            f"| {row['passages_per_cpu_s']:.0f} | {row['sentences_per_cpu_s']:.0f} "
            f"| {row['passages_per_s'] / rows[0]['passages_per_s']:.1f}x "
            f"| {row['sentences_per_s'] / rows[0]['sentences_per_s']:.1f}x |"
        )
    if args.out:
        args.out.write_text(json.dumps({"dataset": args.dataset, "rows": rows}, indent=1))


def _locomo_subset(conversations: int, folder: Path) -> Path:
    from graphmem.eval.datasets import data_dirs

    source = next(d / "locomo" / "locomo.json" for d in data_dirs() if (d / "locomo" / "locomo.json").is_file())
    path = folder / f"locomo-first{conversations}.json"
    path.write_text(json.dumps(json.loads(source.read_text(encoding="utf-8"))[:conversations]))
    return path


def run_evals(args: argparse.Namespace, out_dir: Path) -> None:
    """One ``graphmem eval`` per dataset and embedder, reports into ``out_dir``."""
    locomo = _locomo_subset(args.locomo_conversations, out_dir)
    for dataset in DATASETS:
        for embedder in EMBEDDERS:
            target = out_dir / f"{dataset}-{embedder}.json"
            if target.is_file():
                continue
            if dataset == "locomo":
                subset = [str(locomo), "--pipeline", "locomo"]
            else:
                subset = [dataset, "--limit", str(args.limit), "--corpus-limit", str(args.corpus_limit)]
            command = [sys.executable, "-m", "graphmem.cli", "eval", *subset]
            command += ["--embedder", embedder, "--systems", "graphmem,dense", "-q", "--out", str(target)]
            subprocess.run(command, check=True)


def recall(args: argparse.Namespace) -> None:
    out_dir = args.reports or args.out_dir or Path(tempfile.mkdtemp(prefix="static-recall-"))
    if args.reports is None:
        out_dir.mkdir(parents=True, exist_ok=True)
        run_evals(args, out_dir)
    print("| dataset (questions / passages) | system | embedder | R@2 | R@5 | R@10 | R@5 vs MiniLM (points) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for dataset in DATASETS:
        paths = {e: out_dir / f"{dataset}-{e}.json" for e in EMBEDDERS}
        if not all(path.is_file() for path in paths.values()):  # a run that did not finish: no half rows
            print(f"| {dataset} | (missing: {', '.join(str(p) for p in paths.values() if not p.is_file())}) |")
            continue
        reports = {e: json.loads(path.read_text()) for e, path in paths.items()}
        first = reports[EMBEDDERS[0]]
        label = f"{dataset} ({first['summary']['graphmem']['questions']} / {first['ingest'].get('passages', '?')})"
        for system in ("graphmem", "dense"):
            base = first["summary"][system]["recall@5"]
            for embedder, report in reports.items():
                s = report["summary"][system]
                delta = "" if embedder == EMBEDDERS[0] else f"{(s['recall@5'] - base) * 100:+.1f}"
                print(
                    f"| {label} | {system} | {embedder} | {s['recall@2']:.3f} | {s['recall@5']:.3f} "
                    f"| {s['recall@10']:.3f} | {delta} |"
                )
                label = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    speed = sub.add_parser("throughput", help="texts/s of both embedders")
    speed.add_argument("--dataset", default="musique")
    speed.add_argument("--passages", type=int, default=2000)
    speed.add_argument("--out", type=Path)
    quality = sub.add_parser("recall", help="graphmem eval with both embedders, graph and dense rows")
    quality.add_argument("--limit", type=int, default=100, help="questions per multi-hop set")
    quality.add_argument("--corpus-limit", type=int, default=1500, help="passages besides the gold ones")
    quality.add_argument("--locomo-conversations", type=int, default=2)
    quality.add_argument("--out-dir", type=Path, help="keep the eval reports here (existing ones are reused)")
    quality.add_argument("--reports", type=Path, help="read the reports from here instead of running evals")
    args = parser.parse_args()
    throughput(args) if args.command == "throughput" else recall(args)


if __name__ == "__main__":
    main()

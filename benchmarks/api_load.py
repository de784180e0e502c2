"""Load test of ``/v1/search`` next to the in-process ``Memory.search`` baseline, in one run.

    python benchmarks/api_load.py --passages 10000 --clients 32 --duration 30

1. Builds (or reuses) a store with ``--passages`` passages of the multi-hop
   development sets in ``../shared/data`` (MuSiQue, then 2WikiMultiHopQA), or of
   ``examples/docs`` when they are missing.
2. Baseline: ``Memory.search`` in this process, one query after another, for ``--duration`` s.
3. API: ``graphmem serve`` in its own process on 127.0.0.1 over the same store,
   ``--clients`` concurrent HTTP clients (asyncio + httpx) for ``--duration`` s.

Prints QPS and p50/p95/p99 latency of both, and the API/baseline ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def corpus(n: int, data_dir: str | None):
    """(documents, questions): the first n passages of the dev sets (gold passages first)."""
    from graphmem.eval.datasets import load_dataset
    from graphmem.ingest.readers import read_documents

    documents, questions = [], []
    for name in ("musique", "2wikimultihopqa", "hotpotqa"):
        if len(documents) >= n:
            break
        try:
            dataset = load_dataset(name, data_dir=data_dir, limit=200, corpus_limit=n)
        except Exception as exc:  # the set is not here
            print(f"({name}: not used: {exc})", file=sys.stderr)
            continue
        documents += dataset.documents()[: n - len(documents)]
        questions += [q.text for q in dataset.questions]
    if not documents:
        documents = read_documents([REPO / "examples" / "docs"])
        questions = [
            json.loads(line)["question"]
            for line in (REPO / "examples" / "questions.jsonl").read_text().splitlines()
            if line.strip()
        ]
    return documents, questions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_baseline(memory, questions: list[str], duration: float, k: int, mode: str) -> list[float]:
    latencies = []
    end = time.perf_counter() + duration
    i = 0
    while time.perf_counter() < end:
        started = time.perf_counter()
        memory.search(questions[i % len(questions)], k, mode=mode)
        latencies.append(time.perf_counter() - started)
        i += 1
    return latencies


async def run_clients(url: str, questions: list[str], clients: int, duration: float, k: int, mode: str):
    import httpx

    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def client(c: int) -> None:
            nonlocal errors
            i = c
            while time.perf_counter() < end:
                started = time.perf_counter()
                r = await http.post("/v1/search", json={"query": questions[i % len(questions)], "k": k, "mode": mode})
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
                i += clients

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--mode", default="graph", choices=["graph", "dense", "bm25"])
    parser.add_argument("--home", default=None, help="store to build or reuse [default: .bench/api-load-N]")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--extract-processes", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from graphmem import Memory

    home = Path(args.home or REPO / ".bench" / f"api-load-{args.passages}")
    documents, questions = corpus(args.passages, args.data_dir)
    with Memory(home=home, extract_processes=args.extract_processes) as memory:
        have = memory.stats().get("sources", 0)
        if have < len(documents):
            print(f"ingesting {len(documents)} passages into {home} (have {have}) ...", file=sys.stderr)
            started = time.perf_counter()
            report = memory.ingest_documents(documents)
            print(f"  {report.summary()} [{time.perf_counter() - started:.0f} s]", file=sys.stderr)
        stats = memory.stats()
        memory.search(questions[0], args.k, mode=args.mode)  # load the projection and models
        print(f"baseline: Memory.search for {args.duration:g} s ...", file=sys.stderr)
        base = run_baseline(memory, questions, args.duration, args.k, args.mode)

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graphmem.cli",
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the server did not start: {server.stderr.read()[-2000:] if server.stderr else ''}")
            time.sleep(0.5)
        httpx.post(f"{url}/v1/search", json={"query": questions[0], "k": args.k, "mode": args.mode}, timeout=300)
        print(f"API: {args.clients} clients for {args.duration:g} s ...", file=sys.stderr)
        api, errors, elapsed = asyncio.run(run_clients(url, questions, args.clients, args.duration, args.k, args.mode))
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()

    base_qps = len(base) / args.duration
    api_qps = len(api) / elapsed
    rows = [
        ("in-process Memory.search (1 caller)", base_qps, base, 0),
        (f"REST /v1/search ({args.clients} clients)", api_qps, api, errors),
    ]
    print(
        f"\nstore: {stats.get('episodes', 0)} passages, {stats.get('entities', 0)} entities, "
        f"{stats.get('facts', 0)} facts; mode {args.mode}, k {args.k}; {os.cpu_count()} CPUs"
    )
    print("| setup | queries | QPS | p50 ms | p95 ms | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, qps, lat, err in rows:
        print(
            f"| {name} | {len(lat)} | {qps:.1f} | {percentile(lat, 50) * 1000:.1f} | "
            f"{percentile(lat, 95) * 1000:.1f} | {percentile(lat, 99) * 1000:.1f} | {err} |"
        )
    print(f"\nAPI/baseline: QPS x{api_qps / base_qps:.2f}, p50 x{percentile(api, 50) / percentile(base, 50):.2f}")


if __name__ == "__main__":
    main()

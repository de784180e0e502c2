"""How long each everyday CLI command takes, from the shell's point of view.

    python benchmarks/startup.py                          # 5 runs each, fresh homes under /tmp
    python benchmarks/startup.py --baseline /tmp/head     # and the same against another checkout
    python benchmarks/startup.py --runs 9 --out startup.json

Every number is the wall time of a fresh ``graphmem`` process (the venv's entry
point, as a user runs it), the median of ``--runs`` runs. ``--baseline DIR`` names
a checkout of another version (e.g. ``git archive HEAD | tar -x -C DIR`` before a
change): its ``graphmem`` package is put first on ``PYTHONPATH`` for its runs, and
its runs alternate with this checkout's, command by command, so both columns see
the same machine load. Each version has its own store: ``examples/docs`` (45
passages) ingested into a fresh home first (not timed). The rows:

* ``--help``; ``stats``; ``search --mode bm25``; ``cypher 'MATCH (n) RETURN count(n)'``;
  ``ingest examples/docs`` again with nothing changed: commands that need no model;
* ``search`` (graph mode) cold: no warm process, so the command loads the store, the
  embedding model and the projection itself;
* ``search`` (graph mode) warm: the same, after ``graphmem db start`` (what the README
  promises makes repeated commands fast) and one untimed search; ``db stop`` afterwards.

The page cache is warm for every row (the untimed ingestion read everything). The
machine's load average is printed with the table: a shared machine's other work
shows in wall times. The CPU columns (user + system seconds of the ``graphmem``
process itself, medians) move much less with the load; they do not count the
embedded store's server nor the warm search process, which answer for the command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "In what year was the company that operates the Marigold Star founded?"


def graphmem_command() -> list[str]:
    """The ``graphmem`` entry point beside this interpreter (the venv's), else ``python -m``."""
    script = Path(sys.executable).with_name("graphmem")
    return [str(script)] if script.exists() else [sys.executable, "-m", "graphmem.cli"]


class Version:
    """One version under test: its checkout (None: this one) and its own store home."""

    def __init__(self, name: str, checkout: Path | None, home: Path) -> None:
        self.name, self.home = name, home
        self.cpu = 0.0  # CPU seconds of the last timed command
        self.env = dict(os.environ)
        if checkout is not None:
            self.env["PYTHONPATH"] = os.pathsep.join([str(checkout), self.env.get("PYTHONPATH", "")]).strip(os.pathsep)

    def timed(self, args: list[str]) -> float:
        """Seconds one ``graphmem`` process takes; a failing command stops the benchmark.
        Its CPU seconds (user + system, the process itself) go to :attr:`cpu`."""
        command = [*graphmem_command(), "--home", str(self.home), *args]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=self.env)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(
                f"{self.name}: graphmem {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}"
            )
        return seconds


ROWS: list[tuple[str, list[str]]] = [
    ("graphmem --help", ["--help"]),
    ("stats", ["stats"]),
    ("search --mode bm25", ["search", "Marigold Star", "--mode", "bm25"]),
    ("cypher 'MATCH (n) RETURN count(n)'", ["cypher", "MATCH (n) RETURN count(n)"]),
    ("ingest examples/docs (unchanged)", ["ingest", "-q", "examples/docs"]),
    ("search (graph), cold", ["search", QUESTION]),
]
WARM = "search (graph), warm after db start"


def alternating(versions: list[Version], args: list[str], runs: int) -> dict[str, list[float]]:
    """``runs`` timings of ``graphmem ARGS`` per version, the versions taking turns; also
    each version's CPU seconds, under ``"<name> cpu"``."""
    times: dict[str, list[float]] = {key: [] for v in versions for key in (v.name, f"{v.name} cpu")}
    for _ in range(runs):
        for version in versions:
            times[version.name].append(version.timed(args))
            times[f"{version.name} cpu"].append(version.cpu)
    return times


def measure(versions: list[Version], runs: int) -> list[dict[str, object]]:
    """The table's rows, in order: the model-free commands, then graph search cold and warm."""
    for version in versions:
        version.timed(["ingest", "-q", "examples/docs"])
    rows: list[dict[str, object]] = []
    for label, args in ROWS:
        rows.append({"command": label, "runs_s": alternating(versions, args, runs)})
        report(rows[-1])
    for version in versions:
        version.timed(["db", "start"])
    try:
        for version in versions:
            version.timed(["search", QUESTION])  # the first search after db start: untimed
        rows.append({"command": WARM, "runs_s": alternating(versions, ["search", QUESTION], runs)})
        report(rows[-1])
    finally:
        for version in versions:
            version.timed(["db", "stop"])
    return rows


def report(row: dict[str, object]) -> None:
    runs = row["runs_s"]
    assert isinstance(runs, dict)
    walls = {name: times for name, times in runs.items() if not name.endswith(" cpu")}
    medians = "  ".join(f"{name} {statistics.median(times):6.2f} s" for name, times in walls.items())
    print(f"{row['command']:<40} {medians}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="Runs per command and version (the median is reported).")
    parser.add_argument("--baseline", default=None, help="A checkout of another version to time in the same run.")
    parser.add_argument("--out", default=None, help="Also write the rows as JSON here.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="graphmem-startup-"))
    versions = [Version("this", None, root / "this")]
    if args.baseline:
        versions.insert(0, Version("baseline", Path(args.baseline).resolve(), root / "baseline"))
    try:
        rows = measure(versions, args.runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()
    print(f"\ncpus {os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {args.runs} runs each")
    names = [v.name for v in versions]
    ratio = len(names) == 2
    heads = [f"{n} wall s" for n in names] + [f"{n} CPU s" for n in names]
    print("| command | " + " | ".join(heads) + (" | wall speed-up |" if ratio else " |"))
    print("|---" * (len(heads) + 1 + ratio) + "|")
    for row in rows:
        runs = row["runs_s"]
        assert isinstance(runs, dict)
        walls = [statistics.median(runs[n]) for n in names]
        cells = " | ".join(f"{m:.2f}" for m in walls + [statistics.median(runs[f"{n} cpu"]) for n in names])
        print(f"| `{row['command']}` | {cells}" + (f" | {walls[0] / walls[1]:.1f}x |" if ratio else " |"))
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": args.runs, "versions": names, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

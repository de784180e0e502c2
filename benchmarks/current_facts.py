"""Current facts first: does graph search rank the passage that states a fact still true
above the one whose fact a later passage superseded?

The cases are ``benchmarks/data/supersession.jsonl``: short two-session dialogues
(moves, job changes, relationship changes, renamed things) in which one speaker
states a fact and, in a later session, its new value. Each case names its
question, the turn that is current and the turn that was superseded. All cases
are ingested into one fresh embedded store (so every question also ranks the
other cases' turns), then each question is asked in the same process:

* ``dense``: the dense baseline (no graph, no temporal rule);
* ``graph, rule off``: graph search as before the rule (``superseded_weight=1``);
* ``graph, rule on``: graph search with the shipped defaults;
* ``as_of before the change``: graph search, rule off and on, as of a day after
  the first session (the superseded turn should now come first);
* ``--sweep W,...``: graph search with ``superseded_weight`` W (the rule's strength).

Reported per category and overall: how often the current turn ranks above the
superseded one, hit@1 and MRR of the current turn, and the mean ranks of both;
plus ``detected``: in how many cases the ingestion marked the old fact invalid
(the rule can only act on those).

    .venv/bin/python benchmarks/current_facts.py [--out current-facts.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "supersession.jsonl"
SYSTEMS: dict[str, tuple[str, dict[str, float], bool]] = {  # name -> (mode, retrieval overrides, as_of before)
    "dense": ("dense", {}, False),
    "graph, rule off": ("graph", {"superseded_weight": 1.0}, False),
    "graph, rule on": ("graph", {}, False),
    "graph, rule off, as_of before the change": ("graph", {"superseded_weight": 1.0}, True),
    "graph, rule on, as_of before the change": ("graph", {}, True),
}


def load_cases(path: Path = DATA) -> list[dict[str, Any]]:
    """The supersession cases, one JSON object a line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_chat(cases: Sequence[dict[str, Any]], path: Path) -> Path:
    """All cases' dialogues as one graphmem JSON chat file (one conversation a case)."""
    conversations = [{"id": c["id"], "sessions": c["sessions"]} for c in cases]
    path.write_text(json.dumps({"conversations": conversations}), encoding="utf-8")
    return path


def before_change(case: dict[str, Any]) -> datetime:
    """An as_of when only the old value was true: a day after the first session (UTC). (Just
    before the later session is too late: "I moved to Berlin last month" dates the move, in
    world time, a month before the memory heard of it.)"""
    from graphmem.timeutil import ensure_utc

    return ensure_utc(datetime.fromisoformat(case["sessions"][0]["started_at"])) + timedelta(days=1)


def ranks(memory: Any, case: dict[str, Any], mode: str, retrieval: dict, as_of: datetime | None) -> dict[str, int]:
    """1-based ranks of the case's current and superseded turns (absent: one past the last)."""
    k = len(memory.retriever.projection.episode_ids)
    hits = memory.search(case["question"], k=k, mode=mode, as_of=as_of, retrieval=retrieval or None)
    order = {h.turn_id: h.rank for h in hits}
    return {key: order.get(case[key], len(hits) + 1) for key in ("current", "superseded")}


def detected(memory: Any, cases: Sequence[dict[str, Any]]) -> dict[str, bool]:
    """Per case: whether a fact asserted by its superseded turn is marked invalid now."""
    projection = memory.retriever.projection
    stored = memory.episodes(list(projection.episode_ids))
    row_of = {stored[u].get("turn_id"): i for i, u in enumerate(projection.episode_ids) if u in stored}
    valid = projection.facts_valid_at(None)
    invalid_rows = {
        int(r) for f in range(len(projection.fact_ids)) if not valid[f] for r in projection.fact_episode_rows(f)
    }
    return {c["id"]: row_of.get(c["superseded"]) in invalid_rows for c in cases}


def summarise(rows: Sequence[dict[str, Any]], first: str) -> dict[str, float]:
    """``first``: the turn that should rank first (current now; superseded as of before the change)."""
    other = "superseded" if first == "current" else "current"
    n = len(rows)
    return {
        "cases": n,
        "above": sum(r[first] < r[other] for r in rows) / n,
        "hit@1": sum(r[first] == 1 for r in rows) / n,
        "mrr": sum(1 / r[first] for r in rows) / n,
        "mean rank current": sum(r["current"] for r in rows) / n,
        "mean rank superseded": sum(r["superseded"] for r in rows) / n,
    }


def run(cases: Sequence[dict[str, Any]], home: Path, sweep: Sequence[float] = ()) -> dict[str, Any]:
    from graphmem import Memory

    with Memory(home=home / "store") as memory:
        memory.ingest_dialogues([write_chat(cases, home / "chat.json")])
        found = detected(memory, cases)
        per_case: dict[str, list[dict[str, Any]]] = {}
        systems = {
            **SYSTEMS,
            **{f"graph, superseded_weight {w:g}": ("graph", {"superseded_weight": w}, False) for w in sweep},
        }
        for name, (mode, retrieval, past) in systems.items():
            per_case[name] = [
                {
                    "id": c["id"],
                    "category": c["category"],
                    **ranks(memory, c, mode, retrieval, before_change(c) if past else None),
                }
                for c in cases
            ]
    categories = sorted({c["category"] for c in cases})
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, rows in per_case.items():
        first = "superseded" if name.endswith("before the change") else "current"
        table[name] = {"overall": summarise(rows, first)}
        for category in categories:
            table[name][category] = summarise([r for r in rows if r["category"] == category], first)
    detected_by = {cat: sum(found[c["id"]] for c in cases if c["category"] == cat) for cat in categories}
    detected_by["overall"] = sum(found.values())
    return {"table": table, "detected": detected_by, "cases": per_case}


def print_table(result: dict[str, Any]) -> None:
    table, found = result["table"], result["detected"]
    print("| system | scope (cases, detected) | first above the other | hit@1 | MRR | mean rank current / superseded |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, scopes in table.items():
        for scope, m in scopes.items():
            print(
                f"| {name} | {scope} ({m['cases']}, {found[scope]}) | {m['above']:.2f} | {m['hit@1']:.2f} | "
                f"{m['mrr']:.3f} | {m['mean rank current']:.1f} / {m['mean rank superseded']:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sweep", default="", help="also rank with these superseded_weight values (comma-separated)")
    parser.add_argument("--out", type=Path, default=None, help="write the table and per-case ranks as JSON")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="graphmem-current-"))
    try:
        sweep = [float(w) for w in args.sweep.split(",") if w.strip()]
        result = run(load_cases(args.data), home, sweep)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print_table(result)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Show and save an :class:`~graphmem.eval.runner.EvalReport`: a rich table for
people, a JSON file for tools (``summary``/``questions`` names are stable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphmem.eval.runner import EvalReport

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(report: EvalReport) -> Table:
    """One row per system: Recall@k, latency, and Recall@5 (or the middle k) relative to dense."""
    from rich.table import Table

    d, ing = report.dataset, report.ingest
    speed = (
        f"ingest {_fmt(ing.get('passages_per_s'), 1)} passages/s"
        if ing.get("passages")
        else f"store reused: {ing.get('skipped')} passages already ingested"
    )
    title = f"{d.get('name')}: {d.get('questions_run')} questions over {d.get('passages')} passages ({speed})"
    table = Table(title=title, title_justify="left")
    table.add_column("system")
    for k in report.ks:
        table.add_column(f"R@{k}", justify="right")
    ref_k = 5 if 5 in report.ks else report.ks[len(report.ks) // 2]
    has_dense = "dense" in report.summary
    if has_dense:
        table.add_column(f"R@{ref_k} / dense", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("batch ms/q", justify="right")
    dense_ref = report.summary.get("dense", {}).get(f"recall@{ref_k}")
    for name, m in report.summary.items():
        cells = [name] + [_fmt(m.get(f"recall@{k}")) for k in report.ks]
        if has_dense:
            value = m.get(f"recall@{ref_k}")
            cells.append(_fmt(value / dense_ref, 2) if value is not None and dense_ref else "-")
        cells += [_fmt(m.get("p50_ms"), 1), _fmt(m.get("p95_ms"), 1), _fmt(m.get("batch_ms_per_query"), 1)]
        table.add_row(*cells)
    return table


def category_table(report: EvalReport) -> Table | None:
    """Recall@k per question category and system, or None when the dataset has no categories."""
    if not report.by_category:
        return None
    from rich.table import Table

    table = Table(title="by category", title_justify="left")
    table.add_column("category")
    table.add_column("n", justify="right")
    table.add_column("system")
    for k in report.ks:
        table.add_column(f"R@{k}", justify="right")
    categories = sorted({c for per in report.by_category.values() for c in per})
    for category in categories:
        for i, (name, per) in enumerate(report.by_category.items()):
            m = per.get(category, {})
            table.add_row(
                category if i == 0 else "",
                str(m.get("questions", "")) if i == 0 else "",
                name,
                *[_fmt(m.get(f"recall@{k}")) for k in report.ks],
            )
    return table


def print_report(report: EvalReport, console: Console | None = None) -> None:
    from rich.console import Console

    console = console or Console()
    console.print(summary_table(report))
    categories = category_table(report)
    if categories is not None:
        console.print(categories)
    ing, emb = report.ingest, report.query_embedding
    console.print(
        f"ingest: {ing.get('passages')} passages in {_fmt(ing.get('seconds'), 1)} s "
        f"({_fmt(ing.get('passages_per_s'), 1)} passages/s, {ing.get('skipped')} already stored); "
        f"query embedding {_fmt(emb.get('ms_per_query'), 1)} ms/query (not in p50/p95)",
        highlight=False,
    )


def write_json(report: EvalReport, path: str | Path) -> Path:
    """Write the report as JSON (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

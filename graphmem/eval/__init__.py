"""Benchmarks without an LLM: passage Recall@k of graphmem against same-process
dense and BM25 baselines on HippoRAG-format sets (``../shared/data``).

    >>> from graphmem.eval import evaluate, load_dataset
    >>> report = evaluate(load_dataset("musique", limit=20, corpus_limit=300))
    >>> report.summary["graphmem"]["recall@5"], report.summary["dense"]["recall@5"]

The CLI face is ``graphmem eval DATASET``.
"""

from __future__ import annotations

from graphmem.eval.datasets import Dataset, HippoRAGDataset, Question, load_dataset, load_hipporag
from graphmem.eval.locomo import LoCoMoDataset, load_locomo
from graphmem.eval.metrics import percentile, recall_at_k
from graphmem.eval.report import print_report, write_json
from graphmem.eval.runner import SYSTEMS, EvalReport, evaluate

__all__ = [
    "Dataset",
    "EvalReport",
    "HippoRAGDataset",
    "LoCoMoDataset",
    "Question",
    "SYSTEMS",
    "evaluate",
    "load_dataset",
    "load_hipporag",
    "load_locomo",
    "percentile",
    "print_report",
    "recall_at_k",
    "write_json",
]

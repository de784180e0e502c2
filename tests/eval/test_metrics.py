"""Recall@k and percentiles on hand-computed cases (no models, no store)."""

import math

import pytest

from graphmem.eval.datasets import Question
from graphmem.eval.metrics import dedupe, mean, percentile, recall_at_k
from graphmem.eval.runner import score


def test_recall_counts_gold_in_top_k():
    retrieved = ["p1", "p9", "p2", "p7", "p3"]
    gold = {"p2", "p3"}
    assert recall_at_k(retrieved, gold, 1) == 0.0  # p1 only
    assert recall_at_k(retrieved, gold, 2) == 0.0  # p1, p9
    assert recall_at_k(retrieved, gold, 3) == 0.5  # p2 found
    assert recall_at_k(retrieved, gold, 5) == 1.0  # p2 and p3
    assert recall_at_k(retrieved, gold, 50) == 1.0  # k past the end


def test_recall_with_three_gold_and_one_missing():
    assert recall_at_k(["a", "b", "c", "d"], {"a", "d", "z"}, 4) == pytest.approx(2 / 3)


def test_duplicates_count_once_and_do_not_use_up_k():
    # a passage split into two episodes maps to p1 twice: top-2 distinct ids are p1, p2
    assert recall_at_k(["p1", "p1", "p2"], {"p2"}, 2) == 1.0
    assert recall_at_k(["p1", "p1", "p2"], {"p1", "p2"}, 1) == 0.5


def test_unmappable_results_are_skipped():
    assert dedupe([None, "p1", None, "p1", "p2"]) == ["p1", "p2"]
    assert recall_at_k([None, "p2"], {"p2"}, 1) == 1.0


def test_recall_rejects_undefined_cases():
    with pytest.raises(ValueError):
        recall_at_k(["p1"], set(), 5)
    with pytest.raises(ValueError):
        recall_at_k(["p1"], {"p1"}, 0)


def test_mean_skips_none():
    assert mean([1.0, None, 0.0, 0.5]) == 0.5
    assert mean([None]) is None


def test_percentile_interpolates_like_numpy():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0  # halfway between 20 and 30
    assert percentile(values, 95) == pytest.approx(38.5)  # position 2.85: 30 + 0.85 * 10
    assert percentile(values, 0) == 10.0 and percentile(values, 100) == 40.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # sorts first


def test_score_averages_per_system_and_per_category():
    questions = [
        Question("q1", "?", frozenset({"a", "b"}), "2hop"),
        Question("q2", "?", frozenset({"c"}), "1hop"),
        Question("q3", "?", frozenset(), "1hop"),  # no gold: left out of the means
    ]
    rankings = {"x": [["a", "z", "b"], ["z", "c"], ["c"]], "y": [["z", "z", "z"], ["c"], []]}
    latencies = {"x": [1.0, 3.0, 2.0], "y": [5.0, 5.0, 5.0]}
    records, summary, by_category = score(questions, rankings, latencies, ks=(1, 2, 3))
    # x: q1 -> R@1 1/2, R@2 1/2, R@3 1 ; q2 -> R@1 0, R@2 1, R@3 1
    assert summary["x"]["recall@1"] == pytest.approx(0.25)
    assert summary["x"]["recall@2"] == pytest.approx(0.75)
    assert summary["x"]["recall@3"] == pytest.approx(1.0)
    # y: q1 -> 0 everywhere ; q2 -> 1 everywhere
    assert summary["y"]["recall@1"] == pytest.approx(0.5)
    assert summary["x"]["questions"] == 2
    assert summary["x"]["p50_ms"] == 2.0
    assert by_category["x"]["2hop"]["recall@1"] == pytest.approx(0.5)
    assert by_category["x"]["1hop"] == {"recall@1": 0.0, "recall@2": 1.0, "recall@3": 1.0, "questions": 1}
    assert records[2]["systems"]["x"]["recall@1"] is None
    assert records[0]["gold"] == ["a", "b"] and records[0]["systems"]["y"]["retrieved"] == ["z"]
    assert not math.isnan(summary["y"]["recall@3"])


def test_no_categories_means_no_breakdown():
    _, _, by_category = score([Question("q", "?", frozenset({"a"}))], {"x": [["a"]]}, {"x": [1.0]}, ks=(1,))
    assert by_category == {}

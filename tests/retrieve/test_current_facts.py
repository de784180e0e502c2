"""Current facts first (graphmem/retrieve/currency.py): a passage whose best evidence for
the query was superseded ranks below the one stating the current value, unless as_of
asks about a time when the old value held; ``superseded_weight=1`` gives the old order.

End to end on the embedded store with real spaCy and MiniLM (the Ana dialogue and a
few cases of benchmarks/data/supersession.jsonl), and on a hand-built projection for
the rule itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from graphmem.config import RetrievalSettings
from graphmem.memory import Memory
from graphmem.retrieve.currency import demote, superseded_passages
from graphmem.retrieve.projection import FAR_FUTURE, Projection

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "benchmarks" / "data" / "supersession.jsonl"
#: cases of the set asked here: moves, job changes (move-08 and job-05 are stated in the passive,
#: "I'm based in", "I was promoted to"), relationship changes
PICKED = ("move-02", "move-08", "job-03", "job-05", "rel-01", "rel-03")
OFF = {"superseded_weight": 1.0}

ANA = {
    "id": "ana",
    "sessions": [
        {
            "started_at": "2021-03-01T10:00:00",
            "turns": [
                {"id": "lisbon", "speaker": "Ana", "text": "Hi Ben! I live in Lisbon now, near the river."},
                {"id": "still", "speaker": "Ben", "text": "Nice! Are you still at the robotics company?"},
                {"id": "orvalis", "speaker": "Ana", "text": "Yes, I work at Orvalis Robotics as a data engineer."},
            ],
        },
        {
            "started_at": "2023-06-15T18:30:00",
            "turns": [
                {"id": "new", "speaker": "Ben", "text": "Long time no see! What's new?"},
                {"id": "berlin", "speaker": "Ana", "text": "I moved to Berlin last month."},
                {"id": "kestrel", "speaker": "Ana", "text": "I started working at Kestrel Labs two weeks ago."},
            ],
        },
    ],
}


def _cases() -> list[dict]:
    rows = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["id"] in PICKED]


@pytest.fixture(scope="module")
def memory(tmp_path_factory, embedder, extractor):
    home = tmp_path_factory.mktemp("current")
    chat = home / "chat.json"
    conversations = [ANA] + [{"id": c["id"], "sessions": c["sessions"]} for c in _cases()]
    chat.write_text(json.dumps({"conversations": conversations}), encoding="utf-8")
    with Memory(home=home / "store") as mem:
        mem.ingest_dialogues([chat])
        yield mem


def _ranks(memory: Memory, question: str, **kwargs) -> dict[str, int]:
    hits = memory.search(question, k=100, **kwargs)
    return {h.turn_id: h.rank for h in hits}


@pytest.mark.slow
def test_berlin_ranks_above_lisbon_now_and_below_with_the_rule_off(memory):
    now = _ranks(memory, "Where does Ana live?")
    assert now["berlin"] < now["lisbon"]
    # the old order, which the rule exists to fix: the superseded turn shares more words with the question
    off = _ranks(memory, "Where does Ana live?", retrieval=OFF)
    assert off["lisbon"] < off["berlin"]


@pytest.mark.slow
def test_as_of_before_the_move_ranks_lisbon_first(memory):
    past = _ranks(memory, "Where does Ana live?", as_of=datetime(2022, 1, 1, tzinfo=UTC))
    # the move had not happened yet: its turn is not returned, and the Lisbon turn leads
    assert "berlin" not in past and past["lisbon"] <= 2


@pytest.mark.slow
def test_cases_from_the_supersession_set(memory):
    on_right, off_right = 0, 0
    for case in _cases():
        on = _ranks(memory, case["question"])
        off = _ranks(memory, case["question"], retrieval=OFF)
        on_right += on[case["current"]] < on[case["superseded"]]
        off_right += off[case["current"]] < off[case["superseded"]]
        # a day after the old value was stated: the new one was not true, nor its turn said
        then = datetime.fromisoformat(case["sessions"][0]["started_at"]).replace(tzinfo=UTC) + timedelta(days=1)
        past = _ranks(memory, case["question"], as_of=then)
        assert case["current"] not in past and past[case["superseded"]] <= 2, case["id"]
    assert on_right == len(PICKED)
    assert off_right < len(PICKED)  # the setting is what puts them right


# -- the rule on a hand-built projection ----------------------------------------------
def _projection() -> Projection:
    """Two passages, each asserting one fact about entity 0: passage 0 "lives in Lisbon"
    (valid 2019-2023), passage 1 "lives in Berlin" (valid from 2023); both of unknown time,
    so as_of leaves both rankable. Passage 2 asserts an unrelated fact."""
    ms = [int(datetime(y, 1, 1, tzinfo=UTC).timestamp() * 1000) for y in (2019, 2023)]
    facts = np.array([[1.0, 0.0], [0.9, np.sqrt(1 - 0.81)], [0.0, 1.0]], np.float32)
    return Projection(
        entity_ids=["ana", "lisbon", "berlin", "cat"],
        entity_names=["Ana", "Lisbon", "Berlin", "cat"],
        episode_ids=["p0", "p1", "p2"],
        episode_times=np.full(3, -1, np.int64),
        episode_vectors=np.eye(3, 2, dtype=np.float32),
        mention_pairs=np.array([(0, 0), (0, 1), (1, 0), (1, 2), (2, 3)], np.int32),
        fact_ids=["f0", "f1", "f2"],
        fact_texts=["Ana live in Lisbon", "Ana moved to Berlin", "Ana has cat"],
        fact_ends=np.array([(0, 1), (0, 2), (0, 3)], np.int32),
        fact_valid=np.array([(ms[0], ms[1]), (ms[1], FAR_FUTURE), (-FAR_FUTURE, FAR_FUTURE)], np.int64),
        fact_episodes=[["p0"], ["p1"], ["p2"]],
        fact_vectors=facts,
        synonym_pairs=np.zeros((0, 2), np.int32),
        synonym_scores=np.zeros(0, np.float32),
    )


def test_rule_follows_validity_at_the_reference_time():
    projection, query = _projection(), np.array([1.0, 0.0], np.float32)
    settings = RetrievalSettings(fact_top_k=3)
    now = superseded_passages(projection, query, projection.facts_valid_at(None), settings)
    assert now.tolist() == [0]
    in_2020 = int(datetime(2020, 6, 1, tzinfo=UTC).timestamp() * 1000)
    past = superseded_passages(projection, query, projection.facts_valid_at(in_2020), settings)
    assert past.tolist() == [1]  # Berlin was not yet true then
    assert (
        superseded_passages(projection, query, projection.facts_valid_at(None), RetrievalSettings(fact_top_k=0)).size
        == 0
    )


def test_a_passage_keeps_its_score_when_its_best_evidence_is_current():
    projection, query = _projection(), np.array([1.0, 0.0], np.float32)
    projection.fact_episodes[2] = ["p0"]  # passage 0 also states a current fact...
    projection.fact_vectors[2] = [1.0, 0.0]  # ...that matches the query best
    projection.fact_vectors[0] = [0.95, np.sqrt(1 - 0.95**2)]
    valid = projection.facts_valid_at(None)
    assert superseded_passages(projection, query, valid, RetrievalSettings(fact_top_k=3)).size == 0


def test_demote_scales_the_rows_and_leaves_the_rest():
    scores = np.array([0.02, 0.03, -np.inf, 0.01])
    out = demote(scores, np.array([1, 2]), 0.5)
    assert out.tolist() == [0.02, 0.015, -np.inf, 0.01] and scores[1] == 0.03
    assert demote(scores, np.array([1]), 1.0) is scores

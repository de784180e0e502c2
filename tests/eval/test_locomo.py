"""LoCoMo in the shared harness: a small file in LoCoMo's layout, two conversations
that talk about the same things, so a question answered from the wrong conversation
would show up as a miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphmem.cli import main
from graphmem.eval import evaluate, load_dataset, load_locomo


def _session(n: int, turns: list[tuple[str, str]]) -> list[dict]:
    return [{"speaker": s, "dia_id": f"D{n}:{i + 1}", "text": t} for i, (s, t) in enumerate(turns)]


def _conversation(sample: str, a: str, b: str, town: str, hobby: str) -> dict:
    conv = {
        "speaker_a": a,
        "speaker_b": b,
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": _session(
            1,
            [
                (a, f"Hey {b}! I just moved to {town}."),
                (b, "How do you like it so far?"),
                (a, f"I love it. I joined a {hobby} club here."),
                (b, "My kids keep me busy with school projects."),
            ],
        ),
        "session_2_date_time": "10:00 am on 20 June, 2023",
        "session_2": _session(
            2,
            [
                (b, "How was your weekend?"),
                (a, f"I went to a {hobby} tournament yesterday and won a medal!"),
                (b, "Congratulations, that is amazing."),
            ],
        ),
    }
    qa = [
        {"question": f"Where did {a} move to?", "answer": town, "evidence": ["D1:1"], "category": 4},
        {
            "question": f"When did {a} go to the {hobby} tournament?",
            "answer": "19 June 2023",
            "evidence": ["D2:2"],
            "category": 2,
        },
        {
            "question": f"What club did {a} join after moving?",
            "answer": hobby,
            "evidence": ["D1:1; D1:3"],  # malformed list, as in the real file
            "category": 1,
        },
        {"question": f"What did {b} say about her garden?", "evidence": ["D9:99"], "category": 5},
    ]
    return {"sample_id": sample, "conversation": conv, "qa": qa}


@pytest.fixture(scope="module")
def locomo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("locomo") / "locomo.json"
    path.write_text(
        json.dumps(
            [
                _conversation("conv-a", "Caroline", "Melanie", "Lisbon", "chess"),
                _conversation("conv-b", "Jon", "Gina", "Porto", "tennis"),
            ]
        ),
        encoding="utf-8",
    )
    return path


def test_loader_ids_categories_and_repaired_evidence(locomo_file):
    data = load_locomo(locomo_file)
    assert [q.id for q in data.questions][:2] == ["conv-a/q0", "conv-a/q1"]
    assert data.questions[2].gold == {"conv-a/D1:1", "conv-a/D1:3"} and data.questions[2].category == "multi-hop"
    assert data.questions[1].category == "temporal" and data.questions[3].gold == frozenset()
    assert data.dropped_evidence == 2  # D9:99 in each conversation names no turn
    assert [p.key for p in data.partitions()] == ["conv-a", "conv-b"]
    assert load_dataset(str(locomo_file), limit=3).partitions()[0].questions == [0, 1, 2]


def test_evaluate_runs_each_conversation_in_its_own_group(locomo_file, tmp_path, embedder, extractor):
    data = load_locomo(locomo_file)
    report = evaluate(data, ks=(1, 5), home=tmp_path / "home")
    assert set(report.summary) == {"graphmem", "dense", "bm25"}
    assert set(report.by_category["graphmem"]) == {"single-hop", "temporal", "multi-hop", "adversarial"}
    for record in report.questions:
        sample = record["id"].split("/")[0]
        for system in record["systems"].values():
            assert system["retrieved"] and all(r.startswith(sample + "/") for r in system["retrieved"])
    # 7 turns per conversation and Recall@5 of "Where did X move to?" is found by every system
    where = [r for r in report.questions if r["question"].startswith("Where did")]
    assert all(r["systems"][s]["recall@5"] == 1.0 for r in where for s in ("graphmem", "dense", "bm25"))
    assert report.summary["graphmem"]["questions"] == 6  # the two adversarial ones have no valid evidence
    assert report.ingest["conversations"] == 2 and report.ingest["passages"] == 14


def test_cli_eval_on_a_locomo_path(locomo_file, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            str(locomo_file),
            "--home",
            str(tmp_path / "h"),
            "-q",
            "--systems",
            "graphmem,bm25",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["dataset"]["format"] == "locomo" and "multi-hop" in report["by_category"]["bm25"]
    assert report["summary"]["graphmem"]["recall@10"] is not None

"""The harness end to end on the sample corpus: real spaCy, MiniLM and embedded FalkorDB."""

import json

import pytest
from click.testing import CliRunner

from graphmem.cli import main
from graphmem.config import Settings
from graphmem.errors import ConfigError
from graphmem.eval import evaluate, load_dataset
from graphmem.eval.metrics import recall_at_k
from graphmem.pipelines import load_pipeline, read_with

pytestmark = pytest.mark.slow

SYSTEMS = ("graphmem", "dense", "bm25")
METRICS = ("recall@2", "recall@5", "recall@10", "p50_ms", "p95_ms")


def whole_passages() -> Settings:
    return Settings(chunk_words=10_000, chunk_overlap=0)


@pytest.fixture(scope="module")
def run(examples_dataset, tmp_path_factory):
    home = tmp_path_factory.mktemp("eval_home")
    report = evaluate(load_dataset(examples_dataset), whole_passages(), home=home)
    return report, home


def check_layout(payload: dict, questions: int, passages: int) -> None:
    assert set(payload["summary"]) == set(SYSTEMS)
    for name, metrics in payload["summary"].items():
        for key in METRICS:
            assert key in metrics, (name, key)
        for k in (2, 5, 10):
            assert 0.0 <= metrics[f"recall@{k}"] <= 1.0
        assert metrics["recall@2"] <= metrics["recall@5"] <= metrics["recall@10"]
        assert 0 < metrics["p50_ms"] <= metrics["p95_ms"]
    assert payload["ingest"]["passages"] + payload["ingest"]["skipped"] <= passages
    assert payload["dataset"]["passages"] == passages and payload["dataset"]["questions_run"] == questions
    assert len(payload["questions"]) == questions
    for name in SYSTEMS:  # the summary is the mean of the per-question results, recomputed from scratch
        for k in (2, 5, 10):
            recomputed = [recall_at_k(q["systems"][name]["retrieved"], q["gold"], k) for q in payload["questions"]]
            assert payload["summary"][name][f"recall@{k}"] == pytest.approx(sum(recomputed) / len(recomputed))
            assert [q["systems"][name][f"recall@{k}"] for q in payload["questions"]] == pytest.approx(recomputed)
    assert set(payload["by_category"]["graphmem"]) == {"1hop", "2hop", "3hop"}


def test_evaluate_scores_every_system(run, examples_dataset):
    report, _ = run
    payload = json.loads(json.dumps(report.to_json()))
    check_layout(payload, questions=16, passages=45)
    assert payload["ingest"]["passages"] == 45 and payload["ingest"]["passages_per_s"] > 0
    assert payload["ingest"]["stats"]["episodes"] == 45  # every passage stayed one episode
    one_hop = [q for q in payload["questions"] if q["category"] == "1hop"]
    assert len(one_hop) == 4
    for q in one_hop:  # single-passage questions are easy for the same-embedder baseline
        assert q["systems"]["dense"]["recall@10"] == 1.0, q
    # retrieved ids are the dataset's passage ids, not store uuids
    known = {json.loads(line)["id"] for line in (examples_dataset / "corpus.jsonl").read_text().splitlines()}
    assert all(set(q["systems"][s]["retrieved"]) <= known for q in payload["questions"] for s in SYSTEMS)
    assert payload["summary"]["graphmem"]["recall@10"] > 0.5


def test_cli_reuses_the_store_and_writes_the_same_numbers(run, examples_dataset, tmp_path):
    report, home = run
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["eval", str(examples_dataset), "--home", str(home), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "R@5" in result.output and "graphmem" in result.output and "bm25" in result.output
    payload = json.loads(out.read_text())
    check_layout(payload, questions=16, passages=45)
    assert payload["ingest"]["skipped"] == 45 and payload["ingest"]["passages"] == 0  # ingestion reused
    for name in SYSTEMS:
        for k in (2, 5, 10):
            assert payload["summary"][name][f"recall@{k}"] == pytest.approx(report.summary[name][f"recall@{k}"])


def test_cli_limit_and_systems(examples_dataset, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            str(examples_dataset),
            "--limit",
            "3",
            "--corpus-limit",
            "5",
            "--systems",
            "dense,bm25",
            "--retrieval",
            "damping=0.6",
            "--out",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert set(payload["summary"]) == {"dense", "bm25"} and len(payload["questions"]) == 3
    assert payload["ingest"]["passages"] == payload["dataset"]["passages"] <= 3 * 3 + 5
    assert payload["home"] is None  # the temporary store was removed
    assert payload["settings"]["retrieval"]["damping"] == 0.6 and payload["settings"]["chunk_words"] == 10_000


def test_cli_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(main, ["eval", "no_such_set", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "error:" in result.output and "corpus.jsonl" in result.output
    result = CliRunner().invoke(main, ["eval", "x", "--data-dir", str(tmp_path), "--systems", "graphmem,colbert"])
    assert result.exit_code == 1


def test_split_passages_are_refused_before_ingesting(examples_dataset, tmp_path):
    with pytest.raises(ConfigError, match="chunk_words"):
        evaluate(load_dataset(examples_dataset), Settings(chunk_words=20, chunk_overlap=0), home=tmp_path / "h")
    assert not (tmp_path / "h").exists()


def test_a_home_with_other_sources_is_refused(examples_dataset, tmp_path):
    from graphmem.memory import Memory

    with Memory(whole_passages().model_copy(update={"home": tmp_path})) as memory:
        memory.ingest_text("Nothing to do with the benchmark.", name="stray-note")
    with pytest.raises(ConfigError, match="outside this dataset"):
        evaluate(load_dataset(examples_dataset), whole_passages(), home=tmp_path, systems=("dense",))


def test_pipeline_specs_read_hipporag_folders(examples_dataset):
    for name in ("musique", "hotpotqa", "2wikimultihopqa"):
        spec = load_pipeline(name)
        assert spec["reader"] == "hipporag" and spec["settings"]["chunk_words"] == 10_000
    documents = read_with("hipporag", [examples_dataset], 1 << 20)
    assert len(documents) == 45 and documents[0].name.startswith("examples_set#docs/")

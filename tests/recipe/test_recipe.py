"""The recipe a group was ingested with is the one its searches and forgets use.

Two LoCoMo conversations (their first three sessions, from ../shared/data/locomo)
are ingested with ``--pipeline locomo`` through the CLI, one group each, then
searched through the CLI, the REST API (a real server on 127.0.0.1, through the
client) and ``Memory`` -- none of them told the pipeline. Each must rank exactly
as ``graphmem eval``'s retrieval path does for the same questions, and the
document defaults must rank at least one question differently (else the test
could not fail).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphmem.cli import main
from graphmem.config import RetrievalSettings, Settings
from graphmem.errors import ConfigError
from graphmem.eval import evaluate, load_locomo
from graphmem.memory import Memory
from graphmem.pipelines import load_pipeline
from graphmem.recipe import RecipeConflict, whole

pytestmark = pytest.mark.slow

LOCOMO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "locomo" / "locomo.json"
SESSIONS = 3  # per conversation: ~60 turns, enough for the locomo knobs to change rankings
CONVERSATIONS = 2
K = 10


def _cut(item: dict) -> dict:
    """A LoCoMo conversation cut to its first SESSIONS sessions and the questions they answer."""
    conversation = {
        key: value
        for key, value in item["conversation"].items()
        if not key.startswith("session_") or int(key.split("_")[1]) <= SESSIONS
    }
    known = {turn["dia_id"] for n in range(1, SESSIONS + 1) for turn in conversation.get(f"session_{n}", [])}
    qa = [q for q in item["qa"] if q.get("evidence") and all(e in known for e in q["evidence"])]
    return {"sample_id": item["sample_id"], "conversation": conversation, "qa": qa}


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory) -> dict:
    """The small LoCoMo file, one file per conversation, and the questions asked of each group."""
    if not LOCOMO.is_file():
        pytest.skip(f"no LoCoMo file at {LOCOMO}")
    folder = tmp_path_factory.mktemp("locomo")
    items = [_cut(item) for item in json.loads(LOCOMO.read_text(encoding="utf-8"))[:CONVERSATIONS]]
    whole_file = folder / "locomo.json"
    whole_file.write_text(json.dumps(items), encoding="utf-8")
    parts = {}
    for item in items:
        path = folder / f"{item['sample_id']}.json"
        path.write_text(json.dumps([item]), encoding="utf-8")
        parts[item["sample_id"]] = path
    return {"file": whole_file, "parts": parts, "dataset": load_locomo(whole_file)}


@pytest.fixture(scope="module")
def eval_rankings(dialogue, tmp_path_factory, embedder, extractor) -> dict[str, list[str]]:
    """question id -> the turn ids `graphmem eval locomo` ranks first (its own store)."""
    settings = Settings.from_env(**load_pipeline("locomo")["settings"])
    report = evaluate(
        dialogue["dataset"], settings, systems=("graphmem",), ks=(K,), home=tmp_path_factory.mktemp("eval") / "home"
    )
    return {q["id"]: q["systems"]["graphmem"]["retrieved"] for q in report.questions}


@pytest.fixture(scope="module")
def home(dialogue, tmp_path_factory, embedder, extractor) -> Path:
    """The conversations ingested through the CLI with the locomo pipeline, a group each
    (named as `graphmem eval` names them)."""
    home = tmp_path_factory.mktemp("recipe") / "home"
    for sample, path in dialogue["parts"].items():
        result = CliRunner().invoke(
            main,
            ["--home", str(home), "--group", f"default-{sample}", "ingest", "--pipeline", "locomo", "-q", str(path)],
        )
        assert result.exit_code == 0, result.output
    return home


def _questions(dialogue) -> dict[str, list[tuple[str, str]]]:
    """sample -> [(question id, text)] in file order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for q in dialogue["dataset"].questions:
        out.setdefault(q.id.split("/")[0], []).append((q.id, q.text))
    return out


def _ids(sample: str, turn_ids: list[str]) -> list[str]:
    return [f"{sample}/{t}" for t in turn_ids]


def _memory_rankings(home: Path, dialogue, **search: object) -> dict[str, list[str]]:
    rankings = {}
    for sample, asked in _questions(dialogue).items():
        with Memory(home=home, group_id=f"default-{sample}") as memory:
            rows = memory.search_many([text for _, text in asked], K, **search)  # type: ignore[arg-type]
        rankings.update(
            {qid: _ids(sample, [r.turn_id for r in row]) for (qid, _), row in zip(asked, rows, strict=True)}
        )
    return rankings


def test_the_group_stores_the_pipelines_recipe(home, dialogue):
    sample = next(iter(dialogue["parts"]))
    with Memory(home=home, group_id=f"default-{sample}") as memory:
        recipe = memory.recipe
        assert recipe is not None and recipe.pipeline == "locomo"
        assert recipe.retrieval.speaker_name_weight == 0.0 and recipe.retrieval.answer_carry == 0.8
        assert recipe.retrieval.ppr_tolerance == 1e-4 and recipe.ingestion.embedder == "minilm"
        assert memory.settings.retrieval == recipe.retrieval  # nothing given explicitly: the group's


def test_memory_search_ranks_as_eval_and_unlike_the_defaults(home, dialogue, eval_rankings):
    assert _memory_rankings(home, dialogue) == eval_rankings
    defaults = _memory_rankings(home, dialogue, retrieval=whole(RetrievalSettings()))
    differ = [qid for qid in eval_rankings if defaults[qid] != eval_rankings[qid]]
    assert differ, "the document defaults rank every question as the locomo recipe does"
    # the per-call override left the memory's own settings alone
    assert _memory_rankings(home, dialogue) == eval_rankings


def _cli_rankings(home, sample: str, asked, tmp_path, *options: str) -> dict:
    """`graphmem search --file ... --json` over ``asked`` in the sample's group: turn ids by question."""
    queries = tmp_path / f"{sample}.jsonl"
    queries.write_text("".join(json.dumps({"question": text}) + "\n" for _, text in asked), encoding="utf-8")
    arguments = ["--home", str(home), "--group", f"default-{sample}", "search", "--file", str(queries)]
    result = CliRunner().invoke(main, [*arguments, "-k", str(K), "--json", *options])
    assert result.exit_code == 0, result.output
    return {
        qid: _ids(sample, [r["turn_id"] for r in entry["results"]])
        for (qid, _), entry in zip(asked, json.loads(result.output), strict=True)
    }


def test_cli_search_ranks_as_eval(home, dialogue, eval_rankings, tmp_path):
    for sample, asked in _questions(dialogue).items():
        for qid, got in _cli_rankings(home, sample, asked, tmp_path).items():
            assert got == eval_rankings[qid], qid


def test_cli_search_pipeline_option_overrides_the_recipe(home, dialogue, eval_rankings, tmp_path):
    """--pipeline documents: the defaults, whole, for this search only."""
    defaults = _memory_rankings(home, dialogue, retrieval=whole(RetrievalSettings()))
    sample, asked = next(iter(_questions(dialogue).items()))
    got = _cli_rankings(home, sample, asked, tmp_path, "--pipeline", "documents")
    assert got == {qid: defaults[qid] for qid, _ in asked}


def test_api_search_ranks_as_eval(home, dialogue, eval_rankings, tmp_path):
    """The API searches one query at a time: exactly as Memory.search does, and as eval's
    batched run in the top 5 (a batched power iteration runs until every query of the
    batch converges, which can swap near-tied passages further down)."""
    from graphmem.client import Client
    from tests.api.conftest import free_port, run_uvicorn, start_server

    one_by_one = {}
    for sample, asked in _questions(dialogue).items():
        with Memory(home=home, group_id=f"default-{sample}") as memory:
            one_by_one.update({qid: _ids(sample, [r.turn_id for r in memory.search(text, K)]) for qid, text in asked})
    app, _ = start_server(home, tmp_path / "keys.json")  # no keys: local mode, any group
    with run_uvicorn(app, free_port()) as url:
        for sample, asked in _questions(dialogue).items():
            with Client(url, group=f"default-{sample}") as client:
                for qid, text in asked:
                    got = _ids(sample, [h.turn_id for h in client.search(text, K)])
                    assert got == one_by_one[qid] and got[:5] == eval_rankings[qid][:5], qid


def test_a_later_ingestion_with_another_recipe_is_refused_or_replaces_it(home, dialogue, tmp_path):
    sample, path = next(iter(dialogue["parts"].items()))
    group = ["--home", str(home), "--group", f"default-{sample}"]
    # the same pipeline again, or no settings at all: the group's recipe, nothing to refuse
    for extra in (["--pipeline", "locomo"], []):
        result = CliRunner().invoke(main, [*group, "ingest-chat" if not extra else "ingest", *extra, "-q", str(path)])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, [*group, "ingest", "--pipeline", "dialogue", "-q", str(path)])
    assert result.exit_code == 1
    assert "retrieval.answer_carry: stored 0.8, given 0.0" in result.output and "pipeline: stored" in result.output
    with (
        pytest.raises(RecipeConflict, match="retrieval.damping: stored 0.85, given 0.6"),
        Memory(home=home, group_id=f"default-{sample}", retrieval={"damping": 0.6}) as memory,
    ):
        memory.ingest_dialogues([path])
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    with Memory(home=copy, group_id=f"default-{sample}", retrieval={"damping": 0.6}, update_recipe=True) as memory:
        memory.ingest_dialogues([path])
        assert memory.recipe is not None and memory.recipe.retrieval.damping == 0.6
        assert memory.recipe.retrieval.answer_carry == 0.8  # the rest of the recipe stays


def test_explicit_settings_override_the_recipe(home, dialogue, monkeypatch):
    sample = next(iter(dialogue["parts"]))
    monkeypatch.setenv("GRAPHMEM_RETRIEVAL", json.dumps({"answer_carry": 0.3}))
    with Memory(home=home, group_id=f"default-{sample}") as memory:
        assert memory.settings.retrieval.answer_carry == 0.3  # the environment's
        assert memory.settings.retrieval.speaker_name_weight == 0.0  # the group's
    monkeypatch.setenv("GRAPHMEM_RETRIEVAL", "[1]")
    with pytest.raises(ConfigError, match="GRAPHMEM_RETRIEVAL"):
        Settings.from_env()


def test_a_group_without_a_recipe_keeps_the_given_settings(tmp_path, embedder, extractor):
    with Memory(home=tmp_path / "h") as memory:
        assert memory.recipe is None and memory.settings.retrieval == RetrievalSettings()
        assert memory.search("anything") == []


# -- forget re-times with the group's temporal relations ------------------------------------------
def _locomo_chat(path: Path) -> Path:
    sessions = [
        ("1:56 pm on 8 May, 2021", "I live in Lisbon now, near the river."),
        ("10:00 am on 20 June, 2023", "I moved to Berlin last month."),
        ("9:00 am on 2 September, 2023", "I moved to Paris last week."),
    ]
    conversation: dict = {"speaker_a": "Ana", "speaker_b": "Ben"}
    for n, (when, text) in enumerate(sessions, start=1):
        conversation[f"session_{n}_date_time"] = when
        conversation[f"session_{n}"] = [
            {"speaker": "Ben", "dia_id": f"D{n}:1", "text": "What's new?"},
            {"speaker": "Ana", "dia_id": f"D{n}:2", "text": text},
        ]
    path.write_text(json.dumps([{"sample_id": "ana", "conversation": conversation, "qa": []}]), encoding="utf-8")
    return path


def test_forget_retimes_with_the_groups_temporal_relations(tmp_path, embedder, extractor):
    """The group's pipeline holds only a job at a time (someone may live in several cities):
    forgetting the Paris turn must leave Lisbon and Berlin both current. Re-timed with the
    default relations, where 'lives in' holds one value, Berlin would end Lisbon."""
    spec = (
        Path(load_pipeline("locomo")["path"]).read_text(encoding="utf-8")
        + "temporal:\n  single_valued:\n    works at: [work at, work for]\n"
    )
    pipeline = tmp_path / "locomo-jobs.yaml"
    pipeline.write_text(spec, encoding="utf-8")
    home = tmp_path / "home"
    result = CliRunner().invoke(
        main,
        ["--home", str(home), "ingest", "--pipeline", str(pipeline), "-q", str(_locomo_chat(tmp_path / "chat.json"))],
    )
    assert result.exit_code == 0, result.output
    with Memory(home=home) as memory:  # told nothing: the group's recipe
        assert {(f.predicate, f.object) for f in memory.facts("Ana")} >= {
            ("live in", "Lisbon"),
            ("move to", "Berlin"),
            ("move to", "Paris"),
        }
        _, rows = memory.cypher("MATCH (e:Episode) WHERE e.content CONTAINS 'Paris' RETURN e.uuid")
        memory.forget(episode=rows[0][0])
        current = {(f.predicate, f.object) for f in memory.facts("Ana")}
    assert ("live in", "Lisbon") in current and ("move to", "Berlin") in current

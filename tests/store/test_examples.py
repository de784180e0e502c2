"""The exploration queries of cypher/examples run, unchanged, on every store."""

from __future__ import annotations

import json

import pytest

from graphmem.store.graph import Graph
from graphmem.store.queries import cypher_dir
from tests.store.synthetic import T0, build, write

DAY = 86_400_000


def run_example(case, example: str, /, **params):
    text = (cypher_dir() / "examples" / f"{example}.cypher").read_text(encoding="utf-8")
    columns, rows = case.store.cypher(text, {"group_id": case.group, **params}, group_id=case.group)
    return [dict(zip(columns, row, strict=True)) for row in rows]


@pytest.fixture
def data(case):
    g = build(case.group)
    write(case.store, g, case.batch_size)
    return g


def test_neighbourhood(case, data):
    rows = run_example(case, "neighbourhood", name="OSLO")
    assert [(r["entity"], r["hops"]) for r in rows] == [("Ada Lovelace", 1), ("Carl Sagan", 1), ("Bob Marley", 2)]
    assert rows[0]["via"] == ["lives_in"]


def test_timeline_shows_past_facts(case, data):
    ended = {"uuid": data.id("f4"), "subject": data.id("carl"), "valid_at": None}
    Graph(case.store, case.group).write(
        "facts_set_validity", [{**ended, "invalid_at": T0 + 3 * DAY, "expired_at": T0 + 3 * DAY}]
    )
    rows = run_example(case, "timeline", name="carl sagan")
    assert [(r["since"], r["subject"], r["predicate"], r["object"], r["status"], r["valid_until"]) for r in rows] == [
        (None, "Carl Sagan", "lives_in", "Oslo", "past", T0 + 3 * DAY),  # undated: unknown start
        (T0 + DAY, "Ada Lovelace", "works_with", "Carl Sagan", "current", None),
    ]


def test_most_connected(case, data):
    rows = run_example(case, "most_connected")
    assert [(r["entity"], r["facts"], r["passages"]) for r in rows] == [
        ("Ada Lovelace", 3, 3),
        ("Oslo", 2, 2),
        ("Carl Sagan", 2, 1),
        ("Bob Marley", 1, 1),
    ]


def test_path(case, data):
    rows = run_example(case, "path", **{"from": "Bob Marley", "to": "oslo"})
    assert len(rows) == 1 and rows[0]["hops"] == 2
    assert rows[0]["through"][0] == "Bob Marley" and rows[0]["through"][-1] == "Oslo"
    assert run_example(case, "path", **{"from": "Bob Marley", "to": "nobody"}) == []


def test_co_mentions(case, data):
    rows = run_example(case, "co_mentions", a="ada lovelace", b="Oslo")
    assert [(r["title"], r["occurred_at"]) for r in rows] == [("a.txt", T0), ("b.txt", T0 + 2 * DAY)]


def test_cli_runs_an_example_file_with_the_group_filled_in(tmp_path):
    """`graphmem cypher --file ... --param ...` on the embedded store, JSON and table output."""
    from click.testing import CliRunner

    from graphmem.cli import main
    from graphmem.store.falkordb import FalkorDBStore
    from graphmem.store.falkordb_server import EmbeddedServer

    server = EmbeddedServer(tmp_path)
    server.start()  # left running between commands, as after `graphmem db start`
    request_stop = server.stop
    store = FalkorDBStore(tmp_path)
    store.ensure_schema(8)
    write(store, build("default"))
    store.close()
    runner = CliRunner()
    try:
        _cli_checks(runner, main, tmp_path)
    finally:
        request_stop()


def _cli_checks(runner, main, tmp_path) -> None:
    path = str(cypher_dir() / "examples" / "co_mentions.cypher")
    result = runner.invoke(
        main, ["--home", str(tmp_path), "cypher", "--file", path, "--param", "a=Ada Lovelace", "-p", "b=oslo", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert [r["title"] for r in json.loads(result.output)] == ["a.txt", "b.txt"]
    result = runner.invoke(
        main,
        [
            "--home",
            str(tmp_path),
            "cypher",
            "--file",
            str(cypher_dir() / "examples" / "most_connected.cypher"),
            "--limit",
            "2",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0 and "Ada Lovelace" in result.output and "Bob Marley" not in result.output
    assert "2 row(s) (truncated; raise --limit)" in result.output
    result = runner.invoke(main, ["--home", str(tmp_path), "cypher", "MATCH (e:Entity) SET e.x = 1"])
    assert result.exit_code == 1 and "pass --write" in result.output
    result = runner.invoke(
        main,
        [
            "--home",
            str(tmp_path),
            "cypher",
            "--timeout",
            "1",
            "UNWIND range(1, 40000) AS x UNWIND range(1, 40000) AS y RETURN count(*)",
        ],
    )
    assert result.exit_code == 1 and "timeout of 1 s" in result.output

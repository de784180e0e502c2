"""Export / import / migrate, on every store of the contract suite."""

from __future__ import annotations

import json
import uuid

import networkx as nx
import pytest

from graphmem.errors import InputError
from graphmem.store import transfer
from graphmem.store.falkordb import FalkorDBStore
from graphmem.store.graph import Graph
from tests.store.synthetic import build, write


def snapshot(store, group: str | None) -> list[dict]:
    """Every element as an export record, comparable across stores (floats rounded:
    FalkorDB keeps vectors as float32, and its Bolt endpoint rounds parameters to 6 places)."""
    out = []
    for record in transfer.records(store, group):
        record = dict(record, properties={k: v for k, v in record["properties"].items() if k != "revision"})
        if "embedding" in record:
            record["embedding"] = [round(x, 4) for x in record["embedding"]]
        out.append(record)
    return sorted(out, key=lambda r: (r["type"], r["label"], r["key"]))


def schema_ok(case) -> bool:
    """Whether ensure_schema may run again on this store (the fixture already ran it)."""
    return "schema_twice" not in case.limits


@pytest.fixture
def source(falkordb_home):
    """An embedded store holding two groups of the synthetic graph."""
    store = FalkorDBStore(falkordb_home, f"src{uuid.uuid4().hex[:8]}")
    store.ensure_schema(8)
    groups = [f"s-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}"]
    for group in groups:
        write(store, build(group))
    yield store, groups
    store.close()


def test_jsonl_round_trip_restores_the_group(case, tmp_path):
    g = build(case.group)
    write(case.store, g, case.batch_size)
    before = snapshot(case.store, case.group)
    assert len(before) == 2 + 3 + 4 + 1 + 3 + 1 + 7 + 4 + 1
    path = tmp_path / "graph.jsonl"
    written = transfer.export_jsonl(case.store, path, group_id=case.group)
    assert written["facts"] == 4 and written["mentions"] == 7
    header = json.loads(path.read_text().splitlines()[0])
    assert header["format"] == "graphmem" and header["dim"] == 8
    case.store.run("group_delete", group_id=case.group)
    assert snapshot(case.store, case.group) == []
    loaded = transfer.import_jsonl(case.store, path, batch_size=case.batch_size, schema=schema_ok(case))
    assert loaded == written
    assert snapshot(case.store, case.group) == before
    # again: nothing changes
    transfer.import_jsonl(case.store, path, batch_size=case.batch_size, schema=schema_ok(case))
    assert snapshot(case.store, case.group) == before
    assert Graph(case.store, case.group).revision() >= 2  # bumped so cached projections reload


def test_migrate_copies_everything_and_resumes(case, source, tmp_path):
    src, groups = source
    checkpoint = tmp_path / "checkpoint.json"
    seen = []

    def interrupt(n: int) -> None:
        seen.append(n)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transfer.migrate(
            src,
            case.store,
            checkpoint=checkpoint,
            target_name="t",
            batch_size=case.batch_size,
            schema=schema_ok(case),
            page=2,
            progress=interrupt,
        )
    state = json.loads(checkpoint.read_text())
    assert state["done"] and state["after"]  # stopped part-way, with a place to resume from
    totals = []
    result = transfer.migrate(
        src,
        case.store,
        checkpoint=checkpoint,
        target_name="t",
        batch_size=case.batch_size,
        schema=schema_ok(case),
        page=2,
        on_total=lambda total, done: totals.append((total, done)),
    )
    assert result.resumed and not result.mismatches and not checkpoint.exists()
    assert totals[0][0] == sum(result.source.values()) and 0 < totals[0][1] < totals[0][0]
    for group in groups:
        assert snapshot(case.store, group) == snapshot(src, group)
        if case.name == "neo4j":
            case.store.run("group_delete", group_id=group)


def test_migrate_reports_differing_counts(case, source, tmp_path):
    src, groups = source
    # the target already holds an entity in one of the groups being copied
    extra = dict(build(groups[0]).entities[0], uuid=f"x-{uuid.uuid4().hex}", name="Extra", name_key="extra")
    case.store.run_rows("entities_upsert", [extra], case.batch_size, group_id=groups[0])
    with pytest.raises(Exception, match="counts differ"):
        transfer.migrate(
            src,
            case.store,
            checkpoint=tmp_path / "c.json",
            target_name="t",
            batch_size=case.batch_size,
            schema=schema_ok(case),
        )
    assert (tmp_path / "c.json").exists()
    if case.name == "neo4j":
        for group in groups:
            case.store.run("group_delete", group_id=group)


def test_bad_import_names_line_and_field_and_writes_nothing(falkordb_home, tmp_path):
    store = FalkorDBStore(falkordb_home, f"imp{uuid.uuid4().hex[:8]}")
    try:
        good = tmp_path / "good.jsonl"
        write(store, build("a"))
        transfer.export_jsonl(store, good)
        lines = good.read_text().splitlines()
        target = FalkorDBStore(falkordb_home, f"imp{uuid.uuid4().hex[:8]}")
        cases = {
            "embedding": (3, lambda r: dict(r, embedding=[0.1, "x"])),
            "properties.bad": (4, lambda r: dict(r, properties={**r["properties"], "bad": {"nested": 1}})),
            "label": (2, lambda r: dict(r, label="Person")),
        }
        for field, (line, change) in cases.items():
            broken = list(lines)
            broken[line - 1] = json.dumps(change(json.loads(broken[line - 1])))
            path = tmp_path / f"bad-{line}.jsonl"
            path.write_text("\n".join(broken) + "\n")
            with pytest.raises(InputError) as info:
                transfer.import_jsonl(target, path)
            assert (info.value.line, info.value.field) == (line, field)
            assert f"bad-{line}.jsonl:{line}" in str(info.value)
        # a relationship whose node is missing, and a file that is not an export
        rel = next(i for i, text in enumerate(lines) if '"relationship"' in text)
        dangling = lines[:1] + lines[rel:]
        (tmp_path / "dangling.jsonl").write_text("\n".join(dangling) + "\n")
        with pytest.raises(InputError, match="no earlier line defines"):
            transfer.import_jsonl(target, tmp_path / "dangling.jsonl")
        (tmp_path / "other.jsonl").write_text('{"question": "hi"}\n')
        with pytest.raises(InputError, match="header"):
            transfer.import_jsonl(target, tmp_path / "other.jsonl")
        assert sum(transfer.counts(target).values()) == 0  # nothing was written
        target.close()
    finally:
        store.close()


def test_graphml_export_loads_in_networkx(falkordb_home, tmp_path):
    store = FalkorDBStore(falkordb_home, f"gml{uuid.uuid4().hex[:8]}")
    try:
        g = build("a")
        write(store, g)
        path = tmp_path / "graph.graphml"
        transfer.export_graphml(store, path)
    finally:
        store.close()
    graph = nx.read_graphml(path)
    labels = [d["label"] for _, d in graph.nodes(data=True)]
    assert labels.count("Entity") == 4 and labels.count("Episode") == 3 and labels.count("Source") == 2
    types = [d["type"] for *_, d in graph.edges(data=True)]
    assert types.count("FACT") == 4 and types.count("MENTIONS") == 7 and types.count("SYNONYM") == 1
    ada = graph.nodes[g.id("ada")]
    assert ada["name"] == "Ada Lovelace" and json.loads(ada["aliases"]) == ["Ada Lovelace"]
    assert "embedding" not in ada
    fact = [d for a, b, d in graph.edges(data=True) if d.get("uuid") == g.id("f1")][0]
    assert fact["predicate"] == "lives_in" and fact["valid_at"] == g.facts[0]["valid_at"]


def test_migrate_cli_copies_an_embedded_graph(tmp_path, falkordb_home):
    """`graphmem migrate` end to end, between two data directories."""

    from graphmem.cli import main
    from graphmem.store.falkordb_server import EmbeddedServer

    home_a, home_b = tmp_path / "a", tmp_path / "b"
    servers = [EmbeddedServer(home_a), EmbeddedServer(home_b)]
    for server in servers:  # left running between commands, as after `graphmem db start`
        server.start()
    try:
        store = FalkorDBStore(home_a)
        write(store, build("default"))
        store.close()
        _migrate_cli_checks(main, home_a, home_b, tmp_path)
    finally:
        for server in servers:
            server.stop()


def _migrate_cli_checks(main, home_a, home_b, tmp_path) -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(home_a), "migrate", "--to", f"falkordb:{home_b}"])
    assert result.exit_code == 0, result.output
    assert "counts match the source" in result.output and "4 facts" in result.output
    out = runner.invoke(main, ["--home", str(home_b), "stats", "--json"])
    assert json.loads(out.output)["facts"] == 4
    again = runner.invoke(main, ["--home", str(home_a), "migrate", "--to", f"falkordb:{home_b}", "-q"])
    assert again.exit_code == 0 and "counts match" in again.output  # copying twice changes nothing
    own = runner.invoke(main, ["--home", str(home_a), "migrate", "--to", f"falkordb:{home_a}"])
    assert own.exit_code == 1 and "own data directory" in own.output
    out = runner.invoke(main, ["--home", str(home_b), "export", str(tmp_path / "b.jsonl"), "-q"])
    assert out.exit_code == 0 and (tmp_path / "b.jsonl").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "format": "graphmem", "version": 1}\n{"type": "node"}\n')
    out = runner.invoke(main, ["--home", str(home_b), "import", str(bad)])
    assert out.exit_code == 1 and "bad.jsonl:2" in out.output


def test_an_export_line_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    header = json.dumps({"type": "header", "format": transfer.FORMAT, "version": transfer.VERSION})
    path.write_bytes(header.encode() + b"\n\xff\xfe not text\n")
    with pytest.raises(InputError, match="not UTF-8") as info:
        transfer.read_jsonl(path)
    assert info.value.line == 2

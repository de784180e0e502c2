"""The embedded store keeps each group in its own graph: listing and dropping groups,
splitting a store of the older one-graph layout, and coming back after the server dies."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from graphmem.errors import StoreUnavailable
from graphmem.store import transfer
from graphmem.store.falkordb import FalkorDBStore, SingleGraph
from graphmem.store.graph import Graph
from tests.store.synthetic import build, write


def test_each_group_is_its_own_graph(tmp_path):
    store = FalkorDBStore(tmp_path, "g")
    try:
        store.ensure_schema(8)
        for group in ("alpha", "beta"):
            write(store, build(group))
        assert store.groups() == ["alpha", "beta"]
        names = {x.decode() if isinstance(x, bytes) else x for x in store._db.list_graphs()}
        assert {"g:alpha", "g:beta"} <= names
        # a query in one group's graph cannot see the other's nodes, whatever it matches
        _, rows = store.cypher("MATCH (n) RETURN DISTINCT n.group_id", group_id="alpha")
        assert rows == [["alpha"]]
        assert store.drop_group("beta") is True
        assert store.groups() == ["alpha"]
        assert Graph(store, "beta").stats()["episodes"] == 0
        assert store.drop_group("beta") is False
        assert Graph(store, "alpha").stats()["episodes"] == 3
    finally:
        store.close()


def test_reading_a_group_that_was_never_written_creates_nothing(tmp_path):
    store = FalkorDBStore(tmp_path, "g")
    try:
        assert Graph(store, "ghost").stats() == dict.fromkeys(
            ("sources", "episodes", "entities", "facts", "mentions", "synonyms"), 0
        )
        assert Graph(store, "ghost").revision() == 0
        assert store.groups() == []
    finally:
        store.close()


def test_invalid_group_names_are_refused(tmp_path):
    store = FalkorDBStore(tmp_path, "g")
    try:
        for bad in ("", "a b", "victim\n", "../x", "x" * 65):
            with pytest.raises(Exception, match="invalid group"):
                store.run("stats", group_id=bad)
    finally:
        store.close()


def test_a_one_graph_store_is_split_per_group_with_counts_checked(tmp_path):
    """A store written by an older graphmem (every group in the graph 'graphmem') is moved
    to a graph per group when opened; the counts per group are equal, the old graph goes."""
    store = FalkorDBStore(tmp_path)
    old = SingleGraph(store, "graphmem")
    groups = ["team-a", "team-b"]
    for group in groups:  # write the old layout through the same queries older versions ran
        data = build(group)
        claim = {"group_id": group, "owner": "old", "now": 1}
        old.run(
            "sources_claim",
            rows=[{k: v for k, v in s.items() if k != "group_id"} for s in data.sources],
            dead=[],
            **claim,
        )
        for query, rows in [
            ("entities_upsert", data.entities),
            ("episodes_upsert", data.episodes),
            ("next_upsert", data.nexts),
            ("mentions_upsert", data.mentions),
            ("facts_upsert", data.facts),
            ("synonyms_upsert", data.synonyms),
        ]:
            old.run_rows(query, rows)
        old.run_rows(
            "episode_embeddings_set", [{"uuid": e["uuid"], "embedding": data.vectors[e["uuid"]]} for e in data.episodes]
        )
        old.run("sources_complete_owned", uuids=[s["uuid"] for s in data.sources], **claim)
        old.run("revision_bump", group_id=group, first=1)
    before = {group: transfer.counts(old, group) for group in groups}
    assert old.groups() == groups
    store.close()

    reopened = FalkorDBStore(tmp_path)
    try:
        names = {x.decode() if isinstance(x, bytes) else x for x in reopened._db.list_graphs()}
        assert "graphmem" not in names
        assert reopened.groups() == groups
        for group in groups:
            assert transfer.counts(reopened, group) == before[group]
            assert before[group]["episodes"] == 3
        # vectors came along: the group's vector index answers
        vector = build("team-a").vectors
        e2 = build("team-a").id("e2")
        rows = reopened.run("episodes_vector_search", k=1, vector=list(vector[e2]), group_id="team-a")
        assert rows and rows[0]["uuid"] == e2
    finally:
        reopened.close()


def test_the_store_comes_back_after_the_server_is_killed(tmp_path):
    """kill -9 of redis-server: the next read restarts it from its append-only file and
    answers; no process restart needed. A write during the outage fails clearly."""
    store = FalkorDBStore(tmp_path)
    try:
        write(store, build("g1"))
        graph = Graph(store, "g1")
        assert graph.stats()["episodes"] == 3
        time.sleep(1.2)  # appendfsync everysec: let the last writes reach the disk
        os.kill(store.server._pid(), signal.SIGKILL)
        deadline = time.time() + 10
        while store.server.ping() and time.time() < deadline:
            time.sleep(0.05)
        assert graph.stats()["episodes"] == 3  # restarted, reloaded, answered
        os.kill(store.server._pid(), signal.SIGKILL)
        while store.server.ping() and time.time() < deadline + 10:
            time.sleep(0.05)
        with pytest.raises(StoreUnavailable, match="run it again"):
            graph.bump_revision()
        assert graph.bump_revision() >= 2  # and writes work again
        _, rows = store.cypher("MATCH (e:Episode) RETURN count(e)", group_id="g1")
        assert rows == [[3]]
    finally:
        store.close()


def test_two_stores_on_one_server_share_groups(tmp_path):
    a, b = FalkorDBStore(tmp_path), FalkorDBStore(tmp_path)
    try:
        group = f"s-{uuid.uuid4().hex[:6]}"
        write(a, build(group))
        assert Graph(b, group).stats()["episodes"] == 3
    finally:
        b.close()
        a.close()


def test_one_query_cannot_take_the_hosts_memory(tmp_path, monkeypatch):
    """The server caps each query's memory (GRAPHMEM_QUERY_MEMORY_MB): a query building a
    huge list fails with the store's message instead of growing redis-server for seconds."""
    from graphmem.errors import StoreError

    monkeypatch.setenv("GRAPHMEM_QUERY_MEMORY_MB", "64")
    store = FalkorDBStore(tmp_path)
    try:
        with pytest.raises(StoreError, match="mem"):
            store.cypher(
                "UNWIND range(1, 1000000) AS x UNWIND range(1, 9) AS y WITH collect(x) AS l RETURN size(l)",
                group_id="g",
            )
        _, rows = store.cypher("UNWIND range(1, 1000) AS x RETURN sum(x)", group_id="g")
        assert rows == [[500500]]
    finally:
        store.close()


def test_a_group_made_again_never_repeats_a_revision(tmp_path):
    """Cached projections are keyed by revision: a dropped group's new graph must not
    reuse the revisions of the old one, or its cache would pass for the new data."""
    store = FalkorDBStore(tmp_path)
    try:
        graph = Graph(store, "g")
        seen = {graph.bump_revision() for _ in range(3)}
        store.drop_group("g")
        assert graph.revision() == 0
        time.sleep(0.01)
        assert graph.bump_revision() not in seen
    finally:
        store.close()


@pytest.mark.parametrize("name", [".", "..", "-rf", ":x", "a/b", "a b", "é"])
def test_group_names_that_could_be_paths_or_options_are_refused(name):
    """A group name becomes a graph name and a cache folder: '..' would be the home itself."""
    from graphmem.api.auth import check_group
    from graphmem.config import Settings
    from graphmem.errors import ConfigError

    with pytest.raises(ConfigError, match="invalid group"):
        check_group(name)
    with pytest.raises(ConfigError):
        Settings.from_env(group_id=name)

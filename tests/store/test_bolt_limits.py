"""The FalkorDB Bolt limits the contract suite skips (conftest.BOLT_LIMITS) still
hold. When one of these fails, FalkorDB fixed it: drop it from BOLT_LIMITS so the
contract test it skips runs over Bolt too.

Not checked here because it takes the server down: a Bolt message over ~4 KiB
crashes FalkorDB 4.16 (hence the small batches), as does a write over Bolt with
the append-only file on (hence no AOF with bolt_port). Ports above 32767 are
silently not served (hence the port choice in conftest).
"""

from __future__ import annotations

import pytest

from graphmem.errors import StoreError


@pytest.fixture
def bolt(bolt_server):
    return bolt_server.fresh()


def test_read_access_mode_is_ignored(bolt):
    bolt._execute("CREATE (:Probe {x: 1})", {}, read=True)  # a read transaction, yet it writes
    _, rows = bolt._execute("MATCH (p:Probe) RETURN count(p)", {}, read=True)
    assert rows == [[1]]


def test_transaction_timeout_is_ignored(bolt):
    _, rows = bolt.cypher(
        "UNWIND range(1, 2000) AS x UNWIND range(1, 2000) AS y RETURN count(*)", group_id="t", timeout_ms=1
    )
    assert rows == [[4_000_000]]


def test_errors_have_no_text(bolt):
    with pytest.raises(StoreError, match="unknown error"):
        bolt.cypher("MATCH (n) RETRUN n", group_id="t")


def test_creating_an_index_twice_is_an_opaque_error(bolt):
    with pytest.raises(StoreError, match="unknown error"):
        bolt.ensure_schema(8)  # the fixture made the schema already

"""FalkorDB takes parameters as Cypher text; graphmem writes most of it with json.dumps
(graphmem/store/falkordb.py, _json_literal). Whatever path a value takes, the query must
see exactly the value given."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from graphmem.store.falkordb import FalkorDBStore, _json_literal

keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(-1e300, 1e300)  # FalkorDB reads the largest doubles as infinity
    # NUL ends FalkorDB's query text; lone surrogates are not UTF-8
    | st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=20)
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = FalkorDBStore(tmp_path_factory.mktemp("params"))
    yield s
    s.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values)
@example(value=[{}, {"B": {"A": None}}])  # an empty map beside a nested one: nested maps must be seen
def test_every_value_arrives_unchanged(store, value):
    _, rows = store.cypher("RETURN $p AS p", {"p": value}, group_id="t")
    assert _same(rows[0][0], value)


def _same(got, want) -> bool:
    """Equal, floats to FalkorDB's 15 significant digits (it prints doubles so, on either path)."""
    if isinstance(want, float) and not isinstance(want, bool):
        return isinstance(got, (int, float)) and got == pytest.approx(want, rel=1e-14, abs=1e-300)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


def test_the_fast_path_is_taken_for_plain_rows_and_left_for_what_json_writes_otherwise():
    rows = [{"uuid": "a", "name": 'Ada "the Countess"\\n', "count": 2, "aliases": ["Ada", "A. L."], "valid_at": None}]
    assert (
        _json_literal(rows) == '[{`uuid`:"a",`name`:"Ada \\"the Countess\\"\\\\n",`count`:2,'
        '`aliases`:["Ada","A. L."],`valid_at`:null}]'
    )
    assert _json_literal({"bell": "\x07"}) is None  # json writes \u0007, which FalkorDB does not read
    assert _json_literal({"a-b": 1}) is None  # not an identifier: the slow path backticks it
    assert _json_literal(float("nan")) is None


def test_rows_with_packed_vectors_arrive_unchanged(store):
    """Packed vectors are spliced into the text after the rest of the rows is formatted."""
    import numpy as np

    from graphmem.store.falkordb import pack_vector, unpack_vector

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((5, 384)).astype(np.float32)
    rows = [
        {"uuid": f"u{i}", "name": 'say "hi",{"embedding":0,', "embedding": pack_vector(v), "n": i}
        for i, v in enumerate(vectors)
    ]
    _, got = store.cypher("UNWIND $rows AS r RETURN r.uuid, r.name, r.embedding, r.n", {"rows": rows}, group_id="t")
    assert [g[0] for g in got] == [r["uuid"] for r in rows] and all(g[1] == rows[0]["name"] for g in got)
    assert all(np.array_equal(unpack_vector(g[2]), v) for g, v in zip(got, vectors, strict=True))
    assert [g[3] for g in got] == list(range(5))
    only = [{"embedding": pack_vector(v)} for v in vectors[:2]]  # rows with nothing else: the slow path
    _, got = store.cypher("UNWIND $rows AS r RETURN r.embedding", {"rows": only}, group_id="t")
    assert [g[0] for g in got] == [r["embedding"] for r in only]

"""Requests at the edges of what the API accepts: each is a clear 4xx naming the field, never a 500.

Out-of-range dates, integers past 64 bits, group names with a trailing newline
and bodies too large without a Content-Length. Real uvicorn on 127.0.0.1 (the
fixtures of conftest.py).
"""

from __future__ import annotations

import json

import pytest

from graphmem.api.auth import KeyStore, check_group
from graphmem.errors import ConfigError

LIMIT = 2_000_000  # the api fixture's max_body_bytes


def problem(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers.get("connection") != "close"  # the keep-alive connection survives
    return response.json()["detail"]


# -- dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_out_of_range_dates_are_422_naming_the_field(api, http, when):
    h = api.headers(api.key_a)
    assert problem(http.post("/v1/search", json={"query": "library", "as_of": when}, headers=h), 422).startswith(
        "as_of: "
    )
    doc = {"name": "dated.txt", "text": "A dated note.", "date": when}
    assert problem(http.post("/v1/ingest", json={"documents": [doc]}, headers=h), 422).startswith("documents.0.date: ")
    turn = {"speaker": "Ana", "text": "Hello.", "time": when}
    detail = problem(
        http.post("/v1/ingest", json={"conversations": [{"name": "chat", "turns": [turn]}]}, headers=h), 422
    )
    assert detail.startswith("conversations.0.turns.0.time: ") and "out of range" in detail
    detail = problem(http.get("/v1/facts", params={"entity": "Halvard Library", "as_of": when}, headers=h), 422)
    assert detail.startswith("as_of: ") and "out of range" in detail


def test_the_extreme_dates_that_fit_are_served(api, http):
    h = api.headers(api.key_a)
    for when in ("0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59Z"):
        r = http.post("/v1/search", json={"query": "library", "k": 1, "as_of": when}, headers=h)
        assert r.status_code == 200, r.text


# -- body size without Content-Length -----------------------------------------------------------
def _chunked(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_an_oversized_chunked_body_is_413(api, http):
    body = json.dumps({"query": "x" * (LIMIT + 1000)}).encode()
    r = http.post(
        "/v1/search", content=_chunked(body), headers={**api.headers(api.key_a), "content-type": "application/json"}
    )
    assert "transfer-encoding" not in r.request.headers or r.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and str(LIMIT) in r.json()["detail"]


def test_a_chunked_body_within_the_limit_is_served(api, http):
    body = json.dumps({"query": "Who designed the Halvard Library?", "k": 2, "group": "default"}).encode()
    r = http.post(
        "/v1/search", content=_chunked(body, 7), headers={**api.headers(api.key_a), "content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 2


# -- integers past int64 -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params,where",
    [
        ({"n": 2**63}, "params.n"),
        ({"n": -(2**63) - 1}, "params.n"),
        ({"list": [1, 2, [3, 10**30]]}, "params.list[2][1]"),
        ({"map": {"deep": {"n": 2**64}}}, "params.map.deep.n"),
    ],
)
def test_cypher_params_past_int64_are_422(api, http, params, where):
    body = {"query": "MATCH (e:Entity {group_id: $group_id}) RETURN e.name LIMIT 1", "params": params}
    detail = problem(http.post("/v1/cypher", json=body, headers=api.headers(api.key_a)), 422)
    assert detail.startswith("params: ") and f"{where}: the integer" in detail and "64-bit" in detail


def test_cypher_params_that_fit_and_non_finite_floats():
    from pydantic import ValidationError

    from graphmem.api.models import CypherRequest

    fits = {"a": 2**63 - 1, "b": -(2**63), "c": [True, 1.5, {"d": 0}]}
    assert CypherRequest(query="RETURN 1", params=fits).params == fits
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValidationError, match=r"params.x\[0\]: .* not a finite number"):
            CypherRequest(query="RETURN 1", params={"x": [bad]})


def test_non_finite_numbers_in_json_are_422(api, http):
    raw = b'{"query": "MATCH (e:Entity {group_id: $group_id}) RETURN e LIMIT 1", "params": {"x": NaN}}'
    detail = problem(
        http.post("/v1/cypher", content=raw, headers={**api.headers(api.key_a), "content-type": "application/json"}),
        422,
    )
    assert "params.x" in detail


def test_big_integers_elsewhere_are_422_naming_the_field(api, http):
    h = api.headers(api.key_a)
    assert problem(http.post("/v1/search", json={"query": "x", "k": 2**70}, headers=h), 422).startswith("k: ")
    doc = {"name": "meta.txt", "text": "A note.", "metadata": {"n": 2**70}}
    assert problem(http.post("/v1/ingest", json={"documents": [doc]}, headers=h), 422).startswith(
        "documents.0.metadata.n: "
    )
    turn = {"speaker": "Ana", "text": "Hello.", "session": 2**64}
    assert problem(
        http.post("/v1/ingest", json={"conversations": [{"name": "c", "turns": [turn]}]}, headers=h), 422
    ).startswith("conversations.0.turns.0.session: ")


# -- group names are matched in full ------------------------------------------------------------
def test_group_names_with_a_trailing_newline_are_refused(api, http, tmp_path):
    admin = api.headers(api.admin)
    detail = problem(http.post("/v1/admin/keys", json={"groups": ["default\n"]}, headers=admin), 422)
    assert detail.startswith("groups.0: ")
    assert all(k["groups"] != ["default\n"] for k in http.get("/v1/admin/keys", headers=admin).json())
    h = api.headers(api.key_a)
    assert problem(http.post("/v1/search", json={"query": "x", "group": "default\n"}, headers=h), 422).startswith(
        "group: "
    )
    problem(http.get("/v1/facts", params={"entity": "x", "group": "default\n"}, headers=h), 422)

    for bad in ("abc\n", "abc\r\n", "\nabc", "a b"):
        with pytest.raises(ConfigError, match="invalid group"):
            check_group(bad)
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"id": "k", "hash": "sha256:00", "groups": ["abc\n"]}]}))
    with pytest.raises(ConfigError, match="invalid group"):
        KeyStore(path, env={})
    with pytest.raises(ConfigError, match="invalid group"):
        KeyStore(None, env={"GRAPHMEM_API_KEYS": "k-0123456789abcdefghijklmnop=ab\nc"})
    with pytest.raises(ConfigError, match="invalid group"):
        KeyStore(None, env={"GRAPHMEM_API_KEY": "k-0123456789abcdefghijklmnop", "GRAPHMEM_GROUP_ID": "ab\nc"})
    with pytest.raises(ConfigError, match="invalid group"):
        KeyStore(None, env={}).add(["abc\n"])


# -- the query: the same limits and words as the CLI ------------------------------------------------
@pytest.mark.parametrize("query", ["", "   ", "x" * 100_000])
def test_a_query_out_of_bounds_gets_the_same_words_from_rest_and_cli(api, http, tmp_path, query):
    from click.testing import CliRunner

    from graphmem.cli import main
    from graphmem.query_limits import query_problem

    words = query_problem(query)
    assert words is not None
    detail = problem(http.post("/v1/search", json={"query": query}, headers=api.headers(api.key_a)), 422)
    assert detail == f"query: {words}"
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "search", query])
    assert result.exit_code == 1 and result.output.strip() == f"error: query: {words}"
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question": "Who built the Kessary Bridge?"}) + "\n" + json.dumps({"query": query})
    )
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "search", "--file", str(questions)])
    assert result.exit_code == 1 and result.output.strip() == f"error: {questions}:2: {words}"

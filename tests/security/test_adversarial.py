"""Adversarial suite: a tenant holding an ordinary API key attacks a real server.

A real uvicorn on 127.0.0.1 serves the real embedded store with two tenants:
``victim`` (documents whose passages, entity names and source names carry unique
markers) and ``attacker`` (documents of its own). The attacker replays every
query of the original report (property maps built by functions, a pattern
comprehension's scope, 21-deep nested lists, the cubic-guard shape, a 3-million
row UNWIND) and many more crafted to escape the group or stall the store
(string, comment and unicode tricks, procedures, subqueries, UNION, paths,
comprehensions, parameters, nesting, LOAD CSV, USE, size and range bombs, group
name tricks), then goes through every other endpoint with the victim's ids.

Shown, in this run:

- (a) zero foreign rows: no response body holds a victim marker, uuid, entity
  or source name that the request did not itself contain (error messages may
  echo what was asked), nor a line of /etc/passwd;
- (b) every request returns within its budget: refusals in under
  ``REFUSED_BUDGET_S``, queries that run within their ``timeout_ms`` plus
  ``RUN_SLACK_S``, other endpoints within ``ENDPOINT_BUDGET_S``;
- (c) the victim's searches are not slowed beyond 2x (plus ``FLOOR_MS``) while the
  attacker fires its heaviest queries from several threads; the victim's own user
  Cypher is answered or refused with 429 within the slot wait (see the test).

Run with ``-s`` to see the table of attack -> status -> ms; it is also written as
JSON under the test's temporary directory (``adversarial-report*/attacks.json``).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import free_port, run_uvicorn, start_server

SECRET = "VICTIM-SECRET-7f3a"
#: one canary per victim document, never sent by the attacker: finding one is a leak
CANARIES = [f"CANARY-c0ffee-{i:02d}" for i in range(4)]
VICTIM_DOCS = [
    {
        "name": "victim-ledger-7f3a.md",
        "title": "Ledger 7f3a",
        "text": f"{SECRET}. Quillon Varnaby founded Brightforge Holdings in Port Ellisandre in 1987. {CANARIES[0]}. "
        "Brightforge Holdings makes brass telescopes for observatories.",
    },
    {
        "name": "victim-memo-7f3a.md",
        "title": "Memo 7f3a",
        "text": f"{SECRET}. Marisol Quenterfield joined Brightforge Holdings as chief engineer in 1994. {CANARIES[1]}. "
        "Marisol Quenterfield designed the Varnaby refractor with Quillon Varnaby.",
    },
    {
        "name": "victim-diary-7f3a.md",
        "title": "Diary 7f3a",
        "text": f"{SECRET}. Oswin Halloway bought the Ellisandre Observatory from Quillon Varnaby in 2003. "
        f"{CANARIES[2]}. The Ellisandre Observatory stands above Port Ellisandre.",
    },
]
#: ingested as a background job, so the attacker can try to read the victim's job
VICTIM_JOB_DOC = {
    "name": "victim-job-7f3a.md",
    "title": "Job 7f3a",
    "text": f"{SECRET}. Talia Drummond audited Brightforge Holdings in 2011. {CANARIES[3]}.",
}
ATTACKER_DOCS = [
    {
        "name": "attacker-bakery.md",
        "text": "Tomas Reed runs a bakery in Lisbon. Tomas Reed bakes bread for the "
        "Lisbon Harbour Market every morning with Ana Costa.",
    },
    {
        "name": "attacker-club.md",
        "text": "Ana Costa founded the Alfama Chess Club in 2015. The Alfama Chess Club "
        "meets in Lisbon. Pedro Alves won the club cup in 2019.",
    },
    {
        "name": "attacker-trip.md",
        "text": "Pedro Alves sailed from Porto to Madeira with Tomas Reed in 2020. "
        "Madeira Wine Company hosted them in Funchal.",
    },
]
#: what a file read through LOAD CSV would show
FILE_MARKERS = ["root:x:0:0", "/bin/bash", "daemon:x:"]

REFUSED_BUDGET_S = 1.0  # refused before the store sees the query (checker, validation, auth)
RUN_SLACK_S = 2.0  # a query that runs: its timeout plus this
ENDPOINT_BUDGET_S = 5.0  # search, reads and deletes through the other endpoints
RUN_TIMEOUT_MS = 2000  # timeout_ms the attacker asks for on queries meant to run long
#: (c): the victim's median latency during the attack may be at most 2x its median alone
#: plus this floor. The suite runs on 2 cores shared with other work (load averages of 8-10
#: while it was written); a search alone takes 40-80 ms there and swings by tens of ms
#: between rounds, and one user query running to its timeout takes one of the two cores,
#: which alone cost the victim's searches 1.9x (37 -> 70 ms) when measured apart
FLOOR_MS = 50.0

RESULTS: list[dict] = []


@dataclass
class Arena:
    url: str
    victim: str
    attacker: str
    attacker2: str
    markers: list[str]
    victim_uuids: dict[str, list[str]]
    victim_names: list[str]
    victim_sources: list[str]
    victim_job: str
    victim_counts: dict[str, int]

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def _cypher(client: httpx.Client, key: str, query: str, **extra) -> dict:
    r = client.post("/v1/cypher", json={"query": query, **extra}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return r.json()


def _counts(client: httpx.Client, key: str) -> dict[str, int]:
    rows = _cypher(client, key, "MATCH (n) RETURN labels(n)[0] AS label, count(*) AS n ORDER BY label")["rows"]
    return {label: n for label, n in rows}


@pytest.fixture(scope="module")
def arena(tmp_path_factory, embedder, extractor):
    tmp = tmp_path_factory.mktemp("adversarial")
    from graphmem.api.auth import KeyStore

    keys = KeyStore(tmp / "keys.json", env={})
    victim, _ = keys.add(["victim"], name="victim")
    attacker, _ = keys.add(["attacker"], name="attacker")
    attacker2, _ = keys.add(["attacker"], name="attacker-second-key")
    app, _ = start_server(tmp / "home", tmp / "keys.json", max_body_bytes=20 * 1024 * 1024, background_items=64)
    with run_uvicorn(app, free_port()) as url, httpx.Client(base_url=url, timeout=120) as client:
        hv, ha = {"Authorization": f"Bearer {victim}"}, {"Authorization": f"Bearer {attacker}"}
        r = client.post("/v1/ingest", json={"documents": VICTIM_DOCS}, headers=hv)
        assert r.status_code == 200 and r.json()["report"]["passages"] >= 3, r.text
        r = client.post("/v1/ingest", json={"documents": ATTACKER_DOCS}, headers=ha)
        assert r.status_code == 200 and r.json()["report"]["passages"] >= 3, r.text
        r = client.post("/v1/ingest", json={"documents": [VICTIM_JOB_DOC], "background": True}, headers=hv)
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        deadline = time.time() + 60
        while client.get(f"/v1/jobs/{job}", headers=hv).json()["state"] not in {"succeeded", "failed"}:
            assert time.time() < deadline, "the victim's background ingestion did not finish"
            time.sleep(0.1)
        assert client.get(f"/v1/jobs/{job}", headers=hv).json()["state"] == "succeeded"

        # what the victim holds, read with the victim's own key
        uuids = {
            "episode": [r[0] for r in _cypher(client, victim, "MATCH (e:Episode) RETURN e.uuid")["rows"]],
            "entity": [r[0] for r in _cypher(client, victim, "MATCH (n:Entity) RETURN n.uuid")["rows"]],
            "source": [r[0] for r in _cypher(client, victim, "MATCH (s:Source) RETURN s.uuid")["rows"]],
            "fact": [r[0] for r in _cypher(client, victim, "MATCH ()-[f:FACT]->() RETURN f.uuid")["rows"]],
        }
        names = [r[0] for r in _cypher(client, victim, "MATCH (n:Entity) RETURN n.name")["rows"]]
        sources = [r[0] for r in _cypher(client, victim, "MATCH (s:Source) RETURN s.name")["rows"]]
        attacker_text = " ".join(
            [d["text"] for d in ATTACKER_DOCS]
            + [r[0] for r in _cypher(client, attacker, "MATCH (n:Entity) RETURN n.name")["rows"]]
        )
        # entity names distinctive enough to be markers: not in anything the attacker holds
        distinctive = [
            n
            for n in names
            if isinstance(n, str)
            and len(n) >= 6
            and any(c.isalpha() for c in n)
            and n.lower() not in attacker_text.lower()
        ]
        assert len(uuids["episode"]) >= 4 and len(distinctive) >= 3, (uuids, names)
        assert any("Varnaby" in n for n in distinctive), names
        markers = [SECRET, *CANARIES, *sources, *distinctive, *(u for group in uuids.values() for u in group)]
        yield Arena(
            url, victim, attacker, attacker2, markers, uuids, distinctive, sources, job, _counts(client, victim)
        )


@pytest.fixture(scope="module", autouse=True)
def report(tmp_path_factory):
    """After the module: the table of attacks (visible with -s) and its JSON artifact."""
    yield
    if not RESULTS:
        return
    path = tmp_path_factory.mktemp("adversarial-report") / "attacks.json"
    path.write_text(json.dumps(RESULTS, indent=1, ensure_ascii=True))
    print()
    print(_table(RESULTS))
    print(_summary(RESULTS))
    print(f"(written to {path})")


def _table(rows: list[dict]) -> str:
    lines = [f"{'#':>3} {'category':<11} {'attack':<58} {'status':>6} {'outcome':<9} {'ms':>8} {'budget':>7} leaks"]
    for i, row in enumerate(rows, 1):
        lines.append(
            f"{i:>3} {row['category']:<11} {row['attack'][:58]:<58} {row['status']:>6} {row['outcome']:<9} "
            f"{row['ms']:>8.1f} {row['budget_ms']:>7.0f} {len(row['leaks'])}"
        )
    return "\n".join(lines)


def _summary(rows: list[dict]) -> str:
    outcomes: dict[str, int] = {}
    for row in rows:
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    attacks = [r for r in rows if r["category"] not in {"latency", "known-gap"}]
    worst = max(attacks, key=lambda r: r["ms"]) if attacks else {"ms": 0, "attack": "-"}
    gaps = [r for r in rows if r["category"] == "known-gap"]
    return (
        f"{len(rows)} rows: "
        + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
        + f"; foreign rows: {sum(len(r['leaks']) for r in rows)}; attacks over budget: "
        + f"{sum(r['ms'] > r['budget_ms'] for r in attacks)}; slowest attack: {worst['ms']:.0f} ms "
        + f"({worst['attack']}); known gaps over budget: {sum(r['ms'] > r['budget_ms'] for r in gaps)}"
    )


# -- the attacks ----------------------------------------------------------------------------------------------
@dataclass
class Attack:
    name: str
    category: str
    method: str
    path: str
    body: dict | None = None
    params: dict | None = None
    #: allowed outcomes: refused (the checker, 400), invalid (422), forbidden (403),
    #: notfound (404), busy (429), ran (200), failed (400 from the store: a syntax error or the timeout)
    expect: frozenset = frozenset({"ran", "failed", "refused"})
    check: Callable[[dict], None] | None = None  # more assertions on a 200 body
    key: str = "attacker"
    #: a budget other than the outcome's (in seconds), where the request itself is large
    budget_s: float | None = None


def cypher(
    name: str,
    category: str,
    query: str,
    expect=("ran", "failed", "refused"),
    params=None,
    check=None,
    budget_s=None,
    **extra,
) -> Attack:
    body = {"query": query, **extra}
    if params is not None:
        body["params"] = params
    return Attack(name, category, "POST", "/v1/cypher", body, expect=frozenset(expect), check=check, budget_s=budget_s)


def _outcome(response: httpx.Response) -> str:
    status = response.status_code
    if status == 200:
        return "ran"
    if status == 400:
        detail = response.json().get("detail", "")
        return "refused" if detail.startswith("query refused") else "failed"
    return {403: "forbidden", 404: "notfound", 422: "invalid", 429: "busy", 401: "unauth"}.get(status, f"http{status}")


def _budget_s(attack: Attack, outcome: str) -> float:
    if attack.budget_s is not None:
        return attack.budget_s
    if outcome in {"refused", "invalid", "forbidden", "busy", "unauth"}:
        return REFUSED_BUDGET_S
    if attack.path == "/v1/cypher":
        return min(attack.body.get("timeout_ms", 5000), 30_000) / 1000 + RUN_SLACK_S
    return ENDPOINT_BUDGET_S


def _leaks(arena: Arena, request_text: str, body: str) -> list[str]:
    asked, seen = request_text.lower(), body.lower()
    found = [m for m in arena.markers if m.lower() in seen and m.lower() not in asked]
    return found + [m for m in FILE_MARKERS if m in body]


def fire(client: httpx.Client, arena: Arena, attack: Attack, record: bool = True) -> dict:
    key = {"attacker": arena.attacker, "attacker2": arena.attacker2}[attack.key]
    request_text = " ".join(
        [
            attack.method,
            attack.path,
            json.dumps(attack.body or {}, ensure_ascii=False),
            json.dumps(attack.params or {}, ensure_ascii=False),
        ]
    )
    started = time.perf_counter()
    response = client.request(
        attack.method, attack.path, json=attack.body, params=attack.params, headers={"Authorization": f"Bearer {key}"}
    )
    ms = (time.perf_counter() - started) * 1000
    outcome = _outcome(response)
    row = {
        "attack": attack.name,
        "category": attack.category,
        "status": response.status_code,
        "outcome": outcome,
        "ms": round(ms, 1),
        "budget_ms": _budget_s(attack, outcome) * 1000,
        "leaks": _leaks(arena, request_text, response.text),
        "expect": sorted(attack.expect),
        "detail": (response.json().get("detail", "") if response.status_code != 200 else "")[:200],
    }
    if response.status_code == 200 and attack.check is not None:
        try:
            attack.check(response.json())
        except AssertionError as exc:
            row["wrong"] = str(exc)[:300]
    if record:
        RESULTS.append(row)
    return row


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _rows(n_max: int) -> Callable[[dict], None]:
    def check(body: dict) -> None:
        assert len(body["rows"]) <= n_max, body

    return check


def _truncated_to(n: int) -> Callable[[dict], None]:
    def check(body: dict) -> None:
        assert len(body["rows"]) == n and body["truncated"], body

    return check


def _first_value(expected: Any) -> Callable[[dict], None]:
    def check(body: dict) -> None:
        assert body["rows"][0][0] == expected, body

    return check


def cypher_attacks() -> list[Attack]:
    r, ran, refused, failed = RUN_TIMEOUT_MS, ("ran",), ("refused",), ("failed",)

    def nesting(n: int) -> str:
        return "MATCH (n:Entity {group_id: $group_id}) WITH n LIMIT 1 RETURN " + "[" * n + "1" + "]" * n + " AS x"

    def cubic(n: int) -> str:
        return "MATCH (n {group_id: $group_id}) RETURN " + "a" * n + "()" * (n // 4)

    attacks = [
        # -- the original report -------------------------------------------------------------------------
        cypher(
            "toString property map: victim episodes",
            "report",
            "OPTIONAL MATCH (a {group_id: $group_id}) WITH count(a) AS c MATCH (e:Episode {group_id: "
            'toString("victim")}) RETURN e.title, substring(e.content,0,80) LIMIT 3',
            ran,
            check=_rows(0),
        ),
        cypher(
            "toString property map: every tenant's sources",
            "report",
            'OPTIONAL MATCH (a {group_id: $group_id}) WITH count(a) AS c MATCH (s:Source {kind: toString("doc")}) '
            "RETURN s.group_id, count(*)",
            ran,
        ),
        cypher(
            "pattern-comprehension scope",
            "report",
            "MATCH (x:Entity {group_id: $group_id}) WITH x, size([(a:Entity {group_id: $group_id})-->() | 1]) AS s "
            "LIMIT 1 MATCH (a:Episode) RETURN a.group_id, count(*)",
            ran,
        ),
        *[cypher(f"nested list depth {n}", "report", nesting(n), refused) for n in (21, 24, 100, 1000)],
        *[
            cypher(
                f"cubic-guard shape N={n} ({len(cubic(n))} chars)",
                "report",
                cubic(n),
                ("invalid",) if len(cubic(n)) > 20_000 else ("refused", "failed"),
            )
            for n in (1539, 3039, 8000, 13000, 16000)
        ],
        cypher(
            "UNWIND range(1,3000000) RETURN i, limit 1",
            "report",
            "UNWIND range(1,3000000) AS i RETURN i",
            refused,
            limit=1,
            timeout_ms=r,
        ),
        cypher(
            "UNWIND range(1,1000000) RETURN i, limit 1",
            "report",
            "UNWIND range(1,1000000) AS i RETURN i",
            ran,
            check=_truncated_to(1),
            limit=1,
            timeout_ms=r,
        ),
        # -- strings and comments -----------------------------------------------------------------------
        cypher(
            "keywords inside a string",
            "string",
            "MATCH (n:Entity) RETURN n.name, 'CREATE (x) DETACH DELETE x' AS s",
            ran,
        ),
        cypher("/* */ splitting DETACH DELETE", "string", "MATCH (n) DE/**/TACH DE/**/LETE n", ("failed", "refused")),
        cypher(
            "/* */ splitting LOAD CSV",
            "string",
            "LO/**/AD CSV FROM 'file:///etc/passwd' AS r RETURN r",
            ("failed", "refused"),
        ),
        cypher("write after // comment and \\r", "string", "MATCH (n) RETURN count(n) // x\rDETACH DELETE n", ran),
        cypher("unterminated string", "string", "MATCH (n) RETURN 'abc", refused),
        cypher(
            "escaped quote hiding CREATE",
            "string",
            "RETURN 'a\\' CREATE (x) //' AS s",
            ran,
            check=_first_value("a' CREATE (x) //"),
        ),
        cypher(
            'escaped " hiding LOAD CSV',
            "string",
            'RETURN "a\\" LOAD CSV FROM \'file:///etc/passwd\' AS r RETURN r //" AS s',
            ran,
        ),
        cypher("escaped backslash then CREATE", "string", "RETURN 'a\\\\' AS s CREATE (x)", refused),
        cypher("nested /* /* */ comment", "string", "RETURN 1 AS x /* /* */ , 2 AS y */", ("failed", "refused")),
        cypher("unterminated /* comment", "string", "MATCH (n) RETURN n /* DELETE n", refused),
        cypher("backticked names that are keywords", "string", "MATCH (`DELETE`:Entity) RETURN `DELETE`.name", ran),
        cypher("doubled backtick", "string", "RETURN 1 AS `a``b`", ("ran", "failed")),
        # -- unicode ---------------------------------------------------------------------------------------
        cypher("full-width MATCH/RETURN", "unicode", "ＭＡＴＣＨ (n) ＲＥＴＵＲＮ n", ("failed", "refused")),
        cypher(
            "full-width LOAD CSV",
            "unicode",
            "ＬＯＡＤ ＣＳＶ ＦＲＯＭ 'file:///etc/passwd' AS r RETURN r",
            ("failed", "refused"),
        ),
        cypher(
            "Cyrillic homoglyph MATCH", "unicode", "\u041c\u0410\u0422\u0421\u041d (n) RETURN n", ("failed", "refused")
        ),
        cypher(
            "zero-width space inside LOAD", "unicode", "LO\u200bAD CSV FROM 'file:///etc/passwd' AS r RETURN r", refused
        ),
        cypher("right-to-left override", "unicode", "MATCH (n) RETURN n \u202e LIMIT 1", refused),
        cypher(
            "no-break space in LOAD CSV", "unicode", "LOAD\u00a0CSV FROM 'file:///etc/passwd' AS r RETURN r", refused
        ),
        cypher("long s in SET (upper() is SET)", "unicode", "MATCH (n) ſET n.x = 1", ("refused", "failed")),
        cypher("mixed-case LoAd CsV", "unicode", "LoAd CsV fRoM 'file:///etc/passwd' AS r RETURN r", refused),
        cypher("unicode identifiers", "unicode", "MATCH (ñ:Entity) RETURN ñ.name", ("ran", "failed")),
        # -- procedures ------------------------------------------------------------------------------------
        cypher("db.labels()", "procedure", "CALL db.labels() YIELD label RETURN label", ran),
        cypher("db.indexes()", "procedure", "CALL db.indexes()", ("ran", "failed")),
        cypher(
            "db.idx.vector.queryNodes on own data",
            "procedure",
            "CALL db.idx.vector.queryNodes('Episode', 'embedding', 10, vecf32($v)) YIELD node, score "
            "RETURN node.content, score",
            ran,
            params={"v": [0.05] * 384},
        ),
        cypher(
            "db.idx.fulltext.queryNodes for the victim's secret",
            "procedure",
            f"CALL db.idx.fulltext.queryNodes('Episode', '{SECRET.split('-')[0]}') YIELD node RETURN node.content",
            ran,
            check=_rows(0),
        ),
        cypher("dbms.procedures()", "procedure", "CALL dbms.procedures()", refused),
        cypher(
            "algo.pageRank",
            "procedure",
            "CALL algo.pageRank(null, null) YIELD node, score RETURN node.name, score",
            refused,
        ),
        cypher(
            "algo.BFS",
            "procedure",
            "MATCH (a:Entity) WITH a LIMIT 1 CALL algo.BFS(a, 0, null) YIELD nodes RETURN nodes",
            refused,
        ),
        cypher("db.idx.fulltext.drop", "procedure", "CALL db.idx.fulltext.drop('Episode')", refused),
        cypher("backticked db.idx.fulltext.drop", "procedure", "CALL `db`.`idx`.`fulltext`.`drop`('Episode')", refused),
        cypher("db.meta.stats()", "procedure", "CALL db.meta.stats()", refused),
        # -- subqueries -----------------------------------------------------------------------------------
        cypher("CALL { } subquery", "subquery", "CALL { MATCH (e:Episode) RETURN e.content AS c } RETURN c", ran),
        cypher("CALL { } subquery that writes", "subquery", "CALL { CREATE (x:Entity {name: 'x'}) } RETURN 1", refused),
        cypher(
            "EXISTS { }",
            "subquery",
            "MATCH (n:Entity) WHERE EXISTS { MATCH (n)-->() } RETURN n.name",
            ("ran", "failed"),
        ),
        cypher(
            "COUNT { } over every node",
            "subquery",
            "MATCH (n:Entity) RETURN n.name, COUNT { MATCH (m) RETURN m } AS c",
            ("ran", "failed"),
        ),
        # -- UNION -----------------------------------------------------------------------------------------
        cypher(
            "UNION", "union", "MATCH (e:Episode) RETURN e.content AS c UNION MATCH (n:Entity) RETURN n.name AS c", ran
        ),
        cypher(
            "UNION ALL with a huge LIMIT per part",
            "union",
            "MATCH (e:Episode) RETURN e.uuid AS c LIMIT 100000000 UNION ALL MATCH (n) RETURN n.uuid AS c LIMIT 9999999",
            ran,
            check=_rows(5),
            limit=5,
        ),
        # -- paths -----------------------------------------------------------------------------------------
        cypher(
            "shortestPath",
            "path",
            "MATCH (a:Entity), (b:Entity) WHERE a <> b WITH a, b LIMIT 20 "
            "MATCH p = shortestPath((a)-[*]-(b)) RETURN [x IN nodes(p) | x.name]",
            ("ran", "failed"),
            timeout_ms=r,
        ),
        cypher(
            "allShortestPaths",
            "path",
            "MATCH (a:Entity), (b:Entity) WHERE a <> b WITH a, b LIMIT 20 "
            "MATCH p = allShortestPaths((a)-[*]-(b)) RETURN size(relationships(p))",
            ("ran", "failed"),
            timeout_ms=r,
        ),
        cypher(
            "variable-length -[*]- path explosion",
            "path",
            "MATCH p = (a)-[*]-(b) RETURN count(p)",
            ("ran", "failed"),
            timeout_ms=r,
        ),
        cypher(
            "nodes(p) over -[*1..3]-",
            "path",
            "MATCH p = (a)-[*1..3]-(b) RETURN [n IN nodes(p) | n.name] AS names",
            ran,
            timeout_ms=r,
        ),
        # -- comprehensions and reduce -------------------------------------------------------------------------
        cypher(
            "list comprehension over passages",
            "comprehension",
            "MATCH (e:Episode) RETURN [w IN split(e.content, ' ') WHERE size(w) > 3 | toUpper(w)] AS words",
            ran,
        ),
        cypher("map projection n {.*}", "comprehension", "MATCH (n:Entity) RETURN n {.*} AS m", ran),
        cypher(
            "pattern comprehension",
            "comprehension",
            "MATCH (n:Entity) RETURN n.name, [(n)-[x]-(m) | type(x) + ' ' + coalesce(m.name, '')] AS around",
            ran,
        ),
        cypher(
            "reduce() sum of 100,000",
            "comprehension",
            "RETURN reduce(s = 0, x IN range(1, 100000) | s + x) AS t",
            ran,
            check=_first_value(5000050000),
        ),
        cypher(
            "reduce() string doubling x20 (1 MB)",
            "comprehension",
            "RETURN size(reduce(s = 'a', x IN range(1, 20) | s + s)) AS n",
            ran,
        ),
        # -- parameters ---------------------------------------------------------------------------------------
        cypher(
            "params: group_id = victim",
            "params",
            "MATCH (n) RETURN n.name",
            ("invalid",),
            params={"group_id": "victim"},
        ),
        cypher(
            "params: GROUP_ID = victim",
            "params",
            "MATCH (n) WHERE n.group_id = $GROUP_ID RETURN n.name",
            ran,
            params={"GROUP_ID": "victim"},
            check=_rows(0),
        ),
        cypher(
            "params: name with a backtick",
            "params",
            "RETURN 1 AS x",
            ("failed", "invalid"),
            params={"a` RETURN 1 //": 1},
        ),
        cypher(
            "params named like keywords",
            "params",
            "RETURN $MATCH + $RETURN + $CREATE AS x",
            ran,
            params={"MATCH": 1, "RETURN": 2, "CREATE": 3},
            check=_first_value(6),
        ),
        cypher(
            "params: string with quotes and a query",
            "params",
            "RETURN $s AS s",
            ran,
            params={"s": 'x" MATCH (n) RETURN n //\\'},
            check=_first_value('x" MATCH (n) RETURN n //\\'),
        ),
        # 2 s: before the checker counts them, the API validates the 100,001 values of the
        # request body (0.3 s of the 1 s this took on a busy machine; see known limits)
        cypher(
            "params: a list of 100,001 numbers",
            "params",
            "RETURN size($big) AS n",
            refused,
            params={"big": [0] * 100_001},
            budget_s=2.0,
        ),
        cypher(
            "params: 99,990 numbers (at the budget)",
            "params",
            "RETURN size($big) AS n",
            ran,
            params={"big": [0] * 99_990},
            check=_first_value(99_990),
        ),
        cypher(
            "params: a list nested 500 deep", "params", "RETURN size($deep) AS n", ran, params={"deep": nested(500)}
        ),
        cypher(
            "params: LIMIT $k = 10^12",
            "params",
            "MATCH (n) RETURN n.name LIMIT $k",
            ran,
            params={"k": 10**12},
            check=_rows(3),
            limit=3,
        ),
        cypher(
            "CYPHER header in the query text",
            "params",
            "CYPHER group_id='victim' MATCH (n) RETURN n.group_id, count(*)",
            ("ran", "failed"),
        ),
        # -- nesting --------------------------------------------------------------------------------------------
        cypher("NOT chain of 11", "nesting", "RETURN " + "NOT " * 11 + "true", refused),
        cypher("NOT chain of 1000", "nesting", "RETURN " + "NOT " * 1000 + "true", refused),
        cypher("unary minus chain of 5000", "nesting", "RETURN " + "-" * 5000 + "1", refused),
        cypher("CASE nested 11 deep", "nesting", "RETURN " + "CASE WHEN true THEN " * 11 + "1" + " END" * 11, refused),
        cypher("[NOT [NOT ... 6 deep", "nesting", "RETURN " + "[NOT " * 6 + "true" + "]" * 6, refused),
        cypher("x = NOT x = NOT ... 20 (no brackets)", "nesting", "RETURN true" + " = NOT true" * 20, refused),
        cypher("x + NOT x + NOT ... 16", "nesting", "RETURN 1" + " + NOT 1" * 16, refused),
        cypher("STARTS WITH NOT chain 16", "nesting", "RETURN 'a'" + " STARTS WITH NOT 'a'" * 16, refused),
        cypher("x = NOT x ... 10 (at the budget: cheap)", "nesting", "RETURN true" + " = NOT true" * 10, ran),
        cypher(
            "nested lists 10 (at the budget: cheap)", "nesting", "RETURN " + "[" * 10 + "1" + "]" * 10 + " AS x", ran
        ),
        cypher("nested parentheses 2000", "nesting", "RETURN " + "(" * 2000 + "1" + ")" * 2000, refused),
        cypher("nested maps 12", "nesting", "RETURN " + "{a: " * 12 + "1" + "}" * 12, refused),
        cypher("nested comprehensions 12", "nesting", "RETURN " + "[x IN " * 12 + "[1]" + " | x]" * 12, refused),
        # -- reach beyond the group ------------------------------------------------------------------------------
        cypher("LOAD CSV file://", "reach", "LOAD CSV FROM 'file:///etc/passwd' AS r RETURN r", refused),
        cypher(
            "LOAD CSV https://",
            "reach",
            "LOAD CSV WITH HEADERS FROM 'https://example.org/x.csv' AS r RETURN r",
            refused,
        ),
        cypher("USE another database", "reach", "USE victim MATCH (n) RETURN n", refused),
        cypher("SHOW DATABASES", "reach", "SHOW DATABASES", refused),
        cypher("CREATE", "reach", "CREATE (n:Entity {name: 'x'})", refused),
        cypher("MERGE", "reach", "MERGE (n:Entity {name: 'x'}) RETURN n", refused),
        cypher("SET", "reach", "MATCH (n) SET n.name = 'x'", refused),
        cypher("DETACH DELETE", "reach", "MATCH (n) DETACH DELETE n", refused),
        cypher("FOREACH", "reach", "MATCH (n) FOREACH (x IN [1] | SET n.y = x)", refused),
        # -- size ------------------------------------------------------------------------------------------------
        cypher("string literal of 19,980 characters", "size", "RETURN '" + "s" * 19_980 + "' AS s", ran),
        cypher("string literal of 25,000 characters", "size", "RETURN '" + "s" * 25_000 + "' AS s", ("invalid",)),
        cypher("20,000 characters of 1+1+...", "size", "RETURN 1" + "+1" * 9_996, refused),
        cypher("20,000 characters, mostly blank", "size", "RETURN 1 AS x" + " " * (20_000 - 13), ran),
        cypher("20,001 characters", "size", "RETURN 1 AS x" + " " * (20_001 - 13), ("invalid",)),
        cypher(
            "4,000 tokens of OPTIONAL MATCH",
            "size",
            "MATCH (a) " + "OPTIONAL MATCH (a)-->() " * 440 + "RETURN a",
            ("refused", "ran", "failed"),
            timeout_ms=r,
        ),
        # -- resources ------------------------------------------------------------------------------------------
        cypher(
            "cartesian (a),(b),(c),(d) count(*)",
            "resource",
            "MATCH (a),(b),(c),(d) RETURN count(*)",
            ("ran", "failed"),
            timeout_ms=r,
        ),
        cypher(
            "cartesian of 6 count(*): runs to its timeout",
            "resource",
            "MATCH (a),(b),(c),(d),(e),(f) RETURN count(*)",
            failed,
            timeout_ms=r,
        ),
        cypher(
            "UNWIND 10^7 x 10^7 count(*)",
            "resource",
            "UNWIND range(1, 10000000) AS a UNWIND range(1, 10000000) AS b RETURN count(*)",
            refused,
        ),
        cypher(
            "UNWIND 10^6 x 10^6 count(*): runs to its timeout",
            "resource",
            "UNWIND range(1, 1000000) AS a UNWIND range(1, 1000000) AS b RETURN count(*)",
            failed,
            timeout_ms=r,
        ),
        cypher("range(1, 10^10)", "resource", "RETURN size(range(1, 10000000000)) AS n", refused),
        cypher(
            "range(1, $n) with n = 2^62", "resource", "RETURN size(range(1, $n)) AS n", refused, params={"n": 2**62}
        ),
        cypher(
            "range with a computed bound", "resource", "RETURN size(range(1, toInteger('1' + '0' * 12))) AS n", refused
        ),
        cypher("`range` backticked, huge", "resource", "RETURN size(`RANGE`(0, 9223372036854775807)) AS n", refused),
        cypher(
            "timeout_ms 600,000 asked (clamped)",
            "resource",
            "MATCH (a),(b),(c),(d),(e),(f) RETURN count(*)",
            ("invalid",),
            timeout_ms=600_000,
        ),
    ]
    # group names in the request body
    for group in ("victim", "victim\n", "victim ", "../victim", "VICTIM", "attacker:victim", "victim\x00", ""):
        body = {"query": "MATCH (e:Episode) RETURN e.content", "group": group}
        expect = ("forbidden",) if group in {"victim", "VICTIM", "attacker:victim"} else ("invalid",)
        attacks.append(
            Attack(f"cypher with group {group!r}", "group", "POST", "/v1/cypher", body, expect=frozenset(expect))
        )
    return attacks


def endpoint_attacks(arena: Arena) -> list[Attack]:
    episode, entity, source = (
        arena.victim_uuids["episode"][0],
        arena.victim_uuids["entity"][0],
        arena.victim_uuids["source"][0],
    )
    name = next(n for n in arena.victim_names if "Varnaby" in n)
    source_name = next(s for s in arena.victim_sources if "ledger" in s)
    nf, fb, inv = frozenset({"notfound"}), frozenset({"forbidden"}), frozenset({"invalid"})
    bait = f"{SECRET} {name} Brightforge Holdings Port Ellisandre telescopes"
    attacks = []
    for mode in ("graph", "dense", "bm25"):
        attacks.append(
            Attack(
                f"search {mode} for the victim's words",
                "search",
                "POST",
                "/v1/search",
                {"query": bait, "k": 100, "mode": mode},
                expect=frozenset({"ran"}),
            )
        )
        attacks.append(
            Attack(
                f"search {mode} in group victim",
                "search",
                "POST",
                "/v1/search",
                {"query": bait, "mode": mode, "group": "victim"},
                expect=fb,
            )
        )
    attacks.append(
        Attack(
            "search with as_of in the past",
            "search",
            "POST",
            "/v1/search",
            {"query": bait, "as_of": "1990-01-01T00:00:00Z"},
            expect=frozenset({"ran"}),
        )
    )
    for group in ("victim\n", "VICTIM", "attacker:victim", "../victim"):
        attacks.append(
            Attack(
                f"search with group {group!r}",
                "group",
                "POST",
                "/v1/search",
                {"query": bait, "group": group},
                expect=inv if group in {"victim\n", "../victim"} else fb,
            )
        )
    reads = [
        ("GET", f"/v1/episodes/{episode}", "victim episode uuid"),
        ("GET", f"/v1/entities/{entity}", "victim entity uuid"),
        ("GET", f"/v1/episodes/{source}", "victim source uuid as an episode"),
    ]
    for method, path, what in reads:
        attacks.append(Attack(f"{method} {what}", "endpoint", method, path, expect=nf))
        attacks.append(
            Attack(f"{method} {what}, group=victim", "endpoint", method, path, params={"group": "victim"}, expect=fb)
        )
    for value, what in ((name, "victim entity name"), (entity, "victim entity uuid")):
        attacks.append(
            Attack(f"facts about {what}", "endpoint", "GET", "/v1/facts", params={"entity": value}, expect=nf)
        )
        attacks.append(
            Attack(
                f"facts about {what}, history",
                "endpoint",
                "GET",
                "/v1/facts",
                params={"entity": value, "history": "true"},
                expect=nf,
            )
        )
        attacks.append(
            Attack(
                f"facts about {what}, group=victim",
                "endpoint",
                "GET",
                "/v1/facts",
                params={"entity": value, "group": "victim"},
                expect=fb,
            )
        )
    for value, what in ((source_name, "victim source name"), (source, "victim source uuid")):
        attacks.append(Attack(f"DELETE {what}", "endpoint", "DELETE", f"/v1/sources/{value}", expect=nf))
        attacks.append(
            Attack(
                f"DELETE {what}, group=victim",
                "endpoint",
                "DELETE",
                f"/v1/sources/{value}",
                params={"group": "victim"},
                expect=fb,
            )
        )
    attacks += [
        Attack("DELETE victim episode", "endpoint", "DELETE", f"/v1/episodes/{episode}", expect=nf),
        Attack(
            "DELETE victim episode, group=victim",
            "endpoint",
            "DELETE",
            f"/v1/episodes/{episode}",
            params={"group": "victim"},
            expect=fb,
        ),
        Attack("GET the victim's job", "endpoint", "GET", f"/v1/jobs/{arena.victim_job}", expect=nf),
        Attack(
            "ingest into group victim",
            "endpoint",
            "POST",
            "/v1/ingest",
            {"documents": [{"name": "victim-ledger-7f3a.md", "text": "overwritten"}], "group": "victim"},
            expect=fb,
        ),
        Attack("list keys", "endpoint", "GET", "/v1/admin/keys", expect=fb),
        Attack(
            "create a key for group victim", "endpoint", "POST", "/v1/admin/keys", {"groups": ["victim"]}, expect=fb
        ),
        Attack("list groups", "endpoint", "GET", "/v1/admin/groups", expect=fb),
        Attack("drop group victim", "endpoint", "DELETE", "/v1/admin/groups/victim", expect=fb),
        Attack("revoke the victim's key", "endpoint", "DELETE", "/v1/admin/keys/k_00000000", expect=fb),
        Attack(
            "path traversal in an episode id",
            "endpoint",
            "GET",
            "/v1/episodes/..%2F..%2Fvictim%2F" + episode,
            expect=nf,
        ),
        Attack("episode id with a NUL", "endpoint", "GET", f"/v1/episodes/{episode}%00", expect=inv),
        # last: from here on the attacker's own group holds a source of that name
        Attack(
            "ingest under the victim's source name, own group",
            "endpoint",
            "POST",
            "/v1/ingest",
            {"documents": [{"name": source_name, "text": "Nothing here."}]},
            expect=frozenset({"ran"}),
        ),
    ]
    return attacks


# -- the tests ------------------------------------------------------------------------------------------------
def test_attacks_find_no_foreign_rows_and_keep_their_budgets(arena):
    """Every attack: (a) no victim marker, uuid or name it did not send comes back, nor a
    file's content; (b) it returns within its budget; and it ends the way it should
    (refused, forbidden, run in its own group ...)."""
    attacks = cypher_attacks() + endpoint_attacks(arena)
    assert len([a for a in attacks if a.category not in {"report", "search", "endpoint"}]) >= 30
    failures = []
    with httpx.Client(base_url=arena.url, timeout=60) as client:
        for attack in attacks:
            row = fire(client, arena, attack)
            if row["leaks"]:
                failures.append(f"{attack.name}: foreign data {row['leaks']}")
            if row["ms"] > row["budget_ms"]:
                failures.append(f"{attack.name}: {row['ms']:.0f} ms, budget {row['budget_ms']:.0f} ms")
            if row.get("wrong"):
                failures.append(f"{attack.name}: unexpected answer {row['wrong']}")
            if row["outcome"] not in attack.expect:
                failures.append(
                    f"{attack.name}: {row['status']} {row['outcome']} (expected "
                    f"{'/'.join(sorted(attack.expect))}): {row['detail']}"
                )
        # nothing of the victim's was changed by any of it, and the victim still finds its own
        assert _counts(client, arena.victim) == arena.victim_counts
        hits = client.post(
            "/v1/search",
            json={"query": "Who founded Brightforge Holdings?", "k": 5},
            headers=arena.headers(arena.victim),
        ).json()["results"]
        assert any(SECRET in h["content"] for h in hits)
    assert not failures, "\n".join(failures)


#: what the attacker's threads fire during the latency test: queries that run to their
#: timeout (or carry the most parameters allowed), and the refusals that cost the checker most
RUNNING = [
    cypher(
        "cartesian of 6, to its timeout",
        "load",
        "MATCH (a),(b),(c),(d),(e),(f) RETURN count(*)",
        timeout_ms=RUN_TIMEOUT_MS,
    ),
    cypher(
        "path explosion, to its timeout", "load", "MATCH p = (a)-[*]-(b) RETURN count(p)", timeout_ms=RUN_TIMEOUT_MS
    ),
    cypher(
        "UNWIND 10^6 x 10^6",
        "load",
        "UNWIND range(1, 1000000) AS a UNWIND range(1, 1000000) AS b RETURN count(*)",
        timeout_ms=RUN_TIMEOUT_MS,
    ),
    cypher("99,990 numbers in a parameter", "load", "RETURN size($big) AS n", params={"big": [0] * 99_990}),
]
REFUSED = [
    cypher("nested list 1000", "load", "RETURN " + "[" * 1000 + "1" + "]" * 1000),
    cypher("x = NOT x ... 20", "load", "RETURN true" + " = NOT true" * 20),
    cypher("20,000 characters of 1+1", "load", "RETURN 1" + "+1" * 9_996),
    cypher("OPTIONAL MATCH x 440", "load", "MATCH (a) " + "OPTIONAL MATCH (a)-->() " * 440 + "RETURN a"),
    cypher("range(1, 10^10)", "load", "RETURN size(range(1, 10000000000)) AS n"),
]
#: the refusing thread's pace: an attack, not a flood (graphmem serve has no rate limit;
#: a flood of cheap requests is a proxy's job, see docs/security.md)
REFUSED_PER_S = 10


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def test_other_tenants_are_not_slowed_by_an_attack(arena):
    """(c): see :func:`_slowdown_round`. The machine running the suite is shared (in CI, other
    test processes; here, other jobs), so a round whose medians were disturbed is measured
    once more; a real stall (seconds) fails both."""
    for _ in (1, 2):
        summary = _slowdown_round(arena)
        if summary["search_during_ms"] <= 2 * summary["search_alone_ms"] + FLOOR_MS:
            return
    raise AssertionError(f"the victim's searches were slowed more than 2x (+{FLOOR_MS} ms) in both rounds: {summary}")


def _slowdown_round(arena) -> dict:
    """The victim's search latency while the attacker attacks is at most 2x its latency
    alone, plus FLOOR_MS. Alone: the median of 10 searches before and 10 after the attack
    (the machine is shared; its background load drifts); during: the median of 15.

    The attacker runs three threads: its first key runs RUNNING back to back (each to its
    timeout), its second key tries the same at once (it waits for the shared slot, then
    429), and the first key also fires REFUSED at REFUSED_PER_S (its own query is running,
    so these meet the checker or the per-key limit).

    The victim's user Cypher shares the one Cypher slot with every tenant (the store has two
    query threads; one is kept for searches and ingestion), so while the attacker's query
    runs it waits up to ``cypher_wait_s`` (2 s) and then gets 429: asserted is that bound,
    and that alone it is answered; its medians are recorded in the table."""
    search = {"query": "Who founded Brightforge Holdings in Port Ellisandre?", "k": 5}
    query = {"query": "MATCH (e:Episode)-[:MENTIONS]->(n:Entity) RETURN e.uuid, n.name LIMIT 5"}
    hv = arena.headers(arena.victim)
    stop = threading.Event()
    fired: list[dict] = []

    def victim_round(client: httpx.Client, n: int):
        searches, cyphers, statuses = [], [], []
        for i in range(n):
            started = time.perf_counter()
            r = client.post("/v1/search", json=search, headers=hv)
            searches.append(time.perf_counter() - started)
            assert r.status_code == 200 and r.json()["results"], r.text
            if i % 2:  # Cypher every other round: during the attack it may wait 2 s for the slot
                continue
            started = time.perf_counter()
            r = client.post("/v1/cypher", json=query, headers=hv)
            cyphers.append(time.perf_counter() - started)
            statuses.append(r.status_code)
            assert r.status_code in {200, 429}, r.text
        return searches, cyphers, statuses

    def attacker(key: str, attacks: list[Attack], pause_s: float, deadline: float):
        with httpx.Client(base_url=arena.url, timeout=60) as client:
            i = 0
            while not stop.is_set() and time.time() < deadline:
                a = attacks[i % len(attacks)]
                fired.append(
                    fire(
                        client,
                        arena,
                        Attack(a.name, a.category, a.method, a.path, a.body, a.params, a.expect, None, key),
                        record=False,
                    )
                )
                i += 1
                stop.wait(pause_s)

    with httpx.Client(base_url=arena.url, timeout=60) as client:
        victim_round(client, 3)  # warm up
        before_s, before_c, before_status = victim_round(client, 10)
        deadline = time.time() + 40
        threads = [
            threading.Thread(target=attacker, args=args, daemon=True)
            for args in (
                ("attacker", RUNNING, 0.0, deadline),
                ("attacker2", RUNNING, 0.0, deadline),
                ("attacker", REFUSED, 1 / REFUSED_PER_S, deadline),
            )
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the attack is under way
        try:
            during_s, during_c, during_status = victim_round(client, 15)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        after_s, after_c, after_status = victim_round(client, 10)
    alone_s, alone_c, alone_status = before_s + after_s, before_c + after_c, before_status + after_status
    running = [f for f in fired if f["outcome"] in {"ran", "failed"}]
    summary = {
        "search_alone_ms": round(_median_ms(alone_s), 1),
        "search_during_ms": round(_median_ms(during_s), 1),
        "cypher_alone_ms": round(_median_ms(alone_c), 1),
        "cypher_during_ms": round(_median_ms(during_c), 1),
        "cypher_during_429": during_status.count(429),
        "cypher_during_max_ms": round(max(during_c) * 1000, 1),
        "attacker_requests": len(fired),
        "attacker_ran": len(running),
        "attacker_refused": sum(f["outcome"] == "refused" for f in fired),
        "attacker_busy_429": sum(f["outcome"] == "busy" for f in fired),
        "attacker_slowest_ms": max(f["ms"] for f in fired),
        "floor_ms": FLOOR_MS,
    }
    RESULTS.append(
        {
            "attack": "victim search while attacked (median ms)",
            "category": "latency",
            "status": 200,
            "outcome": "measured",
            "ms": summary["search_during_ms"],
            "budget_ms": 2 * summary["search_alone_ms"] + FLOOR_MS,
            "leaks": [],
            "expect": ["measured"],
            "detail": json.dumps(summary),
        }
    )
    RESULTS.append(
        {
            "attack": "victim Cypher while attacked (median ms)",
            "category": "latency",
            "status": 200,
            "outcome": "measured",
            "ms": summary["cypher_during_ms"],
            "budget_ms": 1000 * (2.0 + RUN_SLACK_S),
            "leaks": [],
            "expect": ["measured"],
            "detail": json.dumps(summary),
        }
    )
    print("\nlatency (median ms):", json.dumps(summary))
    assert alone_status.count(200) == len(alone_status), "alone, the victim's user Cypher is answered"
    assert running, "the attacker's heavy queries did run during the measurement"
    for f in fired:  # the attacker's own requests kept their budgets under contention too
        assert f["ms"] <= f["budget_ms"] + 1000 * RUN_SLACK_S, f
        assert not f["leaks"], f
    # the victim's Cypher is never stalled: answered, or 429 after at most the slot wait (2 s)
    assert max(during_c) <= 2.0 + RUN_SLACK_S, summary
    return summary  # the search latency is checked by the caller


@pytest.mark.xfail(
    strict=True,
    reason="FalkorDB does not interrupt the evaluation of one expression: timeout_ms "
    "is checked between records, so a comprehension over a few thousand items "
    "runs to its end (see docs/security.md, known limits)",
)
def test_one_expression_is_stopped_at_its_timeout(arena):
    """A single row whose one expression costs 1.44 x 10^8 steps (about 5 s on a quiet 2-core
    machine: 6.4 x 10^7 ran in 2 s there, inside the 2.2 s budget) with a 200 ms timeout."""
    attack = cypher(
        "comprehension inside a comprehension, 200 ms timeout",
        "known-gap",
        "WITH range(1, 12000) AS l RETURN size([x IN l | size([y IN l WHERE y > x])]) AS n",
        timeout_ms=200,
    )
    with httpx.Client(base_url=arena.url, timeout=120) as client:
        row = fire(client, arena, attack)
    row["outcome"] = "known gap"
    assert row["ms"] <= row["budget_ms"], row


@pytest.mark.xfail(
    strict=False,
    reason="partly fixed: the key is checked before a body is parsed (the victim's "
    "searches went from 10x+ slower to 2-6x), but an upload still passes "
    "through the API's event loop at network speed; on loopback with the "
    "flooders in the server's own process it stays above 2x on some runs "
    "(see docs/security.md, known limits)",
)
def test_large_bodies_do_not_slow_other_tenants(arena):
    """Measured twice at most, as the test above (a disturbed round is measured once more)."""
    for _ in (1, 2):
        row = _large_body_round(arena)
        if row["ms"] <= row["budget_ms"]:
            return
    raise AssertionError(f"large bodies slowed the victim more than 2x (+{FLOOR_MS} ms) in both rounds: {row}")


def _large_body_round(arena) -> dict:
    """Two threads without any key post a 7 MB body (a million numbers as Cypher parameters)
    while the victim searches: each is answered 401 before its body is read (the key is
    checked first, in the middleware), and the victim's median during <= 2x alone + FLOOR_MS.
    With a key, the same body is over the query endpoints' 2 MB limit: 413 from its length."""
    search = {"query": "Who founded Brightforge Holdings in Port Ellisandre?", "k": 5}
    hv = arena.headers(arena.victim)
    body = json.dumps({"query": "RETURN size($big) AS n", "params": {"big": list(range(1_000_000))}}).encode()
    stop, answers = threading.Event(), []

    def searches(client: httpx.Client, n: int) -> list[float]:
        out = []
        for _ in range(n):
            started = time.perf_counter()
            assert client.post("/v1/search", json=search, headers=hv).status_code == 200
            out.append(time.perf_counter() - started)
        return out

    def flood():
        with httpx.Client(base_url=arena.url, timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                r = client.post("/v1/cypher", content=body, headers={"content-type": "application/json"})
                answers.append((r.status_code, round((time.perf_counter() - started) * 1000)))

    with httpx.Client(base_url=arena.url, timeout=60) as client:
        searches(client, 2)
        alone = searches(client, 8)
        threads = [threading.Thread(target=flood, daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        try:
            during = searches(client, 8)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
    row = {
        "attack": "7 MB bodies without a key, victim search median ms",
        "category": "body",
        "status": answers[0][0] if answers else 0,
        "outcome": "refused",
        "ms": round(_median_ms(during), 1),
        "budget_ms": round(2 * _median_ms(alone) + FLOOR_MS, 1),
        "leaks": [],
        "expect": ["measured"],
        "detail": f"alone {_median_ms(alone):.0f} ms; attacker answers {answers[:4]}",
    }
    RESULTS.append(row)
    assert {status for status, _ in answers} == {401}, answers
    with httpx.Client(base_url=arena.url, timeout=60) as client:
        keyed = client.post(
            "/v1/cypher", content=body, headers={**arena.headers(arena.attacker), "content-type": "application/json"}
        )
    assert keyed.status_code == 413, keyed.text
    return row

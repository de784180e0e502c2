"""Local mode (no API keys) against a web page: DNS rebinding and minting the first key.

A page the user visits can make the browser send requests to 127.0.0.1 (by
rebinding its own DNS name there); it cannot choose the Host header (the
browser sends the page's name) nor read a token printed on the user's terminal
and kept in a 0600 file. Real uvicorn on 127.0.0.1, real embedded store.
"""

from __future__ import annotations

import os
import stat

import httpx
import pytest

from graphmem.api.app import check_bind, loopback_host_header
from graphmem.api.auth import KeyStore, hash_key, new_key
from graphmem.errors import ConfigError
from tests.api.conftest import free_port, run_uvicorn, start_server

STRONG = "k-" + "0123456789abcdefghijklmnop"


@pytest.fixture
def local(tmp_path):
    """A server in local mode (its key file does not exist yet) and an HTTP client for it."""
    port = free_port()
    app, keys = start_server(tmp_path / "home", tmp_path / "keys.json", preload=False)
    with run_uvicorn(app, port) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield app, keys, client, port


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["detail"]


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:8733",
        "attacker.example",
        "localhost.attacker.example",
        "127.0.0.1.nip.io:8000",
        "localhost:80@attacker.example",
        "127.0.0.1:x",
    ],
)
def test_a_foreign_host_is_refused_in_local_mode(local, host):
    app, keys, client, _ = local
    headers = {"Host": host, "X-Graphmem-Local-Token": app.state.local_token}
    assert "DNS rebinding" in problem(client.get("/healthz", headers=headers), 421)
    assert "DNS rebinding" in problem(client.post("/v1/admin/keys", json={"groups": ["default"]}, headers=headers), 421)
    assert "DNS rebinding" in problem(client.post("/v1/search", json={"query": "who?"}, headers=headers), 421)
    assert not keys.configured  # nothing was minted


def test_loopback_hosts_are_accepted(local):
    _, _, client, port = local
    for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LocalHost", f"[::1]:{port}", "[::1]"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    assert client.get("/v1/admin/keys").json() == []  # local mode: any local caller is admin


def test_creating_a_key_in_local_mode_needs_the_start_token(local, tmp_path):
    app, keys, client, _ = local
    token_file = tmp_path / "home" / "api-local-token"
    assert token_file.read_text().strip() == app.state.local_token and len(app.state.local_token) >= 40
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600

    detail = problem(client.post("/v1/admin/keys", json={"groups": ["default"]}), 403)
    assert str(token_file) in detail and "X-Graphmem-Local-Token" in detail
    problem(
        client.post("/v1/admin/keys", json={"groups": ["default"]}, headers={"X-Graphmem-Local-Token": "guess"}), 403
    )
    problem(
        client.post(
            "/v1/admin/keys",
            json={"groups": ["default"]},
            headers={"X-Graphmem-Local-Token": (app.state.local_token[:-1] + "é").encode("latin-1")},
        ),
        403,
    )
    assert not keys.configured

    made = client.post(
        "/v1/admin/keys",
        json={"admin": True, "name": "first"},
        headers={"X-Graphmem-Local-Token": app.state.local_token},
    )
    assert made.status_code == 201, made.text
    admin = made.json()["key"]
    assert stat.S_IMODE(os.stat(tmp_path / "keys.json").st_mode) == 0o600
    # local mode is over: a key is needed, and then any Host is served
    problem(client.get("/v1/admin/keys"), 401)
    problem(
        client.post(
            "/v1/admin/keys", json={"groups": ["default"]}, headers={"X-Graphmem-Local-Token": app.state.local_token}
        ),
        401,
    )
    auth = {"Authorization": f"Bearer {admin}"}
    assert client.get("/v1/admin/keys", headers={**auth, "Host": "graphmem.internal:8000"}).status_code == 200
    # revoking every key does not bring local mode back
    key_id = made.json()["id"]
    assert client.delete(f"/v1/admin/keys/{key_id}", headers=auth).status_code == 200
    assert not keys.configured
    problem(client.get("/v1/admin/keys"), 401)
    problem(
        client.post(
            "/v1/admin/keys", json={"groups": ["default"]}, headers={"X-Graphmem-Local-Token": app.state.local_token}
        ),
        401,
    )


def test_a_server_with_keys_has_no_local_token(tmp_path):
    path = tmp_path / "keys.json"
    KeyStore(path, env={}).add(["default"])
    from tests.api.conftest import start_server as make

    app, _ = make(tmp_path / "home", path, preload=False)
    assert app.state.local_token is None and not (tmp_path / "home" / "api-local-token").exists()


def test_serve_prints_the_local_token(tmp_path, monkeypatch, capsys):
    import uvicorn

    from graphmem.api.app import ApiConfig, serve
    from graphmem.config import Settings

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    serve(Settings.from_env(home=tmp_path / "home"), KeyStore(None, env={}), ApiConfig(preload=False))
    token = served[0].state.local_token
    err = capsys.readouterr().err
    assert f"X-Graphmem-Local-Token: {token}" in err and str(tmp_path / "home" / "api-local-token") in err


def test_host_header_values():
    for good in ("127.0.0.1", "127.0.0.1:8733", "localhost", "localhost:1", "[::1]", "[::1]:8733", "127.0.0.2"):
        assert loopback_host_header(good), good
    for bad in (
        "",
        "attacker.example",
        "localhost.",
        "::1",
        "[::1]x",
        "[::1]:",
        "[::2]",
        "127.0.0.1:99999999",
        "0.0.0.0",
        "10.0.0.1:80",
        "localhost:8733:1",
    ):
        assert not loopback_host_header(bad), bad


# -- key strength before binding beyond loopback ------------------------------------------------
@pytest.mark.parametrize(
    "env,where,why",
    [
        ({"GRAPHMEM_API_KEYS": "k=default"}, "GRAPHMEM_API_KEYS entry 1", "1 characters"),
        ({"GRAPHMEM_API_KEYS": f"{STRONG}=a;{'ab' * 20}=b"}, "GRAPHMEM_API_KEYS entry 2", "only 2 distinct"),
        ({"GRAPHMEM_API_KEY": "hunter2-hunter2"}, "GRAPHMEM_API_KEY", "15 characters"),
        ({"GRAPHMEM_API_KEY": STRONG, "GRAPHMEM_ADMIN_KEY": "admin"}, "GRAPHMEM_ADMIN_KEY", "5 characters"),
    ],
)
def test_weak_keys_bind_loopback_only(env, where, why, caplog):
    keys = KeyStore(None, env=env)
    for host in ("0.0.0.0", "10.1.2.3", "::"):
        with pytest.raises(ConfigError) as refused:
            check_bind(host, keys)
        message = str(refused.value)
        assert message.startswith(f"{where} is a weak key ({why}") and "graphmem keys add" in message
        assert "\n" not in message
        plain = [e.rpartition("=")[0] for e in env.get("GRAPHMEM_API_KEYS", "").split(";")] + [
            env.get("GRAPHMEM_API_KEY", ""),
            env.get("GRAPHMEM_ADMIN_KEY", ""),
        ]
        assert not [k for k in plain if len(k) > 2 and k in message]  # never the key itself
    for host in ("127.0.0.1", "localhost", "::1"):
        check_bind(host, keys)
    assert f"{where} is a weak key" in caplog.text


def test_strong_and_hashed_keys_bind_anywhere():
    env = {
        "GRAPHMEM_API_KEYS": f"{new_key()}=a;{hash_key('x')}=b",
        "GRAPHMEM_API_KEY": STRONG,
        "GRAPHMEM_ADMIN_KEY": hash_key("short"),
    }
    keys = KeyStore(None, env=env)
    assert keys.weak == []
    check_bind("0.0.0.0", keys)

"""Key storage: hashed at rest, loaded from a file or the environment, bad files named."""

from __future__ import annotations

import json

import pytest

from graphmem.api.app import check_bind
from graphmem.api.auth import KeyStore, hash_key
from graphmem.errors import ConfigError


def test_keys_file_round_trip_stores_only_hashes(tmp_path):
    path = tmp_path / "keys.json"
    store = KeyStore(path, env={})
    key, record = store.add(["acme", "beta"], name="ci")
    assert key not in path.read_text() and hash_key(key) in path.read_text()
    again = KeyStore(path, env={})
    assert again.lookup(key).groups == ["acme", "beta"] and again.lookup(key + "x") is None
    assert again.revoke(record.id) and KeyStore(path, env={}).lookup(key) is None
    assert (path.stat().st_mode & 0o777) == 0o600


def test_environment_keys():
    env = {
        "GRAPHMEM_API_KEYS": f"plainkey=g1,g2; {hash_key('other')}=g3",
        "GRAPHMEM_ADMIN_KEY": "root",
        "GRAPHMEM_API_KEY": "single",
        "GRAPHMEM_GROUP_ID": "acme",
    }
    store = KeyStore(None, env=env)
    assert store.lookup("plainkey").groups == ["g1", "g2"]
    assert store.lookup("other").groups == ["g3"]
    assert store.lookup("root").admin and store.lookup("single").groups == ["acme"]
    with pytest.raises(ConfigError, match="environment"):
        store.revoke("env_1")


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "cannot read"),
        (json.dumps({"keys": [{"id": "k", "groups": ["a"]}]}), "keys\\[0\\]"),
        (json.dumps({"keys": [{"id": "k", "hash": "md5:x", "groups": ["a"]}]}), "sha256"),
        (json.dumps({"keys": [{"id": "k", "hash": "sha256:x", "groups": ["bad group!"]}]}), "invalid group"),
    ],
)
def test_bad_key_files_are_named(tmp_path, content, message):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        KeyStore(path, env={})


def test_local_mode_binds_loopback_only(tmp_path):
    check_bind("127.0.0.1", KeyStore(None, env={}))
    with pytest.raises(ConfigError, match="127.0.0.1"):
        check_bind("0.0.0.0", KeyStore(None, env={}))
    check_bind("0.0.0.0", KeyStore(None, env={"GRAPHMEM_API_KEY": "k-" + "0123456789abcdefghijklmnop"}))

"""API keys: stored hashed, each bound to one or more groups; admin keys manage keys.

Keys come from a JSON file (``graphmem serve --keys FILE``, written by
``graphmem keys add``) and/or the environment:

- ``GRAPHMEM_API_KEYS``: ``KEY=group1,group2;KEY2=group3`` (plain keys, hashed on
  load and never kept) or ``sha256:HEX=group1`` (already hashed);
- ``GRAPHMEM_API_KEY``: one key bound to ``GRAPHMEM_GROUP_ID`` (default ``default``),
  as docker/compose.yaml passes it;
- ``GRAPHMEM_ADMIN_KEY``: one admin key (plain or ``sha256:HEX``).

A plain key from the environment that is short (under 24 characters) or made of
few characters (under 8 distinct ones) is *weak*: ``graphmem serve`` then binds
loopback only (see :func:`graphmem.api.app.check_bind`).

The file holds only hashes::

    {"keys": [{"id": "k_3f2a9c1b", "name": "ci", "hash": "sha256:...", "groups": ["acme"],
               "admin": false, "created_at": "2026-11-23T12:00:00+00:00"}]}

Keys are 32 random bytes (``gm_`` + urlsafe base64), so a plain SHA-256 is
enough (no slow hash needed against guessing); comparisons are constant-time.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from graphmem.errors import ConfigError
from graphmem.fileperm import write_private
from graphmem.store.base import GROUP_ID, check_group_id

#: used with fullmatch: "$" would also accept a trailing newline
GROUP_RE = GROUP_ID  # one rule for group names everywhere (graphmem.store.base)
PREFIX = "gm_"
#: a plain key shorter than this, or with fewer distinct characters, is weak
MIN_KEY_CHARS = 24
MIN_KEY_DISTINCT = 8


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_weakness(key: str) -> str | None:
    """Why a plain key is too weak to guard a server reachable from the network, or None."""
    if len(key) < MIN_KEY_CHARS:
        return f"{len(key)} characters, under {MIN_KEY_CHARS}"
    if len(set(key)) < MIN_KEY_DISTINCT:
        return f"only {len(set(key))} distinct characters, under {MIN_KEY_DISTINCT}"
    return None


def check_group(group: str) -> str:
    return check_group_id(group)


@dataclass
class KeyRecord:
    id: str
    hash: str
    groups: list[str]
    admin: bool = False
    name: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def public(self) -> dict:
        """What ``GET /v1/admin/keys`` and ``graphmem keys list`` show (never the hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "groups": list(self.groups),
            "admin": self.admin,
            "created_at": self.created_at,
        }


class KeyStore:
    """The keys a server accepts. Thread-safe; file-backed keys persist on change."""

    def __init__(self, path: str | Path | None = None, env: dict[str, str] | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._file_keys: list[KeyRecord] = []
        self._env_keys: list[KeyRecord] = []
        if self.path is not None and self.path.exists():
            self._file_keys = _read_file(self.path)
        variables: Mapping[str, str] = os.environ if env is None else env
        self._env_keys = _from_env(variables)
        #: (where, why) of every weak plain key in the environment, e.g. ("GRAPHMEM_API_KEY", "5 characters, under 24")
        self.weak: list[tuple[str, str]] = _weak_env_keys(variables)

    # -- queries ----------------------------------------------------------------
    @property
    def configured(self) -> bool:
        """False = local mode: no key exists, so the server must stay on 127.0.0.1."""
        with self._lock:
            return bool(self._file_keys or self._env_keys)

    def lookup(self, key: str) -> KeyRecord | None:
        digest = hash_key(key)
        with self._lock:
            for record in self._file_keys + self._env_keys:
                if hmac.compare_digest(record.hash, digest):
                    return record
        return None

    def list(self) -> builtins.list[KeyRecord]:
        with self._lock:
            return list(self._file_keys + self._env_keys)

    # -- changes (file-backed keys only) ------------------------------------------
    def add(self, groups: builtins.list[str], *, admin: bool = False, name: str = "") -> tuple[str, KeyRecord]:
        """Create a key; returns (the plain key, shown once, and its record)."""
        if not groups and not admin:
            raise ConfigError("a key needs at least one group (or --admin)")
        for group in groups:
            check_group(group)
        key = new_key()
        record = KeyRecord(
            id="k_" + secrets.token_hex(4), hash=hash_key(key), groups=sorted(set(groups)), admin=admin, name=name
        )
        with self._lock:
            self._file_keys.append(record)
            self._save()
        return key, record

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            if any(r.id == key_id for r in self._env_keys):
                raise ConfigError(f"key {key_id} comes from the environment; remove it there")
            before = len(self._file_keys)
            self._file_keys = [r for r in self._file_keys if r.id != key_id]
            changed = len(self._file_keys) != before
            if changed:
                self._save()
            return changed

    def _save(self) -> None:
        if self.path is None:
            return  # keys added through the admin API live as long as the server then
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # created 0600 (never readable by others, even for a moment) and renamed over the
        # old file: a crash never leaves half a key file
        write_private(self.path, json.dumps({"keys": [asdict(r) for r in self._file_keys]}, indent=2) + "\n")


def _read_file(path: Path) -> list[KeyRecord]:
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the key file: {exc}") from exc
    records = []
    for i, item in enumerate(payload.get("keys", []) if isinstance(payload, dict) else []):
        try:
            record = KeyRecord(
                id=str(item["id"]),
                hash=str(item["hash"]),
                groups=[check_group(g) for g in item["groups"]],
                admin=bool(item.get("admin", False)),
                name=str(item.get("name", "")),
                created_at=str(item.get("created_at", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: keys[{i}]: missing or invalid field {exc}") from exc
        if not record.hash.startswith("sha256:"):
            raise ConfigError(f"{path}: keys[{i}]: field 'hash' must be 'sha256:HEX'")
        records.append(record)
    return records


def _from_env(env: Mapping[str, str]) -> list[KeyRecord]:
    records = []
    for i, entry in enumerate(filter(None, (e.strip() for e in env.get("GRAPHMEM_API_KEYS", "").split(";")))):
        key, sep, groups = entry.rpartition("=")
        if not sep or not key:
            raise ConfigError(f"GRAPHMEM_API_KEYS entry {i + 1}: write KEY=group1,group2")
        digest = key if key.startswith("sha256:") else hash_key(key)
        records.append(
            KeyRecord(
                id=f"env_{i + 1}", hash=digest, groups=[check_group(g.strip()) for g in groups.split(",") if g.strip()]
            )
        )
    single = env.get("GRAPHMEM_API_KEY", "").strip()
    if single:
        records.append(
            KeyRecord(
                id="env_key",
                hash=single if single.startswith("sha256:") else hash_key(single),
                groups=[check_group(env.get("GRAPHMEM_GROUP_ID", "").strip() or "default")],
            )
        )
    admin = env.get("GRAPHMEM_ADMIN_KEY", "").strip()
    if admin:
        records.append(
            KeyRecord(
                id="env_admin", hash=admin if admin.startswith("sha256:") else hash_key(admin), groups=[], admin=True
            )
        )
    return records


def _weak_env_keys(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The plain keys of the environment that are weak, named by their entry (never the key itself)."""
    entries = filter(None, (e.strip() for e in env.get("GRAPHMEM_API_KEYS", "").split(";")))
    plain = [(f"GRAPHMEM_API_KEYS entry {i + 1}", entry.rpartition("=")[0]) for i, entry in enumerate(entries)]
    plain += [(name, env.get(name, "").strip()) for name in ("GRAPHMEM_API_KEY", "GRAPHMEM_ADMIN_KEY")]
    weak = []
    for where, key in plain:
        why = key_weakness(key) if key and not key.startswith("sha256:") else None
        if why:
            weak.append((where, why))
    return weak

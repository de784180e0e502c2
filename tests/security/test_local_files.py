"""Local files and sockets: nothing graphmem writes can be read, or taken over, by another local user.

The checks run under umask 022 (the usual default), so they fail on any file
created with default permissions. Where the tests run as root, another uid
(nobody) really tries to read the store's files; a control file proves that
uid can read what is left open. The stores live in a directory every user may
traverse (pytest's tmp_path is 0700, which would hide them whatever graphmem did).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from graphmem.errors import StoreError
from graphmem.store import falkordb_server
from graphmem.store.falkordb_server import EmbeddedServer

NOBODY = 65534
AS_ROOT = os.geteuid() == 0
SECRET = "Zorvath"  # a word of the ingested passage, looked for in the store's files


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def other_user_reads(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["cat", str(path)], user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def shared(umask022):
    """A directory every user may traverse."""
    path = Path(tempfile.mkdtemp(prefix="graphmem-perm-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def store_files(home: Path) -> list[Path]:
    return [p for p in (home / "falkordb").rglob("*") if not p.is_socket()]


def test_store_backup_and_export_are_private(shared, embedder, extractor):
    from click.testing import CliRunner

    from graphmem import Memory
    from graphmem.cli import main
    from graphmem.store.backup import backup

    home = shared / "home"
    with Memory(home=home) as mem:
        mem.ingest_text(f"The {SECRET} archive was founded in Lisbon by Marta Quint in 1911.", name="secret.txt")
        backup(home, shared / "backups" / "graph.rdb")
    result = CliRunner().invoke(main, ["--home", str(home), "export", str(shared / "graph.jsonl"), "-q"])
    assert result.exit_code == 0, result.output

    assert mode(home) == 0o700 and mode(home / "falkordb") == 0o700
    files = store_files(home)
    holding = [p for p in files if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert holding, "the passage should be in the append-only file"
    for path in files:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path
    for path in (shared / "backups" / "graph.rdb", shared / "graph.jsonl"):
        assert mode(path) == 0o600, path
    assert SECRET in (shared / "graph.jsonl").read_text()

    if not AS_ROOT:
        pytest.skip("not root: cannot switch to another uid (the modes were checked)")
    control = shared / "control.txt"
    control.write_text("readable")  # 0644 under umask 022
    assert other_user_reads(control).stdout == "readable"
    for path in holding + [shared / "backups" / "graph.rdb", shared / "graph.jsonl"]:
        denied = other_user_reads(path)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, path
    # even with the files' modes loosened, the 0700 data directory keeps them out of reach
    for path in holding:
        path.chmod(0o644)
        assert "Permission denied" in other_user_reads(path).stderr


def test_an_existing_store_is_tightened_on_open(shared):
    home = shared / "old-home"
    server = EmbeddedServer(home)
    server.start()
    server.stop()
    # what an older version left behind: everything readable by everyone
    for path in [home, *home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert mode(home / "falkordb" / "redis.log") == 0o644
    server.start()
    try:
        assert mode(home) == 0o700
        for path in store_files(home):
            assert mode(path) == (0o700 if path.is_dir() else 0o600), path
        if AS_ROOT:
            assert "Permission denied" in other_user_reads(home / "falkordb" / "redis.log").stderr
    finally:
        server.stop()


# -- the socket of a deep home -----------------------------------------------------------------
@pytest.fixture
def socket_tmp(shared, monkeypatch):
    """Point the fallback socket directory at a fresh stand-in for /tmp (world-writable, sticky)."""
    root = shared / "tmp"
    root.mkdir()
    root.chmod(0o1777)
    monkeypatch.setattr(falkordb_server, "SOCKET_TMP", root)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return root


def deep_home(base: Path) -> Path:
    return base.joinpath(*["d" * 20] * 6)


def test_deep_home_socket_lives_in_a_private_directory(tmp_path, socket_tmp):
    server = EmbeddedServer(deep_home(tmp_path))
    folder = socket_tmp / f"graphmem-{os.geteuid()}"
    assert server.socket.parent == folder and len(str(server.socket)) <= 100
    assert mode(folder) == 0o700
    try:
        server.start()
        assert server.ping()
    finally:
        server.stop()


def _plant_foreign(folder: Path) -> None:
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)


def _plant_open(folder: Path) -> None:
    folder.mkdir()
    folder.chmod(0o777)


def _plant_symlink(folder: Path) -> None:
    target = folder.parent / "elsewhere"
    target.mkdir(mode=0o700)
    folder.symlink_to(target)


def _plant_file(folder: Path) -> None:
    folder.write_text("")


@pytest.mark.parametrize(
    "plant,reason",
    [
        pytest.param(
            _plant_foreign, "belongs to uid 65534", marks=pytest.mark.skipif(not AS_ROOT, reason="needs root to chown")
        ),
        (_plant_open, "mode is 0777"),
        (_plant_symlink, "symlink"),
        (_plant_file, "not a directory"),
    ],
)
def test_a_planted_socket_directory_is_refused(tmp_path, socket_tmp, plant, reason):
    plant(socket_tmp / f"graphmem-{os.geteuid()}")
    with pytest.raises(StoreError, match=reason):
        EmbeddedServer(deep_home(tmp_path))


def test_xdg_runtime_dir_is_used_only_when_private(tmp_path, socket_tmp, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert EmbeddedServer(deep_home(tmp_path)).socket.parent == runtime
    runtime.chmod(0o755)  # open to others: not used, the private /tmp directory is
    assert EmbeddedServer(deep_home(tmp_path)).socket.parent == socket_tmp / f"graphmem-{os.geteuid()}"

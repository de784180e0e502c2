"""The warm search process of ``graphmem db start``: the same answers as an in-process
search, for the group asked, never stale after an ingestion, private to its user, and
never in the way (a dead one leaves the commands working)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graphmem.daemon import daemon_dir, socket_path
from graphmem.daemon.client import ask, ping

from ..conftest import REPO

QUESTION = "In what year was the company that operates the Marigold Star founded?"


def graphmem(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``graphmem --home HOME ARGV`` in a fresh process, as the shell runs it."""
    return subprocess.run(
        [sys.executable, "-m", "graphmem.cli", "--home", str(home), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def cli_search(home: Path, *argv: str) -> list[dict[str, Any]]:
    done = graphmem(home, "search", *argv, "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["results"])


@pytest.fixture(scope="module")
def home(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the sample corpus with its store and search process started (stopped after)."""
    copy = tmp_path_factory.mktemp("daemon") / "home"
    shutil.copytree(sample_home, copy, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    started = graphmem(copy, "db", "start")
    assert started.returncode == 0, started.stderr
    assert "search process started" in started.stdout
    try:
        yield copy
    finally:
        graphmem(copy, "db", "stop")


def served(home: Path) -> int:
    answer = ping(home)
    assert answer is not None, "the search process does not answer"
    return int(answer["searches"])


def test_the_socket_is_private(home: Path) -> None:
    path = socket_path(home)
    info, folder = path.lstat(), path.parent.lstat()
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == info.st_uid == os.geteuid()
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in daemon_dir(home).iterdir() if p.is_file())


@pytest.mark.parametrize("mode", ["graph", "bm25"])
def test_a_warm_search_equals_an_in_process_one(home: Path, mode: str, embedder: Any, extractor: Any) -> None:
    from graphmem import Memory

    before = served(home)
    warm = cli_search(home, QUESTION, "-k", "5", "--mode", mode)
    assert served(home) == before + 1  # the process answered, not the command itself
    with Memory(home=home) as memory:
        local = [hit.model_dump(mode="json") for hit in memory.search(QUESTION, k=5, mode=mode)]
    assert [h["uuid"] for h in warm] == [h["uuid"] for h in local]
    for got, want in zip(warm, local, strict=True):
        assert got["score"] == pytest.approx(want["score"], rel=1e-5, abs=1e-9)
        assert {k: v for k, v in got.items() if k != "score"} == {k: v for k, v in want.items() if k != "score"}
    assert any("marigold" in h["source"] for h in warm)


def test_the_process_answers_for_the_group_asked(home: Path, tmp_path: Path, embedder: Any, extractor: Any) -> None:
    from graphmem import Memory

    note = tmp_path / "lighthouse.md"
    note.write_text("# Brannock Light\n\nThe Brannock lighthouse keeper logs the fog horn every night.\n")
    with Memory(home=home, group_id="second") as memory:
        memory.ingest([note])
    before = served(home)
    done = graphmem(home, "--group", "second", "search", "Brannock lighthouse fog horn", "--json")
    assert done.returncode == 0, done.stderr
    second = json.loads(done.stdout)["results"]
    assert [Path(h["source"]).name for h in second] == ["lighthouse.md"]
    assert "lighthouse.md" not in {Path(h["source"]).name for h in cli_search(home, "Brannock lighthouse fog horn")}
    assert served(home) == before + 2


def test_an_ingestion_is_seen_by_the_next_warm_search(home: Path, tmp_path: Path) -> None:
    query = "When did the Quillmere observatory open its dome?"
    assert "quillmere.md" not in {Path(h["source"]).name for h in cli_search(home, query)}
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "quillmere.md").write_text(
        "# Quillmere Observatory\n\nThe Quillmere observatory opened its dome to visitors in 1932.\n"
    )
    done = graphmem(home, "ingest", "-q", str(folder))
    assert done.returncode == 0 and "1 documents" in done.stdout, done.stderr
    before = served(home)
    assert Path(cli_search(home, query)[0]["source"]).name == "quillmere.md"
    assert Path(cli_search(home, "Quillmere", "--mode", "bm25")[0]["source"]).name == "quillmere.md"
    assert served(home) == before + 2


def test_the_process_applies_the_cli_limits(home: Path) -> None:
    from graphmem.config import Settings
    from graphmem.daemon.client import request_settings

    fields = request_settings(Settings(home=home))
    for bad, words in (({"queries": [" "]}, "empty"), ({"queries": ["x" * 5000]}, "over the limit"), ({"k": 0}, "k")):
        answer = ask(home, {"op": "search", "settings": fields, "queries": ["ferry"], "k": 5, **bad}, 30)
        assert answer is not None and answer["ok"] is False and answer["error"] == "InputError"
        assert words in answer["message"]
    done = graphmem(home, "search", "   ")
    assert done.returncode == 1 and "query" in done.stderr and "Traceback" not in done.stderr


def test_a_connection_from_another_user_is_closed_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's loop itself: a peer whose uid (SO_PEERCRED) is not the process's gets no
    answer, and the next connection of its own user is served. (The socket's 0600 mode and
    0700 folder keep other users from connecting at all; this is the check behind them.)"""
    import threading

    from graphmem.daemon import server

    class Answering:
        def handle(self, request: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True, "op": request.get("op")}

    peers = iter([os.geteuid() + 1, os.geteuid()])
    monkeypatch.setattr(server, "peer_uid", lambda conn: next(peers))
    listener = server.listen(tmp_path / "s.sock")
    loop = threading.Thread(target=server.serve, args=(Answering(), listener), daemon=True)
    loop.start()
    answers = []
    for request in (b'{"op": "ping"}\n', b'{"op": "stop"}\n'):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(str(tmp_path / "s.sock"))
            try:
                conn.sendall(request)
                answers.append(conn.makefile("rb").readline())
            except (ConnectionResetError, BrokenPipeError):  # closed with the request unread (maybe before it was sent)
                answers.append(b"")
    loop.join(10)
    listener.close()
    assert answers[0] == b""  # another user: closed unread
    assert json.loads(answers[1]) == {"ok": True, "op": "stop"} and not loop.is_alive()
    assert stat.S_IMODE((tmp_path / "s.sock").lstat().st_mode) == 0o600


def test_a_dead_process_leaves_the_commands_working(home: Path) -> None:
    """Runs last in this module: it kills the process (the fixture's db stop then finds none)."""
    answer = ping(home)
    assert answer is not None
    os.kill(int(answer["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while ping(home) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert socket_path(home).exists()  # stale: nobody listens on it any more
    done = graphmem(home, "search", QUESTION, "-k", "3")
    assert done.returncode == 0 and "Marigold" in done.stdout and not done.stderr.strip(), done.stderr
    stopped = graphmem(home, "db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert graphmem(home, "db", "start").returncode == 0  # a fresh process takes over the stale socket
    assert ping(home) is not None and cli_search(home, "Marigold", "--mode", "bm25")

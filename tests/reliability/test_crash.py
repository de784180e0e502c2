"""Crash safety for real: ``graphmem ingest`` killed with SIGKILL at random
points, then run again, must end with exactly the graph of one clean run; the
embedded server killed mid-run must give a one-line error, and the next run
must find every acknowledged write and converge too."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.reliability.helpers import (
    DOCS,
    assert_same_graph,
    cli,
    cli_env,
    fingerprint,
    invariants,
    open_store,
    run_cli,
    stop_server,
)

CORPUS = [str(p) for p in DOCS[:8]]
KILLS = 4
SEED = int(os.environ.get("GRAPHMEM_KILL_SEED", "8"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """One clean run of the corpus: the graph every other run must end with, and its duration."""
    home = tmp_path_factory.mktemp("clean") / "home"
    started = time.monotonic()
    result = run_cli(home, "ingest", "-q", *CORPUS)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert not invariants(home)
    fp = fingerprint(home)
    assert fp["counts"]["Episode"] >= len(CORPUS) and fp["counts"]["FACT"] > 0
    yield fp, seconds
    stop_server(home)


@pytest.fixture
def home(tmp_path):
    yield tmp_path / "home"
    stop_server(tmp_path / "home")


def _writing(home) -> tuple[int, int]:
    store = open_store(home)
    try:
        rows = store.run("sources_list", group_id="default")
    finally:
        store.close()
    return sum(r["state"] == "writing" for r in rows), sum(r["state"] == "complete" for r in rows)


def wait_for(predicate: Callable[[], bool], timeout: float = 180.0, what: str = "condition") -> None:
    """Return once ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g} s")
        time.sleep(0.02)


def _stop_after_the_first_complete_source(proc: subprocess.Popen, home) -> list[dict]:
    """Watch the store until the running ``proc`` has completed a source, then stop it
    (SIGSTOP) so nothing it does races what follows; the sources complete at that moment,
    which must be fewer than all (a run that finished has nothing left to be killed in)."""
    from graphmem.store.falkordb_server import EmbeddedServer

    server = EmbeddedServer(home)
    reader: list = []

    def complete_sources() -> list[dict]:
        if not reader:
            if not server.ping():
                return []
            reader.append(open_store(home))  # the running ingest started the server; this only connects
        return [r for r in reader[0].run("sources_list", group_id="default") if r["state"] == "complete"]

    try:
        wait_for(lambda: proc.poll() is not None or bool(complete_sources()), what="a complete source")
        proc.send_signal(signal.SIGSTOP)
        assert proc.poll() is None, f"the ingest finished before it could be stopped: {proc.communicate()}"
        acknowledged = complete_sources()
    finally:
        for store in reader:
            store.close()
    assert 0 < len(acknowledged) < len(CORPUS), acknowledged
    return acknowledged


def test_sigkill_at_random_points_then_rerun_gives_the_clean_graph(clean, home, record_property):
    expected, seconds = clean
    rng = random.Random(SEED)
    log = []
    for _attempt in range(KILLS):
        proc = subprocess.Popen(
            cli(home, "ingest", "-q", *CORPUS), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # the first ~10 s load the models; spread the kills over the write phase
        delay = rng.uniform(0.45, 1.0) * seconds
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        writing, complete = _writing(home) if (home / "falkordb").exists() else (0, 0)
        log.append({"kill_at_s": round(delay, 1), "rc": proc.returncode, "writing": writing, "complete": complete})
    result = run_cli(home, "ingest", "-q", *CORPUS)
    assert result.returncode == 0, result.stderr
    record_property("kills", json.dumps(log))
    print("kills:", json.dumps(log))
    assert any(entry["rc"] == -signal.SIGKILL for entry in log), log
    assert not invariants(home)
    assert_same_graph(fingerprint(home), expected)


def test_server_killed_mid_run_gives_one_line_error_and_loses_nothing(clean, home):
    from graphmem.store.falkordb_server import EmbeddedServer

    expected, _ = clean
    # one document per write batch, parsed in this process: once the first source is
    # complete, seven batches are left; the run is stopped while its server is killed,
    # so it goes on against a dead server whatever the timing
    proc = subprocess.Popen(
        cli(home, "ingest", "-q", *CORPUS),
        env=cli_env(GRAPHMEM_FSYNC="always", GRAPHMEM_BATCH_SIZE="1", GRAPHMEM_EXTRACT_PROCESSES="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        acknowledged = _stop_after_the_first_complete_source(proc, home)
        # the ingest is frozen with sources left to write: kill its server, then let it go on
        server = EmbeddedServer(home)
        os.kill(int(server.pidfile.read_text()), signal.SIGKILL)
        wait_for(lambda: not server.ping(), what="the killed server to be gone")
    finally:
        proc.send_signal(signal.SIGCONT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    # (sentence-transformers' own "Loading weights" bar may precede it)
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert len(errors) == 1 and errors[0] == lines[-1], stderr
    # one line saying the store was lost mid-write and to run the command again
    assert re.match(r"error: .*embedded store.*run (it|the command) again", errors[0]), stderr
    assert "Traceback" not in stderr

    # the next command restarts the server; every source acknowledged complete is still there
    store = open_store(home)
    try:
        after = {r["uuid"]: r for r in store.run("sources_list", group_id="default")}
    finally:
        store.close()
    for row in acknowledged:
        assert after[row["uuid"]]["state"] == "complete"
        assert after[row["uuid"]]["episodes"] == row["episodes"]
    result = run_cli(home, "ingest", "-q", *CORPUS)
    assert result.returncode == 0, result.stderr
    assert not invariants(home)
    assert_same_graph(fingerprint(home), expected)

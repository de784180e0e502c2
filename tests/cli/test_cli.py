"""The CLI through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphmem.cli import main

from ..conftest import EXAMPLES


def run(*args: str, home: Path):
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)
    return result


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for command in (["ingest"], ["search"], ["cypher"], ["stats"], ["db", "start"], ["db", "stop"], ["db", "status"]):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, command


def test_ingest_search_cypher_stats(tmp_path, embedder, extractor):
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("kessary_bridge.md", "halvane_steelworks.md", "serrin_river.txt"):
        (docs / name).write_text((EXAMPLES / "docs" / name).read_text())
    result = run("ingest", str(docs), "--quiet", home=home)
    assert result.exit_code == 0, result.output
    assert "3 documents" in result.output and "3 passages" in result.output

    result = run("search", "Who built the Kessary Bridge?", "-k", "2", "--json", home=home)
    payload = json.loads(result.output)
    assert payload["query"] == "Who built the Kessary Bridge?"
    assert payload["results"][0]["source"].endswith("kessary_bridge.md")

    result = run("search", "Who built the Kessary Bridge?", "-k", "2", home=home)
    assert result.exit_code == 0 and "Kessary Bridge" in result.output

    result = run("cypher", "MATCH (e:Episode) RETURN count(e) AS n", "--json", home=home)
    assert json.loads(result.output) == [{"n": 3}]
    result = run("cypher", "MATCH (e:Entity {name: $name}) RETURN e.name", "-p", "name=Kessary Bridge", home=home)
    assert "Kessary Bridge" in result.output

    result = run("stats", "--json", home=home)
    assert json.loads(result.output)["episodes"] == 3

    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"question": "Who built the Kessary Bridge?"})
        + "\n"
        + json.dumps({"query": "Where does the Serrin River flow?"})
        + "\n"
    )
    result = run("search", "--file", str(queries), "--json", home=home)
    assert [row["query"] for row in json.loads(result.output)] == [
        "Who built the Kessary Bridge?",
        "Where does the Serrin River flow?",
    ]


def test_errors_are_one_line_and_exit_nonzero(tmp_path):
    home = tmp_path / "home"
    result = run("ingest", str(tmp_path / "missing.md"), home=home)
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "missing.md" in result.output
    assert "Traceback" not in result.output

    result = run("cypher", "CREATE (:X)", home=home)
    assert result.exit_code == 1 and "--write" in result.output

    result = run("cypher", "THIS IS NOT CYPHER", home=home)
    assert result.exit_code == 1 and result.output.startswith("error:")

    result = CliRunner().invoke(main, ["--home", str(home), "search"])
    assert result.exit_code == 2  # usage error


def test_db_start_status_stop(tmp_path):
    home = tmp_path / "home"
    # the store alone: the warm search process has its own tests (tests/cli/test_startup_daemon.py)
    assert "started" in run("db", "start", "--store-only", home=home).output
    assert "already running" in run("db", "start", "--store-only", home=home).output
    status = json.loads(run("db", "status", "--json", home=home).output)
    assert status["running"] and status["pid"]
    assert run("db", "stop", home=home).output.strip() == "stopped"
    assert json.loads(run("db", "status", "--json", home=home).output)["running"] is False


def test_real_subprocess_help_is_fast_and_errors_are_clean(tmp_path):
    env = {**os.environ, "GRAPHMEM_HOME": str(tmp_path / "home")}
    exe = [sys.executable, "-m", "graphmem.cli"]
    proc = subprocess.run([*exe, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and "ingest" in proc.stdout
    # --help must not import torch (it costs ~10 s); checked by looking at what is imported
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, graphmem.cli; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert probe.stdout.strip() == "False"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe bad bytes")
    proc = subprocess.run([*exe, "ingest", str(bad)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "bad.txt:1" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_real_subprocess_ingest_and_search(tmp_path):
    env = {**os.environ, "GRAPHMEM_HOME": str(tmp_path / "home")}
    exe = [sys.executable, "-m", "graphmem.cli"]
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("kessary_bridge.md", "halvane_steelworks.md"):
        (docs / name).write_text((EXAMPLES / "docs" / name).read_text())
    proc = subprocess.run([*exe, "ingest", str(docs)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [*exe, "search", "Who built the Kessary Bridge?", "--json", "-k", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["source"].endswith("kessary_bridge.md")
    # the command stopped the server it started
    status = subprocess.run([*exe, "db", "status", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert json.loads(status.stdout)["running"] is False


def test_groups_lists_and_drops(tmp_path):
    """`graphmem groups` lists each tenant with its size; `groups drop` deletes one (its graph)."""
    from graphmem.store.falkordb import FalkorDBStore
    from tests.store.synthetic import build, write

    home = tmp_path / "home"
    store = FalkorDBStore(home)
    try:
        store.ensure_schema(8)
        write(store, build("team-a"))
        write(store, build("team-b"))
    finally:
        store.close()
    listed = run("groups", "--json", home=home)
    assert listed.exit_code == 0, listed.output
    sizes = json.loads(listed.output)
    assert set(sizes) == {"team-a", "team-b"} and sizes["team-a"]["episodes"] == 3
    dropped = run("groups", "drop", "team-b", "--yes", home=home)
    assert dropped.exit_code == 0 and "dropped group team-b" in dropped.output
    assert set(json.loads(run("groups", "--json", home=home).output)) == {"team-a"}
    again = run("groups", "drop", "team-b", "--yes", home=home)
    assert again.exit_code != 0 and "no group 'team-b'" in again.output


def test_cypher_refuses_load_csv_unless_write(tmp_path):
    """LOAD CSV opens files and URLs on the store's host: refused before it reaches the store."""
    served = tmp_path / "rows.csv"
    served.write_text("a\n1\n")
    query = f"LOAD CSV FROM 'file://{served}' AS row RETURN row"
    result = run("cypher", query, home=tmp_path / "home")
    assert result.exit_code != 0 and "LOAD CSV" in result.output and "--write" in result.output
    deep = run("cypher", "RETURN " + "[" * 30 + "1" + "]" * 30, home=tmp_path / "home")
    assert deep.exit_code != 0 and "levels deep" in deep.output

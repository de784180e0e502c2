"""graphmem backup / restore: a round trip gives back the same graph, and a
snapshot taken while the store is written stays consistent."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from graphmem.cli import main
from tests.reliability.helpers import assert_same_graph, fingerprint, invariants


def test_backup_restore_round_trip(sample_home, tmp_path, embedder, extractor):
    home = tmp_path / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    before = fingerprint(home)
    runner = CliRunner()
    snapshot = tmp_path / "backups" / "g.rdb"
    result = runner.invoke(main, ["--home", str(home), "backup", str(snapshot)])
    assert result.exit_code == 0, result.output
    assert snapshot.read_bytes().startswith(b"REDIS")

    # the original goes on changing; the restored copy must be the snapshot, not the present
    extra = tmp_path / "extra.txt"
    extra.write_text("Mira Osk founded the Tallow Press in Dunmere in 1911.")
    result = runner.invoke(main, ["--home", str(home), "ingest", "-q", str(extra)])
    assert result.exit_code == 0, result.output
    assert fingerprint(home)["counts"]["Episode"] == before["counts"]["Episode"] + 1
    restored = tmp_path / "restored"
    result = runner.invoke(main, ["--home", str(restored), "restore", str(snapshot)])
    assert result.exit_code == 0, result.output
    assert not list((restored / "falkordb").glob("*.rdb"))  # the data lives in the append-only file now
    assert_same_graph(fingerprint(restored), before)
    assert not invariants(restored)
    result = runner.invoke(main, ["--home", str(restored), "search", "Halvard Library", "--json"])
    assert result.exit_code == 0, result.output
    assert "Halvard" in result.output

    # restoring over data is refused with one line, and nothing is touched
    result = runner.invoke(main, ["--home", str(restored), "restore", str(snapshot)])
    assert result.exit_code == 1 and "fresh home" in result.output
    assert_same_graph(fingerprint(restored), before)


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path):
    bogus = tmp_path / "x.rdb"
    bogus.write_text("hello")
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "restore", str(bogus)])
    assert result.exit_code == 1 and "not a graphmem backup" in result.output

"""The CLI and the API administer groups through one facade (graphmem.admin.Admin) and agree."""

from __future__ import annotations

import json
import shutil

import httpx
from click.testing import CliRunner

from graphmem.cli import main
from tests.api.conftest import free_port, run_uvicorn, start_server


def _cli(home, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)


def test_cli_api_and_facade_list_and_drop_groups_alike(sample_home, tmp_path, embedder, extractor):
    from graphmem import Memory
    from graphmem.admin import Admin
    from graphmem.config import Settings

    home = tmp_path / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    for group in ("gamma", "delta"):
        with Memory(Settings.from_env(home=home, group_id=group)) as memory:
            memory.cypher(
                "CREATE (:Entity {group_id: $group_id, uuid: $group_id, name: 'X'})", {"group_id": group}, write=True
            )
    app, _ = start_server(home, tmp_path / "keys.json", preload=False)  # no keys: local mode, admin
    with run_uvicorn(app, free_port()) as url, Admin(Settings.from_env(home=home)) as admin:
        listed = _cli(home, "groups", "--json")
        assert listed.exit_code == 0, listed.output
        sizes = json.loads(listed.output)
        served = httpx.get(f"{url}/v1/admin/groups").json()["groups"]
        assert sorted(served) == sorted(sizes) == sorted(admin.groups()) == ["default", "delta", "gamma"]
        assert sizes == admin.group_sizes() and sizes["gamma"]["entities"] == 1

        assert httpx.delete(f"{url}/v1/admin/groups/gamma").json() == {"dropped": "gamma"}
        dropped = _cli(home, "groups", "drop", "delta", "--yes")
        assert dropped.exit_code == 0 and "dropped group delta" in dropped.output
        assert sorted(json.loads(_cli(home, "groups", "--json").output)) == ["default"]
        assert httpx.get(f"{url}/v1/admin/groups").json()["groups"] == ["default"] == admin.groups()
        # dropping again: both say the group is not there
        assert httpx.delete(f"{url}/v1/admin/groups/delta").status_code == 404
        again = CliRunner().invoke(main, ["--home", str(home), "groups", "drop", "gamma", "--yes"])
        assert again.exit_code == 1 and "no group 'gamma'" in again.output
        assert admin.drop_group("gamma") is False


def test_export_through_the_facade_matches_the_cli(sample_home, tmp_path):
    from graphmem.admin import Admin
    from graphmem.config import Settings

    home = tmp_path / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    result = _cli(home, "export", str(tmp_path / "cli.jsonl"), "--quiet")
    assert result.exit_code == 0, result.output
    seen: list[tuple[int, str]] = []

    def bar(total: int, label: str):
        from contextlib import nullcontext

        seen.append((total, label))
        return nullcontext(lambda n: None)

    with Admin(Settings.from_env(home=home)) as admin:
        written = admin.export(tmp_path / "facade.jsonl", bar=bar)
    counts = ", ".join(f"{n} {kind}" for kind, n in written.items())
    assert result.output.strip() == f"exported {counts} to {tmp_path / 'cli.jsonl'}"
    assert seen == [(sum(written.values()), "exporting jsonl")]
    cli_lines = (tmp_path / "cli.jsonl").read_text().splitlines()
    assert sorted(cli_lines) == sorted((tmp_path / "facade.jsonl").read_text().splitlines())
    assert (tmp_path / "facade.jsonl").stat().st_mode & 0o077 == 0  # holds every passage: this user's only

"""docker/: the compose file validates and wires the services as documented.

Docker cannot run here, so the files are checked with `docker-compose config`
(Debian's package; .ci/run installs it when it can) and by reading them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"


def compose_cli(v2_only: bool = False) -> list[str] | None:
    if not v2_only and shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture(scope="module")
def compose():
    cli = compose_cli()
    if cli is None:
        pytest.skip(
            "docker-compose is not installed (apt-get install docker-compose) and `docker compose` "
            "is missing: the compose file was not validated"
        )
    return cli


def config(cli: list[str], *files: Path) -> subprocess.CompletedProcess:
    args = [*cli]
    for path in files:
        args += ["-f", str(path)]
    return subprocess.run(
        [*args, "config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(REPO)},
    )


def test_compose_file_validates_and_wires_the_services(compose):
    result = config(compose, COMPOSE)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"neo4j", "api", "embed"}
    neo4j = services["neo4j"]
    assert neo4j["image"].startswith("neo4j:5") and neo4j["image"].endswith("-community")
    assert "healthcheck" in neo4j and any("/data" in str(v) for v in neo4j["volumes"])
    api, embed = services["api"], services["embed"]
    assert api["command"] == ["graphmem", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert api["environment"]["GRAPHMEM_STORE"].startswith("neo4j://neo4j:")
    assert api["environment"]["GRAPHMEM_STORE"].endswith("@neo4j:7687")
    assert api["environment"]["GRAPHMEM_EMBEDDER"] == "http://embed:8080"
    assert api["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert "graphmem embed-serve --host 0.0.0.0 --port 8080 --device" in " ".join(embed["command"])
    gpu = embed["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    for service in (api, embed):
        assert service["build"]["dockerfile"] == "docker/Dockerfile"


def test_a_broken_compose_file_is_refused(compose, tmp_path):
    spec = yaml.safe_load(COMPOSE.read_text())
    spec["services"]["api"]["depends_on"] = {"nosuchservice": {"condition": "service_healthy"}}
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(spec))
    assert config(compose, broken).returncode != 0


def test_cpu_override_drops_the_gpu_reservation():
    cli = compose_cli(v2_only=True)
    if cli is None:
        pytest.skip("docker/compose.cpu.yaml uses !reset (Compose v2.24+); `docker compose` is not installed here")
    result = config(cli, COMPOSE, REPO / "docker" / "compose.cpu.yaml")
    assert result.returncode == 0, result.stderr
    embed = yaml.safe_load(result.stdout)["services"]["embed"]
    assert "deploy" not in embed or not embed["deploy"]


def test_dockerfile_is_slim_non_root_and_copies_what_exists():
    text = (REPO / "docker" / "Dockerfile").read_text()
    stages = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert stages and all(image.endswith("-slim") for image in stages)
    user = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1].split()[1] not in {"root", "0"}
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for needed in ("pyproject.toml", "README.md", "graphmem/", "cypher/", "pipelines/"):
        assert f"!{needed}" in ignore, needed

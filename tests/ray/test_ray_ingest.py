"""Ingestion as a Ray job, on a real two-node Ray cluster started on this machine.

The cluster (a head and a second node, one CPU each, joined with `ray start --address`)
makes the job place its spaCy actor and its embedding actor on different nodes, so
batches cross the real object-transfer protocol. Every graph is compared with a
single-process ingestion of the same corpus by content and counts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.reliability.helpers import assert_same_graph, fingerprint

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
#: several write batches on the 45 sample passages, so work is in flight when a worker dies
BATCH = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> int:
    """Run `ray start ARGS` as the leader of a new process group, which its daemons keep;
    returns the group's id (teardown signals the group)."""
    proc = subprocess.Popen(
        [RAY, "start", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    return proc.pid


def _stop(groups: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
        time.sleep(2 if sig == signal.SIGTERM else 0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """The address of a two-node Ray cluster (token authentication, small object stores)."""
    base = tmp_path_factory.mktemp("ray")
    token = base / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the driver (this process) authenticates with the same token
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    port = _free_port()
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 1024 * 1024), "--node-ip-address", "127.0.0.1"]
    groups: list[int] = []
    try:
        # the session's temp dir is the head's; Ray puts the second node's sockets there too
        groups.append(
            _start(
                ["--head", "--port", str(port), "--temp-dir", str(base / "tmp"), "--include-dashboard=false", *common],
                full,
            )
        )
        groups.append(_start(["--address", f"127.0.0.1:{port}", *common], full))
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        _stop(groups)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def documents():
    from graphmem.ingest.readers import read_documents

    return read_documents([EXAMPLES / "docs"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory, documents, embedder, extractor) -> dict:
    """The single-process graph of the sample corpus."""
    from graphmem import Memory

    home = tmp_path_factory.mktemp("single") / "home"
    with Memory(home=home, batch_size=BATCH, extract_processes=1) as memory:
        report = memory.ingest_documents(documents)
    assert report.passages >= 40 and report.entities > 100 and report.facts > 100
    return fingerprint(home)


def test_ray_job_on_two_nodes_builds_the_single_process_graph(cluster, documents, reference, tmp_path):
    import ray

    from graphmem import Memory
    from graphmem.ingest.ray_ingest import RayIngestion

    home = tmp_path / "home"
    nodes: set[int] = set()
    with Memory(home=home, batch_size=BATCH) as memory:
        job = RayIngestion(memory, address=cluster)
        # two actors of one CPU each on two one-CPU nodes: one actor per node
        report = job.ingest(documents, on_stats=lambda s: nodes.add(sum(n["Alive"] for n in ray.nodes())))
        assert nodes == {2}
        assert len(job.parse_pids) == len(job.embed_pids) == 1
        assert report.passages == reference["counts"]["Episode"] and not report.errors
        assert not ray.is_initialized()  # the job disconnects from the cluster it connected to
        assert job.stats.passages == report.passages and job.stats.bottleneck()[0] in (
            "parse",
            "embed",
            "resolve",
            "write",
        )
        again = memory.ingest_documents(documents, ray=cluster)  # idempotent: everything is unchanged
        assert again.skipped == len(documents) and again.passages == 0
    assert_same_graph(fingerprint(home), reference)


def test_a_worker_killed_mid_run_costs_no_data(cluster, documents, reference, tmp_path):
    from click.testing import CliRunner

    from graphmem import Memory
    from graphmem.cli import main
    from graphmem.ingest.ray_ingest import RayIngestion

    home = tmp_path / "home"
    killed: list[int] = []
    restarted: list[int] = []
    written: list[int] = []

    def kill_parser_once(done: int) -> None:
        written.append(done)
        if len(written) == 1:
            # the first batch is written; the parser holds the next ones: kill its process
            os.kill(job.parse_pids[0], signal.SIGKILL)
            killed.append(job.parse_pids[0])
        elif len(written) == 3:  # Ray restarted the actor (a new process) and it serves again
            import ray

            restarted.append(ray.get(job.parse_actors[0].pid.remote(), timeout=300))

    with Memory(home=home, batch_size=BATCH) as memory:
        job = RayIngestion(memory, address=cluster)
        report = job.ingest(documents, progress=kill_parser_once)
        assert killed and report.passages == reference["counts"]["Episode"] and not report.errors
        assert restarted and restarted[0] != killed[0]
    assert_same_graph(fingerprint(home), reference)
    # re-running (here through the command) after the recovered run changes nothing
    result = CliRunner().invoke(main, ["--home", str(home), "ingest", str(EXAMPLES / "docs"), "--ray", cluster, "-q"])
    assert result.exit_code == 0, result.output
    assert f"{len(documents)} documents ({len(documents)} unchanged, 0 replaced), 0 passages" in result.output
    assert_same_graph(fingerprint(home), reference)


def test_the_bottleneck_is_the_busiest_stage_per_worker():
    from graphmem.ingest.ray_ingest import StageTimes

    stats = StageTimes(parse_workers=4, embed_workers=1, started=time.perf_counter() - 10)
    stats.parse, stats.embed, stats.resolve, stats.write, stats.passages = 30.0, 9.0, 2.0, 5.0, 100
    # 30 s of parsing over 4 workers is 75% busy each; 9 s of embedding on one is 90%
    assert stats.bottleneck()[0] == "embed"
    assert 0.89 < stats.bottleneck()[1] < 0.91
    assert "passages/s, bottleneck embed" in stats.describe()

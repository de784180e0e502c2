"""``graphmem ui``: a server on 127.0.0.1 over the embedded store that needs no key, and the URL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def test_graphmem_ui_serves_the_page_on_loopback_without_keys(sample_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHMEM_")}
    command = [sys.executable, "-m", "graphmem.cli", "--home", str(home), "ui", "--port", "0", "--no-browser"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # the one line on stdout: the page's address
        assert url.startswith("http://127.0.0.1:") and url.endswith("/ui/"), url
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
                time.sleep(0.2)
        assert page.status_code == 200 and "graphmem explorer" in page.text
        info = httpx.get(url.replace("/ui/", "/v1/ui/info"), timeout=30).json()
        assert info["auth"] == "local" and info["group"] == "default" and info["stats"]["episodes"] == 45
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_graphmem_ui_says_when_its_port_is_taken(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        from click.testing import CliRunner

        from graphmem.cli import main

        result = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "ui", "--port", str(port), "--no-browser"])
    assert result.exit_code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port 0" in result.output

"""The explorer's tests: a real uvicorn on 127.0.0.1 over a copy of the sample corpus (plus a
dialogue with a changing fact, a high-degree entity and a passage holding markup), and Debian's
headless Chromium driven by Playwright for Python. Without /usr/bin/chromium or Playwright the
browser tests skip and say why; the HTTP tests still run."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import free_port, run_uvicorn, start_server

CHROMIUM = Path("/usr/bin/chromium")
#: no GPU, no sandbox (root in a container), and nothing that reaches the network on its own
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
S1, S2 = "2021-03-01T10:00:00", "2023-06-15T18:30:00"
#: Ana lives in Lisbon and works at Orvalis Robotics, then moves to Berlin and Kestrel Labs
CHAT = {
    "name": "ana-ben",
    "title": "Ana and Ben",
    "turns": [
        {"speaker": "Ana", "text": "Hi Ben! I live in Lisbon now, near the river.", "time": S1, "session": 1},
        {"speaker": "Ana", "text": "Yes, I work at Orvalis Robotics as a data engineer.", "time": S1, "session": 1},
        {"speaker": "Ana", "text": "I moved to Berlin last month.", "time": S2, "session": 2},
        {"speaker": "Ana", "text": "I started working at Kestrel Labs two weeks ago.", "time": S2, "session": 2},
    ],
}
#: one entity with more neighbours than one page of the neighbourhood view holds
_WORDS = ["Aster", "Birch", "Cedar", "Dover", "Elm", "Fenn", "Gale", "Hollow", "Ivy", "Juniper", "Kestrel", "Larch"]
HUB_TEXT = " ".join(f"Marlow Trading owns {a} {b} Mill." for a in _WORDS for b in _WORDS[:6])
MARKUP = 'The Quillon Press printed <script>window.pwned=1</script> and <img src=x onerror="window.pwned=2"> in Dorrow.'


class Explorer:
    """The running server: its URL, the keys (A: group default, B: group beta) and requests."""

    def __init__(self, url: str, key_a: str, key_b: str) -> None:
        self.url, self.key_a, self.key_b = url, key_a, key_b

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {key or self.key_a}"}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=60)

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {key or self.key_a}"}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=300)


@pytest.fixture(scope="module")
def explorer(sample_home, tmp_path_factory, embedder, extractor) -> Iterator[Explorer]:
    from graphmem.api.auth import KeyStore

    tmp = tmp_path_factory.mktemp("ui")
    home = tmp / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    keys = KeyStore(tmp / "keys.json", env={})
    key_a, _ = keys.add(["default"], name="A")
    key_b, _ = keys.add(["beta"], name="B")
    app, _ = start_server(home, tmp / "keys.json")
    with run_uvicorn(app, free_port()) as url:
        server = Explorer(url, key_a, key_b)
        documents = [{"name": "hub.txt", "text": HUB_TEXT}, {"name": "markup.txt", "text": MARKUP}]
        added = server.post("/v1/ingest", {"documents": documents, "conversations": [CHAT]})
        assert added.status_code == 200, added.text
        beta = {"documents": [{"name": "orrin.txt", "text": "The Orrin Lighthouse stands on Cape Vell."}]}
        assert server.post("/v1/ingest", beta, key=key_b).status_code == 200
        yield server


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, request) -> Path:
    """Where screenshots go: $GRAPHMEM_TEST_ARTIFACTS/ui, else a pytest temporary folder
    (named on the terminal, even under -q)."""
    given = os.environ.get("GRAPHMEM_TEST_ARTIFACTS")
    folder = Path(given) / "ui" if given else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"explorer screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            "browser tests need Debian's Chromium at /usr/bin/chromium "
            "(apt-get install chromium; .ci/run installs it when it runs as root)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (the 'ui' extra)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page(browser, explorer) -> Iterator[Any]:
    """One tab, signed in with key A (the page keeps it in sessionStorage)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.goto(explorer.url + "/ui/")
    sign_in(tab, explorer.key_a)
    yield tab
    context.close()


def sign_in(tab: Any, key: str) -> None:
    tab.fill("#key", key)
    tab.click("#auth button")
    wait_for(tab, "document.getElementById('info').textContent.includes('passages')")


def wait_for(tab: Any, expression: str, timeout: float = 60.0) -> Any:
    """Poll a JavaScript expression until it is truthy (the page's CSP forbids the eval that
    Playwright's own wait_for_function uses)."""
    deadline = time.monotonic() + timeout
    while True:
        value = tab.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never satisfied {expression!r}; error box: {tab.inner_text('#error')!r}")
        time.sleep(0.05)

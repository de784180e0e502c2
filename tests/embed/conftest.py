"""Fixtures of the embedding tests: the real MiniLM on CPU, loaded once per session."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def local(embedder: Any) -> Any:
    """The reference: MiniLM in-process (CPU, fp32), the session's shared embedder."""
    return embedder

"""The README's runnable Python examples, run against the sample corpus.

A ```python block runs here when the README line right above it is
``<!-- test: run expect=PATH,PATH -->``: it runs in a folder holding ``.graphmem`` and
``.graphmem-demo`` (copies of a home with examples/docs ingested, as ``make demo`` leaves it)
and ``examples`` (the repository's), must assign ``hits``, and each PATH (relative to
examples/docs) must be the source of one of those hits.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import EXAMPLES, REPO

README = REPO / "README.md"
MARKER = re.compile(r"^<!-- test: run expect=(?P<expect>[^ ]+) -->\n```python\n(?P<code>.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Example:
    line: int
    code: str
    expect: tuple[str, ...]


def runnable_examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    return [
        Example(text.count("\n", 0, m.start()) + 2, m.group("code"), tuple(m.group("expect").split(",")))
        for m in MARKER.finditer(text)
    ]


def test_readme_marks_the_memory_example_runnable() -> None:
    assert any("Memory(home=" in example.code for example in runnable_examples())


@pytest.fixture
def readme_cwd(sample_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder laid out like the checkout after `make demo`."""
    for name in (".graphmem", ".graphmem-demo"):
        shutil.copytree(sample_home, tmp_path / name, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    (tmp_path / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("example", runnable_examples(), ids=lambda example: f"README.md:{example.line}")
def test_readme_example_runs_and_finds_its_sources(example: Example, readme_cwd: Path) -> None:
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(example.code, f"README.md:{example.line}", "exec"), namespace)
    hits = namespace.get("hits")
    assert isinstance(hits, list) and hits, f"README.md:{example.line} must assign a non-empty list to `hits`"
    sources = [Path(str(hit.source)).resolve() for hit in hits]
    for expected in example.expect:
        wanted = (EXAMPLES / "docs" / expected).resolve()
        assert wanted in sources, f"README.md:{example.line}: {expected} not among the hits {sources}"

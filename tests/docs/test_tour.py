"""The README's tour, run as written: every command of its ``test: tour`` bash blocks.

A ```bash block is part of the tour when the README line right above it is
``<!-- test: tour -->``. Its commands run in order, each through bash (so the
quoting is the README's), with the venv's ``graphmem`` first on PATH, in a folder
holding ``examples`` (this checkout's) and the default ``./.graphmem``: the folder a
user who cloned the repository works in. Each command must succeed, print no error,
and show what :data:`SHOWS` says it shows (a real hit of the sample corpus, real
counts). A tour command without an entry there fails the test: a README edit must say
what its new command shows.

The home starts as a copy of the session's sample store (examples/docs ingested
once), so the tour's first ingest finds the documents unchanged, as a second run of
the tour would; the first ingestion itself is what that fixture runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import EXAMPLES, REPO

README = REPO / "README.md"
BLOCK = re.compile(r"^<!-- test: tour -->\n```bash\n(?P<body>.*?)^```$", re.M | re.S)

#: what each tour command's output (stdout) must contain, lower-cased
SHOWS: dict[str, list[str]] = {
    "graphmem ingest examples/docs": ["45 documents (45 unchanged"],
    "graphmem ingest 'examples/docs/people/*.md' examples/docs/news.jsonl": ["unchanged", "0 passages"],
    'graphmem search "Where is the company that built the Kessary Bridge headquartered?" -k 5': [
        "halvane steelworks",
        "ostrelby",
    ],
    'graphmem search "Kessary Bridge" --json': ['"source"', "kessary_bridge.md"],
    'graphmem search "Kessary Bridge" --mode bm25': ["kessary_bridge.md"],
    "graphmem search --file examples/demo_questions.jsonl": ["anselm vey", "lighthouse keeper"],
    'graphmem cypher "MATCH (e:Entity)<-[:MENTIONS]-(p:Episode) RETURN e.name, count(p) AS n ORDER BY n DESC LIMIT 10"': [  # noqa: E501
        "e.name"
    ],
    'graphmem cypher "MATCH (a:Entity {name: \\$name})-[f:FACT]-(b) RETURN f.text" -p name="Kessary Bridge"': [
        "halvane steelworks"
    ],
    "graphmem stats": ["episodes", "facts"],
    "graphmem db start": ["search process started"],
    "graphmem db status": ["running (pid", "search process: running"],
    "graphmem db stop": ["search process stopped", "stopped"],
    "graphmem forget --source examples/docs/the_gannet.txt": ["forgot 1 episode(s)"],
    "graphmem export graph.jsonl": ["exported 44 sources, 44 episodes", "graph.jsonl"],
    "graphmem --home restored import graph.jsonl": ["imported 44 sources, 44 episodes"],
    'graphmem --home restored search "Kessary Bridge" --mode bm25': ["kessary_bridge.md"],
}


def tour_commands() -> list[tuple[int, str]]:
    """(README line, command) of every command in the tour's blocks, in order; a
    ``  # comment`` at the end of a line is left to bash."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in BLOCK.finditer(text):
        first = text.count("\n", 0, block.start("body")) + 1
        for offset, line in enumerate(block.group("body").splitlines()):
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append((first + offset, line.strip()))
    return commands


def without_comment(command: str) -> str:
    return re.sub(r"\s+#\s.*$", "", command)


def test_the_tour_covers_the_readme_commands() -> None:
    shown = " ".join(without_comment(c).split()[1] for _, c in tour_commands() if c.startswith("graphmem "))
    for word in ("ingest", "search", "cypher", "stats", "db", "forget", "export", "--home"):
        assert word in shown, f"the README tour has no `graphmem {word}` command"


@pytest.fixture(scope="module")
def tour_dir(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the checkout a user follows the README in."""
    folder = tmp_path_factory.mktemp("tour")
    shutil.copytree(sample_home, folder / ".graphmem", ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    (folder / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    return folder


def test_the_readme_tour_runs_and_shows_real_hits(tour_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHMEM_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", COLUMNS="200")
    try:
        for line, command in tour_commands():
            key = without_comment(command)
            assert key in SHOWS, f"README.md:{line}: say in SHOWS what `{key}` shows"
            done = subprocess.run(["bash", "-c", command], cwd=tour_dir, capture_output=True, text=True, env=env)
            where = f"README.md:{line}: {key}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            assert done.returncode == 0 and "error" not in done.stderr.lower(), where
            for expected in SHOWS[key]:
                assert expected.lower() in done.stdout.lower(), f"{where}\nmissing {expected!r}"
    finally:  # a failure half-way must not leave the tour's store or search process running
        subprocess.run([Path(sys.executable).parent / "graphmem", "db", "stop"], cwd=tour_dir, capture_output=True)

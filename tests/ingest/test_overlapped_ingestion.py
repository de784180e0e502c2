"""Long ingestions run in overlapped stages (spaCy worker process, writer thread): same graph."""

from __future__ import annotations

from tests.conftest import EXAMPLES
from tests.reliability.helpers import assert_same_graph, fingerprint


def test_overlapped_stages_write_the_same_graph_as_one_after_another(tmp_path, embedder, extractor):
    from graphmem import Memory

    homes = {}
    # batch_size=4 splits the 45 sample passages into a dozen batches: with extract_processes=0
    # they are parsed by a worker process and written by a writer thread while the next embeds
    for processes in (1, 0):
        home = tmp_path / f"processes-{processes}"
        with Memory(home=home, batch_size=4, extract_processes=processes) as memory:
            report = memory.ingest([EXAMPLES / "docs"])
            assert report.passages >= 40 and not report.errors
            assert (memory._background is not None) == (processes == 0)
        homes[processes] = home
    assert_same_graph(fingerprint(homes[0]), fingerprint(homes[1]))

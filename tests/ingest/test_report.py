"""IngestReport: one definition of addition, covering every counted field."""

from graphmem.ingest.pipeline import IngestReport as FromPipeline
from graphmem.ingest.report import COUNTS, IngestReport


def test_addition_covers_every_field_and_drops_the_delta() -> None:
    assert FromPipeline is IngestReport
    a = IngestReport(**{name: i + 1 for i, name in enumerate(COUNTS)}, seconds=1.25, errors=["a"], unsupported=["x"])
    b = IngestReport(**{name: 10 * (i + 1) for i, name in enumerate(COUNTS)}, seconds=2.0, errors=["b"])
    total = a + b
    assert {name: getattr(total, name) for name in COUNTS} == {name: 11 * (i + 1) for i, name in enumerate(COUNTS)}
    assert total.seconds == 3.25 and total.errors == ["a", "b"] and total.delta is None
    assert total.unsupported == ["x"] and "1 file(s) of other types left out" in total.summary()
    assert a.errors == ["a"] and a.delta is not None  # the operands are left as they were
    assert sum([a, b]).model_dump() == total.model_dump()
    counted = set(IngestReport.model_fields) - {"seconds", "errors", "unsupported", "unit", "piece", "delta"}
    assert counted == set(COUNTS)  # a new count must be added to COUNTS, or sums drop it


def test_serialised_report_round_trips_without_the_delta() -> None:
    report = IngestReport(documents=2, busy=1, invalidated=3, appended=1, seconds=0.5, errors=["x"])
    data = report.model_dump()
    assert "delta" not in data and data["busy"] == 1 and data["appended"] == 1 and data["invalidated"] == 3
    assert IngestReport.model_validate(data).model_dump() == data

"""Conversions between request values, the store's values and JSON."""

from datetime import datetime
from typing import Any

from graphmem.api.errors import ApiError


def utc(value: datetime | None) -> datetime | None:
    from graphmem.timeutil import ensure_utc

    return ensure_utc(value) if value is not None else None


def iso(ms: Any) -> str | None:
    """Epoch milliseconds as ISO 8601 (None for anything else)."""
    from graphmem.timeutil import from_ms

    value = from_ms(int(ms)) if isinstance(ms, (int, float)) else None
    return value.isoformat() if value else None


def parse_when(text: str | None, field_name: str) -> datetime | None:
    """A query parameter's date/time, or a 422 naming ``field_name``."""
    if text is None:
        return None
    from graphmem.timeutil import parse_when as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise ApiError(422, f"{field_name}: {exc}") from None
    except OverflowError:  # a valid date that leaves the calendar in UTC (0001-01-01T00:00+14:00)
        raise ApiError(
            422, f"{field_name}: {text!r} is out of range: in UTC it falls outside the years 1-9999"
        ) from None


def jsonable(value: Any) -> Any:
    """Store values as JSON values: nodes are already dicts; NaN/inf become null, anything unknown text."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)

"""Time conversions: the API speaks ``datetime``, the stores epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    return int(ensure_utc(value).timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def parse_when(text: str) -> datetime:
    """Parse an ISO date or datetime given by a user (``2023-05-01``, ``2023-05-01T10:00``)."""
    try:
        return ensure_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"not an ISO date or datetime: {text!r} (expected e.g. 2023-05-01)") from None

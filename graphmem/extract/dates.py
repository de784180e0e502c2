"""Dates in text -> datetimes, resolved against the time the text was written."""

from __future__ import annotations

import re
import warnings
from datetime import datetime
from functools import lru_cache

from graphmem.timeutil import ensure_utc

_YEAR = re.compile(r"^(?:in |since |by |during |until )?(\d{4})s?$")


@lru_cache(maxsize=4096)
def _parse(text: str, base_iso: str | None) -> datetime | None:
    import dateparser

    settings = {
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "TIMEZONE": "UTC",
        "PREFER_DAY_OF_MONTH": "first",
    }
    if base_iso:
        settings["RELATIVE_BASE"] = datetime.fromisoformat(base_iso).replace(tzinfo=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = dateparser.parse(text, languages=["en"], settings=settings)
    return ensure_utc(parsed) if parsed else None


def parse_date(text: str, reference: datetime | None = None) -> datetime | None:
    """Parse a date expression ("in 2019", "last Tuesday", "May 3, 2021").

    Relative expressions resolve against ``reference`` (when the text was
    written); returns None when nothing date-like is found.
    """
    cleaned = " ".join(text.split()).strip(" .,;:")
    if not cleaned or len(cleaned) > 64:
        return None
    year = _YEAR.match(cleaned.lower())
    if year:
        value = int(year.group(1))
        return datetime(value, 1, 1, tzinfo=ensure_utc(datetime(2000, 1, 1)).tzinfo) if 1000 <= value <= 2999 else None
    if reference is not None:
        return _parse(cleaned, ensure_utc(reference).replace(tzinfo=None).isoformat())
    # No anchor: accept only absolute dates, i.e. ones that parse the same
    # against two different reference times.
    first, second = _parse(cleaned, "2001-06-15T00:00:00"), _parse(cleaned, "2011-02-03T00:00:00")
    return first if first is not None and first == second else None

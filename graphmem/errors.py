"""Errors graphmem raises on purpose.

Every error a user can cause derives from :class:`GraphmemError`; the CLI
prints its message as one line and exits non-zero. Anything else is a bug and
shows a traceback.
"""

from __future__ import annotations

from pathlib import Path


class GraphmemError(Exception):
    """Base class: an error with a message meant for the user."""


class StoreError(GraphmemError):
    """The graph store cannot be reached, started or written."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now (it stopped, or is restarting); try again."""


class StoreStoppedDuringQuery(StoreUnavailable):
    """The store stopped while a user query ran (it may be what stopped it); the query is
    not run again."""


class ConfigError(GraphmemError):
    """A setting is missing or invalid."""


class InputError(GraphmemError):
    """Bad input: names the file (and line / field) at fault."""

    def __init__(
        self, message: str, *, path: str | Path | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        where = ""
        if self.path is not None:
            where = self.path
            if line is not None:
                where += f":{line}"
            where += ": "
        if field is not None:
            message = f"field {field!r}: {message}"
        super().__init__(where + message)
        self.reason = message

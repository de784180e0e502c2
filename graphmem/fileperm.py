"""Private files: graphmem's data directory, store files, backups and tokens are the user's alone.

A passage ingested into graphmem is as private as the document it came from, so
nothing graphmem writes may be readable by another local user: directories are
0700 and files 0600. New files are created with those modes (never created
readable and tightened afterwards, which leaves a window); existing ones are
tightened when a store is opened.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO, Any

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (its parents as usual) as a 0700 directory, or tighten it if it exists and is ours."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE)
    tighten(path)
    return path


def tighten(path: str | Path) -> None:
    """Remove group and other permissions from one directory (0700) or regular file (0600).

    Symlinks, sockets and paths of another owner are left alone: chmod follows
    links, a socket's mode is the server's business, and another user's files
    are not ours to change (a failure to change them is ignored for the same reason).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if info.st_uid != os.geteuid() or not (info.st_mode & 0o077):
        return
    if stat.S_ISDIR(info.st_mode):
        mode = DIR_MODE
    elif stat.S_ISREG(info.st_mode):
        mode = FILE_MODE
    else:
        return
    with contextlib.suppress(PermissionError):
        os.chmod(path, mode)


def tighten_tree(root: str | Path) -> None:
    """:func:`tighten` ``root`` and everything under it (not following symlinks)."""
    root = Path(root)
    tighten(root)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            tighten(Path(folder) / name)


def open_private(path: str | Path, mode: str = "wb") -> IO[Any]:
    """Open ``path`` for writing as a 0600 file (truncated; an existing file's mode is tightened too)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically as a 0600 file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)

"""Opening what a command may have left at a path.

A path a sandboxed command could write (a git pointer file in a workspace,
a spill file beside one) may hold a link, a FIFO, which an open would wait
on for ever, or a device, which opening alone may act on (a watchdog, a
serial line, a terminal).  :func:`open_regular_file` looks at it first
(``O_PATH``, which opens nothing) and opens it only if it is a regular file.
"""

from __future__ import annotations

import os
import stat

__all__ = ["open_regular_file"]


def open_regular_file(path: str, flags: int, *, follow: bool = True) -> int | None:
    """``path`` opened with ``flags`` if it is a regular file (a link to one
    with ``follow``), else None.  The file opened is the one looked at,
    through ``/proc/self/fd``, whatever replaces it at ``path`` meanwhile.

    Raises :class:`OSError` if it cannot be looked at or opened."""
    handle = os.open(path, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return None
        return os.open(f"/proc/self/fd/{handle}", flags | os.O_CLOEXEC)
    finally:
        os.close(handle)

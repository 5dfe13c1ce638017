"""Cancellation that any thread or task can trigger and a run can wait on."""

from __future__ import annotations

import _thread  # not threading, which costs start-up 1-2 ms: a lock is all it takes
import os

__all__ = ["CancelToken"]


class CancelToken:
    """A one-way switch: once :meth:`cancel` is called, it stays cancelled.

    Pass it to :func:`corral.run` (``cancel=``) and call :meth:`cancel` from
    another thread, a signal handler or an asyncio task: the run kills every
    process it started and returns a result with ``cancelled=True``.  One
    token may be shared by many runs; cancelling it ends all of them.

    A run waits on :meth:`fileno`, an eventfd created on first use (so tokens
    that are never passed to a run cost no file descriptor) and closed with
    the token.
    """

    __slots__ = ("_cancelled", "_fd", "_lock", "__weakref__")

    def __init__(self) -> None:
        self._cancelled = False
        self._fd = -1
        self._lock = _thread.allocate_lock()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Cancels every run using this token.  Idempotent and thread-safe."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            if self._fd >= 0:
                os.eventfd_write(self._fd, 1)

    def fileno(self) -> int:
        """An fd that becomes readable (and stays so) once cancelled."""
        with self._lock:
            if self._fd < 0:
                self._fd = os.eventfd(1 if self._cancelled else 0, os.EFD_CLOEXEC)
            return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __del__(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)

    def __repr__(self) -> str:
        return f"<CancelToken {'cancelled' if self._cancelled else 'active'}>"

"""Deny-read covers that report what they refuse.

A deny-read path under bubblewrap is hidden by a cover mounted over it.  A
mode-000 tmpfs (or file) refuses every read with EACCES, but no system call
of the command's is notified for it: a command that fails without a word
(``cat ~/.ssh/id_ed25519 2>/dev/null || exit 1``) leaves no trace of why.
So where it can, corral's sandbox init mounts a FUSE filesystem there
instead, and ``_cover_server`` (a program of corral's, one per corral
process) answers it: every lookup and open is refused with EACCES, as the
mode-000 cover would refuse it, and reported on a pipe of the run's, which
the socket gate reads (see :class:`~corral.sandbox.socket_gate.SocketGate`)
and the witness turns into :class:`~corral.Denial`\\ s.  A file kept readable
inside (``~/.ssh/known_hosts``) is read from the real one.

Why a process of its own: corral's threads look up paths in the sandbox
(the witness, the socket gate), beneath a cover too, and a FUSE request once
read cannot be abandoned: a server among those threads, killed with corral,
would leave them, and corral, waiting for ever.  The server ends when its
socket to corral closes, however corral ends; every connection then aborts.

Covers need the init's mounts, a ``/dev/fuse`` the caller may open (many
distributions make it 0666; containers often lack it) and the server
program; :func:`cover_absence` says what is missing.  Elsewhere the covers
are mode-000 ones, and a refused read is known only from the output.
"""

from __future__ import annotations

import _thread  # not threading, which costs start-up 1-2 ms: a lock is all it takes
import os

try:
    from .. import _cgate
except ImportError:  # not built: cover_absence says so
    _cgate = None  # type: ignore[assignment]

__all__ = ["CoverServer", "cover_absence", "cover_server"]

_COVER_SERVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "_cover_server")
_FUSE = "/dev/fuse"


def cover_absence() -> str | None:
    """Why deny-read paths cannot be covered by filesystems corral serves
    here (beyond what the sandbox init needs), or None if they can."""
    if _cgate is None or not os.access(_COVER_SERVER, os.X_OK):
        return f"{_COVER_SERVER} is missing (corral was installed without its C programs)"
    if not os.path.exists(_FUSE):
        return f"there is no {_FUSE} (modprobe fuse, or pass the device to the container)"
    if not os.access(_FUSE, os.R_OK | os.W_OK):
        return f"this user may not open {_FUSE}: its mode is not 0666"
    return None


class CoverServer:
    """The running ``_cover_server``, and the socket that feeds it covers."""

    def __init__(self, control: int) -> None:
        self._control = control
        self._lock = _thread.allocate_lock()

    def gone(self) -> bool:
        """Whether the server has ended (its end of the socket is closed)."""
        import select

        if self._control < 0:
            return True
        watch = select.poll()
        watch.register(self._control, select.POLLIN)
        return any(events & (select.POLLHUP | select.POLLERR) for _, events in watch.poll(0))

    def add(self, fuse: int, report: int, path: str, directory: bool,
            kept: tuple[str, int] | None) -> bool:
        """Hands the server a cover of ``path``: its FUSE connection, the
        pipe to report on and, for a directory, a file inside that stays
        readable (its name and a descriptor open for reading).  The
        descriptors stay the caller's to close.  False if the server is
        gone (the connection then aborts, and every read there fails; the
        next run starts another)."""
        global _server
        data = (b"D" if directory else b"F") + os.fsencode(path) + b"\0"
        data += (os.fsencode(kept[0]) if kept else b"") + b"\0"
        fds = (fuse, report) + ((kept[1],) if kept else ())
        with self._lock:
            if self._control < 0:
                return False
            try:
                _cgate.send_fds(self._control, data, fds)
                return True
            except OSError:
                pass
        self.close()
        with _server_lock:
            if _server is self:
                _server = None
        return False

    def close(self) -> None:
        """Lets the server go (it ends when no process holds the socket)."""
        with self._lock:
            if self._control >= 0:
                os.close(self._control)
                self._control = -1


_server: CoverServer | None = None
_server_lock = _thread.allocate_lock()


def _forget_in_child() -> None:
    """A forked child lets its parent's server go: held there, the socket
    would keep the server alive after the parent ended."""
    global _server, _server_lock
    _server_lock = _thread.allocate_lock()
    if _server is not None:
        _server._lock = _thread.allocate_lock()
        _server.close()
        _server = None


os.register_at_fork(after_in_child=_forget_in_child)


def cover_server() -> CoverServer | None:
    """This process's cover server, started on first use (and again if it
    ended); None if it cannot start."""
    global _server
    with _server_lock:
        if _server is not None and _server.gone():
            _server.close()
            _server = None
        if _server is None:
            from .._spawn import spawn_helper

            ours, theirs = _cgate.socketpair(True)
            try:
                started = spawn_helper(_COVER_SERVER, ["_cover_server"], theirs)
            finally:
                os.close(theirs)
            if not started:
                os.close(ours)
                return None
            _server = CoverServer(ours)
        return _server

"""The temporary directory a corral session's sandboxed commands share.

Sandboxed commands do not see the host's ``/tmp``.  They get one private
directory per corral session (this process: a library caller, the MCP server,
one ``corral run``) as their ``/tmp`` and ``$TMPDIR``, so that what one command
leaves there the next one finds, as in a shell, while nothing of the host's
``/tmp`` is readable and nothing written there reaches it.

It is made on first use (``corral-session-<pid>-<random>-*``, mode 700, in this
user's private ``corral-<uid>`` directory in the host's temporary directory)
and removed when the process exits: by an exit handler,
or by the watchdog when the process is killed (see
:func:`corral._containment.ensure_watchdog`); directories of sessions whose
process is gone are swept when a new session starts.
"""

from __future__ import annotations

import _thread  # not threading, which costs start-up 1-2 ms: a lock is all it takes
import os

# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SESSION_PREFIX", "session_tmp", "temp_base"]

SESSION_PREFIX = "corral-session-"
_lock = _thread.allocate_lock()
_path: str | None = None


def temp_base() -> str:
    """The host directory session directories are made in (this user's own
    directory in the host's temporary directory), not created here."""
    host_tmp = os.environ.get("TMPDIR") or "/tmp"
    if not os.path.isdir(host_tmp):
        host_tmp = "/tmp"
    return os.path.join(host_tmp, f"corral-{os.getuid()}")


def session_tmp() -> str:
    """This session's temporary directory, made on first use."""
    global _path
    with _lock:
        if _path is not None and os.path.isdir(_path):
            return _path
        import atexit

        from .._containment import ensure_watchdog, process_token

        from .guards import private_dir

        base = private_dir(temp_base())
        _sweep_stale(base)
        ensure_watchdog()  # removes it if this process is killed
        while True:  # tempfile.mkdtemp, without importing tempfile (and random)
            path = os.path.join(base, f"{SESSION_PREFIX}{process_token()}-{os.urandom(4).hex()}")
            try:
                os.mkdir(path, 0o700)
                break
            except FileExistsError:
                continue
        _path = path
        atexit.register(_remove, path)
        return path


def _remove(path: str) -> None:
    """Removes the directory and what the session's commands left in it,
    without following symlinks, ignoring what cannot be removed (a
    directory a command made unreadable).  Not shutil.rmtree: importing it
    costs a ``corral run`` 4 ms at exit."""
    try:
        os.rmdir(path)  # the usual case
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    for parent, directories, files in os.walk(path, topdown=False):
        for name in files:
            _quietly(os.unlink, os.path.join(parent, name))
        for name in directories:  # a symlink to a directory is listed here, and not entered
            entry = os.path.join(parent, name)
            _quietly(os.unlink if os.path.islink(entry) else os.rmdir, entry)
    _quietly(os.rmdir, path)


def _quietly(remove: Callable[[str], None], path: str) -> None:
    try:
        remove(path)
    except OSError:
        pass


def _sweep_stale(base: str) -> None:
    """Removes the directories of sessions whose process is gone."""
    for name in os.listdir(base):
        owner = name[len(SESSION_PREFIX):].split("-", 1)[0]
        if name.startswith(SESSION_PREFIX) and owner.isdigit() and not os.path.exists(
                f"/proc/{owner}"):
            _remove(os.path.join(base, name))


def _forget_after_fork() -> None:
    """A forked child makes its own session directory; the parent's is the parent's."""
    global _lock, _path
    _lock, _path = _thread.allocate_lock(), None


os.register_at_fork(after_in_child=_forget_after_fork)

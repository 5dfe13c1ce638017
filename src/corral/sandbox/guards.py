"""Placeholders for protected paths that do not exist, and their removal.

A mount needs a mount point, so to keep a command from creating a protected
path that is missing (``.envrc``, ``.git/hooks``, ...) the bwrap backend
needs something at that path to bind read-only.  corral puts a Unix socket
file there for as long as a sandbox may use it, and removes it when no
sandbox needs it any more.  A socket file, because git ignores it (``git
add -A`` in the sandbox stages nothing), opening it fails at once (ENXIO)
where a FIFO would block, nothing can be put inside it, and it is the
cheapest inode to create and remove (no data block, unlike a directory).
Where git reads a file whenever there is one (``commondir``,
``config.worktree``), a socket it cannot read would fail every git command,
the user's own on the host included: the placeholder there is a read-only
file holding what git makes of the file's absence.

* each run that uses placeholders writes a *record* in corral's runtime
  directory (``$XDG_RUNTIME_DIR/corral`` or ``/tmp/corral-<uid>``), and
  holds a shared lock on an empty *hold* file beside it; the sandbox holds
  another, on an open file of its own (``--sync-fd``, kept by the sandbox's
  PID 1 outside the command), until it is gone, so a run stays live exactly
  as long as corral or the sandbox does, however either of them ends, and
  neither can let go of the other's.  A sweep takes a run for dead when it
  can lock the hold exclusively.  That lock is not on the record itself: a
  command that reached the sandbox's descriptors (``/proc/1/fd``) could then
  rewrite the list of what the next sweep deletes.  corral locks the record too, for as long as it lives, for
  the sake of earlier versions of corral, which look at that lock alone;
* a *sweep* removes the placeholders of unlocked records that no locked
  record also uses.  Sweeps run when a run ends, and from the watchdog when
  corral itself dies (see :func:`corral._containment.ensure_watchdog`);
* a placeholder is removed only if it is still the socket corral created
  (same device and inode, still a socket; a file placeholder still a file
  of its size), so a file that replaced it is never deleted, and never
  while a live run lists its path.  A socket found at a protected path is
  taken for a placeholder (a crash may orphan one); a file only while a
  live run lists it as one (one a crash orphaned stays, read by git as
  no file at all).
  Where a filesystem has no socket files, the placeholder is an empty
  directory, removed only while it is still empty;
* a run's placeholders are hard links to the first one of their kind it
  makes, where the filesystem allows: an inode per kind and run, not one
  per missing path.

Records and sweeps are serialised by a lock on one mutex file, and
placeholders are created under it.  A run claims every placeholder it binds,
the ones other runs made included, so two runs in one workspace share a
placeholder safely, whichever ends first.
"""

from __future__ import annotations

import _thread  # not threading, which costs start-up 1-2 ms: a lock is all it takes
import errno
import fcntl
import itertools
import os
import stat

from .._errors import PolicyError

__all__ = ["Guard", "guard_placeholders", "may_be_placeholder", "private_dir", "runtime_dir",
           "runtime_dir_path", "sweep"]

_RECORD_PREFIX = "run-"
_HOLD_PREFIX = "hold-"  # then the record's name without its prefix
_MUTEX = "mutex"
_ids = itertools.count(1)
_local_lock = _thread.allocate_lock()
# The names git reads whenever they exist, and what their file placeholder
# holds: what git makes of no file there (commondir: the git directory
# itself; config.worktree: no settings).
_READ_BY_GIT = {"commondir": b".\n", "config.worktree": b""}


def runtime_dir_path() -> str:
    """Where :func:`runtime_dir` is, without creating it."""
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    return os.path.join(xdg, "corral") if xdg and _owned_private(xdg, uid) else f"/tmp/corral-{uid}"


def runtime_dir() -> str:
    """corral's private runtime directory for this user, created if needed.

    Raises :class:`PolicyError` if it exists but could be touched by others.
    """
    return private_dir(runtime_dir_path())


def private_dir(base: str) -> str:
    """``base``, created if needed, once it is sure to be this user's alone.

    Raises :class:`PolicyError` if it exists but could be touched by others.
    """
    uid = os.getuid()
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise PolicyError(f"cannot create corral's directory {base}: {exc.strerror}") from None
    if not _owned_private(base, uid):
        raise PolicyError(f"corral's directory {base} is not a private directory owned by "
                          "this user (mode 700, not a symlink); remove it and retry")
    return base


def _owned_private(path: str, uid: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077


class Guard:
    """The placeholders one run relies on; :meth:`release` when the run is over.

    ``lock_fd`` is corral's locked descriptor of the run's hold file; the
    sandbox holds one of its own (:meth:`sandbox_hold`).
    """

    def __init__(self, directory: str, record: str, lock_fd: int, record_fd: int) -> None:
        self.directory = directory
        self.record = record
        self.hold = _hold_of(record)
        self.lock_fd = lock_fd
        self._record_fd = record_fd

    def sandbox_hold(self) -> int:
        """A descriptor of the hold file, with a shared lock of its own, for
        the sandbox to keep while it lives.  Its own open file: a lock is
        the open file's, and one the sandbox shared with corral's, the
        sandbox could let go of for corral too."""
        fd = os.open(self.hold, os.O_RDONLY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    def release(self, patience: float = 2.0) -> None:
        """Drops this run's claim and removes placeholders nobody else needs.

        The sandbox's last processes may still be exiting (its PID 1
        outlives the process corral waited for by a moment), so this waits
        up to ``patience`` seconds for them to let go of the claim.
        """
        if self.lock_fd < 0:
            return
        os.close(self.lock_fd)
        self.lock_fd = -1
        _wait_unlocked(self.hold, patience)
        os.close(self._record_fd)
        sweep(self.directory)


def _wait_unlocked(path: str, patience: float) -> None:
    import time

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        deadline = time.monotonic() + patience
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
    finally:
        os.close(fd)


def guard_placeholders(paths: tuple[str, ...]) -> tuple[Guard, tuple[str, ...]]:
    """Claims a placeholder at each of ``paths``: creates it where nothing is,
    shares it where another run's is.  Whatever else is there (a file the user
    just made) is left alone.

    Returns the guard and the paths that exist, to be bound read-only.  A
    path that cannot be created because its directory is not writable is
    left out: the command cannot create it either.
    """
    from .._containment import ensure_watchdog, process_token

    directory = runtime_dir()
    ensure_watchdog()  # removes the placeholders if this process is killed
    with _local_lock, _Mutex(directory):
        live = _sweep_locked(directory)
        record = os.path.join(directory, f"{_RECORD_PREFIX}{process_token()}-{next(_ids)}")
        # The hold first: a record found without a locked hold is a dead run's.
        hold = os.open(_hold_of(record), os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                       0o400)
        fd = -1
        try:
            fcntl.flock(hold, fcntl.LOCK_SH)  # shared with the sandbox's (see sandbox_hold)
            fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            bound = []
            made: dict[bytes | None, tuple[str, os.stat_result]] = {}  # the first of each kind
            for path in paths:
                try:
                    st = _make_placeholder(path, made)
                except FileExistsError:
                    # Another run's placeholder, or the user just created it: in
                    # both cases it is bound as it is.  A socket is taken for a
                    # placeholder (another run's, or one a crash orphaned) and
                    # listed in this run's record too, so that it stays while
                    # this run needs it and goes when no run does.
                    bound.append(path)
                    st = os.lstat(path)
                    if (st.st_dev, st.st_ino) not in live and not stat.S_ISSOCK(st.st_mode):
                        continue
                except OSError as exc:
                    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
                        continue
                    raise PolicyError(f"cannot protect {path}: {exc.strerror}") from None
                else:
                    bound.append(path)
                # Written as it goes: if this process dies now, a sweep still
                # finds what was created.
                os.write(fd, _entry(st, path))
        except BaseException:
            os.close(hold)
            if fd >= 0:
                os.close(fd)
            _sweep_locked(directory)
            raise
    return Guard(directory, record, hold, fd), tuple(bound)


def _hold_of(record: str) -> str:
    directory, name = os.path.split(record)
    return os.path.join(directory, _HOLD_PREFIX + name[len(_RECORD_PREFIX):])


def _make_placeholder(path: str,
                      made: dict[bytes | None, tuple[str, os.stat_result]]) -> os.stat_result:
    """Puts a placeholder at ``path`` and returns its status: a hard link to
    the one of its kind this run made first (``made``, by the content of a
    file placeholder, or None for a socket) where one can be made, else a
    new one, which ``made`` then holds.  A link only adds a name, where a
    new inode costs the filesystem up to twenty times more (ext4)."""
    content = _READ_BY_GIT.get(os.path.basename(path))
    first = made.get(content)
    if first is not None:
        try:
            os.link(first[0], path)
            return first[1]  # the same inode
        except OSError as exc:
            # Another filesystem, no hard links there, or too many: a new inode.
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                raise
    if content is not None:
        _make_file(path, content)
    else:
        try:
            os.mknod(path, 0o444 | stat.S_IFSOCK)
        except OSError as exc:
            # Some filesystems (vfat, some FUSE) have no socket files: an empty
            # directory does, and rmdir removes it only while it is empty.
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            os.mkdir(path, 0o555)
            return os.lstat(path)
    st = os.lstat(path)
    made[content] = (path, st)
    return st


def _make_file(path: str, content: bytes) -> None:
    """Makes a read-only file at ``path`` that appears there with
    ``content`` whole: written unnamed (``O_TMPFILE``), then linked in, so
    that neither git nor another run's plan ever finds it half written.
    Where the filesystem has no unnamed files, it is written in place and
    removed if the write fails."""
    try:
        fd = os.open(os.path.dirname(path), os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o444)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise
    else:
        descriptors = -1
        try:
            os.write(fd, content)
            # link(2) would link /proc's link itself: linkat follows it
            # when given a directory descriptor.
            descriptors = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            os.link(str(fd), path, src_dir_fd=descriptors)
        finally:
            os.close(fd)
            if descriptors >= 0:
                os.close(descriptors)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        os.write(fd, content)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)


def may_be_placeholder(path: str) -> bool:
    """Whether what is at ``path``, a protected path, may be a placeholder
    of a live run's, to be claimed (:func:`guard_placeholders`) rather than
    bound as it is: a socket, a file placeholder as made, or nothing at all
    (one a sweep just removed: the path is missing again)."""
    try:
        return _placeholder_as_made(path, os.lstat(path))
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _placeholder_as_made(path: str, st: os.stat_result) -> bool:
    """Whether ``st``, found at ``path``, is a socket, or a file placeholder
    unchanged (a file of its name and size)."""
    if stat.S_ISSOCK(st.st_mode):
        return True
    content = _READ_BY_GIT.get(os.path.basename(path))
    return content is not None and stat.S_ISREG(st.st_mode) and st.st_size == len(content)


def _entry(st: os.stat_result, path: str) -> bytes:
    return f"{st.st_dev}:{st.st_ino}:".encode() + os.fsencode(path) + b"\0"


def sweep(directory: str) -> None:
    """Removes the placeholders no live run needs, and the records of runs gone."""
    with _local_lock, _Mutex(directory):
        _sweep_locked(directory)


class _Mutex:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, _MUTEX)
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        os.close(self.fd)


def _sweep_locked(directory: str) -> set[tuple[int, int]]:
    """With the mutex held: deletes dead records and their unshared
    placeholders.  Returns the (device, inode) of every live placeholder."""
    live: set[tuple[int, int]] = set()
    live_paths: set[str] = set()  # a path a live run relies on is kept, whatever is there
    dead: list[tuple[str, list[tuple[int, int, str]]]] = []
    names = os.listdir(directory)
    records = {name[len(_RECORD_PREFIX):] for name in names if name.startswith(_RECORD_PREFIX)}
    for name in names:
        if name.startswith(_HOLD_PREFIX) and name[len(_HOLD_PREFIX):] not in records:
            # A run that died before writing its record, or whose record a
            # sweep just removed: gone once nobody holds it.
            if not _held(os.path.join(directory, name)):
                _unlink_quietly(os.path.join(directory, name))
    for name in names:
        if not name.startswith(_RECORD_PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            entries = _read_entries(fd)
        finally:
            os.close(fd)
        if _held(_hold_of(path)):
            live.update((dev, ino) for dev, ino, _ in entries)
            live_paths.update(path for _, _, path in entries)
        else:
            dead.append((path, entries))
    for record, entries in dead:
        for dev, ino, path in entries:
            # By path, not inode: a run's placeholders are links to one inode,
            # of which a live run may share some names but not others.
            if path in live_paths:
                continue
            try:
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    if _placeholder_as_made(path, st):
                        os.unlink(path)
                    elif stat.S_ISDIR(st.st_mode):
                        os.rmdir(path)  # fails, and keeps it, if anything was put inside
            except OSError:
                pass
        os.unlink(record)
        _unlink_quietly(_hold_of(record))
    return live


def _held(hold: str) -> bool:
    """Whether a live run (corral, or its sandbox) holds the lock on ``hold``."""
    try:
        fd = os.open(hold, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_entries(fd: int) -> list[tuple[int, int, str]]:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    entries = []
    for item in data.split(b"\0"):
        dev, sep1, rest = item.partition(b":")
        ino, sep2, path = rest.partition(b":")
        if sep1 and sep2 and dev.isdigit() and ino.isdigit():
            entries.append((int(dev), int(ino), os.fsdecode(path)))
    return entries


def watchdog_sweep(directory: str, owner: str, patience: float = 30.0) -> None:
    """Run by the watchdog once corral (``owner``, its process token) is gone:
    sweeps until none of its records is live (its sandboxes are being
    killed), for at most ``patience`` seconds; a sandbox that outlives that
    keeps its placeholders."""
    import time

    deadline = time.monotonic() + patience
    prefix = f"{_RECORD_PREFIX}{owner}-"
    while True:
        sweep(directory)
        if not any(n.startswith(prefix) for n in os.listdir(directory)):
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)

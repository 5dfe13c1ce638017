"""The Unix socket gate: a sandboxed command reaches its own sockets and the allowed ones.

Without network a Unix socket is the way out of the sandbox's network
namespace: a socket file anywhere the command can read (docker.sock, an
ssh-agent, D-Bus) would connect it to a host service.  So every ``connect``
is handed to corral through a seccomp user notification
(:func:`~corral.sandbox.seccomp.build_connect_notifier`, loaded by the spawn
stage before bwrap starts, its listener handed back to corral):

* a socket that is not AF_UNIX (TCP inside the sandbox's own network
  namespace) is let through: its family cannot change, so what the command
  does to the address afterwards cannot reach a Unix path;
* an AF_UNIX socket is never let through: corral performs the connect itself,
  on the command's own socket (duplicated with ``pidfd_getfd``), with its own
  copy of the path.  It connects to an allowed host path, or to a socket that
  lies, in the command's view, beneath one of its own directories (its
  session's ``/tmp``, the writable roots): that socket is found by opening
  its directory with ``openat2`` confined to the sandbox's root, then the
  socket beneath that very directory, and connected to through the pinned
  descriptor, so no rename or symlink swap during the check changes what is
  reached.  Anything else is refused with EACCES and recorded as a denial.
  Datagram sockets, which could reach a path through ``sendto`` without
  ``connect``, are refused when created.

The gate runs inside the collect stage's poll loop (:meth:`fileno`,
:meth:`handle`); a command blocked in ``connect`` waits only for one loop turn.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct

from .._errors import PolicyError
from .._policy import SandboxPolicy
from .._result import Denial, DenialKind

try:
    from .. import _cgate
except ImportError:  # not built: open_gate says so
    _cgate = None  # type: ignore[assignment]

__all__ = ["UnixSocketGate", "gate_supported", "open_gate"]

_NOTIF_SIZE = 80  # struct seccomp_notif
_IOCTL_RECV = 0xC0502100  # SECCOMP_IOCTL_NOTIF_RECV
_IOCTL_SEND = 0xC0182101  # SECCOMP_IOCTL_NOTIF_SEND
_FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE
_AF_UNIX = 1
_SUN_PATH_MAX = 108
_MAX_DEPTH = 256  # directories between a socket and the filesystem's root
_MISSING = "\0missing"  # what _own_socket answers for a path with nothing at it


def gate_supported() -> bool:
    """Whether this kernel can run the gate: ``pidfd_getfd`` and the
    notification's CONTINUE flag (both Linux 5.6), tried once."""
    global _supported
    if _supported is None:
        _supported = False
        if _cgate is not None:
            try:
                pidfd = os.pidfd_open(os.getpid())
                try:
                    os.close(_cgate.pidfd_getfd(pidfd, pidfd))  # an fd sure to be open
                    _supported = True
                finally:
                    os.close(pidfd)
            except OSError:
                pass
    return _supported


_supported: bool | None = None


def open_gate(policy: SandboxPolicy, own: tuple[str, ...],
              private_network: bool) -> UnixSocketGate | None:
    """The gate for a run of ``policy`` without network (see
    :class:`UnixSocketGate` for ``own`` and ``private_network``), or None
    where the kernel cannot run one (then no Unix socket may be used).
    Raises :class:`PolicyError` for an allowed socket that is not one, or
    that cannot be granted here."""
    if not gate_supported():
        if policy.allow_unix_sockets:
            raise PolicyError("allow_unix_sockets needs Linux 5.6 or newer (pidfd_getfd) and "
                              "corral's C extensions; without them no Unix socket can be "
                              "granted: use --network, or leave the socket out")
        return None
    allowed: list[str] = []
    bind_paths: list[str] = []
    for given in policy.allow_unix_sockets:
        path = os.path.expanduser(given)
        real = os.path.realpath(path)
        try:
            is_socket = stat.S_ISSOCK(os.stat(real).st_mode)
        except OSError as exc:
            raise PolicyError(f"allowed Unix socket {given!r}: {exc.strerror}") from None
        if not is_socket:
            raise PolicyError(f"allowed Unix socket {given!r} is not a socket")
        allowed += [path, real]
        bind_paths.append(real)
    return UnixSocketGate(tuple(allowed), own, tuple(bind_paths), private_network)


class UnixSocketGate:
    """Decides one run's ``connect`` calls.

    ``allowed`` are host socket paths.  The command's own sockets are reached
    too: with ``private_network`` (the run has its own network namespace),
    the ones a process of the run listens on; otherwise the ones beneath the
    ``own`` directories (its session's ``/tmp``).  ``bind_paths``
    are where a mount-namespace backend must show the allowed sockets.
    ``child_end`` is the socket the spawned child sends the seccomp listener
    over.
    """

    def __init__(self, allowed: tuple[str, ...], own: tuple[str, ...] = (),
                 bind_paths: tuple[str, ...] = (), private_network: bool = False) -> None:
        self.allowed = frozenset(allowed)
        self.bind_paths = list(bind_paths)
        self._own = frozenset(_identity(path) for path in own)
        self._private_network = private_network
        self.denials: list[Denial] = []
        self._ours, self.child_end = _cgate.socketpair()
        self._listener = -1

    def receive(self) -> None:
        """Takes the listener the spawned child sent; call once, after spawn."""
        os.close(self.child_end)  # the child had its own copy
        self.child_end = -1
        try:
            self._listener = _cgate.receive_fd(self._ours)
        finally:
            os.close(self._ours)
            self._ours = -1

    def fileno(self) -> int:
        return self._listener

    def close(self) -> None:
        for fd in (self._listener, self.child_end, self._ours):
            if fd >= 0:
                os.close(fd)
        self._listener = self.child_end = self._ours = -1

    def handle(self) -> bool:
        """Answers one pending notification; False once no process can send more."""
        buffer = bytearray(_NOTIF_SIZE)
        try:
            fcntl.ioctl(self._listener, _IOCTL_RECV, buffer, True)
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.ENOENT):
                return True  # interrupted, or the caller died meanwhile
            return False
        notif_id, pid = struct.unpack_from("<QI", buffer)
        sockfd, address, length = struct.unpack_from("<3Q", buffer, 32)
        value, error, flags = self._decide(pid, sockfd & 0xFFFFFFFF, address, length)
        response = struct.pack("<QqiI", notif_id, value, -error if error else 0, flags)
        try:
            fcntl.ioctl(self._listener, _IOCTL_SEND, response)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # the caller is gone: nothing to answer
                raise
        return True

    def _decide(self, pid: int, sockfd: int, address: int, length: int) -> tuple[int, int, int]:
        """(return value, errno, flags) for one ``connect``."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return 0, errno.EACCES, 0
        try:
            sock = _cgate.pidfd_getfd(pidfd, sockfd)
        except OSError as exc:
            if exc.errno == errno.EPERM:  # e.g. Yama's ptrace_scope 2 or 3
                self.denials.append(Denial(
                    DenialKind.UNIX_SOCKET, None,
                    "corral may not inspect the command's socket here (pidfd_getfd: EPERM; "
                    "kernel.yama.ptrace_scope above 1?), so no connect is allowed: use "
                    "--network", "connect() refused"))
            return 0, exc.errno or errno.EBADF, 0
        finally:
            os.close(pidfd)
        try:
            if _cgate.socket_domain(sock) != _AF_UNIX:
                return 0, 0, _FLAG_CONTINUE
            path = _read_path(pid, address, length)
            if path is None:
                return 0, errno.EINVAL, 0
            target = path if path in self.allowed else self._own_socket(pid, path)
            if target == _MISSING:
                return 0, errno.ENOENT, 0  # nothing there in its view: nothing refused
            if target is None:
                shown = path if path.startswith("/") else repr(path)
                self.denials.append(Denial(
                    DenialKind.UNIX_SOCKET, shown,
                    f"host Unix socket {shown} is not allowed: add --allow-unix-socket "
                    f"{shown} (allow_unix_sockets), or --network", "connect() refused"))
                return 0, errno.EACCES, 0
            try:
                _cgate.connect_unix(sock, os.fsencode(target))
            except OSError as exc:
                return 0, exc.errno or errno.ECONNREFUSED, 0
            finally:
                if target.startswith("/proc/self/fd/"):
                    os.close(int(target.rsplit("/", 1)[1]))
            return 0, 0, 0
        except OSError as exc:
            return 0, exc.errno or errno.EBADF, 0
        finally:
            os.close(sock)  # the command's own descriptor stays open and connected

    def _own_socket(self, pid: int, path: str) -> str | None:
        """A path to connect to if ``path`` names, in the command's view, one
        of the command's own sockets: ``/proc/self/fd/N`` on the socket
        itself, pinned, so that what was checked is what is reached.
        :data:`_MISSING` if nothing is there, None if it is not the command's.

        With a private network namespace, a socket is the command's own if a
        process of the run listens on it: a listening socket of that
        namespace is bound at a path that is this very socket.  Without one,
        if it lies beneath one of the ``own`` directories.
        """
        if not path.startswith("/") or not (self._private_network or self._own):
            return None
        try:
            root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        pinned = parent = -1
        try:
            # The directory first, then the socket beneath that very directory
            # (not followed if a symlink): what is checked below is that
            # socket, whatever the command renames meanwhile.
            relative = path.lstrip("/")
            parent = _cgate.open_in_root(root, os.fsencode(os.path.dirname(relative) or "."),
                                         os.O_PATH | os.O_DIRECTORY)
            pinned = os.open(os.path.basename(relative),
                             os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            if not stat.S_ISSOCK(os.fstat(pinned).st_mode):
                return None
            if self._private_network:
                own = _identity_fd(pinned) in _listening(pid, root)
            else:
                own = self._beneath_own(root, parent)
            if not own:
                return None
            target, pinned = f"/proc/self/fd/{pinned}", -1
            return target
        except FileNotFoundError:
            return _MISSING
        except OSError:
            return None
        finally:
            for fd in (pinned, parent, root):
                if fd >= 0:
                    os.close(fd)

    def _beneath_own(self, root: int, parent: int) -> bool:
        """Whether the directory ``parent`` is, or lies beneath, an own one
        (walking ``..`` up to the command's root)."""
        top = _identity_fd(root)
        current = os.dup(parent)
        try:
            for _ in range(_MAX_DEPTH):
                here = _identity_fd(current)
                if here in self._own:
                    return True
                if here == top:
                    return False
                above = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=current)
                os.close(current)
                current = above
            return False
        finally:
            os.close(current)


def _listening(pid: int, root: int) -> set[tuple[int, int]]:
    """The sockets that listening sockets of ``pid``'s network namespace are
    bound at, as (device, inode) in its view of the filesystem.  A socket
    bound by a bare name (no slash) is looked for in ``pid``'s working
    directory, where a server and its client usually both are."""
    try:
        with open(f"/proc/{pid}/net/unix", "rb") as table:
            lines = table.read().splitlines()[1:]
    except OSError:
        return set()
    found = set()
    cwd = -1
    try:
        for line in lines:
            fields = line.split(None, 7)
            # Num RefCount Protocol Flags Type St Inode Path; __SO_ACCEPTCON = 0x10000
            if len(fields) < 8 or not int(fields[3], 16) & 0x10000:
                continue
            bound = fields[7]
            try:
                if bound.startswith(b"/"):
                    fd = _cgate.open_in_root(root, bound.lstrip(b"/"), os.O_PATH)
                elif bound not in (b".", b"..") and b"/" not in bound and bound[:1] != b"@":
                    if cwd < 0:
                        cwd = os.open(f"/proc/{pid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                    fd = os.open(bound, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cwd)
                else:
                    continue
            except OSError:
                continue
            try:
                found.add(_identity_fd(fd))
            finally:
                os.close(fd)
    finally:
        if cwd >= 0:
            os.close(cwd)
    return found


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _identity_fd(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _read_path(pid: int, address: int, length: int) -> str | None:
    """The name in the ``sockaddr_un`` at ``address`` in ``pid`` (abstract
    names start with ``@``), or None if it is no such address."""
    if not 2 < length <= 2 + _SUN_PATH_MAX:
        return None
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            memory.seek(address)
            raw = memory.read(length)
    except (OSError, OverflowError, ValueError):
        return None
    family, = struct.unpack_from("<H", raw)
    if family != _AF_UNIX:
        return None
    if raw[2:3] == b"\0":
        return "@" + os.fsdecode(raw[3:])
    return os.fsdecode(raw[2:].split(b"\0", 1)[0])

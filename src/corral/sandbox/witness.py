"""The witness: each write, privileged call and hidden read the sandbox refuses, as it happens.

A denial read from a command's output is a guess, and a command that fails
without a word (``touch /usr/x 2>/dev/null || exit 1``) leaves nothing to
read.  So the seccomp program of a sandboxed command turns every system call
that writes to a path into a user notification (``witness_writes``, see
:mod:`.seccomp`).  The call waits while a thread of corral's, in C
(``serve`` in ``_cgate.c``), looks at what it would write, in the command's
own view of the filesystem; then the kernel carries it out
(SECCOMP_USER_NOTIF_FLAG_CONTINUE).

The witness enforces nothing.  The kernel does, with the sandbox's
read-only mounts (bwrap) or Landlock rules; the witness asks the same
question of the same objects: is the mount the write lands on read-only, or
is it beneath none of the writable Landlock rules, is the path a mount point
the sandbox made, or a protected path's placeholder?  A command that changes
a path between the look and the call can only spoil its own report.

A device the host has and bwrap's minimal /dev lacks (``/dev/kvm``,
``/dev/net/tun``), opened for writing, is reported too, as a privilege
(only full access has the host's devices); one opened only for reading is
not seen, as no read is.  Each ``execve`` is looked at: a
set-user-ID, set-group-ID or file-capability program runs without its
privilege in any sandbox (no new privileges), which is reported only if the
run then fails (:attr:`Witness.if_failed`), since many such programs do
without.  A ``kill`` of a pid outside the run is reported too, on the same
terms (a command may ask whether a pid is alive and do well with the
answer): under bwrap the sandbox's PID namespace has no such process
(``_cgate.c`` tells a host pid from one of the sandbox's own that is gone
by asking corral's init, the sandbox's PID 1), under Landlock its signal
scoping refuses it (a process without the run's seccomp filter is none of
the run's).

A refusal is recorded only when the sandbox made the difference: not when
the user could not write there anyway (the kernel reports EROFS for a
read-only mount before it checks permissions), and not for a path the policy
lets the command write.  Each becomes a :class:`~corral.Denial` with the
remedy :func:`corral._denial.explain_refusal` gives for that path.

The privileged calls the seccomp program refuses (``mount``, ``unshare``,
``ptrace``, ... see :mod:`.seccomp`) come the same way
(``witness_privileges``): the thread answers EPERM, as the filter itself
would, and the witness reports which call it was.  A read of a deny-read
path comes from the filesystem that covers it (see :mod:`.covers`).
"""

from __future__ import annotations

import errno
import functools
import os

from .._denial import missing_device_remedy
from .._policy import SandboxPolicy
from .._result import Denial, DenialKind
from .seccomp import EXEC_CALLS, OWNER_CALLS, SOCKET_CALLS, WRITE_CALLS, privileged_calls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Witness"]

# What each call does to the paths it names: (argument of the directory fd
# or -1, argument of the path or -1 for a call on a descriptor, action,
# argument of its flags or a code).
# The actions, as _cgate.c numbers them:
_OPEN = 0     # opens for writing; with O_CREAT creates it if missing
_CHANGE = 1   # changes what is at the path (contents, mode, owner, times)
_LCHANGE = 2  # the same, not following a final symlink
_CREATE = 3   # creates the path, which must not exist
_REMOVE = 4   # removes the path: its directory changes
_REPLACE = 5  # creates the path or replaces what is there (a rename's target)
_EXEC = 6     # runs the program at the path (or, with AT_EMPTY_PATH, the descriptor's)
_NO_FLAGS, _CREAT_FLAGS, _OPEN_HOW_FLAGS = -1, -2, -3
_OPERANDS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "open": ((-1, 0, _OPEN, 1),),
    "openat": ((0, 1, _OPEN, 2),),
    "openat2": ((0, 1, _OPEN, _OPEN_HOW_FLAGS),),
    "creat": ((-1, 0, _OPEN, _CREAT_FLAGS),),
    "truncate": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "mkdir": ((-1, 0, _CREATE, _NO_FLAGS),),
    "mkdirat": ((0, 1, _CREATE, _NO_FLAGS),),
    "mknod": ((-1, 0, _CREATE, _NO_FLAGS),),
    "mknodat": ((0, 1, _CREATE, _NO_FLAGS),),
    "rmdir": ((-1, 0, _REMOVE, _NO_FLAGS),),
    "unlink": ((-1, 0, _REMOVE, _NO_FLAGS),),
    "unlinkat": ((0, 1, _REMOVE, _NO_FLAGS),),
    "rename": ((-1, 0, _REMOVE, _NO_FLAGS), (-1, 1, _REPLACE, _NO_FLAGS)),
    "renameat": ((0, 1, _REMOVE, _NO_FLAGS), (2, 3, _REPLACE, _NO_FLAGS)),
    "renameat2": ((0, 1, _REMOVE, _NO_FLAGS), (2, 3, _REPLACE, _NO_FLAGS)),
    "link": ((-1, 1, _CREATE, _NO_FLAGS),),
    "linkat": ((2, 3, _CREATE, _NO_FLAGS),),
    "symlink": ((-1, 1, _CREATE, _NO_FLAGS),),
    "symlinkat": ((1, 2, _CREATE, _NO_FLAGS),),
    "chmod": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "fchmodat": ((0, 1, _CHANGE, _NO_FLAGS),),
    "fchmodat2": ((0, 1, _CHANGE, 3),),
    "chown": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "lchown": ((-1, 0, _LCHANGE, _NO_FLAGS),),
    "fchownat": ((0, 1, _CHANGE, 4),),
    "utime": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "utimes": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "futimesat": ((0, 1, _CHANGE, _NO_FLAGS),),
    "utimensat": ((0, 1, _CHANGE, 3),),
    "setxattr": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "lsetxattr": ((-1, 0, _LCHANGE, _NO_FLAGS),),
    "removexattr": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "lremovexattr": ((-1, 0, _LCHANGE, _NO_FLAGS),),
    # On a descriptor: what it is open on (utimensat(fd, NULL) is taken so too).
    "fchmod": ((0, -1, _CHANGE, _NO_FLAGS),),
    "fchown": ((0, -1, _CHANGE, _NO_FLAGS),),
    "fsetxattr": ((0, -1, _CHANGE, _NO_FLAGS),),
    "fremovexattr": ((0, -1, _CHANGE, _NO_FLAGS),),
    "execve": ((-1, 0, _EXEC, _NO_FLAGS),),
    "execveat": ((0, 1, _EXEC, 4),),
}
_MAX_DENIALS = 20
_MAX_SEEN = 1000  # paths looked at once; past that, the witness stops remembering


class Witness:
    """Records the writes and privileged calls one sandboxed run is refused.

    ``writable`` is None where the sandbox refuses writes with read-only
    mounts (bwrap), else the paths beneath which Landlock lets the command
    write.  ``placeholders`` are protected paths that did not exist, which
    the sandbox keeps from being created.  ``policy`` and ``cwd`` are the
    run's, for the remedies.
    """

    def __init__(self, policy: SandboxPolicy, cwd: str, writable: tuple[str, ...] | None,
                 placeholders: tuple[str, ...] = ()) -> None:
        self._policy, self._cwd = policy, cwd
        self.writable = None if writable is None else tuple(
            os.fsencode(os.path.realpath(path)) for path in writable)
        self._placeholders = frozenset(placeholders)
        self._paths: Any = None  # what the policy allows, worked out at the first refusal
        self._seen: set[object] = set()
        self.denials: list[Denial] = []
        #: Denials that count only if the run failed: a privileged program
        #: may do without its privilege, and a pid found dead is an answer.
        self.if_failed: list[Denial] = []

    @staticmethod
    def privileged() -> tuple[int | tuple[int, int, int], ...]:
        """The calls ``serve`` refuses: the privileged ones, by number; and
        each form of chown, as (number, the owner's argument, this user),
        where it names another owner: no sandboxed process may give a file
        away (the kernel would refuse it, EINVAL for a user the sandbox does
        not map, unseen)."""
        owners = OWNER_CALLS.get(os.uname().machine, {}).values()
        return (*privileged_calls(),
                *((number, argument, os.getuid()) for number, argument in owners))

    @staticmethod
    @functools.cache  # the same for every run
    def operands() -> tuple[tuple[int, int, int, int, int], ...]:
        """What ``serve`` needs to know of each write call and each exec
        call of this machine, sorted by number (the seccomp program decides
        which of them are notified)."""
        machine = os.uname().machine
        return tuple(sorted(
            ((number, *operand)
             for name, number in {**WRITE_CALLS.get(machine, {}),
                                  **EXEC_CALLS.get(machine, {})}.items()
             for operand in _OPERANDS[name]),
            key=lambda operand: operand[0]))

    def record(self, number: int, error: int, path: str) -> None:
        """Records the refusal ``serve`` saw: the write call ``number``
        given ``error`` for ``path``, unless the sandbox did not cause it.
        ENOENT: ``path`` is a device the host has and the sandbox's /dev lacks."""
        if error in (errno.ENXIO, errno.EEXIST) and path not in self._placeholders:
            return  # a socket of the command's own, not a placeholder
        call = _NAMES.get(number, f"system call {number}")
        if error == errno.ENOENT:
            self._missing_device(path, call)
        else:
            self._refusal(path, error, call)

    def _missing_device(self, path: str, call: str) -> None:
        if not self._first(path, self.denials):
            return
        self.denials.append(Denial(DenialKind.PRIVILEGE, path, missing_device_remedy(path),
                                   f"{call}({path}): not in the sandbox's /dev"))

    def record_read(self, path: str) -> None:
        """Records a read of ``path`` that a deny-read cover refused (see
        :mod:`.covers`)."""
        self._refusal(path, errno.EACCES, "open")

    def _first(self, key: object, into: list[Denial]) -> bool:
        """Whether ``key`` (a path, or what else names a refusal) is seen for
        the first time with room left in ``into``; it is seen from now on."""
        if key in self._seen or len(into) >= _MAX_DENIALS or len(self._seen) >= _MAX_SEEN:
            return False
        self._seen.add(key)
        return True

    def _refusal(self, path: str, error: int, call: str) -> None:
        if not self._first(path, self.denials):
            return
        from .._denial import explain_refusal, policy_paths  # only once something is refused

        if self._paths is None:
            self._paths = policy_paths(self._policy, self._cwd)
        denial = explain_refusal(self._paths, self._policy, path, error,
                                 f"{call}() refused: {os.strerror(error)}")
        if denial is not None:
            self.denials.append(denial)

    def record_program(self, path: str) -> None:
        """Records that the program at ``path``, which would gain a privilege
        when run (set-user-ID, set-group-ID, file capabilities), ran without
        it: a denial only if the run then failed (see :attr:`if_failed`)."""
        if not self._first(("execve", path), self.if_failed):
            return
        self.if_failed.append(Denial(
            DenialKind.PRIVILEGE, path,
            f"{os.path.basename(path)} needs the privilege it is installed with (set-user-ID, "
            "set-group-ID or capabilities), which no sandbox grants; only full access runs it "
            "with it", f"execve({path}): ran without its privilege (no new privileges)"))

    def record_signal(self, pid: int, name: str, error: int) -> None:
        """Records a ``kill`` of ``pid``, a process outside the sandbox named
        ``name`` (empty if unknown), or of the process group ``-pid`` (its
        leader's name) if negative, which the sandbox refused with
        ``error``: ESRCH where its PID namespace has no such process, EPERM
        from Landlock's signal scoping.  A denial only if the run then failed
        (see :attr:`if_failed`): a command that asks whether a pid (in a
        lock or pid file) is alive may do well with the answer."""
        if not self._first(("kill", pid), self.if_failed):
            return
        target, what = (f"pid {pid}", "a process") if pid > 0 else (
            f"process group {-pid}", "a process group")
        shown = f"{target} ({name})" if name else target
        self.if_failed.append(Denial(
            DenialKind.PRIVILEGE, target,
            f"{shown} is {what} outside the sandbox, which a sandboxed command cannot "
            "signal; only full access can",
            f"kill({pid}) refused: {os.strerror(error)} in the sandbox"))

    def record_port(self, port: int) -> None:
        """Records a bind to ``port``, below 1024, which the run's own network
        namespace refuses (EACCES) a process without CAP_NET_BIND_SERVICE,
        as every sandboxed one is.  A denial only if the run then failed
        (see :attr:`if_failed`), and if the host would have let this user
        bind it: as root, or below its ``ip_unprivileged_port_start`` (0 in
        many containers)."""
        if os.geteuid() != 0 and port < _unprivileged_port_start():
            return
        if not self._first(("port", port), self.if_failed):
            return
        self.if_failed.append(Denial(
            DenialKind.PRIVILEGE, f"port {port}",
            "a port below 1024 takes a privilege no sandboxed command holds: use one of "
            "1024 and above, or full access",
            f"bind(port {port}) refused: {os.strerror(errno.EACCES)} in the sandbox"))

    def record_privileged(self, number: int, first: int, second: int) -> None:
        """Records the privileged call ``number`` ``serve`` refused, or the
        socket call: then ``first`` and ``second`` are its family and type."""
        name = privileged_calls().get(number) or _NAMES.get(number, f"system call {number}")
        evidence = f"{name}() refused: {os.strerror(errno.EPERM)}"
        if name in ("socket", "socketpair"):
            denial = _socket_denial(first, second, evidence)
        else:
            from .._denial import privilege_remedy

            denial = Denial(DenialKind.PRIVILEGE, name, privilege_remedy(name), evidence)
        if self._first((denial.kind, denial.target), self.denials):
            self.denials.append(denial)


def _unprivileged_port_start() -> int:
    """The lowest port the host lets a user bind (1024 unless set lower,
    as in many containers; 1024 if it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def _socket_denial(family: int, kind: int, evidence: str) -> Denial:
    """A socket of ``family`` and ``kind`` (its type, with flags) refused:
    one the run's network namespace does not contain, a Unix datagram one
    (it reaches any path), or (under Landlock) anything but TCP."""
    import socket  # only once something is refused

    try:
        family_name = socket.AddressFamily(family).name
    except ValueError:
        family_name = f"family {family}"
    try:
        kind_name = socket.SocketKind(kind & 0xF).name
    except ValueError:
        kind_name = f"type {kind & 0xF}"
    from .._denial import NEEDS_NETWORK

    remedy = NEEDS_NETWORK
    # A Unix SOCK_RAW is a datagram socket to the kernel, and takes no privilege.
    if family == socket.AF_PACKET or (kind & 0xF == socket.SOCK_RAW and family != socket.AF_UNIX):
        remedy = ("raw and packet sockets take a privilege no sandboxed command holds: only "
                  "full access has it")
    return Denial(DenialKind.NETWORK, f"{family_name} {kind_name}", remedy, evidence)


_NAMES = {number: name for name, number in WRITE_CALLS.get(os.uname().machine, {}).items()}
_NAMES[SOCKET_CALLS.get(os.uname().machine, {}).get("bind", -1)] = "bind"  # a socket file

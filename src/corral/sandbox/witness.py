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
without.  A ``kill`` of a pid outside the run is reported too (and a
``sigqueue``; a ``pidfd_open`` under bwrap; a ``pidfd_send_signal`` under
Landlock, which lets the ``pidfd_open`` through), on the same terms (a
command may ask whether a pid is alive and do well with the answer): under
bwrap the sandbox's PID namespace has no such process
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

No sandboxed process holds a capability, even when corral runs as root.
What the kernel refuses a process without one (another user's id, a file
given away, a raw socket, a port below 1024, a device node, a lower nice
value, a higher hard limit) is reported only where corral's caller holds
that capability, as root does: a user's command is refused the same
outside the sandbox, which then made no difference.  Of these, a device
node, a nice value, a hard limit and a port count only if the run then
failed: many programs try them and do without (``nice -n -5``, a raised
``ulimit``).
"""

from __future__ import annotations

import errno
import functools
import os

from .._denial import missing_device_remedy
from .._policy import SandboxPolicy
from .._result import Denial, DenialKind
from .seccomp import (EXEC_CALLS, IPC_CALLS, LIMIT_CALLS, OWNER_CALLS, SOCKET_CALLS,
                      WRITE_CALLS, privileged_calls)

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
_MKNOD = 7    # creates the path, with the mode (its flags argument) and device (the next)
_NO_FLAGS, _CREAT_FLAGS, _OPEN_HOW_FLAGS = -1, -2, -3
_OPERANDS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "open": ((-1, 0, _OPEN, 1),),
    "openat": ((0, 1, _OPEN, 2),),
    "openat2": ((0, 1, _OPEN, _OPEN_HOW_FLAGS),),
    "creat": ((-1, 0, _OPEN, _CREAT_FLAGS),),
    "truncate": ((-1, 0, _CHANGE, _NO_FLAGS),),
    "mkdir": ((-1, 0, _CREATE, _NO_FLAGS),),
    "mkdirat": ((0, 1, _CREATE, _NO_FLAGS),),
    "mknod": ((-1, 0, _MKNOD, 1),),
    "mknodat": ((0, 1, _MKNOD, 2),),
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
    the sandbox keeps from being created.  ``private_network``: the run has
    a network namespace of its own (bwrap without network), else it binds
    ports in corral's.  ``policy`` and ``cwd`` are the run's, for the
    remedies.
    """

    def __init__(self, policy: SandboxPolicy, cwd: str, writable: tuple[str, ...] | None,
                 placeholders: tuple[str, ...] = (), private_network: bool = False) -> None:
        self._policy, self._cwd = policy, cwd
        self._private_network = private_network
        self.writable = None if writable is None else tuple(
            os.fsencode(os.path.realpath(path)) for path in writable)
        self._placeholders = frozenset(placeholders)
        self._paths: Any = None  # what the policy allows, worked out at the first refusal
        self._seen: set[object] = set()
        self.denials: list[Denial] = []
        #: Denials that count only if the run failed: a privileged program
        #: may do without its privilege, and a pid found dead is an answer.
        self.if_failed: list[Denial] = []
        #: The kinds of the refusals seen that were no denial: calls the
        #: kernel refuses the caller outside the sandbox too, for want of a
        #: capability.  The command's complaint of one is no denial either.
        self.excused: set[DenialKind] = set()

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
            # Where Landlock's rules refuse writes, the sandbox shows the
            # host's /tmp and /dev/shm.
            self._paths = policy_paths(self._policy, self._cwd,
                                       shared_tmp=self.writable is not None)
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

    def record_signal(self, pid: int, name: str, error: int, call: str = "kill") -> None:
        """Records a ``kill`` (or ``call``: ``rt_sigqueueinfo``, or
        ``pidfd_open``, which takes a descriptor to watch or signal it) of
        ``pid``, a process outside the sandbox named ``name`` (empty if
        unknown), or of the process group ``-pid`` (its leader's name) if
        negative, which the sandbox refused with ``error``: ESRCH where its
        PID namespace has no such process, EPERM from Landlock's signal
        scoping.  A denial only if the run then failed (see
        :attr:`if_failed`): a command that asks whether a pid (in a lock or
        pid file) is alive may do well with the answer."""
        if not self._first(("kill", pid), self.if_failed):
            return
        target, what = (f"pid {pid}", "a process") if pid > 0 else (
            f"process group {-pid}", "a process group")
        shown = f"{target} ({name})" if name else target
        verb = "watch or signal" if call == "pidfd_open" else "signal"
        self.if_failed.append(Denial(
            DenialKind.PRIVILEGE, target,
            f"{shown} is {what} outside the sandbox, which a sandboxed command cannot "
            f"{verb}; only full access can",
            f"{call}({pid}) refused: {os.strerror(error)} in the sandbox"))

    def record_other(self, call: str, target: int, kind: int) -> None:
        """Records ``call`` (``prlimit64``, ``setpriority``,
        ``sched_setaffinity``, ...) refused for changing a process outside
        the run: ``target`` is a pid (``kind`` 0), a process group (1) or a
        user, whose every process it would change (2).  Without a PID
        namespace of the run's own (Landlock), these reach the host's
        processes; the gate lets through only those of the run's session."""
        shown = (f"pid {target}", f"process group {target}", "every process of the user")[
            min(kind, 2)]
        if not self._first(("other", shown), self.denials):  # one per process: the first call
            return
        self.denials.append(Denial(
            DenialKind.PRIVILEGE, shown,
            f"{shown} is outside the sandbox, whose limits and scheduling a sandboxed command "
            "cannot change (only its own processes'); only full access can",
            f"{call}({target}) refused: {os.strerror(errno.EPERM)} in the sandbox"))

    def record_ipc_key(self, kind: int, key: int) -> None:
        """Records a System V IPC object (``kind`` 0 a shared memory
        segment, 1 a semaphore set, 2 a message queue) the run could not
        make with ``key``, which an object of the host's holds: without an
        IPC namespace of the run's own (Landlock) the two would be one.  The
        gate answered EACCES, as for another user's object; a denial only if
        the run then failed (see :attr:`if_failed`): programs that pick a
        key, as PostgreSQL does, try the next one."""
        kind = min(kind, 2)
        if not self._first(("ipc", kind, key), self.if_failed):
            return
        shown = f"{key & 0xFFFFFFFF:#010x}"
        self.if_failed.append(Denial(
            DenialKind.PRIVILEGE, f"System V IPC key {shown}",
            f"the key {shown} is the host's (a "
            f"{('shared memory segment', 'semaphore set', 'message queue')[kind]}), which the "
            "run cannot have too without an IPC namespace of its own (Landlock): use another "
            "key or IPC_PRIVATE, run where bubblewrap works, or with full access",
            f"{('shmget', 'semget', 'msgget')[kind]}(key {shown}) refused: "
            f"{os.strerror(errno.EACCES)} in the sandbox"))

    def record_port(self, port: int) -> None:
        """Records a bind to ``port``, below 1024, which the kernel refuses
        (EACCES) a process without CAP_NET_BIND_SERVICE, as every sandboxed
        one is, below the ``ip_unprivileged_port_start`` of the network
        namespace it binds in: 1024 in the run's own, the host's setting in
        corral's (0 in many containers).  A denial only if it was refused,
        if the run then failed (see :attr:`if_failed`), and if the host
        would have let this user bind it: with CAP_NET_BIND_SERVICE (as
        root), or above its own setting."""
        host = unprivileged_port_start()
        if port >= (1024 if self._private_network else host):
            return  # bound
        if not _caller_may(_CAP_NET_BIND_SERVICE, initial_only=False) and port < host:
            self.excused.add(DenialKind.PRIVILEGE)
            return
        if not self._first(("port", port), self.if_failed):
            return
        self.if_failed.append(Denial(
            DenialKind.PRIVILEGE, f"port {port}",
            "a port below 1024 takes a privilege no sandboxed command holds: use one of "
            "1024 and above, or full access",
            f"bind(port {port}) refused: {os.strerror(errno.EACCES)} in the sandbox"))

    def record_device(self, path: str) -> None:
        """Records a device node made at ``path``, which the kernel refuses
        every process without CAP_MKNOD (see :meth:`_without`)."""
        self._without(_CAP_MKNOD, ("mknod", path), path,
                      "making a device node takes a privilege no sandboxed command holds "
                      "(CAP_MKNOD): only full access has it",
                      f"mknod({path}) refused: {os.strerror(errno.EPERM)} in the sandbox")

    def record_limit(self, number: int, value: int, limit: int) -> None:
        """Records a ``setpriority`` to nice value ``value``, or a
        ``setrlimit`` or ``prlimit64`` of resource ``value`` to hard limit
        ``limit``, beyond what the kernel lets a process without
        CAP_SYS_NICE or CAP_SYS_RESOURCE (see :meth:`_without`)."""
        if _LIMIT_NAMES.get(number) == "setpriority":
            self._without(_CAP_SYS_NICE, ("nice", value), f"nice {value}",
                          f"a nice value of {value} takes a privilege no sandboxed command holds "
                          "(CAP_SYS_NICE): leave the priority as it is, or use full access",
                          f"setpriority({value}) refused: {os.strerror(errno.EACCES)} in the "
                          "sandbox")
            return
        resource = _RESOURCES.get(value, f"resource {value}")
        if resource == "RLIMIT_NOFILE" and limit > _open_files_ceiling():
            self.excused.add(DenialKind.PRIVILEGE)  # beyond fs.nr_open, root is refused too
            return
        shown = "unlimited" if limit >= 2**64 - 1 else str(limit)
        self._without(_CAP_SYS_RESOURCE, ("limit", value), f"{resource} hard limit",
                      f"raising a hard limit ({resource} to {shown}) takes a privilege no "
                      "sandboxed command holds (CAP_SYS_RESOURCE): raise it before corral runs, "
                      "or use full access",
                      f"{_LIMIT_NAMES.get(number, 'setrlimit')}({resource}) refused: "
                      f"{os.strerror(errno.EPERM)} in the sandbox")

    def _without(self, capability: int, key: object, target: str, remedy: str,
                 evidence: str) -> None:
        """Records a call the kernel refused for want of ``capability``, one
        it looks for in the initial user namespace only: a denial only if the
        run then failed (see :attr:`if_failed`; many programs try and do
        without), and only where corral's caller holds it, else excused (see
        :attr:`excused`)."""
        if not _caller_may(capability, initial_only=True):
            self.excused.add(DenialKind.PRIVILEGE)
        elif self._first(key, self.if_failed):
            self.if_failed.append(Denial(DenialKind.PRIVILEGE, target, remedy, evidence))

    def record_privileged(self, number: int, first: int, second: int) -> None:
        """Records the privileged call ``number`` ``serve`` refused, or the
        socket call: then ``first`` and ``second`` are its family and type.
        Nothing where corral's caller lacks the capability the call needs
        (see :data:`_NEEDS`): then it is refused outside the sandbox too."""
        name = privileged_calls().get(number) or _NAMES.get(number, f"system call {number}")
        evidence = f"{name}() refused: {os.strerror(errno.EPERM)}"
        if name in ("socket", "socketpair"):
            denial = _socket_denial(first, second, evidence)
            if denial is None:
                self.excused.add(DenialKind.NETWORK)
                return
        else:
            needed = _NEEDS.get(name)
            if needed is not None and not _caller_may(*needed):
                self.excused.add(DenialKind.PRIVILEGE)
                return
            from .._denial import privilege_remedy

            remedy = _IPC_REMEDY if name in IPC_CALLS else privilege_remedy(name)
            denial = Denial(DenialKind.PRIVILEGE, name, remedy, evidence)
        if self._first((denial.kind, denial.target), self.denials):
            self.denials.append(denial)


# Capabilities (their bits in /proc/self/status's CapEff) that the calls a
# sandboxed process is refused need outside the sandbox.
_CAP_CHOWN, _CAP_SETGID, _CAP_SETUID, _CAP_NET_BIND_SERVICE, _CAP_NET_RAW = 0, 6, 7, 10, 13
_CAP_SYS_MODULE, _CAP_SYS_RAWIO, _CAP_SYS_PACCT, _CAP_SYS_ADMIN, _CAP_SYS_BOOT = 16, 17, 20, 21, 22
_CAP_SYS_NICE, _CAP_SYS_RESOURCE, _CAP_SYS_TIME, _CAP_MKNOD = 23, 24, 25, 27
#: The privileged calls that only a capability lets through outside the
#: sandbox, and which: (capability, checked in the initial user namespace
#: whatever the caller's).  The others (mount, unshare, chroot, ptrace, ...)
#: a user may make outside it, in namespaces of its own or on its own
#: processes, so the sandbox's refusal is always one.
_NEEDS: dict[str, tuple[int, bool]] = {
    **dict.fromkeys(("setuid", "setreuid", "setresuid"), (_CAP_SETUID, False)),
    **dict.fromkeys(("setgid", "setregid", "setresgid", "setgroups"), (_CAP_SETGID, False)),
    **dict.fromkeys(("chown", "lchown", "fchown", "fchownat"), (_CAP_CHOWN, False)),
    **dict.fromkeys(("sethostname", "setdomainname"), (_CAP_SYS_ADMIN, False)),
    **dict.fromkeys(("swapon", "swapoff"), (_CAP_SYS_ADMIN, True)),
    # reboot asks for it in the user namespace of the caller's PID
    # namespace (a container's root may end its container); kexec, initially.
    "reboot": (_CAP_SYS_BOOT, False),
    **dict.fromkeys(("kexec_load", "kexec_file_load"), (_CAP_SYS_BOOT, True)),
    **dict.fromkeys(("init_module", "finit_module", "delete_module"), (_CAP_SYS_MODULE, True)),
    **dict.fromkeys(("settimeofday", "clock_settime"), (_CAP_SYS_TIME, True)),
    **dict.fromkeys(("ioperm", "iopl"), (_CAP_SYS_RAWIO, True)),
    "acct": (_CAP_SYS_PACCT, True),
}
_IPC_REMEDY = ("System V IPC and POSIX message queues are the host's without an IPC namespace "
               "of the run's own, which the Landlock backend gives only through corral's gate "
               "(seccomp user notification, absent here): run where bubblewrap works, or with "
               "full access")
# PROC_USER_INIT_INO: the inode of the initial user namespace, as /proc shows it.
_INITIAL_USER_NAMESPACE = 0xEFFFFFFD


@functools.cache  # corral's capabilities do not change while it runs
def _caller_capabilities() -> tuple[int, bool]:
    """corral's effective capabilities, as a bit mask, and whether it runs
    in the initial user namespace (as root would: all, and yes, where
    /proc cannot tell)."""
    try:
        with open("/proc/self/status", "rb") as status:
            effective = next(int(line.split()[1], 16) for line in status
                             if line.startswith(b"CapEff:"))
        initial = os.stat("/proc/self/ns/user").st_ino == _INITIAL_USER_NAMESPACE
    except (OSError, StopIteration, ValueError, IndexError):
        return (-1 if os.geteuid() == 0 else 0), True
    return effective, initial


def _caller_may(capability: int, initial_only: bool) -> bool:
    """Whether corral's caller holds ``capability`` where the kernel looks
    for it (with ``initial_only``, in the initial user namespace only: a
    container's root in a user namespace of its own lacks it, whatever
    CapEff says): so that a call it takes would succeed outside the
    sandbox."""
    effective, initial = _caller_capabilities()
    return bool(effective >> capability & 1) and (initial or not initial_only)


def _open_files_ceiling() -> int:
    """The highest hard limit of open files the kernel lets even root set
    (``fs.nr_open``; 1048576, its default, if it cannot be read)."""
    try:
        with open("/proc/sys/fs/nr_open", "rb") as setting:
            return int(setting.read())
    except (OSError, ValueError):
        return 1048576


def unprivileged_port_start() -> int:
    """The lowest port a process without CAP_NET_BIND_SERVICE may bind in
    corral's network namespace (``ip_unprivileged_port_start``: 1024 unless
    set lower, as in many containers; 1024 if it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def _socket_denial(family: int, kind: int, evidence: str) -> Denial | None:
    """A socket of ``family`` and ``kind`` (its type, with flags) refused:
    one the run's network namespace does not contain, a Unix datagram one
    (it reaches any path), or (under Landlock) anything but TCP; None for a
    raw or packet socket where corral's caller lacks CAP_NET_RAW (refused
    outside the sandbox too)."""
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
        if not _caller_may(_CAP_NET_RAW, initial_only=False):
            return None
        remedy = ("raw and packet sockets take a privilege no sandboxed command holds: only "
                  "full access has it")
    return Denial(DenialKind.NETWORK, f"{family_name} {kind_name}", remedy, evidence)


_NAMES = {number: name for name, number in WRITE_CALLS.get(os.uname().machine, {}).items()}
_NAMES[SOCKET_CALLS.get(os.uname().machine, {}).get("bind", -1)] = "bind"  # a socket file
_LIMIT_NAMES = {number: name for name, number in LIMIT_CALLS.get(os.uname().machine, {}).items()}
# The resources of setrlimit, by number (as <sys/resource.h> has them on Linux).
_RESOURCES = dict(enumerate((
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME")))

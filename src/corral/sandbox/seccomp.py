"""The seccomp-BPF program corral loads into sandboxed commands.

It is compiled here, in Python, so that corral needs no libseccomp.  The
program:

* kills the process on a foreign architecture (and, on x86_64, refuses the
  x32 system-call ABI), so a filter written for one ABI cannot be bypassed
  through another;
* refuses with EPERM the system calls that change the kernel or the system
  (modules, kexec, reboot, swap, clocks, accounting, quotas, the host and
  domain names), drop or add supplementary groups (setgroups), escape or
  rebuild the filesystem view (mount and the new mount API, pivot_root,
  chroot, open_by_handle_at), create or enter namespaces (unshare, setns, and
  clone with a CLONE_NEW* flag), reach other processes' memory or
  descriptors (ptrace, process_vm_*, pidfd_getfd), and widen the attack
  surface (io_uring, which performs system calls the filter never sees;
  bpf, perf_event_open, userfaultfd, keyrings);
* answers clone3 with ENOSYS: its flags live in memory a filter cannot read,
  and C libraries fall back to clone, whose flags it can; with
  ``no_openat2``, openat2 too, for a backend that must see each open's
  flags as the kernel will (Landlock below ABI 3, where a read-only open
  that truncates is refused by them), and programs fall back to openat;
* with ``deny_network``, refuses every socket family but AF_UNIX (for
  backends without a network namespace);
* with ``deny_unix_sockets``, refuses AF_UNIX sockets, whose paths reach the
  host's services (docker.sock, ssh-agent, D-Bus) through any readable
  directory; ``socketpair`` stays allowed, but only for stream and seqpacket
  sockets: a datagram socket of a pair still sends to any path given to
  ``sendto``.  Both options together refuse every socket (no network
  namespace to contain any of them);
* with ``namespaced_families``, refuses every socket family but those a
  network namespace contains (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK): for
  a backend whose private network namespace is what keeps the network out,
  since some families reach past it (AF_VSOCK reaches the hypervisor);
* with ``deny_unix_datagrams``, refuses AF_UNIX datagram sockets only (from
  ``socket`` and ``socketpair``), and so every type but SOCK_STREAM and
  SOCK_SEQPACKET (the kernel makes a datagram socket of SOCK_RAW): the
  stream and seqpacket ones that remain reach a path only through
  ``connect``, which ``notify`` hands to corral;
* with ``loopback_tcp`` (and ``deny_network``), lets TCP sockets of AF_INET
  and AF_INET6 be created, for a backend whose gate lets them bind and reach
  only loopback, and refuses TCP Fast Open (``sendto``/``sendmsg`` with
  MSG_FASTOPEN), which connects without ``connect``;
* with ``witness_writes``, turns every system call that writes to a path
  (:data:`WRITE_CALLS`: creating, opening for writing, truncating, removing,
  renaming, linking, changing modes, owners, times or extended attributes)
  into a user notification, so that corral learns the path of each write the
  sandbox refuses (see :mod:`corral.sandbox.witness`).  ``open`` and
  ``openat`` notify only with a flag that writes (O_WRONLY, O_RDWR, O_CREAT,
  O_TRUNC); ``openat2``, whose flags a filter cannot read, always; without
  ``witness_attributes``, the calls that change only attributes
  (:data:`ATTRIBUTE_CALLS`) are left out;
* with ``witness_execs``, turns ``execve`` and ``execveat`` into user
  notifications, so that corral learns which set-user-ID, set-group-ID or
  file-capability programs ran without the privilege they would have had;
* with ``witness_signals``, turns ``kill`` of a process or a process group
  (all but 0 and -1, which reach only the run's own), ``rt_sigqueueinfo``
  (``sigqueue``), ``tgkill``, ``rt_tgsigqueueinfo``, ``tkill`` and
  ``pidfd_open`` of a process, and ``pidfd_send_signal``, into user
  notifications, so that corral learns of a signal sent, or a process
  looked for, outside the run, which the sandbox keeps the command from
  (Go's runtime signals its own threads with ``tgkill``: some 300 a second
  from a program whose goroutines all compute, about 10 µs each looked at);
* with ``guard_signals``, for a backend whose Landlock ABI cannot scope
  signals (below 6) and that has no PID namespace, turns each call that
  sends a signal to a process named by its pid, its thread, its group or
  a descriptor (:data:`SIGNAL_GUARD_CALLS`: ``kill``, but of the caller's
  own group, ``tkill``, ``tgkill``, ``rt_sigqueueinfo``,
  ``rt_tgsigqueueinfo``, ``pidfd_send_signal``), and each that names the
  process SIGIO and SIGURG are sent to (``fcntl`` F_SETOWN and
  F_SETOWN_EX, ``ioctl`` FIOSETOWN and SIOCSPGRP), into user
  notifications, for corral to refuse where it would reach a process
  outside the run (see ``guard_signal`` in ``_cgate.c``);
* with ``witness_limits``, turns ``setpriority``, ``setrlimit`` and
  ``prlimit64`` (one that sets a limit, not one that only reads it) into
  user notifications, so that corral learns of a nice value lowered or a
  hard limit raised beyond what the kernel lets a process without
  capabilities (as every sandboxed one is): what a root caller's command
  may do outside the sandbox, and not in it;
* with ``deny_ipc``, for a backend without an IPC namespace of the run's
  own (Landlock), refuses System V IPC (shared memory, semaphores, message
  queues) and POSIX message queues (:data:`IPC_CALLS`): the host's objects
  would be in reach, to read, change or remove, and what the run made would
  outlive it;
* with ``guard_ipc``, turns the System V calls and the POSIX message
  queue calls that name an object (:data:`GUARDED_IPC_CALLS`) into user
  notifications instead, for corral to give the run objects of its own
  only, and remove them once it ends (see ``look_at_sysv`` in
  ``_cgate.c``); ``deny_ipc`` then refuses nothing (a queue's descriptor,
  which only corral gives out, is the run's own);
* with ``guard_processes``, for a backend without a PID namespace of the
  run's own (Landlock), turns each call that changes a process named by its
  pid, group or user into a user notification (``setpriority``, a
  ``prlimit64`` that sets a limit, ``ioprio_set``, ``sched_setaffinity``,
  ``sched_setscheduler``, ``sched_setparam``, ``sched_setattr``), for corral
  to refuse where it would reach a process outside the run: Landlock scopes
  signals and tracing, not these.  One on the caller itself (pid or who
  0) or its own process group goes through.  So does ``setsid``
  (:data:`SESSION_CALLS`), notified for corral to learn the run's sessions;
* with ``witness_binds``, turns ``bind`` into a user notification, for
  corral to let through and report a Unix socket file the sandbox refuses
  to create (for a backend whose gate does not decide binds);
* with ``witness_privileges``, turns the refused privileged calls (the
  EPERM list above, clone with a CLONE_NEW* flag) and the refused
  ``socket`` and ``socketpair`` calls into user notifications,
  for corral to answer EPERM and report; should the listener be gone, the
  kernel answers ENOSYS: refused either way.  So are calls the kernel
  would refuse a process without capabilities anyway, where the witness
  then sees them: a raw or packet socket (CAP_NET_RAW) and, given
  ``identity`` (the run's user and group ids), a ``set*uid`` or
  ``set*gid`` call that names any other id.

``notify`` names system calls (``connect``, ``bind``, ``listen``,
``sendto`` when it names a destination, ``sendmsg`` and ``sendmmsg``, whose
destinations a filter cannot read) turned into seccomp user notifications,
for corral to decide (see :mod:`corral.sandbox.socket_gate`).

:func:`build_program` returns the ``struct sock_filter`` array as bytes, ready
for ``seccomp(SECCOMP_SET_MODE_FILTER)`` or bwrap's ``--seccomp FD``.
"""

from __future__ import annotations

import errno
import functools
import os
import struct

__all__ = ["ATTRIBUTE_CALLS", "DENIED_SYSCALLS", "EXEC_CALLS", "GUARDED_IPC_CALLS",
           "IDENTITY_CALLS", "IPC_CALLS",
           "LIMIT_CALLS", "OWNER_CALLS", "SCHEDULING_CALLS", "SIGNAL_CALLS",
           "SESSION_CALLS", "SIGNAL_GUARD_CALLS", "SOCKET_CALLS",
           "SUPPORTED_ARCHES", "SYSV_IPC_CALLS", "WRITE_CALLS", "build_program",
           "privileged_calls"]

# name: (x86_64 number, aarch64 number); None where the call does not exist.
_NUMBERS: dict[str, tuple[int | None, int | None]] = {
    "acct": (163, 89), "add_key": (248, 217), "adjtimex": (159, 171), "bpf": (321, 280),
    "chroot": (161, 51), "clock_adjtime": (305, 266), "clock_settime": (227, 112),
    "delete_module": (176, 106), "finit_module": (313, 273), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fsopen": (430, 430), "fspick": (433, 433),
    "init_module": (175, 105), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "io_uring_setup": (425, 425), "ioperm": (173, None), "iopl": (172, None),
    "kexec_file_load": (320, 294), "kexec_load": (246, 104), "keyctl": (250, 219),
    "lookup_dcookie": (212, 18), "mount": (165, 40), "mount_setattr": (442, 442),
    "move_mount": (429, 429), "name_to_handle_at": (303, 264), "open_by_handle_at": (304, 265),
    "open_tree": (428, 428), "perf_event_open": (298, 241), "pidfd_getfd": (438, 438),
    "pivot_root": (155, 41),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "ptrace": (101, 117),
    "quotactl": (179, 60), "reboot": (169, 142), "request_key": (249, 218),
    "setdomainname": (171, 162), "setgroups": (116, 159), "sethostname": (170, 161),
    "setns": (308, 268), "settimeofday": (164, 170), "swapoff": (168, 225), "swapon": (167, 224),
    "syslog": (103, 116), "umount2": (166, 39), "unshare": (272, 97),
    "userfaultfd": (323, 282),
}
#: The System V IPC and POSIX message queue calls ``deny_ipc`` refuses
#: (shmdt, which only detaches, is not one), as _NUMBERS has them.
_IPC_NUMBERS: dict[str, tuple[int, int]] = {
    "shmget": (29, 194), "shmat": (30, 196), "shmctl": (31, 195), "semget": (64, 190),
    "semop": (65, 193), "semctl": (66, 191), "semtimedop": (220, 192), "msgget": (68, 186),
    "msgsnd": (69, 189), "msgrcv": (70, 188), "msgctl": (71, 187), "mq_open": (240, 180),
    "mq_unlink": (241, 181), "mq_timedsend": (242, 182), "mq_timedreceive": (243, 183),
    "mq_notify": (244, 184), "mq_getsetattr": (245, 185),
}
IPC_CALLS = tuple(sorted(_IPC_NUMBERS))
#: The System V ones of :data:`IPC_CALLS`.
SYSV_IPC_CALLS = tuple(name for name in IPC_CALLS if not name.startswith("mq_"))
#: The calls of :data:`IPC_CALLS` that name an object, which ``guard_ipc``
#: notifies (the other POSIX message queue calls take a descriptor).
GUARDED_IPC_CALLS = (*SYSV_IPC_CALLS, "mq_open", "mq_unlink")
_REFUSABLE = {**_NUMBERS, **_IPC_NUMBERS}  # every call the program may refuse, by name
_CLONE = {"x86_64": 56, "aarch64": 220}
#: The calls that set a process's user or group ids, and how many ids each
#: takes, by architecture.
IDENTITY_CALLS = {
    "x86_64": {"setuid": (105, 1), "setreuid": (113, 2), "setresuid": (117, 3),
               "setgid": (106, 1), "setregid": (114, 2), "setresgid": (119, 3)},
    "aarch64": {"setuid": (146, 1), "setreuid": (145, 2), "setresuid": (147, 3),
                "setgid": (144, 1), "setregid": (143, 2), "setresgid": (149, 3)},
}
#: The socket calls the gate can be notified of, by architecture.
SOCKET_CALLS = {"x86_64": {"connect": 42, "bind": 49, "listen": 50, "sendto": 44,
                           "sendmsg": 46, "sendmmsg": 307},
                "aarch64": {"connect": 203, "bind": 200, "listen": 201, "sendto": 206,
                            "sendmsg": 211, "sendmmsg": 269}}
#: The system calls that write to a path, by architecture (aarch64 has only
#: the ``*at`` forms).
WRITE_CALLS = {
    "x86_64": {
        "open": 2, "openat": 257, "openat2": 437, "creat": 85, "truncate": 76,
        "mkdir": 83, "mkdirat": 258, "mknod": 133, "mknodat": 259, "rmdir": 84,
        "unlink": 87, "unlinkat": 263, "rename": 82, "renameat": 264, "renameat2": 316,
        "link": 86, "linkat": 265, "symlink": 88, "symlinkat": 266,
        "chmod": 90, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "lchown": 94,
        "fchownat": 260, "utime": 132, "utimes": 235, "futimesat": 261, "utimensat": 280,
        "setxattr": 188, "lsetxattr": 189, "removexattr": 197, "lremovexattr": 198,
        "fchmod": 91, "fchown": 93, "fsetxattr": 190, "fremovexattr": 199,
    },
    "aarch64": {
        "openat": 56, "openat2": 437, "truncate": 45, "mkdirat": 34, "mknodat": 33,
        "unlinkat": 35, "renameat": 38, "renameat2": 276, "linkat": 37, "symlinkat": 36,
        "fchmodat": 53, "fchmodat2": 452, "fchownat": 54, "utimensat": 88,
        "setxattr": 5, "lsetxattr": 6, "removexattr": 14, "lremovexattr": 15,
        "fchmod": 52, "fchown": 55, "fsetxattr": 7, "fremovexattr": 16,
    },
}
#: The calls that give a file to an owner, by architecture: the argument
#: that names the owner (a user id).
OWNER_CALLS = {
    "x86_64": {"chown": (92, 1), "lchown": (94, 1), "fchown": (93, 1), "fchownat": (260, 2)},
    "aarch64": {"fchown": (55, 1), "fchownat": (54, 2)},
}
#: The system calls that run a program, by architecture.
EXEC_CALLS = {"x86_64": {"execve": 59, "execveat": 322},
              "aarch64": {"execve": 221, "execveat": 281}}
#: The system calls that name a process by its pid, to signal it (kill: a
#: process group too) or take a descriptor of it, and the one that signals
#: it by that descriptor, by architecture.
SIGNAL_CALLS = {"x86_64": {"kill": 62, "rt_sigqueueinfo": 129, "pidfd_open": 434,
                           "pidfd_send_signal": 424, "tkill": 200, "tgkill": 234,
                           "rt_tgsigqueueinfo": 297},
                "aarch64": {"kill": 129, "rt_sigqueueinfo": 138, "pidfd_open": 434,
                            "pidfd_send_signal": 424, "tkill": 130, "tgkill": 131,
                            "rt_tgsigqueueinfo": 240}}
#: The system calls ``guard_signals`` notifies, by architecture: those that
#: send a signal to a process named by its pid, thread, group or descriptor,
#: and fcntl and ioctl, whose commands F_SETOWN, F_SETOWN_EX, FIOSETOWN and
#: SIOCSPGRP name the process SIGIO and SIGURG are sent to.
SIGNAL_GUARD_CALLS = {
    "x86_64": {"kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
               "rt_tgsigqueueinfo": 297, "pidfd_send_signal": 424, "fcntl": 72, "ioctl": 16},
    "aarch64": {"kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138,
                "rt_tgsigqueueinfo": 240, "pidfd_send_signal": 424, "fcntl": 25, "ioctl": 29},
}
_OWNER_COMMANDS = {"fcntl": (8, 15), "ioctl": (0x8901, 0x8902)}  # F_SETOWN(_EX); FIO/SIOC
#: The system call that starts a session, by architecture.
SESSION_CALLS = {"x86_64": {"setsid": 112}, "aarch64": {"setsid": 157}}
#: The system calls that set a process's nice value or its resource limits,
#: by architecture.
LIMIT_CALLS = {"x86_64": {"setpriority": 141, "setrlimit": 160, "prlimit64": 302},
               "aarch64": {"setpriority": 140, "setrlimit": 164, "prlimit64": 261}}
#: The system calls that set a process's scheduling, named by its pid (the
#: first argument; ioprio_set's is which kind of target, as setpriority's),
#: by architecture.
SCHEDULING_CALLS = {
    "x86_64": {"sched_setparam": 142, "sched_setscheduler": 144, "sched_setaffinity": 203,
               "sched_setattr": 314, "ioprio_set": 251},
    "aarch64": {"sched_setparam": 118, "sched_setscheduler": 119, "sched_setaffinity": 122,
                "sched_setattr": 274, "ioprio_set": 30},
}
#: The write calls that change only a file's attributes (mode, owner, times,
#: extended attributes), which Landlock has no right for.
ATTRIBUTE_CALLS = frozenset({
    "chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat", "utime", "utimes",
    "futimesat", "utimensat", "setxattr", "lsetxattr", "removexattr", "lremovexattr",
    "fchmod", "fchown", "fsetxattr", "fremovexattr"})
# Where the flags of open and openat are (an offset in seccomp_data), and the
# flags that make an open write: O_WRONLY | O_RDWR | O_CREAT | O_TRUNC.
_OPEN_FLAGS = {"open": 24, "openat": 32}
_WRITING_OPEN = 0o1 | 0o2 | 0o100 | 0o1000
# Where each send call's flags argument is: (number, offset in seccomp_data).
_SENDS = {"x86_64": ((44, 40), (46, 32), (307, 40)),     # sendto, sendmsg, sendmmsg
          "aarch64": ((206, 40), (211, 32), (269, 40))}
_CLONE3 = {"x86_64": 435, "aarch64": 435}
_SOCKET = {"x86_64": 41, "aarch64": 198}
_SOCKETPAIR = {"x86_64": 53, "aarch64": 199}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_ARCH_INDEX = {"x86_64": 0, "aarch64": 1}

#: The system calls refused with EPERM (see the module docstring for why).
DENIED_SYSCALLS = tuple(sorted(_NUMBERS))
SUPPORTED_ARCHES = tuple(_AUDIT_ARCH)

_X32_SYSCALL_BIT = 0x40000000
_CLONE_NEW_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000  # NS CGROUP UTS IPC
                    | 0x10000000 | 0x20000000 | 0x40000000)            # USER PID NET
_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK, _AF_PACKET = 1, 2, 10, 16, 17
# A socket's type also carries NONBLOCK and CLOEXEC: the mask leaves the type.
_SOCK_STREAM, _SOCK_RAW, _SOCK_SEQPACKET, _SOCK_TYPE_MASK = 1, 3, 5, 0xF
_IPPROTO_TCP = 6
_IOPRIO_WHO_USER = 3
_MSG_FASTOPEN = 0x20000000
_ARG1, _ARG2, _ARG4 = 24, 32, 48
_RET_USER_NOTIF = 0x7FC00000

# Classic BPF opcodes and seccomp return values.
_LD_W_ABS = 0x20
_AND_K = 0x54
_JEQ, _JGE, _JSET = 0x15, 0x35, 0x45
_RET = 0x06
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
# Offsets in struct seccomp_data.
_NR, _ARCH, _ARG0 = 0, 4, 16


class _Assembler:
    """Classic BPF with symbolic forward jumps."""

    def __init__(self) -> None:
        self._code: list[tuple[int, object, object, int]] = []
        self._labels: dict[str, int] = {}

    def load(self, offset: int) -> None:
        self._code.append((_LD_W_ABS, 0, 0, offset))

    def jump(self, op: int, value: int, if_true: str | None, if_false: str | None) -> None:
        self._code.append((op, if_true, if_false, value))

    def mask(self, value: int) -> None:
        self._code.append((_AND_K, 0, 0, value))

    def ret(self, value: int) -> None:
        self._code.append((_RET, 0, 0, value))

    def label(self, name: str) -> None:
        self._labels[name] = len(self._code)

    def assemble(self) -> bytes:
        out = bytearray()
        for index, (op, if_true, if_false, k) in enumerate(self._code):
            jt, jf = (self._offset(index, target) for target in (if_true, if_false))
            out += struct.pack("<HBBI", op, jt, jf, k)
        return bytes(out)

    def _offset(self, index: int, target: object) -> int:
        if not isinstance(target, str):
            return 0  # fall through to the next instruction
        distance = self._labels[target] - index - 1
        if not 0 <= distance <= 255:
            raise AssertionError(f"jump to {target} out of range")
        return distance


@functools.cache
def privileged_calls(arch: str | None = None) -> dict[int, str]:
    """The privileged calls ``witness_privileges`` notifies, by number, for
    ``arch`` (default: this machine's)."""
    arch = arch or os.uname().machine
    if arch not in _ARCH_INDEX:
        return {}
    column = _ARCH_INDEX[arch]
    found = {numbers[column]: name for name, numbers in _REFUSABLE.items()
             if numbers[column] is not None}
    found.update({number: name for name, (number, _) in IDENTITY_CALLS[arch].items()})
    found[_CLONE[arch]] = "clone"
    found[_SOCKET[arch]] = "socket"  # a family or type the policy refuses
    found[_SOCKETPAIR[arch]] = "socketpair"
    return found  # type: ignore[return-value]


@functools.cache  # the same few programs, for every sandboxed run
def build_program(
    arch: str | None = None,
    *,
    deny_network: bool = False,
    deny_unix_sockets: bool = False,
    deny_unix_datagrams: bool = False,
    namespaced_families: bool = False,
    loopback_tcp: bool = False,
    notify: tuple[str, ...] = (),
    witness_writes: bool = False,
    witness_attributes: bool = True,
    witness_privileges: bool = False,
    witness_binds: bool = False,
    witness_execs: bool = False,
    witness_signals: bool = False,
    guard_signals: bool = False,
    witness_limits: bool = False,
    guard_processes: bool = False,
    deny_ipc: bool = False,
    guard_ipc: bool = False,
    identity: tuple[int, int] | None = None,
    no_openat2: bool = False,
    deny: tuple[str, ...] = DENIED_SYSCALLS,
) -> bytes:
    """The filter for ``arch`` (default: this machine's) as ``struct sock_filter`` bytes.

    Raises ValueError for an architecture corral has no system-call table for.
    """
    arch = arch or os.uname().machine
    if arch not in _AUDIT_ARCH:
        raise ValueError(
            f"no seccomp filter for {arch}: corral knows {', '.join(SUPPORTED_ARCHES)}"
        )
    column = _ARCH_INDEX[arch]
    refused_ipc = IPC_CALLS if deny_ipc and not guard_ipc else ()
    numbers = sorted({n for name in (*deny, *refused_ipc)
                      if (n := _REFUSABLE[name][column]) is not None})
    asm = _Assembler()
    asm.load(_ARCH)
    asm.jump(_JEQ, _AUDIT_ARCH[arch], None, "kill")
    asm.load(_NR)
    if arch == "x86_64":
        asm.jump(_JGE, _X32_SYSCALL_BIT, "deny", None)
    for number in numbers:
        asm.jump(_JEQ, number, "privileged", None)
    asm.jump(_JEQ, _CLONE3[arch], "nosys", None)
    if no_openat2:
        asm.jump(_JEQ, WRITE_CALLS[arch]["openat2"], "nosys", None)
    asm.jump(_JEQ, _CLONE[arch], "clone", None)
    # Only the run's own ids exist in it, and it holds no capability to take
    # another: a call that would is refused here, where the witness sees it.
    witness_identity = witness_privileges and identity is not None
    if witness_identity:
        for name, (number, count) in IDENTITY_CALLS[arch].items():
            asm.jump(_JEQ, number, f"{name[-3:]}{count}", None)
    # No sandboxed process holds CAP_NET_RAW: a raw or packet socket the
    # kernel would refuse anyway is refused here, where the witness sees it.
    raw_privileged = witness_privileges
    if deny_network and deny_unix_sockets:
        asm.jump(_JEQ, _SOCKET[arch], "privileged", None)  # every family
    elif (deny_network or deny_unix_sockets or deny_unix_datagrams or namespaced_families
          or raw_privileged):
        asm.jump(_JEQ, _SOCKET[arch], "socket", None)
    datagram_pairs = deny_unix_sockets or deny_unix_datagrams
    if datagram_pairs:
        asm.jump(_JEQ, _SOCKETPAIR[arch], "pair", None)
    for call in notify:
        asm.jump(_JEQ, SOCKET_CALLS[arch][call], "addressed" if call == "sendto" else "notify",
                 None)
    writes = {name: number for name, number in WRITE_CALLS[arch].items()
              if witness_writes and (witness_attributes or name not in ATTRIBUTE_CALLS)}
    for call, number in writes.items():
        asm.jump(_JEQ, number, f"flags{_OPEN_FLAGS[call]}" if call in _OPEN_FLAGS else "notify",
                 None)
    if witness_execs:
        for number in EXEC_CALLS[arch].values():
            asm.jump(_JEQ, number, "notify", None)
    if guard_signals:  # before the witness's: the first jump taken decides
        for name, number in SIGNAL_GUARD_CALLS[arch].items():
            label = "own_group" if name == "kill" else name
            asm.jump(_JEQ, number, label if name in ("kill", *_OWNER_COMMANDS) else "notify",
                     None)
    if witness_signals:
        for name, number in SIGNAL_CALLS[arch].items():
            asm.jump(_JEQ, number, "notify" if name == "pidfd_send_signal" else "signal", None)
    if guard_ipc:
        for name in GUARDED_IPC_CALLS:
            asm.jump(_JEQ, _IPC_NUMBERS[name][column], "notify", None)
    if witness_limits or guard_processes:
        asm.jump(_JEQ, LIMIT_CALLS[arch]["setpriority"], "notify", None)
        asm.jump(_JEQ, LIMIT_CALLS[arch]["prlimit64"], "limit", None)
    if witness_limits:
        asm.jump(_JEQ, LIMIT_CALLS[arch]["setrlimit"], "notify", None)
    if guard_processes:
        for name, number in SCHEDULING_CALLS[arch].items():
            asm.jump(_JEQ, number, "ioprio" if name == "ioprio_set" else "own", None)
        asm.jump(_JEQ, SESSION_CALLS[arch]["setsid"], "notify", None)
    tcp = deny_network and loopback_tcp and not deny_unix_sockets
    if tcp:
        for number, offset in _SENDS[arch]:
            asm.jump(_JEQ, number, f"send{offset}", None)
    if witness_binds:
        if "bind" in notify:
            raise ValueError("bind is watched only where the gate does not decide it")
        asm.jump(_JEQ, SOCKET_CALLS[arch]["bind"], "notify", None)
    asm.ret(_RET_ALLOW)
    # Classic BPF only jumps forward: the argument checks come after, and end
    # in a second ALLOW of their own.
    asm.label("clone")
    asm.load(_ARG0)  # the low 32 bits of the flags, where every CLONE_NEW* flag is
    asm.jump(_JSET, _CLONE_NEW_FLAGS, "privileged", "allow")
    if not (deny_network and deny_unix_sockets) and (
            deny_network or deny_unix_sockets or deny_unix_datagrams or namespaced_families
            or raw_privileged):
        asm.label("socket")
        asm.load(_ARG0)  # the family
        unix = "privileged" if deny_unix_sockets else ("unix" if deny_unix_datagrams else "allow")
        if tcp:
            asm.jump(_JEQ, _AF_INET, "inet", None)
            asm.jump(_JEQ, _AF_INET6, "inet", None)
        elif not deny_network:
            inet = "raw" if raw_privileged else "allow"
            asm.jump(_JEQ, _AF_INET, inet, None)
            asm.jump(_JEQ, _AF_INET6, inet, None)
            if namespaced_families:
                asm.jump(_JEQ, _AF_NETLINK, "allow", None)
        refused = "privileged" if deny_network or namespaced_families else "allow"
        if raw_privileged and refused == "allow":
            asm.jump(_JEQ, _AF_PACKET, "privileged", None)
        asm.jump(_JEQ, _AF_UNIX, unix, refused)
        if raw_privileged and not tcp and not deny_network:
            asm.label("raw")
            asm.load(_ARG1)
            asm.mask(_SOCK_TYPE_MASK)
            asm.jump(_JEQ, _SOCK_RAW, "privileged", "allow")
        if tcp:
            asm.label("inet")  # TCP only: no UDP, raw, SCTP or MPTCP
            asm.load(_ARG1)
            asm.mask(_SOCK_TYPE_MASK)
            asm.jump(_JEQ, _SOCK_STREAM, None, "privileged")
            asm.load(_ARG2)  # the protocol
            asm.jump(_JEQ, 0, "allow", None)
            asm.jump(_JEQ, _IPPROTO_TCP, "allow", "privileged")
    if tcp:
        for offset in sorted({offset for _, offset in _SENDS[arch]}):
            asm.label(f"send{offset}")
            asm.load(offset)  # the flags
            asm.jump(_JSET, _MSG_FASTOPEN, "deny", "allow")
    if tcp and {"sendto", "sendmsg", "sendmmsg"} & set(notify):
        raise ValueError("sends are notified only where TCP Fast Open needs no check")
    if "sendto" in notify:
        asm.label("addressed")  # only a sendto that names where to: dest_addr, a pointer
        asm.load(_ARG4)
        asm.jump(_JEQ, 0, None, "notify")
        asm.load(_ARG4 + 4)
        asm.jump(_JEQ, 0, "allow", "notify")
    if datagram_pairs:
        asm.label("pair")
        asm.load(_ARG0)  # the family
        asm.jump(_JEQ, _AF_UNIX, "unix", "allow")
        # A stream or seqpacket type exactly: the kernel makes a datagram
        # socket of SOCK_RAW too.
        asm.label("unix")
        asm.load(_ARG1)  # the type
        asm.mask(_SOCK_TYPE_MASK)
        asm.jump(_JEQ, _SOCK_STREAM, "allow", None)
        asm.jump(_JEQ, _SOCK_SEQPACKET, "allow", "privileged")
    if witness_signals:
        # A pid, or a process group (below -1), that may be outside the run;
        # 0 and -1 reach only the run's (or are refused: EINVAL, ESRCH).
        # Each takes a pid_t, the low 32 bits.
        asm.label("signal")
        asm.load(_ARG0)
        asm.jump(_JEQ, 0, "allow", None)
        asm.jump(_JEQ, 0xFFFFFFFF, "allow", "notify")
    if guard_signals:
        asm.label("own_group")  # a kill of all but the caller's own group (0)
        asm.load(_ARG0)
        asm.jump(_JEQ, 0, "allow", "notify")
        for call, commands in _OWNER_COMMANDS.items():
            asm.label(call)
            asm.load(_ARG1)  # the command
            asm.jump(_JEQ, commands[0], "notify", None)
            asm.jump(_JEQ, commands[1], "notify", "allow")
    if guard_processes:
        # The caller itself (pid 0), or (ioprio_set) it or its own group (who
        # 0, unless IOPRIO_WHO_USER: every process of the user).
        asm.label("ioprio")
        asm.load(_ARG0)
        asm.jump(_JEQ, _IOPRIO_WHO_USER, "notify", None)
        asm.load(_ARG1)
        asm.jump(_JEQ, 0, "allow", "notify")
        asm.label("own")
        asm.load(_ARG0)
        asm.jump(_JEQ, 0, "allow", "notify")
    if witness_limits or guard_processes:
        # Only a prlimit64 that sets a limit: C libraries read limits with
        # it (new_limit, a pointer, NULL), as each program does as it starts.
        asm.label("limit")
        asm.load(_ARG2)
        asm.jump(_JEQ, 0, None, "notify")
        asm.load(_ARG2 + 4)
        asm.jump(_JEQ, 0, "allow", "notify")
    for offset in sorted({_OPEN_FLAGS[call] for call in writes if call in _OPEN_FLAGS}):
        asm.label(f"flags{offset}")
        asm.load(offset)
        asm.jump(_JSET, _WRITING_OPEN, "notify", "allow")
    if witness_identity:
        assert identity is not None
        for kind, own in zip(("uid", "gid"), identity):
            # Each id given must be the run's own, or -1 (left as it is).
            for count in (3, 2, 1):
                asm.label(f"{kind}{count}")
                asm.load(_ARG0 + 8 * (count - 1))
                after = f"{kind}{count - 1}" if count > 1 else "allow"
                asm.jump(_JEQ, own, after, None)
                asm.jump(_JEQ, 0xFFFFFFFF, after, "privileged")
    asm.label("allow")
    asm.ret(_RET_ALLOW)
    asm.label("privileged")
    asm.ret(_RET_USER_NOTIF if witness_privileges else _RET_ERRNO | errno.EPERM)
    asm.label("deny")
    asm.ret(_RET_ERRNO | errno.EPERM)
    asm.label("nosys")
    asm.ret(_RET_ERRNO | errno.ENOSYS)
    asm.label("kill")
    asm.ret(_RET_KILL_PROCESS)
    if (notify or writes or witness_privileges or witness_binds or witness_execs
            or witness_signals or guard_signals or witness_limits or guard_processes
            or guard_ipc):
        asm.label("notify")
        asm.ret(_RET_USER_NOTIF)
    return asm.assemble()

"""The socket gate: without network, a sandboxed command's sockets reach only its own.

Without network a Unix socket is the way out of the sandbox's network
namespace: a socket file anywhere the command can read (docker.sock, an
ssh-agent, D-Bus) would connect it to a host service.  Where there is no
network namespace (the Landlock backend), a TCP socket is one too: the
host's loopback services listen there.  So every ``connect`` (and, without a
network namespace, every ``bind`` and ``listen``) is handed to corral through
a seccomp user notification (:func:`~corral.sandbox.seccomp.build_program`,
loaded by the spawn stage or, for bwrap, by corral's sandbox init, the
listener handed back to corral).  corral makes
each call itself, on the command's own socket (duplicated with
``pidfd_getfd``), with its own copy of the address, and answers with the
outcome: a check followed by "continue" could be raced by another thread of
the command swapping the descriptor or the address.

* An AF_UNIX connect reaches an allowed host path, or one of the command's
  own sockets: in the run's own network namespace (bwrap), a socket file a
  listening socket of that namespace was bound at, as the kernel records it
  (sock_diag, through a socket the init opens in that namespace: a path
  renamed, relinked or replaced by a symlink since names something else);
  without one (Landlock), one beneath the session's ``/tmp``, or a file a
  socket the run bound listens at (sock_diag of the host's namespace, and
  the cookie of each socket the run bound, read at its ``bind``).  The socket is
  found by opening its directory (with ``openat2`` confined to the sandbox's
  root, or from the command's working directory for a relative address),
  then the socket beneath that very directory, and connected to through the
  pinned descriptor, so no rename or symlink swap during the check changes
  what is reached.  An abstract address reaches what it names in the run's
  own network namespace, where every name is the run's; without one, it is
  refused.  Anything else is refused with EACCES and recorded as a denial.
  Datagram sockets, which could reach a path through ``sendto`` without
  ``connect``, are refused when created.
* A TCP connect inside the run's own network namespace (bwrap) goes where it
  asks: only loopback is there.
* Without one (Landlock), a TCP server binds on loopback only (the wildcard
  address becomes loopback, as in a namespace with only ``lo``; a listen on
  an unbound socket binds it to loopback first), and a TCP connect reaches
  loopback only where every server listening on that port is one the gate
  bound for this run: the host's services are refused (EACCES, a denial).
  Landlock refuses any TCP bind or connect the command makes itself.
* corral makes each call with its own privileges, which the command lacks:
  what would take a capability is refused as the kernel refuses the
  command, a bind to a port below ``ip_unprivileged_port_start`` (EACCES),
  a netlink connect to a process or a multicast group (EPERM).

The gate serves the run's seccomp listener, so it also hands the run's
writes and privileged calls to its :class:`~corral.sandbox.witness.Witness`
(when the program notifies them), which records the ones the sandbox
refuses; with network, that is all a gate does.  A thread in C
(``_cgate.serve``) takes every notification: it answers writes, privileged
calls and sends itself (reporting where a datagram went that the run's
network namespace cannot deliver, and passing on the first one to each
loopback port, to be looked at while it waits) and passes the other socket
calls on to :meth:`handle`.

The listener comes over a Unix socket (:attr:`SocketGate.child_end`), from
the spawned child or, under bwrap, from corral's init in the sandbox, and is
taken by that thread as it arrives (the command's first exec, notified,
waits for it, and the spawn for that exec).  Under bwrap the same socket
then carries the thread's questions to the init, the sandbox's PID 1: a
kill of a pid (or a process group) the sandbox never gave out, a host
process's, is reported (the witness keeps it for a run that fails).  The
gate runs inside the collect stage's poll loop (:meth:`fileno`,
:meth:`handle`, :meth:`wake_in`) and never blocks it: a
connect that cannot complete at once (a server's backlog full, a TCP
handshake under way) is made without blocking, and its notification
answered once the connect completes, the command's thread waiting meanwhile
as in a blocking ``connect`` (a caught signal interrupts it there too: see
:class:`_Parked`), while the loop goes on reading output and keeping
deadlines.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import struct
import time

from .._containment import watchdog_pipe
from .._errors import PolicyError
from .._policy import SandboxPolicy
from .._denial import NEEDS_NETWORK
from .._result import Denial, DenialKind
from .seccomp import (GUARDED_IPC_CALLS, LIMIT_CALLS, SCHEDULING_CALLS, SESSION_CALLS,
                      SIGNAL_CALLS, SIGNAL_GUARD_CALLS,
                      SOCKET_CALLS, WRITE_CALLS, privileged_calls)
from .witness import Witness, unprivileged_port_start

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a sandboxed `corral run` 4 ms to import
    from collections.abc import Callable
    from typing import Any

try:
    from .. import _cgate
except ImportError:  # not built: open_gate says so
    _cgate = None  # type: ignore[assignment]

__all__ = ["SocketGate", "gate_supported", "open_gate", "tcp_listeners"]

_NOTIF_SIZE = 80  # struct seccomp_notif
_IOCTL_SEND = 0xC0182101  # SECCOMP_IOCTL_NOTIF_SEND
_IOCTL_ID_VALID = 0x40082102  # SECCOMP_IOCTL_NOTIF_ID_VALID
_FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE
_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK = 1, 2, 10, 16
_SOL_SOCKET, _SO_TYPE, _SO_ERROR, _SO_PROTOCOL, _SO_DOMAIN, _SO_COOKIE = 1, 3, 4, 38, 39, 57
_NETLINK_USERSOCK = 2  # the one protocol whose peers a process may name without a privilege
_NETLINK_SOCK_DIAG = 4
_SOCK_STREAM = 1
_IPPROTO_IPV6, _IPV6_V6ONLY = 41, 26
_SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage)
_DNS_PORT = 53
_MAX_DENIALS = 20
_MAX_KILLED = 1000  # kills of host pids kept per run; past that, they go unreported
# Notified system calls by number, for this machine's architecture.
_SENDS = SOCKET_CALLS.get(os.uname().machine, {})
_CALLS = {number: name for name, number in _SENDS.items()}
_TRUNCATE = WRITE_CALLS.get(os.uname().machine, {}).get("truncate", -1)
_SIGNALS = SIGNAL_CALLS.get(os.uname().machine, {})
_SIGNAL_GUARDS = SIGNAL_GUARD_CALLS.get(os.uname().machine, {})
_SIGNAL_NAMES = {number: name for name, number in (*_SIGNALS.items(), *_SIGNAL_GUARDS.items())}
_LIMITS = LIMIT_CALLS.get(os.uname().machine, {})
# The calls that change a process named by an argument (what the server
# refuses where no PID namespace keeps the host's processes out of reach),
# and how each names it, as _cgate.c numbers that: 0 a pid first, 1 as
# setpriority, 2 as ioprio_set; and setsid (9), by which the server learns
# the run's sessions.
_GUARDED_NAMES = {number: name for name, number in [
    *SCHEDULING_CALLS.get(os.uname().machine, {}).items(), *_LIMITS.items()]
    if name != "setrlimit"}
_GUARDED = (*((number, {"setpriority": 1, "ioprio_set": 2}.get(name, 0))
              for number, name in _GUARDED_NAMES.items()),
            *((number, 9) for number in SESSION_CALLS.get(os.uname().machine, {}).values()))
# Where Landlock cannot scope signals: the calls that send one, or name
# where SIGIO goes, as _cgate.c numbers how each names its target (3 kill,
# 4 a pid first, 5 a thread second, 6 a descriptor, 7 fcntl, 8 ioctl).
_GUARDED_SIGNALS = tuple(
    (number, {"kill": 3, "tgkill": 5, "rt_tgsigqueueinfo": 5, "pidfd_send_signal": 6,
              "fcntl": 7, "ioctl": 8}.get(name, 4))
    for name, number in _SIGNAL_GUARDS.items())
# The IPC calls that name an object (what the server answers where no IPC
# namespace keeps the host's objects out of reach), each as (number, kind,
# role), as _cgate.c numbers them: kinds 0 shm, 1 sem, 2 msg, 3 a POSIX
# message queue; roles 0 a get (or mq_open), 1 a use of an object by its
# id, 2 a control command (or mq_unlink).
_IPC = tuple((number, ("shm", "sem", "msg", "mq_").index(name[:3]),
               0 if name.endswith(("get", "open")) else 2 if name.endswith(("ctl", "unlink"))
               else 1)
              for number, name in privileged_calls().items() if name in GUARDED_IPC_CALLS)
# The write calls the server carries out on names beneath /dev/shm where the
# sandbox shows the host's (see redirect in _cgate.c), and the opens of a
# pseudo-terminal where it shows the host's /dev/pts, or of a /proc file of
# the run's own where it has no rule for /proc: (role, directory
# argument, path argument, the second path's directory and path arguments,
# flags argument or code), roles as _cgate.c numbers them: 0 open, 1 unlink,
# 2 link, 3 rename; codes as witness.py's operands have them.
_SHM_ROLES = {
    "open": (0, -1, 0, -1, -1, 1), "openat": (0, 0, 1, -1, -1, 2),
    "openat2": (0, 0, 1, -1, -1, -3), "creat": (0, -1, 0, -1, -1, -2),
    "unlink": (1, -1, 0, -1, -1, -1), "unlinkat": (1, 0, 1, -1, -1, 2),
    "link": (2, -1, 0, -1, 1, -1), "linkat": (2, 0, 1, 2, 3, 4),
    "rename": (3, -1, 0, -1, 1, -1), "renameat": (3, 0, 1, 2, 3, -1),
    "renameat2": (3, 0, 1, 2, 3, 4),
}
_SHM = tuple((number, *_SHM_ROLES[name])
             for name, number in WRITE_CALLS.get(os.uname().machine, {}).items()
             if name in _SHM_ROLES)
_SENT_BY = ("sendmsg", "sendmmsg", "sendto")  # as the server numbers the calls that send
_SUN_PATH_MAX = 108
_MAX_DEPTH = 256  # directories between a socket and the filesystem's root
_MISSING = "\0missing"  # what _own_socket answers for a path with nothing at it
# A Unix connect refused for a full backlog is tried again after this long,
# doubling up to the second figure (the kernel offers nothing to wait on).
_RETRY_FIRST, _RETRY_MOST = 0.001, 0.05
_PARKED = (0, -1, 0)  # what a connect under way answers: nothing yet
# How often a parked connect's thread is looked at for a signal that would
# interrupt it (see _Parked).
_SIGNAL_CHECK = 0.01
# The kernel's "interrupted: restart the call if the handler asks for it"
# (ERESTARTSYS), which never reaches the program: its signal's delivery turns
# it into a restart (SA_RESTART) or EINTR.
_ERESTARTSYS = 512


class _Parked:
    """A connect under way for the notification ``notif_id``: on ``sock`` (a
    duplicate of the command's socket), tried again at ``retry_at`` (a Unix
    socket) or answered when ``sock`` becomes writable (TCP).  ``kept`` is a
    descriptor the address names (a pinned socket), or -1.

    The calling thread, ``tid``, waits in the kernel as in a blocking
    connect, but one that no caught signal interrupts: the filter's
    listener waits killably once a notification is read (see
    ``WAIT_KILLABLE_RECV`` in ``_cspawn.c``).  So the gate looks at the
    thread every :data:`_SIGNAL_CHECK` seconds (at ``check_at``; None once
    the notification is answered) and interrupts the call itself when a
    signal waits, as the kernel's own connect would be."""

    __slots__ = ("notif_id", "tid", "sock", "call", "argument", "kept", "retry_at", "delay",
                 "check_at")

    def __init__(self, notif_id: int, tid: int, sock: int, call: Callable[[int, Any], None],
                 argument: Any) -> None:
        self.notif_id, self.tid, self.sock, self.call = notif_id, tid, sock, call
        self.argument, self.kept, self.delay = argument, -1, _RETRY_FIRST
        self.retry_at: float | None = None
        self.check_at: float | None = time.monotonic() + _SIGNAL_CHECK

    def adopt(self, notif_id: int, tid: int) -> None:
        """The same connect asked for again (restarted after a signal, or
        by another thread once the first was answered)."""
        self.notif_id, self.tid = notif_id, tid
        self.check_at = time.monotonic() + _SIGNAL_CHECK


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


def _queue_prefix() -> str:
    """What the names of one run's POSIX message queues start with, where
    the gate makes them (see ``look_at_queue`` in ``_cgate.c``)."""
    return f"corral-{os.getpid()}-{os.urandom(4).hex()}-"


def _private_directory(path: str) -> int:
    """A descriptor of the directory ``path``, made (mode 700) if missing;
    -1 if it cannot be had (something else is there)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return -1
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return -1


def open_gate(policy: SandboxPolicy, own: tuple[str, ...], private_network: bool,
              witness: Witness | None = None, init_answers: bool = False,
              shm_dir: str | None = None, guard_signals: bool = False,
              guard_truncate: bool = False) -> SocketGate | None:
    """The gate for a run of ``policy`` (see :class:`SocketGate` for
    ``own``, ``private_network``, ``witness``, ``init_answers``, ``shm_dir``,
    ``guard_signals`` and ``guard_truncate``), or None where the kernel
    cannot run one (then no Unix socket may be used without network, and
    refused writes are known only from the output) or, with network, where
    there is no ``witness``.
    Raises :class:`PolicyError` for an allowed socket that is not one, or
    that cannot be granted here."""
    if policy.network and witness is None:
        return None
    if not gate_supported():
        if policy.allow_unix_sockets and not policy.network:
            raise PolicyError("allow_unix_sockets needs Linux 5.6 or newer (pidfd_getfd) and "
                              "corral's C extensions; without them no Unix socket can be "
                              "granted: use --network, or leave the socket out")
        return None
    allowed: list[str] = []
    bind_paths: list[str] = []
    for given in () if policy.network else policy.allow_unix_sockets:
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
    return SocketGate(tuple(allowed), own, tuple(bind_paths), private_network, witness,
                      init_answers, network=policy.network, shm_dir=shm_dir,
                      guard_signals=guard_signals, guard_truncate=guard_truncate)


class SocketGate:
    """Decides one run's ``connect``, ``bind`` and ``listen`` calls.

    ``allowed`` are host socket paths.  The command's own sockets are reached
    too: with ``private_network`` (the run has its own network namespace),
    the ones a process of the run listens on; otherwise the ones beneath the
    ``own`` directories (its session's ``/tmp``).  ``bind_paths``
    are where a mount-namespace backend must show the allowed sockets.
    ``witness`` (or None) is told of the run's writes.
    ``child_end`` is the socket the seccomp listener is sent over, by the
    spawned child or by a program it runs; a thread of corral's, which
    starts with the gate, takes it from there (the command's exec waits for
    that thread).  With ``init_answers`` that program is corral's init as
    the sandbox's PID 1, which then answers there which pids the sandbox
    gave out.  A kill of a pid or a process group outside the run (the
    host's) is reported under either (see ``look_at_kill`` in ``_cgate.c``).
    With ``network``, the run may use the network: the gate decides none of
    its calls, and only serves the witness.  Given ``shm_dir`` (made if
    missing), where the sandbox shows the host's /dev/shm read-only
    (Landlock), the names the command makes, opens for writing, links,
    renames or removes directly beneath /dev/shm (POSIX shared memory and
    named semaphores) are made there instead, the run's own, and the gate
    opens the pseudo-terminals the command makes, where the sandbox keeps
    the host's /dev/pts from it, and the /proc files of the run's processes
    a command may write (``oom_score_adj``, ``comm``, ...) where it has no
    rule for /proc (see ``redirect`` in ``_cgate.c``).  With
    ``guard_signals``, where the sandbox cannot scope signals (Landlock
    below ABI 6), it refuses each signal to a process outside the run, and
    each F_SETOWN (or FIOSETOWN) that would send SIGIO to one (see
    ``guard_signal`` in ``_cgate.c``); which processes are the run's
    depends on whether it has a cgroup of its own (see :meth:`contain`).
    With ``guard_truncate``, where the sandbox cannot refuse a truncate
    (Landlock below ABI 3), it makes each ``truncate`` of a path beneath the
    ``witness``'s writable paths for the command, and refuses the rest (see
    ``truncate_for`` in ``_cgate.c``).
    """

    def __init__(self, allowed: tuple[str, ...], own: tuple[str, ...] = (),
                 bind_paths: tuple[str, ...] = (), private_network: bool = False,
                 witness: Witness | None = None, init_answers: bool = False,
                 network: bool = False, shm_dir: str | None = None,
                 guard_signals: bool = False, guard_truncate: bool = False) -> None:
        self.allowed = frozenset(allowed)
        self.bind_paths = list(bind_paths)
        self._own = frozenset(_identity(path) for path in own)
        self._private_network = private_network
        self.witness = witness
        self.denials: list[Denial] = []
        self._bound: set[int] = set()  # the inodes of the TCP sockets it bound for the run
        # The server's reports, and TCP sockets whose connect is under way.
        self._ready = select.epoll()
        self._ours, self.child_end = _cgate.socketpair()
        self._listener = -1
        # A NETLINK_SOCK_DIAG socket of the run's network namespace (or
        # without one, of the host's, opened when first needed), or -1.
        self._diag = -1
        # Without one of its own, the cookies of the Unix sockets the run
        # bound (see _own_socket).
        self._bound_unix: set[int] = set()
        self._unread = b""  # the start of a report not read whole yet
        self._parked: dict[int, _Parked] = {}  # by the socket's inode
        # Deny-read paths corral's init covers with FUSE filesystems, in its
        # order: (path, is a directory, a file inside kept readable: its
        # name and a descriptor open for reading, or None); and the pipe
        # the cover server reports their refused reads on.
        self.covers: list[tuple[str, bool, tuple[str, int] | None]] = []
        self._reads = -1
        self._unread_reads = b""
        self._closing = False
        self._killed: dict[int, str] = {}  # the targets of the "K" reports, in order: the call
        # What a kill of a pid outside the run gets: a PID namespace of the
        # run's own has no such process; Landlock's signal scoping refuses it.
        self._kill_error = errno.ESRCH if init_answers else errno.EPERM
        self._host_servers: tuple[float, list[tuple[bytes, int]]] | None = None  # when, what
        self._shm = -1 if shm_dir is None else _private_directory(shm_dir)
        # The thread serving the listener (_cgate.serve), and its reports.
        try:
            self._server, self._reports = _cgate.serve(
                self._ours, None if witness is None else witness.writable,
                () if witness is None else witness.operands(),
                () if witness is None else Witness.privileged(),
                (_SENDS.get("sendto", -1), _SENDS.get("sendmsg", -1), _SENDS.get("sendmmsg", -1),
                 # Where the gate does not decide it: in the run's own
                 # namespaces, or with network.
                 _SENDS.get("bind", -1) if private_network or network else -1,
                 _SIGNALS.get("kill", -1), _SIGNALS.get("pidfd_open", -1),
                 _SIGNALS.get("pidfd_send_signal", -1),
                 (_SIGNALS.get("rt_sigqueueinfo", -1), _SIGNALS.get("tkill", -1),
                  _SIGNALS.get("tgkill", -1), _SIGNALS.get("rt_tgsigqueueinfo", -1)),
                 _LIMITS.get("setpriority", -1), _LIMITS.get("setrlimit", -1),
                 _LIMITS.get("prlimit64", -1)),
                # Without a PID namespace of the run's own: calls that would
                # change a host process; without an IPC namespace, the
                # System V IPC calls (which Landlock's seccomp program
                # notifies).
                () if init_answers else _GUARDED + (_GUARDED_SIGNALS if guard_signals else ()),
                (watchdog_pipe(), _queue_prefix(), () if init_answers else _IPC),
                (self._shm, _SHM if self._shm >= 0 else ()),
                _TRUNCATE if guard_truncate and witness is not None else -1, init_answers)
        except BaseException:
            for fd in (self._ours, self.child_end, self._shm):
                if fd >= 0:
                    os.close(fd)
            self._ready.close()
            raise
        self._ready.register(self._reports, select.EPOLLIN)

    def contain(self, in_cgroup: bool) -> None:
        """Says, before the run starts, whether it has a cgroup of its own:
        then a process of its cgroup is the run's, a daemon that left its
        session included; otherwise only one of a session of the run's."""
        _cgate.contain(self._server, in_cgroup)

    def started(self) -> None:
        """Closes corral's copy of :attr:`child_end`; call once, after spawn
        (the child has its own), so that a child that dies without sending
        the listener ends the gate."""
        os.close(self.child_end)
        self.child_end = -1

    def processes_left(self) -> bool:
        """Whether a process of the run lives: one under its seccomp filter,
        which every process the run starts inherits, whatever session or
        group it moves to (a zombie counts until it is reaped)."""
        if self._listener < 0:
            self.handle()  # the listener may be in a report not read yet
        if self._listener < 0:
            return False
        hung_up = select.poll()
        hung_up.register(self._listener, 0)
        return not hung_up.poll(0)

    def end_sessions(self) -> None:
        """Asks the gate's thread to SIGKILL every process of the run's
        sessions, without waiting for it: the sessions its processes made
        (a daemon's, which the kill of the run's process group misses), and
        the one it started in (see ``end_sessions`` in ``_cgate.c``)."""
        if self._server:
            _cgate.end_sessions(self._server)

    def excused(self) -> frozenset[DenialKind]:
        """The kinds of the refusals the witness saw that were no denial
        (see :attr:`Witness.excused`)."""
        return frozenset(() if self.witness is None else self.witness.excused)

    def refusals(self, failed: bool) -> tuple[Denial, ...]:
        """What the run was refused: sockets, then writes; then, if the run
        ``failed``, the privileged programs that ran without their privilege
        and the signals sent to host pids."""
        witness = self.witness
        if witness is None:
            return tuple(self.denials)
        if failed:
            for pid, call in self._killed.items():
                if len(witness.if_failed) >= _MAX_DENIALS:
                    break  # no room left: nothing more to look up
                self._signalled(pid, call)
        return (*self.denials, *witness.denials, *(witness.if_failed if failed else ()))

    def _refused(self, denial: Denial) -> None:
        """Records a refusal once (a command may try the same thing in a loop)."""
        if not self._recorded(denial):
            self.denials.append(denial)

    def _recorded(self, denial: Denial) -> bool:
        """Whether ``denial`` (its kind and target) is recorded already, or no
        more can be."""
        return len(self.denials) >= _MAX_DENIALS or any(
            (d.kind, d.target) == (denial.kind, denial.target) for d in self.denials)

    def _take_listener(self, fds: tuple[int, ...]) -> None:
        """Takes what came with the listener, which the server took: the
        covers' connections in order, and the NETLINK_SOCK_DIAG socket if
        corral's init could open one."""
        self._listener = fds[0]
        self._diag = (*fds[1 + len(self.covers):], -1)[0]
        connections = fds[1:1 + len(self.covers)]
        if self._closing:  # the run is over: nothing looks into a cover any more
            for fd in connections:
                os.close(fd)
        else:
            self._serve_covers(connections)

    def _signalled(self, pid: int, call: str) -> None:
        """Records the ``call`` (``kill``, ``rt_sigqueueinfo``,
        ``pidfd_open``, ``pidfd_send_signal``) of ``pid``, which the sandbox
        never gave out (of process group ``-pid`` if negative), if the host
        has a process (a
        group) there that the user may signal (any, for a ``pidfd_open``,
        which takes no permission): the sandbox kept the command from it.
        Looked up only once the run has failed: until then nothing the
        command could time depends on the host."""
        assert self.witness is not None
        try:
            os.kill(pid, 0)
        except PermissionError:
            if call != "pidfd_open":
                return  # one the user could not signal anyway
        except OSError:
            return  # none
        try:
            with open(f"/proc/{abs(pid)}/comm", "rb") as comm:
                name = os.fsdecode(comm.read().strip())
        except OSError:
            name = ""
        self.witness.record_signal(pid, name, self._kill_error, call)

    def _serve_covers(self, connections: tuple[int, ...]) -> None:
        """Hands each cover's connection to the cover server, with the pipe
        it reports on.  A connection that cannot be handed over is closed:
        it aborts, and a read there fails all the same."""
        from .covers import cover_server

        server = cover_server() if connections else None
        if server is not None:
            self._reads, report = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            for fuse, (path, directory, kept) in zip(connections, self.covers):
                server.add(fuse, report, path, directory, kept)
            os.close(report)
            self._ready.register(self._reads, select.EPOLLIN)
        for fd in connections:
            os.close(fd)

    def _read_covers(self) -> None:
        """Takes the cover server's reports of refused reads."""
        try:
            chunk = os.read(self._reads, 65536)
        except BlockingIOError:
            return
        if not chunk:  # the server is gone, or was never given a cover
            self._ready.unregister(self._reads)
            os.close(self._reads)
            self._reads = -1
            return
        data = self._unread_reads + chunk
        offset = 0
        while (framed := _framed_path(data, offset, 1)) is not None:
            if self.witness is not None and data[offset:offset + 1] == b"R":
                self.witness.record_read(os.fsdecode(framed[0]))
            offset = framed[1]
        self._unread_reads = data[offset:]

    def fileno(self) -> int:
        """Readable when :meth:`handle` has something to do."""
        return self._ready.fileno()

    def wake_in(self) -> float | None:
        """Seconds until :meth:`handle` must run even if :meth:`fileno` stays
        quiet (a connect to try again), or None."""
        due = [at for p in self._parked.values() for at in (p.retry_at, p.check_at)
               if at is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def close(self) -> None:
        """Ends the server, takes in what it still had to report, and
        releases every descriptor; call once the run is over."""
        self._closing = True
        if self._server:
            _cgate.stop(self._server)
            while self._read_reports():  # to its end: the thread may wait on a full pipe
                pass
            _cgate.join(self._server)
            self._server = 0
        if self._reads >= 0:
            # The server reports a read before it answers it: whatever the
            # command was refused is in the pipe by now.
            self._read_covers()
        for _, _, kept in self.covers:
            if kept is not None:
                os.close(kept[1])
        self.covers = []
        for parked in self._parked.values():
            self._drop(parked)
        self._parked.clear()
        for fd in (self._listener, self.child_end, self._ours, self._diag, self._reports,
                   self._reads, self._shm):
            if fd >= 0:
                os.close(fd)
        self._listener = self.child_end = self._ours = self._diag = self._reports = -1
        self._reads = self._shm = -1
        self._ready.close()

    def handle(self) -> bool:
        """Answers what is ready: notifications, and connects that have
        completed or are due for another try.  False once no process can
        send more."""
        alive = True
        for fd, _ in self._ready.poll(0):
            if fd == self._reports:
                alive = self._read_reports() and alive
            elif fd == self._reads:
                self._read_covers()
            else:
                self._completed(fd)
        now = time.monotonic()
        for parked in list(self._parked.values()):
            if parked.check_at is not None and parked.check_at <= now:
                self._look_for_signals(parked)
            if parked.retry_at is not None and parked.retry_at <= now:
                self._retry(parked)
        return alive

    def _read_reports(self) -> bool:
        """Takes the server's reports: notifications to answer, refused
        writes to record.  False once the server has ended (no process is
        left under the filter)."""
        data = self._unread + os.read(self._reports, 65536)
        if len(data) == len(self._unread):
            self._unread = b""
            return False
        offset = 0
        while offset < len(data):
            kind = data[offset:offset + 1]
            if kind == b"F" and offset + 2 <= len(data) and (
                    end := offset + 2 + 4 * data[offset + 1]) <= len(data):
                self._take_listener(struct.unpack_from(f"<{data[offset + 1]}i", data, offset + 2))
                offset = end
            elif kind == b"N" and offset + 1 + _NOTIF_SIZE <= len(data):
                self._answer(data[offset + 1:offset + 1 + _NOTIF_SIZE])
                offset += 1 + _NOTIF_SIZE
            elif kind == b"W" and (framed := _framed_path(data, offset, 9)) is not None:
                if self.witness is not None:
                    number, error = struct.unpack_from("<ii", data, offset + 1)
                    self.witness.record(number, error, os.fsdecode(framed[0]))
                offset = framed[1]
            elif kind == b"X" and (framed := _framed_path(data, offset, 1)) is not None:
                if self.witness is not None:
                    self.witness.record_program(os.fsdecode(framed[0]))
                offset = framed[1]
            elif kind == b"K" and offset + 9 <= len(data):
                target, number = struct.unpack_from("<ii", data, offset + 1)
                if len(self._killed) < _MAX_KILLED:
                    self._killed.setdefault(target, _SIGNAL_NAMES.get(number, "kill"))
                offset += 9
            elif kind in b"SL" and (sent := _framed_send(data, offset)) is not None:
                call = _SENT_BY[sent[1]]
                if kind == b"S":
                    self._sent_to(sent[0], call)
                else:
                    self._sent_on_loopback(data[offset + 1:offset + 1 + _NOTIF_SIZE], sent[0],
                                           call)
                offset = sent[2]
            elif kind == b"B" and offset + 3 <= len(data):
                if self.witness is not None:
                    self.witness.record_port(struct.unpack_from("<H", data, offset + 1)[0])
                offset += 3
            elif kind == b"D" and (framed := _framed_path(data, offset, 1)) is not None:
                if self.witness is not None:
                    self.witness.record_device(os.fsdecode(framed[0]))
                offset = framed[1]
            elif kind == b"C" and offset + 17 <= len(data):
                if self.witness is not None:
                    self.witness.record_limit(*struct.unpack_from("<iiQ", data, offset + 1))
                offset += 17
            elif kind == b"O" and offset + 10 <= len(data):
                if self.witness is not None:
                    number, target = struct.unpack_from("<ii", data, offset + 1)
                    self.witness.record_other(_GUARDED_NAMES.get(number, f"system call {number}"),
                                              target, data[offset + 9])
                offset += 10
            elif kind == b"Y" and offset + 6 <= len(data):
                if self.witness is not None:
                    self.witness.record_ipc_key(data[offset + 1],
                                                struct.unpack_from("<i", data, offset + 2)[0])
                offset += 6
            elif kind == b"P" and offset + 13 <= len(data):
                if self.witness is not None:
                    self.witness.record_privileged(*struct.unpack_from("<iII", data, offset + 1))
                offset += 13
            else:
                break  # the rest of a report comes with the next read
        self._unread = data[offset:]
        return True

    def _answer(self, notification: bytes) -> None:
        notif_id, pid, _, number = struct.unpack_from("<QIIi", notification)
        args = struct.unpack_from("<6Q", notification, 32)
        call = _CALLS.get(number)
        if call is None:  # a call nobody asked to be told of: refused, never let through
            self._send(notif_id, 0, errno.EPERM)
            return
        answer = self._decide(notif_id, call, pid, _signed(args[0]), args[1], args[2])
        if answer is not _PARKED:
            self._send(notif_id, *answer)

    def _send(self, notif_id: int, value: int, error: int, flags: int = 0) -> None:
        response = struct.pack("<QqiI", notif_id, value, -error if error else 0, flags)
        try:
            fcntl.ioctl(self._listener, _IOCTL_SEND, response)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # the caller is gone: nothing to answer
                raise

    def _connect(self, notif_id: int, tid: int, sock: int, call: Callable[[int, Any], None],
                 argument: Any, kept: int = -1) -> tuple[int, int, int]:
        """Makes thread ``tid``'s connect on ``sock`` without blocking the gate.

        A non-blocking socket gets the kernel's answer as it is.  A blocking
        one is connected with O_NONBLOCK set for the call (the flag belongs
        to the socket the command shares, and is put back at once); if that
        cannot complete now, a duplicate is parked and the notification
        answered later (:data:`_PARKED`).  ``kept`` (a descriptor ``argument``
        names, or -1) is duplicated for the parked connect's later tries."""
        identity = os.fstat(sock).st_ino
        earlier = self._parked.get(identity)
        if earlier is not None:
            if earlier.check_at is not None and self._still_waiting(earlier.notif_id):
                return 0, errno.EALREADY, 0  # another thread's connect is under way
            earlier.adopt(notif_id, tid)  # the same call again, restarted after a signal
            return _PARKED
        flags = fcntl.fcntl(sock, fcntl.F_GETFL)
        if flags & os.O_NONBLOCK:
            return _perform(call, sock, argument)
        fcntl.fcntl(sock, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            answer = _perform(call, sock, argument)
        finally:
            fcntl.fcntl(sock, fcntl.F_SETFL, flags)
        if answer[1] not in (errno.EINPROGRESS, errno.EAGAIN):
            return answer
        parked = _Parked(notif_id, tid, os.dup(sock), call, argument)
        if answer[1] == errno.EAGAIN:  # a Unix socket's server has a full backlog
            if kept >= 0:
                parked.kept = os.dup(kept)
                parked.argument = os.fsencode(f"/proc/self/fd/{parked.kept}")
            parked.retry_at = time.monotonic() + parked.delay
        else:
            self._ready.register(parked.sock, select.EPOLLOUT)
        self._parked[identity] = parked
        return _PARKED

    def _completed(self, sock: int) -> None:
        """A parked TCP connect is over: its outcome is the socket's error."""
        for identity, parked in self._parked.items():
            if parked.sock == sock:
                error = _cgate.socket_option(sock, _SOL_SOCKET, _SO_ERROR)
                del self._parked[identity]
                self._send(parked.notif_id, 0, error)
                self._drop(parked)
                return

    def _retry(self, parked: _Parked) -> None:
        identity = os.fstat(parked.sock).st_ino
        if not self._still_waiting(parked.notif_id):
            del self._parked[identity]  # the caller is gone, or will ask again
            self._drop(parked)
            return
        flags = fcntl.fcntl(parked.sock, fcntl.F_GETFL)
        fcntl.fcntl(parked.sock, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            answer = _perform(parked.call, parked.sock, parked.argument)
        finally:
            fcntl.fcntl(parked.sock, fcntl.F_SETFL, flags)
        if answer[1] == errno.EAGAIN:
            parked.delay = min(parked.delay * 2, _RETRY_MOST)
            parked.retry_at = time.monotonic() + parked.delay
            return
        del self._parked[identity]
        self._send(parked.notif_id, *answer)
        self._drop(parked)

    def _look_for_signals(self, parked: _Parked) -> None:
        if not _signal_waits(parked.tid) or not self._still_waiting(parked.notif_id):
            parked.check_at = time.monotonic() + _SIGNAL_CHECK
            return
        # Kept, for the restarted call to take up; a TCP handshake goes on
        # meanwhile, as the kernel's does.
        parked.check_at = None
        self._send(parked.notif_id, 0, _ERESTARTSYS)

    def _still_waiting(self, notif_id: int) -> bool:
        try:
            fcntl.ioctl(self._listener, _IOCTL_ID_VALID, struct.pack("<Q", notif_id))
        except OSError:
            return False
        return True

    def _drop(self, parked: _Parked) -> None:
        if parked.retry_at is None:
            self._ready.unregister(parked.sock)
        for fd in (parked.sock, parked.kept):
            if fd >= 0:
                os.close(fd)

    def _decide(self, notif_id: int, call: str, pid: int, sockfd: int, arg1: int,
                arg2: int) -> tuple[int, int, int]:
        """(return value, errno, flags) for one ``call`` (connect, bind or
        listen) on the command's descriptor ``sockfd``.  corral makes the
        call itself, on a duplicate of the command's socket: answering
        CONTINUE would let another thread of the command swap a different
        socket in under that descriptor number once the check is done."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return 0, errno.EACCES, 0
        if not self._still_waiting(notif_id):
            # The caller died before pidfd_open: the pid may be another
            # process's by now.  While the notification waits, it cannot be.
            os.close(pidfd)
            return 0, errno.EACCES, 0
        try:
            sock = _cgate.pidfd_getfd(pidfd, sockfd)
        except OSError as exc:
            if exc.errno == errno.EPERM:  # e.g. Yama's ptrace_scope 2 or 3
                self._refused(Denial(
                    DenialKind.NETWORK, None,
                    "corral may not inspect the command's socket here (pidfd_getfd: EPERM; "
                    "kernel.yama.ptrace_scope above 1?), so no socket may connect: use "
                    "--network", f"{call}() refused"))
            return 0, exc.errno or errno.EBADF, 0
        finally:
            os.close(pidfd)
        try:
            domain = _cgate.socket_option(sock, _SOL_SOCKET, _SO_DOMAIN)
            if call == "listen":
                return self._listen(sock, domain, _signed(arg1))
            if domain == _AF_UNIX:
                if call == "bind":
                    # A path, which the filesystem rules govern.  Were a TCP
                    # socket swapped in meanwhile, Landlock refuses its bind
                    # (below ABI 4, with no TCP rules, _listen refuses it).
                    if not self._private_network:
                        self._bound_unix.add(_cookie(sock))
                    return 0, 0, _FLAG_CONTINUE
                return self._connect_unix(notif_id, pid, sock, arg1, arg2)
            raw = _read_memory(pid, arg1, arg2)
            if raw is None:
                return 0, errno.EINVAL, 0
            if call == "bind":
                return self._bind_inet(sock, domain, raw)
            if (domain == _AF_NETLINK and _names_netlink_peers(raw) and _cgate.socket_option(
                    sock, _SOL_SOCKET, _SO_PROTOCOL) != _NETLINK_USERSOCK):
                return 0, errno.EPERM, 0
            return self._connect_inet(notif_id, pid, sock, raw)
        except OSError as exc:
            return 0, exc.errno or errno.EBADF, 0
        finally:
            os.close(sock)  # the command's own descriptor stays open, bound or connected

    def _host_loopback(self, notif_id: int, pid: int, endpoint: tuple[bytes, int],
                       call: str) -> None:
        """A connect or datagram to ``endpoint`` on loopback, in the run's own
        network namespace, whose call still waits: a denial if no socket of
        the run's is at that port while the host serves it (a name server,
        127.0.0.53, above all: then no name resolves, however quietly that
        fails).  The host's servers are looked at first, from a snapshot at
        most a second old: reading a ``/proc/net`` table costs milliseconds,
        and a client may send to thousands of ports."""
        address, port = endpoint
        if _kind(address) == "other":
            return
        if port == _DNS_PORT:
            denial = Denial(
                DenialKind.NETWORK, _show(*endpoint),
                "names cannot be resolved without network: rerun with --network "
                "(network=True)", f"{call}() to a name server the sandbox does not have")
        elif self._host_serves(address, port):
            denial = _host_service(_show(*endpoint), call)
        else:
            return
        # Read while the call waits: its pid is its caller's, in the run.
        if (not self._recorded(denial) and not _port_in_use(pid, port)
                and self._still_waiting(notif_id)):
            self.denials.append(denial)

    def _host_serves(self, address: bytes, port: int) -> bool:
        """Whether a server of the host's (a TCP listener, a bound UDP
        socket) is at ``port`` where a packet to ``address`` reaches it."""
        now = time.monotonic()
        if self._host_servers is None or now - self._host_servers[0] > 1:
            me = os.getpid()
            self._host_servers = now, [
                (bound, at) for bound, at, _ in (*tcp_listeners(me),
                                                 *_sockets(me, ("udp", "udp6")))]
        return any(at == port and _reaches(address, bound) for bound, at in self._host_servers[1])

    def _sent_on_loopback(self, notification: bytes, raw: bytes, call: str) -> None:
        """The first datagram ``call`` sends to a loopback port, passed on
        by the server unanswered: looked at while the call waits (its pid is
        its caller's), then let through."""
        notif_id, pid = struct.unpack_from("<QI", notification)
        endpoint = _inet_endpoint(raw)
        if endpoint is not None and self._private_network:
            self._host_loopback(notif_id, pid, endpoint, call)
        self._send(notif_id, 0, 0, _FLAG_CONTINUE)

    def _sent_to(self, raw: bytes, call: str) -> None:
        """A datagram sent to the address ``raw`` by ``call``: beyond
        loopback, without network, the run's namespace has no route there
        (ENETUNREACH), a denial."""
        endpoint = _inet_endpoint(raw)
        if endpoint is not None and _kind(endpoint[0]) == "other":
            self._refused(Denial(
                DenialKind.NETWORK, _show(*endpoint),
                NEEDS_NETWORK, f"{call}() refused"))

    def _connect_unix(self, notif_id: int, pid: int, sock: int, address: int,
                      length: int) -> tuple[int, int, int]:
        raw = _read_memory(pid, address, length) if 2 < length <= 2 + _SUN_PATH_MAX else None
        path = None if raw is None else _unix_name(raw)
        if raw is None or path is None:
            return 0, errno.EINVAL, 0
        if path.startswith("@") and self._private_network:
            # Abstract names belong to a network namespace: in one of the
            # run's own, every one is the run's.
            return self._connect(notif_id, pid, sock, _cgate.connect_address, raw)
        target = path if path in self.allowed else self._own_socket(pid, path)
        if target == _MISSING:
            return 0, errno.ENOENT, 0  # nothing there in its view: nothing refused
        if target is None:
            shown = path if path.startswith("/") else repr(path)
            if path.startswith("@"):
                remedy = (f"abstract Unix socket {shown} may be the host's (without a network "
                          "namespace of its own, this backend cannot tell): rerun with --network")
            else:
                remedy = (f"host Unix socket {shown} is not allowed: add --allow-unix-socket "
                          f"{shown} (allow_unix_sockets), or --network")
            self._refused(Denial(DenialKind.UNIX_SOCKET, shown, remedy, "connect() refused"))
            return 0, errno.EACCES, 0
        try:
            pinned = int(target.rsplit("/", 1)[1]) if target.startswith("/proc/self/fd/") else -1
            return self._connect(notif_id, pid, sock, _cgate.connect_unix, os.fsencode(target),
                                 pinned)
        finally:
            if target.startswith("/proc/self/fd/"):
                os.close(int(target.rsplit("/", 1)[1]))

    def _connect_inet(self, notif_id: int, pid: int, sock: int,
                      raw: bytes) -> tuple[int, int, int]:
        """An inet connect: anywhere in a network namespace of the run's own
        (it has only loopback: any other address is unreachable, a denial,
        and so is a port of loopback where only the host has a server);
        otherwise only to a server of this run."""
        endpoint = _inet_endpoint(raw)
        if self._private_network or endpoint is None:
            # Its own namespace, or no address to check (AF_UNSPEC
            # disconnects; anything else the kernel refuses).
            answer = self._connect(notif_id, pid, sock, _cgate.connect_address, raw)
            if endpoint is not None and answer[1] == errno.ENETUNREACH:
                self._refused(Denial(
                    DenialKind.NETWORK, _show(*endpoint),
                    NEEDS_NETWORK, "connect() refused"))
            elif endpoint is not None and not (  # a TCP connect made: nothing refused
                    answer[1] == 0
                    and _cgate.socket_option(sock, _SOL_SOCKET, _SO_TYPE) == _SOCK_STREAM):
                self._host_loopback(notif_id, pid, endpoint, "connect")
            return answer
        address, port = endpoint
        shown = _show(address, port)
        if _kind(address) == "other":
            self._refused(Denial(
                DenialKind.NETWORK, shown, NEEDS_NETWORK,
                "connect() refused"))
            return 0, errno.EACCES, 0
        owner = self._listener_owner(pid, port)
        if owner is None:
            return 0, errno.ECONNREFUSED, 0  # nothing listens there: nothing refused
        if not owner:
            self._refused(_host_service(shown))
            return 0, errno.EACCES, 0
        return self._connect(notif_id, pid, sock, _cgate.connect_address, raw)

    def _bind_inet(self, sock: int, domain: int, raw: bytes) -> tuple[int, int, int]:
        """A TCP bind, made on loopback: the wildcard address becomes loopback
        (as in a network namespace with only ``lo``); another address of
        the host is refused, and so is a port below
        ``ip_unprivileged_port_start`` (EACCES, as the kernel refuses the
        command)."""
        endpoint = _inet_endpoint(raw)
        if endpoint is None:
            # Not an IPv4 or IPv6 address: refused, not passed on (the kernel
            # takes AF_UNSPEC with 0.0.0.0 for every address of the host).
            return 0, errno.EAFNOSUPPORT, 0
        address, port = endpoint
        kind = _kind(address)
        if kind == "other":
            shown = _show(address, port)
            self._refused(Denial(
                DenialKind.NETWORK, shown,
                "without network a server listens on loopback only: bind 127.0.0.1, or rerun "
                "with --network (network=True)", "bind() refused"))
            return 0, errno.EADDRNOTAVAIL, 0
        if port and port < unprivileged_port_start():
            # corral may hold CAP_NET_BIND_SERVICE (a root caller); the command never does.
            if self.witness is not None:
                self.witness.record_port(port)
            return 0, errno.EACCES, 0
        if kind == "wildcard":
            raw = _loopback_address(sock, domain, raw)
        result = _perform(_cgate.bind_address, sock, raw)
        if result[1] == 0:
            self._bound.add(os.fstat(sock).st_ino)
        return result

    def _listen(self, sock: int, domain: int, backlog: int) -> tuple[int, int, int]:
        """A listen: without a network namespace of the run's own, of an
        inet socket the gate bound (on loopback) only, binding one not bound
        yet there first.  (Another is one bound where Landlock has no TCP
        rules, below ABI 4, by a command that swapped it in for a Unix
        socket once the gate let that bind through.)"""
        if domain != _AF_UNIX and not self._private_network:
            if int.from_bytes(_cgate.socket_name(sock)[2:4], "big") == 0:
                # Not bound: listen would bind it to every address of the host.
                result = self._bind_inet(sock, domain, _loopback_address(sock, domain, b""))
                if result[1]:
                    return result
            elif os.fstat(sock).st_ino not in self._bound:
                return 0, errno.EACCES, 0
        return _perform(_cgate.listen, sock, backlog)

    def _listener_owner(self, pid: int, port: int) -> bool | None:
        """Whether the servers listening on ``port`` that a loopback connect
        could reach are all this run's (None: there are none)."""
        found = _loopback_listeners(pid, port)
        if not found:
            return None
        return found <= self._bound

    def _own_socket(self, pid: int, path: str) -> str | None:
        """A path to connect to if ``path`` names, in the command's view, one
        of the command's own sockets: ``/proc/self/fd/N`` on the socket
        itself, pinned, so that what was checked is what is reached.
        :data:`_MISSING` if nothing is there, None if it is not the command's.

        With a private network namespace, a socket is the command's own if a
        process of the run listens on it: a listening socket of that
        namespace was bound at this very socket file (not merely at a path
        that names it now).
        Without one, if it lies beneath one of the ``own`` directories, or
        if a socket the run bound listens at that very file: the host's
        namespace holds every user's sockets, so one is the run's by the
        cookie the kernel gave it (never given again), seen at its bind.
        """
        if path.startswith("@") or not (self._private_network or self._own
                                        or self._bound_unix):
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
            directory = os.path.dirname(path.lstrip("/")) or "."
            if path.startswith("/"):
                parent = _cgate.open_in_root(root, os.fsencode(directory),
                                             os.O_PATH | os.O_DIRECTORY)
            else:  # from the command's working directory, in its view (symlinks too)
                cwd = os.readlink(f"/proc/{pid}/cwd")
                if not cwd.startswith("/") or cwd.endswith(" (deleted)"):
                    return None
                parent = _cgate.open_in_root(root, os.fsencode(os.path.join(cwd, directory)),
                                             os.O_PATH | os.O_DIRECTORY)
            pinned = os.open(os.path.basename(path),
                             os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            if not stat.S_ISSOCK(os.fstat(pinned).st_mode):
                return None
            if self._private_network:
                own = _bound_identity(pinned) in _listening(self._diag)
            else:
                own = self._beneath_own(root, parent) or self._bound_by_the_run(pinned)
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

    def _bound_by_the_run(self, pinned: int) -> bool:
        """Whether a Unix socket the run bound listens at the socket file
        ``pinned``, in the host's network namespace."""
        if not self._bound_unix:
            return False
        if self._diag < 0:
            self._diag = _cgate.netlink_socket(_NETLINK_SOCK_DIAG)
        return not _listening(self._diag).get(_bound_identity(pinned), set()).isdisjoint(
            self._bound_unix)

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


def _listening(diag: int) -> dict[tuple[int, int, int], set[int]]:
    """The socket files the listening Unix sockets of a network namespace
    were bound at, as :func:`_bound_identity` gives them, each with the
    cookies of the sockets listening there, asked of the kernel through
    ``diag``, a NETLINK_SOCK_DIAG socket of that namespace (-1: none is
    known).

    The kernel keeps the file each socket was bound at, whatever became of
    its path since: a path renamed, relinked or replaced by a symlink to a
    host socket names that host socket, not the run's."""
    if diag < 0:
        return {}
    # nlmsghdr (SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP), then
    # unix_diag_req: AF_UNIX, listening sockets only, with UNIX_DIAG_VFS.
    request = struct.pack("<IHHII", 16 + 24, 20, 0x301, 1, 0)
    request += struct.pack("<BBHIIIII", _AF_UNIX, 0, 0, 1 << 10, 0, 0x2, 0, 0)
    found: dict[tuple[int, int, int], set[int]] = {}
    try:
        os.write(diag, request)
        while True:
            data = os.read(diag, 65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("<IH", data, offset)
                if kind in (2, 3) or length < 16:  # NLMSG_ERROR, NLMSG_DONE
                    return found
                _vfs_attribute(data[offset + 16:offset + length], found)
                offset += (length + 3) & ~3
    except OSError:
        return found


def _vfs_attribute(message: bytes, found: dict[tuple[int, int, int], set[int]]) -> None:
    """Adds the UNIX_DIAG_VFS attribute of one unix_diag_msg to ``found``,
    with the socket's cookie."""
    if len(message) < 16:
        return
    low, high = struct.unpack_from("<II", message, 8)  # udiag_cookie
    offset = 16  # sizeof(struct unix_diag_msg)
    while offset + 4 <= len(message):
        length, kind = struct.unpack_from("<HH", message, offset)
        if length < 4:
            return
        if kind == 1 and length >= 12:  # UNIX_DIAG_VFS: inode, then the kernel's dev_t
            inode, device = struct.unpack_from("<II", message, offset + 4)
            found.setdefault((device >> 20, device & 0xFFFFF, inode), set()).add(
                low | high << 32)
        offset += (length + 3) & ~3


def _bound_identity(fd: int) -> tuple[int, int, int]:
    """(major, minor, low 32 bits of the inode) of the file open at ``fd``:
    what sock_diag reports of a socket's file."""
    st = os.fstat(fd)
    return os.major(st.st_dev), os.minor(st.st_dev), st.st_ino & 0xFFFFFFFF


def _cookie(sock: int) -> int:
    """The socket's cookie (SO_COOKIE), or 0 (which none has) where the
    kernel cannot say."""
    try:
        return _cgate.socket_option(sock, _SOL_SOCKET, _SO_COOKIE)
    except OSError:
        return 0


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _identity_fd(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _signal_waits(tid: int) -> bool:
    """Whether thread ``tid`` has a signal waiting for it that it does not
    block and has a handler for: one that interrupts a blocking call.

    The answer :data:`_ERESTARTSYS` must go only to a thread the kernel
    has marked as having a signal to take (without one, the program would
    be handed 512 as its call's outcome).  A signal sent to the thread is
    its own; one sent to the whole process goes to the thread it names,
    which is the main thread for every sender but a child's exit (SIGCHLD
    names the thread that forked it) and a kill naming another thread's id,
    unless that thread blocks it (looked at here).  So a signal sent to the
    process counts only for the main thread, or a process's one thread;
    another thread's call goes on, and the handler runs once it is over.
    Fatal signals need no looking at: they end a killable wait."""
    try:
        with open(f"/proc/{tid}/status", "rb") as status:
            fields = dict(line.split(b":", 1) for line in status.read().splitlines()
                          if b":" in line)
        waiting = int(fields[b"SigPnd"], 16)
        if int(fields[b"Threads"]) == 1 or int(fields[b"Tgid"]) == tid:
            waiting |= int(fields[b"ShdPnd"], 16)
        return bool(waiting & ~int(fields[b"SigBlk"], 16) & int(fields[b"SigCgt"], 16))
    except (OSError, KeyError, ValueError):
        return False  # gone: nothing to interrupt


def _perform(call: Callable[[int, Any], None], sock: int, argument: Any) -> tuple[int, int, int]:
    try:
        call(sock, argument)
    except OSError as exc:
        return 0, exc.errno or errno.EINVAL, 0
    return 0, 0, 0


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _read_memory(pid: int, address: int, length: int) -> bytes | None:
    """``length`` bytes (a socket address: at most 128) at ``address`` in ``pid``."""
    if not 2 <= length <= _SOCKADDR_MAX:
        return None
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            memory.seek(address)
            raw = memory.read(length)
    except (OSError, OverflowError, ValueError):
        return None
    return raw if len(raw) == length else None


def _framed_path(data: bytes, offset: int, head: int) -> tuple[bytes, int] | None:
    """The path of the report at ``offset`` in ``data`` (``head`` bytes of
    its own, then the path's length, uint16, then the path) and where the
    next report begins; None until all of it has been read."""
    if offset + head + 2 > len(data):
        return None
    size, = struct.unpack_from("<H", data, offset + head)
    end = offset + head + 2 + size
    return (data[offset + head + 2:end], end) if end <= len(data) else None


def _framed_send(data: bytes, offset: int) -> tuple[bytes, int, int] | None:
    """The address of the "S" or "L" report at ``offset`` in ``data``, which
    call sent there (see :data:`_SENT_BY`), and where the next report
    begins; None until all of it has been read.  An "L" carries the
    notification first."""
    start = offset + 1 + (_NOTIF_SIZE if data[offset:offset + 1] == b"L" else 0)
    if start + 2 > len(data):
        return None
    end = start + 2 + data[start + 1]
    return (data[start + 2:end], data[start], end) if end <= len(data) else None


def _names_netlink_peers(raw: bytes) -> bool:
    """Whether the ``sockaddr_nl`` ``raw`` names a process or a multicast
    group (``nl_pid``, ``nl_groups``).  A connect there takes CAP_NET_ADMIN
    over the socket's network namespace, for every protocol but
    NETLINK_USERSOCK: corral holds it over the run's own, the command never
    does, so the gate refuses such a connect with the kernel's EPERM."""
    if len(raw) < 12 or struct.unpack_from("<H", raw)[0] != _AF_NETLINK:
        return False  # a disconnect (AF_UNSPEC), or what the kernel refuses itself (EINVAL)
    return struct.unpack_from("<II", raw, 4) != (0, 0)


def _inet_endpoint(raw: bytes) -> tuple[bytes, int] | None:
    """(address, port) of a ``sockaddr_in`` or ``sockaddr_in6``, else None."""
    family, = struct.unpack_from("<H", raw)
    if family == _AF_INET and len(raw) >= 8:
        return raw[4:8], int.from_bytes(raw[2:4], "big")
    if family == _AF_INET6 and len(raw) >= 24:
        return raw[8:24], int.from_bytes(raw[2:4], "big")
    return None


def _unmapped(address: bytes) -> bytes:
    """A 4- or 16-byte IP address, an IPv4-mapped IPv6 one as IPv4."""
    return address[12:] if address[:12] == bytes(10) + b"\xff\xff" else address


def _kind(address: bytes) -> str:
    """"loopback", "wildcard" (it means loopback to connect, every address
    to bind) or "other", for a 4- or 16-byte IP address."""
    address = _unmapped(address)
    if address == bytes(len(address)):
        return "wildcard"
    if len(address) == 4:
        return "loopback" if address[0] == 127 else "other"
    return "loopback" if address == bytes(15) + b"\x01" else "other"


def _show(address: bytes, port: int) -> str:
    import ipaddress  # only to report a denial

    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"[::ffff:{ip.ipv4_mapped}]:{port}"  # as every Python shows it
    return f"{ip}:{port}" if ip.version == 4 else f"[{ip}]:{port}"


def _loopback_address(sock: int, domain: int, raw: bytes) -> bytes:
    """``raw`` (a wildcard address; empty: port 0) with loopback in its
    place.  A dual-stack IPv6 socket gets IPv4 loopback, as IPv4 clients
    (127.0.0.1) are the usual ones."""
    port = raw[2:4] or bytes(2)
    if domain == _AF_INET:
        return struct.pack("<H", _AF_INET) + port + bytes([127, 0, 0, 1]) + bytes(8)
    v6only = _cgate.socket_option(sock, _IPPROTO_IPV6, _IPV6_V6ONLY)
    loopback = bytes(15) + b"\x01" if v6only else bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])
    rest = raw[24:28] if len(raw) >= 28 else bytes(4)  # the scope id
    return struct.pack("<H", _AF_INET6) + port + (raw[4:8] or bytes(4)) + loopback + rest


def _host_service(shown: str, call: str = "connect") -> Denial:
    return Denial(DenialKind.NETWORK, shown,
                  f"{shown} is a service of the host, not of this run: rerun with --network "
                  "(network=True) to reach it", f"{call}() refused")


def _reaches(destination: bytes, bound: bytes) -> bool:
    """Whether a packet to the loopback or wildcard ``destination`` reaches
    a socket bound to ``bound`` (4 or 16 bytes each; an IPv6 wildcard
    socket is taken for dual-stack, Linux's default)."""
    destination, bound = _unmapped(destination), _unmapped(bound)
    if destination == bytes(len(destination)):  # a wildcard reaches loopback
        destination = bytes([127, 0, 0, 1]) if len(destination) == 4 else bytes(15) + b"\x01"
    return bound in (destination, bytes(len(destination))) or bound == bytes(16)


def _loopback_listeners(pid: int, port: int) -> set[int]:
    """The inodes of the TCP sockets listening on ``port`` in ``pid``'s
    network namespace at an address a loopback connect reaches."""
    return {inode for address, listening, inode in tcp_listeners(pid)
            if listening == port and _kind(address) != "other"}


def _port_in_use(pid: int, port: int) -> bool:
    """Whether a socket of ``pid``'s network namespace is bound to ``port``
    (TCP or UDP, any address), from ``/proc/<pid>/net``."""
    wanted = f":{port:04X}".encode()
    return any(len(fields) > 1 and fields[1].endswith(wanted)
               for fields in _net_rows(pid, ("udp", "udp6", "tcp", "tcp6")))


def tcp_listeners(pid: int) -> list[tuple[bytes, int, int]]:
    """(address, port, socket inode) of every TCP socket listening in ``pid``'s
    network namespace, from ``/proc/<pid>/net/tcp`` and ``tcp6``."""
    return _sockets(pid, ("tcp", "tcp6"), listening=True)


def _sockets(pid: int, tables: tuple[str, ...],
             listening: bool = False) -> list[tuple[bytes, int, int]]:
    """(address, port, socket inode) of the sockets in ``pid``'s ``tables``
    (only the listening ones with ``listening``)."""
    found = []
    for fields in _net_rows(pid, tables):
        # sl local_address rem_address st ... uid timeout inode; st 0A = LISTEN
        if len(fields) < 10 or (listening and fields[3] != b"0A"):
            continue
        hex_address, _, hex_port = fields[1].partition(b":")
        # The kernel prints each 32-bit word in host order.
        words = bytes.fromhex(hex_address.decode())
        address = b"".join(words[i:i + 4][::-1] for i in range(0, len(words), 4))
        found.append((address, int(hex_port, 16), int(fields[9])))
    return found


def _net_rows(pid: int, tables: tuple[str, ...]) -> list[list[bytes]]:
    """The rows, split into fields, of ``pid``'s ``/proc/<pid>/net`` tables
    (a table that cannot be read has none)."""
    rows = []
    for table in tables:
        try:
            with open(f"/proc/{pid}/net/{table}", "rb") as f:
                rows += [line.split() for line in f.read().splitlines()[1:]]
        except OSError:
            continue
    return rows


def _unix_name(raw: bytes) -> str | None:
    """The name in the ``sockaddr_un`` ``raw`` (abstract names start with
    ``@``), or None if it is no such address."""
    family, = struct.unpack_from("<H", raw)
    if family != _AF_UNIX:
        return None
    if raw[2:3] == b"\0":
        return "@" + os.fsdecode(raw[3:])
    return os.fsdecode(raw[2:].split(b"\0", 1)[0])

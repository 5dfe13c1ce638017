"""Landlock rulesets: "write only beneath these paths", enforced by the kernel.

A ruleset is built here, in the parent, and handed to the spawn stage as an
fd; the child enforces it on itself right before exec (``_cspawn.c``), so a
Landlock-confined command costs no helper process.  Reads are restricted
only where asked (``unreadable``: the host's devices but those bubblewrap's
/dev has, among them its terminals in /dev/pts, which would give away what
the user types, and its /dev/shm, other programs' shared memory; the
deny-read paths), by rules that grant reading every
entry of each directory on the way there but the next step (the right to
execute is not "handled"); every right that changes the filesystem is, and
is granted only beneath the given writable roots.
Rights added by later ABIs are used when the kernel has them: REFER (ABI 2)
stops hard links and renames that would move a file across the boundary,
TRUNCATE (ABI 3) stops truncating a file outside, IOCTL_DEV (ABI 5) stops
the device ioctls of what the command opens itself (a terminal of the
user's, were /dev/pts not unreadable: it could turn off its echo, or type
into it; what it inherits, its own terminal included, and the terminals
corral's gate opens for it are not affected), and the
scopes of ABI 6
keep the command from signalling processes outside its domain and, without
network, from connecting to abstract Unix sockets outside it (with network
it reaches the host's, as it does under bubblewrap, whose run then shares
the host's network namespace, where they live).  Below ABI 6 corral's gate
does both: it refuses each signal to a process outside the run (see
``guard_signal`` in ``_cgate.c``), and, without network, every connect to
an abstract name (as it does at any ABI: see :mod:`.socket_gate`).  Below
ABI 4 no TCP rule keeps the command's own binds and connects from the
network: the gate makes each (as it does at any ABI), and lets a TCP
socket listen only if it bound it.  Below ABI 3 (Linux 6.2; Debian 12's
6.1 has ABI 2) the gate makes each ``truncate`` of a path, beneath the
writable roots only, and refuses every read-only open that truncates
(``O_RDONLY | O_TRUNC``, which Landlock would take for a read; ``openat2``,
whose flags the filter cannot see, answers ENOSYS, and programs fall back
to ``openat``).  ABI 2 (Linux 5.19), whose REFER right lets a file
be renamed or linked from one directory to another (ABI 1 refuses every
such move, within the roots too), is the least this backend takes.

``CORRAL_LANDLOCK_ABI=N`` makes corral use no more of Landlock than ABI N
(never more than the kernel has): what a machine with an older kernel gets,
to test it here.

Landlock only adds restrictions and cannot carve a read-only hole inside a
writable root: a policy that needs one must use another backend or accept
the weaker guarantee explicitly.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterable

from .._denial import SANDBOX_DEVICES
from .._errors import PolicyError
from .._launch import LaunchSpec
from .._policy import PolicyKind, SandboxPolicy
from .._record import replace
from .base import SandboxBackend
from .seccomp import build_program
from .session import session_tmp
from .socket_gate import open_gate
from .witness import Witness
from .workspace import deny_read_paths, kept_inside, plan_workspace

__all__ = ["LandlockBackend", "landlock_abi", "write_ruleset"]

_SYS_CREATE_RULESET, _SYS_ADD_RULE = 444, 445
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_READ_FILE, _WRITE_FILE = 1 << 2, 1 << 1
_REMOVE_DIR, _REMOVE_FILE = 1 << 4, 1 << 5
_MAKE_CHAR, _MAKE_DIR, _MAKE_REG, _MAKE_SOCK = 1 << 6, 1 << 7, 1 << 8, 1 << 9
_MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = 1 << 10, 1 << 11, 1 << 12
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_BIND_TCP, _CONNECT_TCP = 1 << 0, 1 << 1

_WRITE_RIGHTS_V1 = (_WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_CHAR | _MAKE_DIR
                    | _MAKE_REG | _MAKE_SOCK | _MAKE_FIFO | _MAKE_BLOCK | _MAKE_SYM)
# Rights that apply to a file itself (a rule on a non-directory takes no others).
_FILE_RIGHTS = _WRITE_FILE | _TRUNCATE


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def landlock_abi() -> tuple[int, str]:
    """(the Landlock ABI version corral uses, or 0; why not, when 0): the
    kernel's, or ``$CORRAL_LANDLOCK_ABI`` if that is lower.

    Raises :class:`PolicyError` if ``$CORRAL_LANDLOCK_ABI`` is not a whole
    number above 0."""
    import sys

    if not sys.platform.startswith("linux"):
        return 0, "Landlock is a Linux feature"  # and system call 444 means something else
    cap = os.environ.get("CORRAL_LANDLOCK_ABI", "")
    if cap and not (cap.isdigit() and int(cap) > 0):
        raise PolicyError(f"CORRAL_LANDLOCK_ABI={cap!r}: give a Landlock ABI version, "
                          "a whole number from 1")
    abi = _libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                        ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi > 0:
        return min(int(abi), int(cap or abi)), ""
    err = ctypes.get_errno()
    return 0, {
        errno.ENOSYS: "the kernel has no Landlock (before Linux 5.13, or not built in)",
        errno.EOPNOTSUPP: "Landlock is built in but disabled (add it to the lsm= boot parameter)",
    }.get(err, os.strerror(err))


def _handled(abi: int) -> tuple[int, int]:
    rights = _WRITE_RIGHTS_V1
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    scopes = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    return rights, scopes


def _readable_but(unreadable: Iterable[str]) -> list[str]:
    """The paths whose rules let a command read everywhere but beneath
    ``unreadable`` (real paths): each entry of every directory on the way
    from / to one of them, but the way itself (symbolic links left out: what
    they name is reached by its own path)."""
    hidden = {path.rstrip("/") or "/" for path in unreadable}
    on_the_way = {os.path.dirname(path) for path in hidden}
    for path in list(on_the_way):
        while path != "/":
            path = os.path.dirname(path)
            on_the_way.add(path)
    found = []
    for directory in sorted(on_the_way):
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # gone, or not searchable: nothing in it to read either
        found += [entry.path for entry in entries
                  if entry.path not in hidden and entry.path not in on_the_way
                  and not entry.is_symlink()]
    return found


def write_ruleset(writable: Iterable[str], abi: int | None = None, *,
                  deny_tcp: bool = False, abstract_sockets: bool = False,
                  unreadable: Iterable[str] = (), readable: Iterable[str] = ()) -> int:
    """A ruleset fd allowing writes only beneath ``writable`` (directories or files).

    With ``deny_tcp`` (ABI 4 or later) the command may neither bind nor
    connect a TCP socket itself: corral's gate, which Landlock does not
    confine, does it for the command where the policy allows.  With
    ``abstract_sockets`` it may connect to abstract Unix sockets outside its
    domain (the host's).  Given ``unreadable`` (real paths, none beneath a
    writable one nor another), the command may read files everywhere but
    beneath those, and ``readable`` files inside them (what is made
    meanwhile in a directory on the way to one, outside the writable ones,
    is unreadable too; names stay listable: reading a directory is not
    handled, or none on the way could be listed).  Paths that do not exist
    are skipped.
    The caller owns the fd.  Raises OSError when the kernel refuses (no
    Landlock: see :func:`landlock_abi`).
    """
    if abi is None:
        abi, why = landlock_abi()
        if not abi:
            raise OSError(errno.EOPNOTSUPP, f"Landlock is not available: {why}")
    rights, scopes = _handled(abi)
    unreadable = tuple(unreadable)
    file_rights = _FILE_RIGHTS
    if unreadable:
        rights |= _READ_FILE
        file_rights |= _READ_FILE
    if abstract_sockets:
        scopes &= ~_SCOPE_ABSTRACT_UNIX_SOCKET
    if deny_tcp and abi < 4:
        raise OSError(errno.EOPNOTSUPP, f"Landlock ABI {abi} has no TCP rules (4 is needed)")
    attr = _RulesetAttr(rights, _BIND_TCP | _CONNECT_TCP if deny_tcp else 0, scopes)
    # Older kernels reject the fields they do not know.
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr),
                            ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        rule = _PathBeneathAttr()
        add_rule, number = _libc.syscall, ctypes.c_long(_SYS_ADD_RULE)
        # Reading is a right of a file as of a directory: a read rule needs
        # no look at what it is on.
        for path, allowed in [*((path, rights) for path in writable),
                              *((path, _READ_FILE) for path in _readable_but(unreadable)),
                              *((path, _READ_FILE) for path in readable)]:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                is_dir = allowed == _READ_FILE or stat.S_ISDIR(os.fstat(fd).st_mode)
                rule.allowed_access = allowed if is_dir else allowed & file_rights
                rule.parent_fd = fd
                if add_rule(number, ctypes.c_int(ruleset), _RULE_PATH_BENEATH, ctypes.byref(rule),
                            ctypes.c_uint32(0)):
                    err = ctypes.get_errno()
                    raise OSError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
            finally:
                os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return int(ruleset)


def _hidden_devices() -> list[str]:
    """The entries of the host's /dev that bubblewrap's own /dev lacks, and
    /dev/pts (the gate opens the run's own terminals) and /dev/shm (it
    makes the run's own POSIX shared memory elsewhere: the host's holds
    other programs' data, which bubblewrap's private /dev/shm does not
    show either), as real paths."""
    try:
        names = os.listdir("/dev")
    except OSError:
        return []
    return [os.path.realpath(f"/dev/{name}") if name == "shm" else f"/dev/{name}"
            for name in names if name not in SANDBOX_DEVICES or name in ("pts", "shm")]


# A run's writable roots, then what _hideable says of its deny-read paths.
_Plan = tuple[tuple[str, ...], list[str], list[str], list[str]]


def _roots(policy: SandboxPolicy, cwd: str) -> tuple[str, ...]:
    """The writable roots of ``policy`` run in ``cwd``: only the roots,
    nothing is protected here (``unprotected-paths``)."""
    if policy.kind is not PolicyKind.WORKSPACE_WRITE:
        return ()
    return plan_workspace(replace(policy, protected=(), deny_read=()), cwd, hidden={}).roots


def _hideable(policy: SandboxPolicy, cwd: str,
              roots: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    """The deny-read paths (real paths) whose files Landlock can keep the
    command from reading: those outside every writable root (a rule there
    lets it read beneath); the files inside them that stay readable
    (``~/.ssh/known_hosts``); and the deny-read paths it cannot hide, in a
    root.  Raises PolicyError where the working directory or a root lies
    inside one it hides, as bubblewrap does."""
    found: dict[str, str] = {}
    shown: list[str] = []
    for path in deny_read_paths(policy, cwd):
        real = os.path.realpath(path)
        if any(_within(real, root) for root in roots):
            shown.append(path)
        else:
            found[real] = path
    # One beneath another is hidden with it.
    outermost = [real for real in found if not any(_within(real, other) and real != other
                                                   for other in found)]
    for real in outermost:
        for inside, what in ((os.path.realpath(cwd), "the working directory"),
                             *((root, "writable root") for root in roots)):
            if _within(inside, real):
                raise PolicyError(f"{what} {inside} is inside {found[real]}, which is hidden "
                                  "from sandboxed commands (deny-read): run elsewhere, or drop "
                                  "it from deny_read")
    kept = [inner for real in outermost if os.path.isdir(real)
            for inner in kept_inside(found[real])]
    return outermost, kept, shown


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


class LandlockBackend(SandboxBackend):
    """Sandboxed policies where bubblewrap cannot run: Landlock + seccomp, no namespaces.

    The command may write only to its session's private temporary directory
    (its ``$TMPDIR``, see :mod:`.session`), ``/dev/null`` and the other
    devices anyone may write and, under ``workspace-write``, beneath the
    writable roots; the gate makes its POSIX shared memory, named
    semaphores, message queues, pseudo-terminals and System V IPC objects
    for it, its own,
    and opens the /proc files of its processes it may write under bwrap.
    It may read every file but the host's devices that bubblewrap's /dev
    lacks (disks, cameras, terminals) and, outside the writable roots, the
    deny-read paths.  Without network
    there is no network namespace to contain its sockets, so the gate
    (:mod:`.socket_gate`) decides each ``bind``, ``listen`` and ``connect``:
    TCP servers listen on loopback only, and TCP clients reach only the
    servers of this run; Unix sockets reach only its own and the allowed
    ones; no other socket (UDP, raw, packet, netlink) can be opened.
    It cannot trace processes outside its Landlock domain, nor signal them
    (ABI 6; below it, the gate refuses a signal to a process outside the
    run, see :class:`.SocketGate`), nor change the limits or scheduling of
    processes outside the run (the gate refuses those, which Landlock does
    not scope), and holds no capability, even when corral runs as root.
    What it cannot do is what the caller must accept by name (see
    :meth:`weaker_guarantees`).
    """

    name: str | None = "landlock"
    #: REFER (ABI 2) lets a file move from one directory to another beneath
    #: the roots (ABI 1 refuses every such rename or link, EXDEV); below it
    #: this backend is not offered.
    MINIMUM_ABI = 2
    #: TRUNCATE (ABI 3): below it the gate makes each truncate of a path.
    TRUNCATE_ABI = 3
    #: TCP rules (ABI 4): below them the gate alone keeps TCP on loopback.
    TCP_ABI = 4
    #: Signal scoping (ABI 6) keeps the command from killing the user's other
    #: processes; below it the gate does (see :class:`.SocketGate`).
    SIGNAL_SCOPING_ABI = 6

    def __init__(self, abi: int) -> None:
        self.abi = abi
        # The last run's roots and what it hides, by its policy and working
        # directory: worked out once for the rung's check and the transform.
        self._planned: tuple[SandboxPolicy, str, _Plan] | None = None

    def _plan(self, policy: SandboxPolicy, cwd: str) -> _Plan:
        if self._planned is None or self._planned[:2] != (policy, cwd):
            roots = _roots(policy, cwd)
            self._planned = (policy, cwd, (roots, *_hideable(policy, cwd, roots)))
        return self._planned[2]

    def weaker_guarantees(self, policy: SandboxPolicy, cwd: str | None = None) -> list[str]:
        """The names from WEAKER_GUARANTEES this backend needs accepted for
        ``policy``, run in ``cwd`` (default: the current directory)."""
        needed = ["shared-tmp", "visible-processes", "changeable-attributes"]
        if self._plan(policy, cwd or os.getcwd())[3]:
            needed.append("no-deny-read")
        if policy.kind is PolicyKind.WORKSPACE_WRITE:
            # Even with no protected path named: what decides the code
            # corral runs next (its installation, the bwrap it takes) is
            # protected under bwrap, and cannot be here.
            needed.append("unprotected-paths")
        return needed

    def transform(self, launch: LaunchSpec, policy: SandboxPolicy) -> LaunchSpec:
        cwd = launch.cwd or os.getcwd()
        # What lies in a root stays readable: the ``no-deny-read`` accepted.
        roots, secrets, kept, _ = self._plan(policy, cwd)
        private_tmp = session_tmp()
        # The devices bubblewrap's /dev has, which anyone may write.
        writable = [private_tmp, "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                    "/dev/urandom", *roots]
        # What Landlock refuses (EACCES) is a write beneath none of the rules.
        witness = Witness(policy, cwd, tuple(writable))
        # Without network the only sockets are Unix stream and TCP ones, each
        # connect decided by the gate: a Unix one reaches an allowed socket or
        # its own, which without a network namespace of its own means beneath
        # its private $TMPDIR (a host service's socket may lie in a root,
        # ~/.docker/run/docker.sock); a TCP one reaches a server of the run.
        # The host's /dev/shm is read-only here: the names of the session's
        # POSIX shared memory and semaphores are kept in a directory of its own.
        guard_signals = self.abi < self.SIGNAL_SCOPING_ABI
        gate = open_gate(policy, (private_tmp,), private_network=False, witness=witness,
                         shm_dir=os.path.join(private_tmp, ".dev-shm"),
                         guard_signals=guard_signals,
                         guard_truncate=self.abi < self.TRUNCATE_ABI)
        if gate is None and guard_signals:
            raise PolicyError(
                f"Landlock ABI {self.abi} cannot keep the command from signalling the user's "
                "other processes (ABI 6, Linux 6.12, can), and corral's gate, which would, "
                "needs its C extensions and Linux 5.14: install bubblewrap, or use a newer "
                "kernel")
        gated = gate is not None and not policy.network
        try:
            # The host's devices but those bubblewrap's /dev has: its disks,
            # cameras and terminals (a command that read one would take what
            # the user types there).
            ruleset = write_ruleset(writable, self.abi,
                                    deny_tcp=gated and self.abi >= self.TCP_ABI,
                                    abstract_sockets=policy.network,
                                    unreadable=(*_hidden_devices(), *secrets), readable=kept)
        except BaseException:
            if gate is not None:
                gate.close()
            raise
        env = dict(launch.env)
        env.update(CORRAL_SANDBOX="landlock", TMPDIR=private_tmp)
        if policy.network:
            env.pop("CORRAL_SANDBOX_NETWORK_DISABLED", None)
        else:
            env["CORRAL_SANDBOX_NETWORK_DISABLED"] = "1"
        return replace(
            launch,
            env=env,
            landlock_ruleset=ruleset,
            seccomp_program=build_program(
                deny_network=not policy.network,
                deny_unix_sockets=not policy.network and gate is None,
                deny_unix_datagrams=gated,
                loopback_tcp=gated,
                notify=("connect", "bind", "listen") if gated else (),
                # Landlock has no right for a file's attributes: changing
                # them is not refused (the ``changeable-attributes`` the
                # caller accepted), so it is not watched either.
                witness_writes=gate is not None, witness_attributes=False,
                witness_execs=gate is not None, witness_privileges=gate is not None,
                witness_signals=gate is not None, guard_signals=guard_signals,
                witness_limits=gate is not None,
                # No PID namespace keeps the host's processes out of reach
                # of the calls that change a process's limits or scheduling.
                guard_processes=gate is not None,
                # Nor does an IPC namespace keep the host's IPC objects
                # apart: the gate gives the run System V objects and POSIX
                # message queues of its own (without it, none).
                deny_ipc=True, guard_ipc=gate is not None,
                # With network, no gate decides binds: each is looked at.
                witness_binds=gate is not None and policy.network,
                identity=(os.getuid(), os.getgid()),
                # Below TRUNCATE the gate refuses a read-only open that
                # truncates by its flags, which openat2 keeps in memory.
                no_openat2=self.abi < self.TRUNCATE_ABI),
            socket_gate=gate,
            drop_capabilities=True,
            owned_fds=launch.owned_fds + (ruleset,),
            cleanups=launch.cleanups + (() if gate is None else (gate.close,)),
        )

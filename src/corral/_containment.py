"""Containment: how every process a run starts is found and ended.

Two mechanisms, the strongest available chosen per run:

``cgroup``
    Each run gets its own cgroup v2, created below corral's own cgroup; the
    child joins it before exec (see ``_cspawn.c``), so everything it ever
    forks is inside, whatever it does (setsid, double fork, ignoring
    SIGTERM).  ``cgroup.kill`` (Linux 5.14+) SIGKILLs the lot atomically, and
    ``cgroup.events`` says whether anything is left.  Needs a writable cgroup
    v2 hierarchy: root, a systemd-delegated user scope, or a container with
    its own cgroup namespace.

``process-group`` (the documented fallback)
    The child leads a new session; ``killpg`` ends its process group.  A
    process that calls ``setsid`` or ``setpgid`` leaves the group and escapes
    this kill; results name the mechanism so the caller knows.

Sandboxed runs add what their backend knows on top: bubblewrap's PID
namespace, or on Landlock the sessions the run's processes made, which its
seccomp gate learns of and kills with the run (see
``SocketGate.end_sessions``); the engine talks to the :class:`Containment`
interface, and to the gate.
"""

from __future__ import annotations

import _thread  # not threading, which costs start-up 1-2 ms: a lock is all it takes
import atexit
import errno
import itertools
import os
import time
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False

from ._errors import PolicyError
from ._result import KillMechanism

if TYPE_CHECKING:
    from signal import SIGKILL
else:  # signal's C core: signal itself makes IntEnums of every constant, 2 ms of start-up
    from _signal import SIGKILL

__all__ = ["cgroup_support", "ensure_watchdog", "open_containment"]

# How long closing a run waits for killed processes to leave its cgroup before
# giving up on removing it (SIGKILLed processes exit in microseconds).
_CGROUP_EMPTY_WAIT = 2.0
_RUN_PREFIX = "corral-"


if TYPE_CHECKING:
    from typing import Protocol

    class Containment(Protocol):
        mechanism: KillMechanism
        #: fd on the run cgroup's directory, for the child to start in, or -1.
        cgroup_fd: int

        def attach(self, pid: int) -> None:
            """Records the started child; called once, right after spawn."""

        def kill(self) -> None:
            """SIGKILLs every process of the run.  Idempotent."""

        def has_survivors(self) -> bool:
            """True while some process of the run (other than a zombie leader) lives."""

        def close(self) -> None:
            """Kills whatever is left and releases the mechanism's resources."""


class ProcessGroupContainment:
    mechanism = KillMechanism.PROCESS_GROUP
    cgroup_fd = -1

    def __init__(self) -> None:
        self._pgid = 0
        ensure_watchdog()

    def attach(self, pid: int) -> None:
        self._pgid = pid  # the child called setsid(): its pid is its group
        _tell_watchdog(f"+{pid}")  # if this process dies, the watchdog kills the group

    def kill(self) -> None:
        if self._pgid:
            try:
                os.killpg(self._pgid, SIGKILL)
            except ProcessLookupError:
                pass

    def has_survivors(self) -> bool:
        if not self._pgid:
            return False
        try:
            os.killpg(self._pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def close(self) -> None:
        self.kill()
        if self._pgid:
            _tell_watchdog(f"-{self._pgid}")
            self._pgid = 0


class CgroupContainment:
    mechanism = KillMechanism.CGROUP

    def __init__(self, host: _CgroupHost) -> None:
        self._host = host
        self.path = host.acquire()
        try:
            self.cgroup_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            host.discard(self.path)
            raise
        self._released = False
        self._attached = False
        self._empty = False
        self._killed = False

    def attach(self, pid: int) -> None:
        # The child has joined (or failed and was reaped): the fd's job is done.
        self._attached = True
        self._close_cgroup_fd()

    def _close_cgroup_fd(self) -> None:
        if self.cgroup_fd >= 0:
            os.close(self.cgroup_fd)
            self.cgroup_fd = -1

    def kill(self) -> None:
        if not self._released:
            self._killed = True
            _kill_cgroup(self.path)

    def has_survivors(self) -> bool:
        # Once the leader is gone and the cgroup is empty nothing can enter it
        # again, so an empty answer is final.
        if self._released or self._empty:
            return False
        fd = os.open(os.path.join(self.path, "cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            populated = b"populated 1" in os.read(fd, 256)
        finally:
            os.close(fd)
        self._empty = not populated and self._attached
        return populated

    def close(self) -> None:
        if self._released:
            return
        self._close_cgroup_fd()
        deadline = time.monotonic() + _CGROUP_EMPTY_WAIT
        while self.has_survivors():
            if time.monotonic() > deadline:
                # Something unkillable (e.g. stuck in the kernel): leave the
                # cgroup out of the pool; the next corral process sweeps it.
                self._released = True
                return
            self.kill()
            time.sleep(0.0005)
        self._released = True
        if self._killed:
            # Some kernels (seen on 6.18) kill every later CLONE_INTO_CGROUP
            # child of a cgroup that was once killed: never reuse one.
            self._host.discard(self.path)
        else:
            self._host.release(self.path)


def _kill_cgroup(path: str) -> None:
    try:
        fd = os.open(os.path.join(path, "cgroup.kill"), os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.write(fd, b"1")
    finally:
        os.close(fd)


class _CgroupHost:
    """The cgroup corral's runs are created in, with a pool of empty run cgroups.

    Creating and removing a cgroup costs more than a whole ``true`` command's
    spawn overhead, so empty run cgroups are reused: at most ``_POOL_SIZE``
    wait in the pool, and they are removed when the process exits.
    """

    _POOL_SIZE = 8

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self._lock = _thread.allocate_lock()
        self._free: list[str] = []
        self._ids = itertools.count(1)

    def acquire(self) -> str:
        with self._lock:
            if self._free:
                return self._free.pop()
        path = os.path.join(self.parent, f"{_RUN_PREFIX}{process_token()}-{next(self._ids)}")
        os.mkdir(path, 0o755)
        return path

    def release(self, path: str) -> None:
        with self._lock:
            if len(self._free) < self._POOL_SIZE:
                self._free.append(path)
                return
        self.discard(path)

    def discard(self, path: str) -> None:
        try:
            os.rmdir(path)
        except OSError:
            pass

    def clear(self) -> None:
        with self._lock:
            free, self._free = self._free, []
        for path in free:
            self.discard(path)

    def pooled(self) -> int:
        with self._lock:
            return len(self._free)

    def sweep_stale(self) -> None:
        """Kills and removes run cgroups left by corral processes that died."""
        for name in os.listdir(self.parent):
            if not name.startswith(_RUN_PREFIX):
                continue
            owner = name[len(_RUN_PREFIX):].split("-", 1)[0]
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                path = os.path.join(self.parent, name)
                try:
                    _kill_cgroup(path)
                    os.rmdir(path)
                except OSError:
                    pass


_WATCHDOG_SHELL = "/bin/sh"
#: The name of an MCP server's outputs directory in corral's runtime
#: directory, before its process token (the watchdog removes it by that name).
OUTPUTS_PREFIX = "outputs-"
# $1: the parent of the run cgroups ("" without cgroups); $2: corral's token;
# $3: corral's runtime directory (the placeholder records, and the MCP
# server's outputs, in OUTPUTS_PREFIX<token>); $4, $5, $6: python, the sweep code
# and corral's import path; $7: where session directories are; $8: the code
# that removes IPC objects.  On its stdin, corral announces the process
# group of each run contained by process group ("+PGID", "-PGID" when the
# run is over) and each IPC object a Landlock run has ("=K:ID", "~K:ID" once
# removed; see watchdog_pipe).  Runs after corral is
# gone: kills its runs (the groups still announced, the run cgroups), removes
# the IPC objects still announced, its session's temporary directory and its
# outputs, then lets Python remove
# the placeholders its sandboxes no longer need.  A sandbox that was being set
# up may still make its mount points in the session's directory (its /tmp)
# until its own kill lands, so that removal is tried again until it holds,
# for 30 s at most, as the placeholders' sweep waits for the sandboxes.
_WATCHDOG_SCRIPT = """
groups=" "
ipc=" "
while read -r line; do
  case "$line" in
    +*) groups="$groups${line#+} " ;;
    -*) kept=" "; for g in $groups; do [ "$g" = "${line#-}" ] || kept="$kept$g "; done
        groups="$kept" ;;
    =*) ipc="$ipc${line#=} " ;;
    ~*) kept=" "; for o in $ipc; do [ "$o" = "${line#~}" ] || kept="$kept$o "; done
        ipc="$kept" ;;
  esac
done
for g in $groups; do kill -9 -"$g" 2>/dev/null; done
if [ -n "$1" ]; then
  for i in 1 2 3 4 5 6 7 8 9 10; do
    left=0
    for d in "$1"/corral-"$2"-*; do
      [ -d "$d" ] || continue
      echo 1 > "$d/cgroup.kill" 2>/dev/null
      rmdir "$d" 2>/dev/null || left=1
    done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
fi
[ "$ipc" = " " ] || "$4" -I -c "$8" $ipc
for d in "$7"/corral-session-"$2"-*; do
  i=0
  while [ -d "$d" ] && [ "$i" -lt 300 ]; do
    rm -rf -- "$d" || sleep 0.1
    i=$((i + 1))
  done
done
[ -d "$3/""" + OUTPUTS_PREFIX + """$2" ] && rm -rf -- "$3/""" + OUTPUTS_PREFIX + """$2"
for f in "$3"/run-"$2"-*; do
  [ -e "$f" ] && exec "$4" -I -c "$5" "$6" "$3" "$2"
done
"""
# Removes the IPC objects named as kind:id (m a shared memory segment, s a
# semaphore set, q a message queue, by id; Q a POSIX message queue, by its
# name in hex), which the socket gate made for a Landlock run (see
# look_at_sysv in _cgate.c): IPC_RMID is 0.
_WATCHDOG_IPC = ("import ctypes, sys; libc = ctypes.CDLL(None)\n"
                 "for kind, _, id in (a.partition(':') for a in sys.argv[1:]):\n"
                 "    if kind == 's': libc.semctl(int(id), 0, 0)\n"
                 "    elif kind == 'm': libc.shmctl(int(id), 0, None)\n"
                 "    elif kind == 'q': libc.msgctl(int(id), 0, None)\n"
                 "    elif kind == 'Q': libc.mq_unlink(b'/' + bytes.fromhex(id))")
_WATCHDOG_SWEEP = ("import sys; sys.path.insert(0, sys.argv[1]); "
                   "from corral.sandbox.guards import watchdog_sweep; "
                   "watchdog_sweep(sys.argv[2], sys.argv[3])")
_watchdog_lock = _thread.allocate_lock()
_watchdog_pipe = -1


def _tell_watchdog(line: str) -> None:
    """Sends the watchdog one line (a group to kill if this process dies, or
    one no longer to kill), if it runs; shorter than PIPE_BUF, so atomic."""
    with _watchdog_lock:
        if _watchdog_pipe >= 0:
            try:
                os.write(_watchdog_pipe, f"{line}\n".encode())
            except OSError:
                pass  # the watchdog is gone: nothing it could do anyway


def watchdog_pipe() -> int:
    """The pipe to this process's watchdog (see :func:`ensure_watchdog`), or
    -1 if none runs.  A line written there whole (shorter than PIPE_BUF)
    ``=K:ID`` names an IPC object (K: m a shared memory segment, s a
    semaphore set, q a message queue, by id; Q a POSIX message queue, by
    its name in hex) for the watchdog to remove if this process dies;
    ``~K:ID`` withdraws it."""
    return _watchdog_pipe


def ensure_watchdog() -> None:
    """Starts, once per process, the process that cleans up after this one.

    A SIGKILLed corral cannot clean up, and the parent-death signal reaches
    only each run's first process.  The watchdog, a shell in its own session,
    waits on a pipe that only this process holds open; when the pipe closes
    (this process is gone, however it died) it kills and removes every run
    cgroup this process created, removes the IPC objects its socket gates
    made for Landlock runs, its session's temporary directory
    (:mod:`corral.sandbox.session`) and an MCP server's outputs
    (:data:`OUTPUTS_PREFIX`), then sweeps the placeholders of its
    sandboxes (:mod:`corral.sandbox.guards`).  Best effort: without /bin/sh,
    leftovers wait for the next corral's sweep.
    """
    _cgroup_host()  # a cgroup host starts the watchdog knowing its parent
    _start_watchdog("")


def _start_watchdog(cgroup_parent: str) -> None:
    global _watchdog_pipe
    import sys

    from ._spawn import spawn_helper
    from .sandbox.guards import runtime_dir_path
    from .sandbox.session import temp_base

    with _watchdog_lock:
        if _watchdog_pipe >= 0 or not os.path.exists(_WATCHDOG_SHELL):
            return
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            started = spawn_helper(
                _WATCHDOG_SHELL,
                ["corral-watchdog", "-c", _WATCHDOG_SCRIPT, "corral-watchdog", cgroup_parent,
                 process_token(), runtime_dir_path(), sys.executable, _WATCHDOG_SWEEP,
                 package_parent, temp_base(), _WATCHDOG_IPC],
                stdin=read_end,
            )
        finally:
            os.close(read_end)
        if started:
            _watchdog_pipe = write_end  # its closing is the signal; see _tell_watchdog
        else:
            os.close(write_end)


_token = ""


def process_token() -> str:
    """This process's name in what it leaves on the machine (run cgroups,
    placeholder records, session directories): its pid and a random part.
    The pid lets a sweep see that the owner is gone; the random part keeps
    a watchdog from taking the things of a new process that got its dead
    owner's pid back (pids wrap quickly where pid_max is 32768)."""
    global _token
    if not _token:
        _token = f"{os.getpid()}-{os.urandom(4).hex()}"
    return _token


_probe_lock = _thread.allocate_lock()
_probed = False
_host: _CgroupHost | None = None
_cgroup_problem = "not probed"


def _own_cgroup_dir() -> str:
    """The directory of this process's cgroup v2, or raises OSError/LookupError."""
    with open("/proc/self/cgroup") as f:
        rel = next((line[3:].strip() for line in f if line.startswith("0::")), None)
    if rel is None:
        raise LookupError("this process is in no cgroup v2 hierarchy (cgroup v1 only)")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                fields = left.split()
                root, mount_point = fields[3], fields[4]
                if rel == root or rel.startswith(root.rstrip("/") + "/"):
                    return os.path.join(mount_point, rel[len(root):].lstrip("/"))
    raise LookupError("no cgroup2 hierarchy is mounted")


def _cgroup_host() -> _CgroupHost | None:
    global _probed, _host, _cgroup_problem
    with _probe_lock:
        if _probed:
            return _host
        _probed = True
        parent = "this process's cgroup"
        try:
            parent = _own_cgroup_dir()
            host = _CgroupHost(parent)
            path = host.acquire()
            try:
                if not os.path.exists(os.path.join(path, "cgroup.kill")):
                    raise LookupError("cgroup.kill is missing (Linux 5.14+ needed)")
            finally:
                host.discard(path)
            host.sweep_stale()
            _start_watchdog(parent)
            atexit.register(host.clear)
            _host, _cgroup_problem = host, ""
        except PermissionError:
            _cgroup_problem = (
                f"{parent} is not delegated to this user; run corral in a delegated scope "
                "(systemd-run --user --scope -p Delegate=yes ...) or as root"
            )
        except OSError as exc:
            if exc.errno == errno.EROFS:
                _cgroup_problem = f"{parent} is on a read-only cgroup filesystem (Docker's default)"
            else:
                _cgroup_problem = f"cannot create a cgroup in {parent}: {exc.strerror}"
        except LookupError as exc:
            _cgroup_problem = str(exc)
        return _host


def _forget_after_fork() -> None:
    """A forked child must not share its parent's pooled run cgroups."""
    global _probe_lock, _probed, _host, _cgroup_problem, _watchdog_lock, _watchdog_pipe, _token
    _token = ""  # a new process, a new token
    if _watchdog_pipe >= 0:
        os.close(_watchdog_pipe)  # the parent's watchdog is the parent's business
    _watchdog_lock, _watchdog_pipe = _thread.allocate_lock(), -1
    _probe_lock = _thread.allocate_lock()
    _probed, _host, _cgroup_problem = False, None, "not probed"


os.register_at_fork(after_in_child=_forget_after_fork)


def cgroup_support() -> tuple[str | None, str]:
    """(directory run cgroups are created in, or None; why not, if None)."""
    host = _cgroup_host()
    return (host.parent if host else None), _cgroup_problem


def disable_cgroups(reason: str) -> None:
    """Stops using cgroups in this process (a child could not join one)."""
    global _host, _cgroup_problem
    with _probe_lock:
        if _host is not None:
            _host.clear()
        _host, _cgroup_problem = None, reason


def open_containment(wanted: KillMechanism | None, can_join_cgroup: bool) -> Containment:
    """A fresh containment for one run, using ``wanted`` or the best available.

    ``can_join_cgroup``: the spawn path can start the child inside a cgroup.
    """
    if wanted is KillMechanism.PROCESS_GROUP:
        return ProcessGroupContainment()
    host = _cgroup_host() if can_join_cgroup else None
    problem = _cgroup_problem if can_join_cgroup else "corral's C spawn extension is not built"
    if host is not None:
        try:
            return CgroupContainment(host)
        except OSError as exc:
            problem = f"cannot create a run cgroup in {host.parent}: {exc.strerror}"
    if wanted is KillMechanism.CGROUP:
        raise PolicyError(
            f"kill mechanism 'cgroup' is not available here: {problem}"
            " (leave kill_mechanism unset to accept 'process-group')"
        )
    return ProcessGroupContainment()

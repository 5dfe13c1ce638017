"""What this machine can enforce, found by trying it.

Sandbox backends and ``corral doctor`` rely on these answers, so each probe
attempts the real operation (create a user namespace and mount in it, mount
/proc in a new PID namespace, ask the kernel for its Landlock ABI) instead of
reading version numbers or config files.  Probes that need a namespace run in
a forked child, so this process is never changed.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass

from .._containment import cgroup_support

__all__ = ["Capability", "MachineProbe", "probe_machine"]

# System call numbers.
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_SECCOMP_GET_ACTION_AVAIL = 2
_SECCOMP_RET_USER_NOTIF = 0x7FC00000
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8

# Exit codes of the namespace probe child: how far it got.
_NS_NO_USERNS, _NS_NO_UID_MAP, _NS_NO_CAPS, _NS_NO_PROC = 10, 11, 12, 13
_NS_STEPS = {
    _NS_NO_USERNS: "cannot create a user namespace",
    _NS_NO_UID_MAP: "cannot map this user in a new user namespace",
    _NS_NO_CAPS: "user namespaces carry no capabilities (mounting is denied inside; "
                 "e.g. Ubuntu's AppArmor restriction of unprivileged user namespaces)",
    _NS_NO_PROC: "cannot mount /proc in a new PID namespace (a masked /proc, as in containers)",
}


@dataclass(frozen=True, slots=True)
class Capability:
    """Whether the machine offers something, and the version or the reason."""

    available: bool
    detail: str


@dataclass(frozen=True, slots=True)
class MachineProbe:
    kernel: str
    arch: str
    root: bool
    container: str | None
    landlock_abi: int
    landlock: Capability
    seccomp: Capability
    seccomp_user_notification: Capability
    socket_gate: Capability
    user_namespaces: Capability
    user_namespace_capabilities: Capability
    proc_mount: Capability
    bwrap: Capability
    sandbox_init: Capability
    cgroup: Capability

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _libc() -> object:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _landlock() -> tuple[int, Capability]:
    from .._errors import PolicyError
    from .landlock import landlock_abi

    try:
        abi, why = landlock_abi()
    except PolicyError as exc:  # a bad CORRAL_LANDLOCK_ABI: said, as what is not usable
        return 0, Capability(False, str(exc))
    capped = " (capped by CORRAL_LANDLOCK_ABI)" if os.environ.get("CORRAL_LANDLOCK_ABI") else ""
    return abi, Capability(True, f"ABI {abi}{capped}") if abi else Capability(False, why)


def _seccomp() -> tuple[Capability, Capability]:
    import ctypes

    try:
        with open("/proc/self/status") as f:
            status = f.read()
    except OSError as exc:
        return Capability(False, str(exc)), Capability(False, "no seccomp")
    if "\nSeccomp:" not in status:
        return Capability(False, "the kernel has no seccomp"), Capability(False, "no seccomp")
    number = _SYS_SECCOMP.get(platform.machine())
    if number is None:
        return (Capability(True, "filters (architecture not checked further)"),
                Capability(False, f"not probed on {platform.machine()}"))
    action = ctypes.c_uint32(_SECCOMP_RET_USER_NOTIF)
    ok = _libc().syscall(  # type: ignore[attr-defined]
        ctypes.c_long(number), ctypes.c_uint(_SECCOMP_GET_ACTION_AVAIL), ctypes.c_uint(0),
        ctypes.byref(action),
    ) == 0
    notify = Capability(True, "SECCOMP_RET_USER_NOTIF") if ok else Capability(
        False, "SECCOMP_RET_USER_NOTIF is not available (Linux 5.0+ needed)"
    )
    return Capability(True, "filters"), notify


def _namespace_child() -> int:
    """In a forked child: how far unprivileged namespaces go (see _NS_STEPS)."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:  # type: ignore[attr-defined]
        return _NS_NO_USERNS
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    except OSError:
        return _NS_NO_UID_MAP
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:  # type: ignore[attr-defined]
        return _NS_NO_CAPS
    if libc.unshare(_CLONE_NEWPID) != 0:  # type: ignore[attr-defined]
        return _NS_NO_PROC
    pid = os.fork()
    if pid == 0:  # PID 1 of the new namespace
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        ok = libc.mount(b"proc", b"/proc", b"proc", flags, None) == 0  # type: ignore[attr-defined]
        os._exit(0 if ok else _NS_NO_PROC)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _namespaces() -> tuple[Capability, Capability, Capability]:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _namespace_child()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    failed = _NS_STEPS.get(code, f"the namespace probe failed (status {code})")

    def reached(ok: bool, what: str) -> Capability:
        return Capability(True, what) if ok else Capability(False, failed)

    # Each exit code names the first step that failed; the ones before it held.
    return (
        reached(code in (0, _NS_NO_CAPS, _NS_NO_PROC), "created and mapped to this user"),
        reached(code in (0, _NS_NO_PROC), "mounting works inside them"),
        reached(code == 0, "a fresh /proc mounts in a new PID namespace"),
    )


def _bwrap() -> Capability:
    """The bwrap corral would use, and whether it can build a sandbox here."""
    from .bwrap import bwrap_absence, bwrap_backend, find_bwrap, passed_over, trial_sandbox

    path = find_bwrap()
    if path is None:
        bwrap_backend()  # which says why
        return Capability(False, bwrap_absence())
    skipped = passed_over()
    passed = f"; {skipped}" if skipped else ""
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Capability(False, f"{path}: {exc}")
    problem = trial_sandbox(path)
    if problem is not None:
        return Capability(False, f"{path} ({version}) cannot build a sandbox here: "
                                 f"{problem}{passed}")
    return Capability(True, f"{path} ({version}){passed}")


def _kills() -> str:
    """What the init tells of a ``kill`` of a host pid here."""
    if os.path.exists("/proc/sys/kernel/ns_last_pid"):
        return "a kill of a host pid in a run that fails"
    return ("not a kill of a host pid (no /proc/sys/kernel/ns_last_pid: a kernel without "
            "CONFIG_CHECKPOINT_RESTORE)")


def _sandbox_init() -> Capability:
    """Whether corral's sandbox init binds the protected paths in bwrap's sandbox."""
    from .bwrap import covers_absence, find_bwrap, sandbox_init_absence, sandbox_init_unusable

    path = find_bwrap()
    problem = "no usable bwrap" if path is None else sandbox_init_absence(path)
    if problem is None:
        assert path is not None
        uncovered = covers_absence(path)
        reads = ("each refused read of a deny-read path (corral serves the covers)"
                 if uncovered is None else
                 f"not a refused read of a deny-read path, known only from the output "
                 f"({uncovered})")
        return Capability(True, "corral binds the protected paths inside the sandbox (symbolic "
                                "links too) and makes its /dev and /proc, gives the command a "
                                "user namespace of its own, and "
                                f"reports each refused write and privileged call, {_kills()}, "
                                f"and {reads}")
    unusable = "no usable bwrap" if path is None else sandbox_init_unusable(path)
    if unusable is None:
        return Capability(False, f"bwrap binds the protected paths itself, so a protected "
                                 f"symbolic link is refused ({problem}); corral's init still "
                                 f"loads the seccomp filter: each refused write and privileged "
                                 f"call is reported, {_kills()}, and a run's "
                                 f"own Unix sockets work; a refused "
                                 f"read of a deny-read path is known only from the output")
    return Capability(False, f"bwrap binds the protected paths itself: a protected symbolic link "
                             f"is refused, refused writes are known only from the command's "
                             f"output, and no Unix socket is reachable without network "
                             f"({unusable})")


def _container() -> str | None:
    try:
        with open("/proc/sys/kernel/osrelease") as f:
            release = f.read()
    except OSError:
        release = ""
    if "microsoft" in release.lower():
        return "wsl2" if "WSL2" in release or "microsoft-standard" in release else "wsl1"
    if os.path.exists("/.dockerenv"):
        return "docker"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    try:
        with open("/proc/1/environ", "rb") as f:
            environ = f.read().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"container="):
            return item.split(b"=", 1)[1].decode(errors="replace") or "container"
    return None


def _gate() -> Capability:
    from .socket_gate import gate_supported

    if gate_supported():
        return Capability(True, "pidfd_getfd and openat2: without network, each connect "
                                "(and, under Landlock, bind and listen) decided by corral")
    return Capability(False, "no pidfd_getfd (Linux 5.6+) or corral's C extensions: without "
                             "network, Unix sockets (and, under Landlock, TCP) are refused "
                             "outright")


def probe_machine() -> MachineProbe:
    """Probes everything; takes a few milliseconds (bwrap's trial run the most)."""
    abi, landlock = _landlock()
    seccomp, notify = _seccomp()
    userns, caps, proc = _namespaces()
    parent, problem = cgroup_support()
    return MachineProbe(
        kernel=platform.release(),
        arch=platform.machine(),
        root=os.geteuid() == 0,
        container=_container(),
        landlock_abi=abi,
        landlock=landlock,
        seccomp=seccomp,
        seccomp_user_notification=notify,
        socket_gate=_gate(),
        user_namespaces=userns,
        user_namespace_capabilities=caps,
        proc_mount=proc,
        bwrap=_bwrap(),
        sandbox_init=_sandbox_init(),
        cgroup=Capability(parent is not None, parent or problem),
    )

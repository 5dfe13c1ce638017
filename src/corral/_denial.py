"""What the sandbox refused: structured denials, and Codex's heuristic as the last resort.

:func:`find_denials` reads the errors the kernel gave the command (the errno
texts in its output: EROFS, EACCES, EPERM, EBUSY, ENXIO, ENETUNREACH, ...)
and keeps only those the *policy* explains: a write to a path outside the
writable roots or inside a protected one, a read of a deny-read path, a
network or host socket access without network, a privileged operation.  A
"Permission denied" on a path the policy allows, or that the user could not
write without a sandbox either, is the command's own problem and is not
reported.  Each denial names its target and a remedy an agent can act on.

:func:`is_likely_sandbox_denied` is a port of Codex's heuristic in
``codex-rs/core/src/exec.rs``.  It reads text and an exit code, nothing else,
so it is a guess both ways: an ordinary "Permission denied" counts as a
denial, and a denial swallowed by a pipeline that exits 0 is missed.
"""

from __future__ import annotations

import errno
import os

from ._policy import PolicyKind, SandboxPolicy
from ._result import Denial, DenialKind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import SIGSYS
else:  # signal's C core: signal itself makes IntEnums of every constant, 2 ms of start-up
    from _signal import SIGSYS

__all__ = ["DENIAL_KEYWORDS", "LINUX_SANDBOXES", "NEEDS_NETWORK", "explain_refusal",
           "SANDBOX_DEVICES", "find_denials", "is_likely_sandbox_denied", "missing_device_remedy",
           "policy_paths", "privilege_remedy"]

#: The remedy of a network denial.
NEEDS_NETWORK = "needs network: rerun with --network (network=True)"


def privilege_remedy(name: str) -> str:
    """The remedy of a refused privileged operation ``name``."""
    return f"needs privileges no sandbox grants ({name}); only full access can run it"


#: The entries of /dev a sandboxed command has: those of bubblewrap's own /dev,
#: which Landlock's rules let it read (the rest of the host's /dev they hide).
SANDBOX_DEVICES = frozenset({"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts",
                             "shm", "fd", "stdin", "stdout", "stderr", "core"})


def missing_device_remedy(path: str) -> str:
    """The remedy of a host device ``path`` that bwrap's /dev lacks."""
    return (f"the sandbox's /dev has only null, zero, full, random, urandom, tty and ptys: "
            f"{path} needs full access")


#: Lower-case phrases whose presence in the output suggests a denial.
DENIAL_KEYWORDS = (
    "operation not permitted",
    "permission denied",
    "read-only file system",
    "seccomp",
    "sandbox",
    "landlock",
    "failed to write file",
)
#: Backends that install a seccomp filter, where death by SIGSYS means the
#: filter killed the command (Codex's ``SandboxType::LinuxSeccomp``).
LINUX_SANDBOXES = frozenset({"bwrap", "landlock"})
_SIGSYS_EXIT = 128 + SIGSYS


def is_likely_sandbox_denied(
    sandbox: str | None,
    exit_code: int,
    stdout: str = "",
    stderr: str = "",
    aggregated: str = "",
) -> bool:
    """Guesses whether a sandbox, not the command itself, made a run fail.

    This is a text heuristic and the last resort: use it only when no
    structured denial report exists.  In Codex's order:

    1. False without a sandbox (``sandbox`` is ``None`` or ``"none"``) and
       for exit code 0.
    2. True if ``stderr``, ``stdout`` or ``aggregated``, lower-cased,
       contains any of :data:`DENIAL_KEYWORDS` -- whatever the exit code,
       including 2, 126 and 127.
    3. True if the exit code is 128+SIGSYS (159 on Linux) and ``sandbox`` is
       one of :data:`LINUX_SANDBOXES`.
    4. False otherwise, e.g. for exit code 1 with no keyword.
    """
    if sandbox is None or sandbox == "none" or exit_code == 0:
        return False
    for text in (stderr, stdout, aggregated):
        lowered = text.lower()
        if any(keyword in lowered for keyword in DENIAL_KEYWORDS):
            return True
    # Codex "quick-rejects" exit codes 2, 126 and 127 here, after the keyword
    # scan; from this point only 128+SIGSYS can answer True, so that check
    # never changes the result and is left out.
    return sandbox in LINUX_SANDBOXES and exit_code == _SIGSYS_EXIT


# Lower-case errno texts (glibc's strerror, and the codes Node and Go print)
# and what each can mean inside a sandbox.
_FILE_ERRORS = {
    "read-only file system": "EROFS", "erofs": "EROFS",
    "permission denied": "EACCES", "eacces": "EACCES",
    "operation not permitted": "EPERM", "eperm": "EPERM",
    "device or resource busy": "EBUSY", "ebusy": "EBUSY",
    "no such device or address": "ENXIO",
    "invalid cross-device link": "EXDEV", "exdev": "EXDEV",
    "not a directory": "ENOTDIR",
    "no such file or directory": "ENOENT", "enoent": "ENOENT",
}
# Errors a write outside the roots gets (bwrap: EROFS; Landlock: EACCES, or
# EXDEV for a link or rename across the boundary); the others only arise
# from a protected path's mount or placeholder.
_OUTSIDE_ERRORS = {"EROFS", "EACCES", "EPERM", "EXDEV"}
_NETWORK_ERRORS = (
    "network is unreachable", "enetunreach", "could not resolve host",
    "temporary failure in name resolution", "name or service not known", "eai_again",
    "getaddrinfo enotfound", "no address associated with hostname",
    "address family not supported",
)
_PRIVILEGED_WORDS = (
    "mount", "unshare", "chroot", "ptrace", "setns", "pivot_root", "setuid", "setgid",
    "setgroups", "capset", "sysctl", "io_uring", "bpf", "perf_event_open", "keyctl",
    "modprobe", "insmod", "swapon", "reboot",
)
_MAX_DENIALS = 20
_MAX_LINES = 2000


def find_denials(
    policy: SandboxPolicy,
    cwd: str,
    exit_code: int,
    output: str,
    sandbox: str | None,
) -> tuple[Denial, ...]:
    """The denials a sandboxed run's ``output`` shows, checked against ``policy``.

    ``cwd`` is where the command started (relative paths in messages are
    read from there).  A denial is reported only when the policy explains the
    error; for a run that exited 0 too, since a refused write the command
    shrugged off is still a refusal.  Death by SIGSYS is a refused system
    call.  A failed run whose output shows EROFS that no path explains still
    gets a write denial without a target, so no sandbox refusal that made a
    command fail goes unreported.
    """
    if sandbox is None or not policy.sandboxed:
        return ()
    found: dict[tuple[DenialKind, str | None], Denial] = {}
    lowered = output.lower()
    scan = (any(k in lowered for k in _FILE_ERRORS) or any(k in lowered for k in _NETWORK_ERRORS)
            or "no new privileges" in lowered or "no such file" in lowered)
    if scan:
        checker = _PolicyPaths(policy, cwd, own_dev=sandbox == "bwrap",
                               shared_tmp=sandbox == "landlock")
        lines = output.splitlines()[-_MAX_LINES:]
        for index, line in enumerate(lines):
            # A traceback names the call a few lines above the error it raised.
            context = " ".join(lines[max(0, index - 3):index + 1])
            for denial in _line_denials(line, context, policy, checker):
                found.setdefault((denial.kind, denial.target), denial)
                if len(found) >= _MAX_DENIALS:
                    break
    if exit_code == _SIGSYS_EXIT and sandbox in LINUX_SANDBOXES:
        found.setdefault((DenialKind.PRIVILEGE, "seccomp"), Denial(
            DenialKind.PRIVILEGE, "seccomp",
            "a system call was refused by the sandbox's seccomp filter; only full access "
            "can run it", f"exit code {exit_code} (SIGSYS)"))
    if exit_code != 0 and not any(d.kind is DenialKind.WRITE for d in found.values()):
        explained = {d.evidence for d in found.values()}
        erofs = next((ln for ln in output.splitlines() if "read-only file system" in ln.lower()
                      and ln.strip()[:500] not in explained and not _names_proc(ln)), None)
        if erofs is not None:
            found[(DenialKind.WRITE, None)] = Denial(
                DenialKind.WRITE, None,
                "the command wrote where the policy does not allow; give the directory it needs "
                "with --writable DIR", erofs.strip()[:500])
    return tuple(found.values())


def policy_paths(policy: SandboxPolicy, cwd: str, shared_tmp: bool = False) -> _PolicyPaths:
    """Where ``policy`` lets a command started in ``cwd`` write and read,
    for :func:`explain_refusal`; with ``shared_tmp``, in a sandbox that
    shows the host's /tmp and /dev (Landlock), not its own."""
    return _PolicyPaths(policy, cwd, shared_tmp=shared_tmp)


def explain_refusal(paths: _PolicyPaths, policy: SandboxPolicy, path: str, error: int,
                    evidence: str) -> Denial | None:
    """The denial for a write to ``path`` the sandbox refused with ``error``
    (an errno), as the sandbox itself saw it (see :mod:`corral.sandbox.witness`),
    or None where the policy does not explain the refusal or the user could
    not write there without a sandbox either."""
    target = path if os.path.lexists(path) else paths.nearest_directory(path)
    if error == errno.EROFS and not os.access(target, os.W_OK):
        return None  # a read-only mount is checked before permissions
    return _path_denial(path, {errno.errorcode.get(error, "")}, policy, paths, evidence)


class _PolicyPaths:
    """Where a policy lets a sandboxed command read and write, for checking paths."""

    def __init__(self, policy: SandboxPolicy, cwd: str, own_dev: bool = False,
                 shared_tmp: bool = False) -> None:
        self.cwd = cwd
        self.own_dev = own_dev  # the sandbox shows a /dev of its own, not the host's devices
        # The sandbox shows the host's /tmp and /dev/shm, read-only, not
        # writable ones of its own (Landlock: the ``shared-tmp`` accepted).
        self.shared_tmp = shared_tmp
        self.roots: tuple[str, ...] = ()
        self.protected: tuple[str, ...] = ()
        self.pinned: tuple[str, ...] = ()
        if policy.kind is PolicyKind.WORKSPACE_WRITE:
            from ._errors import PolicyError
            from .sandbox.workspace import plan_workspace

            try:
                plan = plan_workspace(policy, cwd)
                self.roots, self.protected = plan.roots, plan.protected + plan.missing
                self.pinned = plan.pinned
            except PolicyError:  # a root went away during the run
                self.roots = (os.path.realpath(cwd),) if policy.cwd_writable else ()
        from .sandbox.workspace import deny_read_paths

        self.deny_read = tuple(os.path.realpath(p) for p in deny_read_paths(policy, cwd))

    def absolute(self, token: str) -> str:
        path = os.path.normpath(os.path.join(self.cwd, os.path.expanduser(token)))
        parent = os.path.dirname(path)
        return os.path.join(os.path.realpath(parent), os.path.basename(path))

    def in_private_tmp(self, path: str) -> bool:
        """Whether ``path`` lies beneath the host's /tmp where the sandbox's
        own /tmp hides it, deny-read or not: not in a writable root, nor in
        the working directory, which the sandbox shows all the same (never
        where the sandbox shows the host's /tmp)."""
        return not self.shared_tmp and path.startswith("/tmp/") and self.within(
            path, (*self.roots, os.path.realpath(self.cwd))) is None

    @staticmethod
    def within(path: str, bases: tuple[str, ...]) -> str | None:
        for base in bases:
            if path == base or path.startswith(base.rstrip("/") + "/"):
                return base
        return None

    @staticmethod
    def nearest_directory(path: str) -> str:
        candidate = path if os.path.isdir(path) else os.path.dirname(path)
        while not os.path.isdir(candidate):
            candidate = os.path.dirname(candidate)
        return candidate


def _line_denials(line: str, raw_context: str, policy: SandboxPolicy,
                  paths: _PolicyPaths) -> list[Denial]:
    lowered, context = line.lower(), raw_context.lower()
    evidence = line.strip()[:500]
    errors = {code for text, code in _FILE_ERRORS.items() if text in lowered}
    denials: list[Denial] = []
    socket_path = next((t for t in _path_tokens(raw_context) if t.endswith(".sock")),
                       None) if ".sock" in context else None
    if not policy.network and (socket_path is not None or "unix" in context) and (
            errors & {"EACCES", "EPERM"} or "no such file" in lowered):
        return [Denial(DenialKind.UNIX_SOCKET, socket_path,
                       "host Unix sockets are unreachable without network: rerun with "
                       "--network (network=True)", evidence)]
    if not policy.network and "socket" in context and errors & {"EACCES", "EPERM"}:
        return [Denial(DenialKind.NETWORK, None,
                       "sockets are refused without network: rerun with --network "
                       "(network=True)", evidence)]
    if not policy.network and any(text in lowered for text in _NETWORK_ERRORS):
        return [Denial(DenialKind.NETWORK, _address(line),
                       NEEDS_NETWORK, evidence)]
    if "no new privileges" in lowered or ("EPERM" in errors and any(
            word in lowered.replace(":", " ").split() for word in _PRIVILEGED_WORDS)):
        word = next((w for w in _PRIVILEGED_WORDS if w in lowered), "privileges")
        return [Denial(DenialKind.PRIVILEGE, word,
                       privilege_remedy(word), evidence)]
    if not errors:
        return denials
    for token in _path_tokens(line):
        path = paths.absolute(token)
        denial = _path_denial(path, errors, policy, paths, evidence)
        if denial is not None:
            denials.append(denial)
            break
    return denials


def _path_denial(path: str, errors: set[str], policy: SandboxPolicy, paths: _PolicyPaths,
                 evidence: str) -> Denial | None:
    hidden = None if paths.in_private_tmp(path) else paths.within(path, paths.deny_read)
    # Under a mode-000 cover a hidden directory's files are refused, or
    # missing where the directory keeps one readable: missing in the sandbox
    # and present on the host, a file was hidden.
    if hidden is not None and ("EACCES" in errors
                               or "ENOENT" in errors and os.path.lexists(path)):
        return Denial(DenialKind.READ, path,
                      f"{hidden} is hidden from sandboxed commands (deny-read); drop it from "
                      "deny_read (--no-default-deny-read) only if the command must read it",
                      evidence)
    if paths.shared_tmp and path.startswith("/dev/pts/") and "EACCES" in errors:
        return Denial(DenialKind.READ, path,
                      "the host's terminals are hidden from sandboxed commands (what the user "
                      "types there); only full access can reach them", evidence)
    # Landlock's rules hide the host's devices but those bubblewrap's /dev has
    # (EACCES); bubblewrap's /dev lacks them (ENOENT).  Either is a denial
    # where the user could open the device outside.
    missing = "EACCES" in errors if paths.shared_tmp else errors == {"ENOENT"} and paths.own_dev
    if (missing and path.startswith("/dev/") and path.split("/")[2] not in SANDBOX_DEVICES
            and (_host_device(path) or _host_device(path, os.W_OK))):
        return Denial(DenialKind.PRIVILEGE, path, missing_device_remedy(path), evidence)
    if not errors - {"ENOENT"}:
        return None  # a path that is not there is no refusal of the policy's
    protected = paths.within(path, paths.protected)
    if protected is not None:
        return Denial(DenialKind.WRITE, path,
                      f"{protected} is protected: it stays read-only and cannot be created "
                      "in the sandbox; only full access can change it", evidence)
    if path in paths.pinned and "EBUSY" in errors:
        return Denial(DenialKind.WRITE, path,
                      f"{path} holds protected paths: it cannot be renamed or removed in the "
                      "sandbox; only full access can", evidence)
    if not errors & _OUTSIDE_ERRORS:
        return None
    if path.startswith(("/proc/sys/", "/sys/")):
        if not os.access(path, os.W_OK):
            return None  # a tunable only root may change, or none at all
        return Denial(DenialKind.PRIVILEGE, path,
                      "kernel tunables are read-only in the sandbox; only full access can "
                      "change them", evidence)
    if path.startswith("/proc/"):
        return None  # another process's /proc entries: permissions, not the policy
    if paths.within(path, paths.roots) is not None:
        return None  # writable under the policy: the error is the command's own
    shared = paths.shared_tmp and path.startswith(("/tmp/", "/dev/shm/"))
    if not shared and (path.startswith(("/tmp/", "/dev/")) or path in ("/tmp", "/dev")):
        return None  # private to the sandbox: writable there (or a device it lacks)
    directory = paths.nearest_directory(path)
    if "EROFS" not in errors and not os.access(directory, os.W_OK):
        return None  # not writable without a sandbox either
    if shared and os.path.lexists(path) and not os.access(path, os.W_OK):
        return None  # another's file in the host's /tmp: permissions, not the policy
    writable = (f", or add --writable {directory}"
                if policy.kind is PolicyKind.WORKSPACE_WRITE else "")
    if shared and path.startswith("/tmp/"):
        remedy = ("the host's /tmp is read-only here (Landlock, shared-tmp): write beneath "
                  f"$TMPDIR, the command's own temporary directory, instead{writable}")
    elif shared:
        remedy = ("/dev/shm is the host's here, and read-only (Landlock): only names directly "
                  "beneath it, opened for writing, linked, renamed or removed (shm_open, "
                  "sem_open), are the command's own; anything else there needs a sandbox where "
                  f"bubblewrap works, which gives each run a /dev/shm of its own{writable}")
    elif errors == {"EXDEV"}:
        remedy = ("hard links and renames cannot cross the boundary of the writable roots; "
                  "copy instead")
    elif policy.kind is PolicyKind.WORKSPACE_WRITE:
        remedy = f"outside the writable roots: add --writable {directory}"
    elif paths.within(directory, (os.path.realpath(paths.cwd),)) is not None:
        remedy = (f"{policy.name} writes nowhere: use workspace-write, which writes beneath "
                  "the working directory")
    else:
        remedy = (f"{policy.name} writes nowhere: use workspace-write with "
                  f"--writable {directory}")
    return Denial(DenialKind.WRITE, path, remedy, evidence)


def _host_device(path: str, access: int = os.R_OK) -> bool:
    """Whether ``path`` is a device on the host (not a link, such as
    ``/dev/fd/N``) that the user could open there (for ``access``)."""
    import stat

    if not path.startswith("/dev/"):
        return False
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and os.access(path, access)


def _names_proc(line: str) -> bool:
    """Whether an error line names a path under /proc: a write there is
    judged by the kernel's own rules (see :func:`_path_denial`), never taken
    for a write outside the roots."""
    return any(token.startswith("/proc/") for token in _path_tokens(line))


def _path_tokens(line: str) -> list[str]:
    """Strings in an error line that may be paths: quoted ones first, then
    words with a slash or a leading dot."""
    import re

    quoted = re.findall(r"['\u2018\u201c\"`]([^'\u2019\u201d\"`]+)['\u2019\u201d\"`]", line)
    words = [w.rstrip(":,;.)") for w in re.split(r"[\s'\u2018\u2019\"`(]+", line)]
    candidates = quoted + [w for w in words if "/" in w or (w.startswith(".") and len(w) > 1)]
    return [c for c in dict.fromkeys(candidates) if c and "://" not in c]


def _address(line: str) -> str | None:
    """The host (and port) a network error names, if it names one."""
    import re

    for pattern in (r"resolve host:?\s+'?([\w.-]+)", r"host ([\w.:-]+) port (\d+)",
                    r"to ([\w.:-]+) port (\d+)", r"getaddrinfo \w+ ([\w.-]+)",
                    r"(\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?)", r"connect to ([\w.:-]+)"):
        match = re.search(pattern, line, re.IGNORECASE)
        if match:
            return ":".join(g for g in match.groups() if g)
    return None

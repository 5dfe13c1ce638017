"""The sandbox policy model: one value shared by the library, the CLI and the MCP server.

Every surface takes a policy either by name (``"full-access"``) or as a
:class:`SandboxPolicy`; :func:`resolve_policy` is the single place that turns
one into the other.
"""

from __future__ import annotations

import enum
import os

from ._errors import PolicyError
from ._record import record

__all__ = ["PolicyKind", "SandboxPolicy", "policy_from_options", "resolve_policy"]


class PolicyKind(enum.Enum):
    """The confinement a policy asks for; values are the names users type."""

    READ_ONLY = "read-only"
    WORKSPACE_WRITE = "workspace-write"
    FULL_ACCESS = "full-access"


#: Secret stores no sandboxed command may read unless the policy says so
#: (``~`` is the home of the user running corral).
DEFAULT_DENY_READ = (
    "~/.ssh", "~/.aws", "~/.config/gh", "~/.netrc", "~/.docker/config.json", "~/.gnupg",
    "~/.kube", "~/.git-credentials",
)
#: Kept readable inside a denied directory: ssh needs it to check host keys.
DEFAULT_READ_EXCEPTIONS = ("~/.ssh/known_hosts",)

#: Paths that stay read-only inside every writable root, and cannot be created
#: there when missing: what git, shells, direnv, editors and agents run or
#: trust later, outside the sandbox.  A relative entry applies in each root;
#: an absolute or ``~`` entry wherever it falls inside one.  Git's own
#: metadata (objects, refs, the index) stays writable so commits work;
#: ``commondir`` would name a directory of the command's to take hooks and
#: config from.  The same of a worktree's or submodule's git directory are
#: added wherever a root has them.
DEFAULT_PROTECTED = (
    ".git/hooks", ".git/config", ".git/config.worktree", ".git/commondir", ".gitmodules",
    ".gitconfig",
    ".bashrc", ".bash_profile", ".zshrc", ".zprofile", ".profile", ".envrc",
    ".vscode", ".idea", ".mcp.json", ".claude", ".codex", ".agents",
    # Read from the home directory only: protected where it is a root.
    "~/.bash_login", "~/.bash_logout", "~/.zshenv", "~/.zlogin", "~/.zlogout",
    "~/.config/git",  # git's own XDG configuration, as ~/.gitconfig
    "~/.config/corral",
)

#: Weaker guarantees a caller may accept so that a policy can run where only
#: Landlock is available (no user namespaces: unprivileged containers, some
#: distributions).  Nothing weaker is ever used unless named here.
WEAKER_GUARANTEES = {
    "shared-tmp": "the host's /tmp and /dev/shm stay readable; the command writes to a private "
                  "$TMPDIR, where its POSIX shared memory and semaphores are kept too",
    "no-deny-read": "deny-read paths (secret stores) inside a writable root stay readable",
    "visible-processes": "host processes are visible in /proc (they cannot be signalled, "
                         "traced, reniced or limited)",
    "unprotected-paths": "protected paths inside writable roots (.git/hooks, .envrc, "
                         "editor and agent config, ..., and where a root holds them, "
                         "corral's own installation and the system's bwrap) stay writable",
    "changeable-attributes": "modes, owners, times and extended attributes of files outside "
                             "the writable roots stay changeable (Landlock has no right for "
                             "them; with corral running as root, that includes setting the "
                             "setuid bit on root's programs)",
}


@record
class SandboxPolicy:
    """What a command may touch.

    ``read-only``: the command reads what the user can read, except
    ``deny_read`` (secret stores by default; paths or one-level globs such as
    ``~/.config/*/credentials``), and writes nothing but a
    private temporary directory (its ``/tmp`` and ``$TMPDIR``) and
    ``/dev/null``-like devices.  Without ``network`` it reaches no host
    network service, TCP, UDP or Unix socket; a server it starts on
    127.0.0.1 is reachable within the run, and so are the host Unix sockets
    listed in ``allow_unix_sockets``.  It cannot gain privileges.

    ``workspace-write``: as ``read-only``, and the command may also write
    beneath its working directory and the ``writable`` roots, except the
    ``protected`` paths there, which stay read-only and cannot be created.

    ``full-access`` confines nothing: the command still gets corral's process
    lifecycle (its own session, tree kill, timeout) but no sandbox.
    """

    kind: PolicyKind
    network: bool = False
    #: Writable roots besides the working directory (``workspace-write`` only).
    writable: tuple[str, ...] = ()
    protected: tuple[str, ...] = DEFAULT_PROTECTED
    deny_read: tuple[str, ...] = DEFAULT_DENY_READ
    #: Host Unix sockets a sandboxed command may connect to without network.
    allow_unix_sockets: tuple[str, ...] = ()
    #: Names from :data:`WEAKER_GUARANTEES` the caller accepts.
    accept_weaker: frozenset[str] | tuple[str, ...] = frozenset()
    #: Whether the working directory is a writable root too (``workspace-write``).
    #: Where it is not, only ``writable`` are, and the working directory is
    #: only where the command starts: for a caller that lets someone else
    #: name it (an MCP client's model), so that naming one widens nothing.
    cwd_writable: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.accept_weaker, (str, bytes)):
            raise PolicyError("accept_weaker is a collection of names, not a single string")
        unknown = set(self.accept_weaker) - set(WEAKER_GUARANTEES)
        if unknown:
            raise PolicyError(f"unknown weaker guarantee {sorted(unknown)[0]!r}: choose from "
                              f"{', '.join(WEAKER_GUARANTEES)}")
        object.__setattr__(self, "accept_weaker", frozenset(self.accept_weaker))
        for name in ("writable", "protected", "deny_read", "allow_unix_sockets"):
            paths = getattr(self, name)
            if isinstance(paths, (str, bytes)):
                raise PolicyError(f"{name} is a sequence of paths, not a single string")
            paths = tuple(paths)
            for path in paths:
                if not isinstance(path, str) or not path or "\0" in path:
                    raise PolicyError(f"{name}: {path!r} is not a path")
            object.__setattr__(self, name, paths)
        if self.writable and self.kind is not PolicyKind.WORKSPACE_WRITE:
            raise PolicyError(f"writable roots apply to workspace-write, not to {self.name}")
        if not self.cwd_writable and self.kind is not PolicyKind.WORKSPACE_WRITE:
            raise PolicyError(f"cwd_writable applies to workspace-write, not to {self.name}")
        if self.allow_unix_sockets and not self.sandboxed:
            raise PolicyError("allow_unix_sockets applies to sandboxed policies, not to "
                              "full-access")
        for path in self.allow_unix_sockets:
            if not os.path.expanduser(path).startswith("/"):
                raise PolicyError(f"allow_unix_sockets: {path!r} is not an absolute path")
        for path in self.deny_read:
            if "**" in path:
                raise PolicyError(f"deny_read: {path!r}: a recursive glob (**) would walk the "
                                  "tree before every command; name the directories, or use * "
                                  "for one level")
        for path in self.protected:
            if not path.startswith(("/", "~")) and ".." in path.split("/"):
                raise PolicyError(f"protected path {path!r} must stay inside the root ('..')")

    @classmethod
    def full_access(cls) -> SandboxPolicy:
        return cls(PolicyKind.FULL_ACCESS)

    @classmethod
    def read_only(
        cls,
        *,
        network: bool = False,
        deny_read: tuple[str, ...] = DEFAULT_DENY_READ,
        allow_unix_sockets: tuple[str, ...] = (),
        accept_weaker: frozenset[str] | tuple[str, ...] = frozenset(),
    ) -> SandboxPolicy:
        return cls(PolicyKind.READ_ONLY, network=network, deny_read=deny_read,
                   allow_unix_sockets=allow_unix_sockets, accept_weaker=accept_weaker)

    @classmethod
    def workspace_write(
        cls,
        *,
        writable: tuple[str, ...] = (),
        network: bool = False,
        protected: tuple[str, ...] = DEFAULT_PROTECTED,
        deny_read: tuple[str, ...] = DEFAULT_DENY_READ,
        allow_unix_sockets: tuple[str, ...] = (),
        accept_weaker: frozenset[str] | tuple[str, ...] = frozenset(),
    ) -> SandboxPolicy:
        return cls(PolicyKind.WORKSPACE_WRITE, network=network, writable=writable,
                   protected=protected, deny_read=deny_read,
                   allow_unix_sockets=allow_unix_sockets, accept_weaker=accept_weaker)

    @property
    def sandboxed(self) -> bool:
        return self.kind is not PolicyKind.FULL_ACCESS

    @property
    def name(self) -> str:
        return self.kind.value


def resolve_policy(policy: SandboxPolicy | str) -> SandboxPolicy:
    """Returns ``policy`` as a :class:`SandboxPolicy`; names are case-insensitive.

    Raises :class:`PolicyError` naming the valid choices for an unknown name.
    """
    if isinstance(policy, SandboxPolicy):
        return policy
    if isinstance(policy, str):
        wanted = policy.strip().lower().replace("_", "-")
        for kind in PolicyKind:
            if kind.value == wanted:
                return SandboxPolicy(kind)
        choices = ", ".join(k.value for k in PolicyKind)
        raise PolicyError(f"unknown policy {policy!r}: choose one of {choices}")
    raise PolicyError(f"a policy is a name or a SandboxPolicy, not {type(policy).__name__}")


def policy_from_options(
    name: str,
    *,
    writable: tuple[str, ...] = (),
    network: bool = False,
    protect: tuple[str, ...] = (),
    default_protect: bool = True,
    allow_unix_sockets: tuple[str, ...] = (),
    deny_read: tuple[str, ...] = (),
    default_deny_read: bool = True,
    accept_weaker: tuple[str, ...] = (),
) -> SandboxPolicy:
    """The policy ``corral run``'s options (or the MCP server's config keys)
    describe: extra protected and deny-read paths add to the defaults unless
    those are turned off.  Raises :class:`PolicyError` for options the policy
    does not take (sandbox options with full-access, writable roots with
    read-only)."""
    policy = resolve_policy(name)
    workspace = bool(writable or protect or not default_protect)
    if policy.kind is PolicyKind.FULL_ACCESS:
        if (workspace or network or deny_read or not default_deny_read or accept_weaker
                or allow_unix_sockets):
            raise PolicyError("--writable, --protect, --network, --allow-unix-socket, --deny-read "
                              "and --accept-weaker apply to sandboxed policies, not to full-access")
        return policy
    hidden = (*(DEFAULT_DENY_READ if default_deny_read else ()), *deny_read)
    if policy.kind is PolicyKind.READ_ONLY:
        if workspace:
            raise PolicyError("--writable and --protect apply to workspace-write, not to read-only")
        return SandboxPolicy.read_only(network=network, deny_read=hidden,
                                       allow_unix_sockets=allow_unix_sockets,
                                       accept_weaker=accept_weaker)
    return SandboxPolicy.workspace_write(
        writable=writable, network=network,
        protected=(*(DEFAULT_PROTECTED if default_protect else ()), *protect),
        deny_read=hidden, allow_unix_sockets=allow_unix_sockets, accept_weaker=accept_weaker)

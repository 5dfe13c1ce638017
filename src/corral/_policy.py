"""The sandbox policy model: one value shared by the library, the CLI and the MCP server.

Every surface takes a policy either by name (``"full-access"``) or as a
:class:`SandboxPolicy`; :func:`resolve_policy` is the single place that turns
one into the other.
"""

from __future__ import annotations

import enum
from ._errors import PolicyError
from ._record import record

__all__ = ["PolicyKind", "SandboxPolicy", "resolve_policy"]


class PolicyKind(enum.Enum):
    """The confinement a policy asks for; values are the names users type."""

    READ_ONLY = "read-only"
    FULL_ACCESS = "full-access"


#: Secret stores no sandboxed command may read unless the policy says so
#: (``~`` is the home of the user running corral).
DEFAULT_DENY_READ = (
    "~/.ssh", "~/.aws", "~/.config/gh", "~/.netrc", "~/.docker/config.json", "~/.gnupg",
    "~/.kube", "~/.git-credentials",
)
#: Kept readable inside a denied directory: ssh needs it to check host keys.
DEFAULT_READ_EXCEPTIONS = ("~/.ssh/known_hosts",)

#: Weaker guarantees a caller may accept so that a policy can run where only
#: Landlock is available (no user namespaces: unprivileged containers, some
#: distributions).  Nothing weaker is ever used unless named here.
WEAKER_GUARANTEES = {
    "shared-tmp": "the host's /tmp stays readable; the command writes to a private $TMPDIR",
    "no-deny-read": "deny-read paths (secret stores) stay readable",
    "visible-processes": "host processes are visible in /proc (they cannot be signalled "
                         "or traced)",
}


@record
class SandboxPolicy:
    """What a command may touch.

    ``read-only``: the command reads what the user can read, except
    ``deny_read`` (secret stores by default), and writes nothing but a
    private temporary directory (its ``/tmp`` and ``$TMPDIR``) and
    ``/dev/null``-like devices.  Without ``network`` it reaches no host
    network service, TCP, UDP or Unix socket; a server it starts on
    127.0.0.1 is reachable within the run.  It cannot gain privileges.

    ``full-access`` confines nothing: the command still gets corral's process
    lifecycle (its own session, tree kill, timeout) but no sandbox.
    """

    kind: PolicyKind
    network: bool = False
    deny_read: tuple[str, ...] = DEFAULT_DENY_READ
    #: Names from :data:`WEAKER_GUARANTEES` the caller accepts.
    accept_weaker: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = set(self.accept_weaker) - set(WEAKER_GUARANTEES)
        if unknown:
            raise PolicyError(f"unknown weaker guarantee {sorted(unknown)[0]!r}: choose from "
                              f"{', '.join(WEAKER_GUARANTEES)}")
        object.__setattr__(self, "accept_weaker", frozenset(self.accept_weaker))

    @classmethod
    def full_access(cls) -> SandboxPolicy:
        return cls(PolicyKind.FULL_ACCESS)

    @classmethod
    def read_only(
        cls,
        *,
        network: bool = False,
        deny_read: tuple[str, ...] = DEFAULT_DENY_READ,
        accept_weaker: frozenset[str] | tuple[str, ...] = frozenset(),
    ) -> SandboxPolicy:
        return cls(PolicyKind.READ_ONLY, network=network, deny_read=tuple(deny_read),
                   accept_weaker=frozenset(accept_weaker))

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

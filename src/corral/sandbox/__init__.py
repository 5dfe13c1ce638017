"""Sandbox backends: each one transforms a :class:`~corral._launch.LaunchSpec`.

:func:`select_backend` is the only place that picks a backend for a policy;
the exec engine never branches on the platform or the backend itself.
"""

from __future__ import annotations

from .._errors import PolicyError
from .._policy import PolicyKind, SandboxPolicy
from .base import SandboxBackend
from .none import NoSandbox

__all__ = ["NoSandbox", "SandboxBackend", "select_backend"]


def select_backend(policy: SandboxPolicy, cwd: str | None = None) -> SandboxBackend:
    """The backend that enforces ``policy`` on this machine, for a command
    run in ``cwd`` (default: the current directory)."""
    if policy.kind is PolicyKind.FULL_ACCESS:
        return NoSandbox()
    import sys

    if not sys.platform.startswith("linux"):
        raise PolicyError(f"policy {policy.name!r} has no sandbox backend on {sys.platform} yet "
                          "(corral confines commands on Linux only); pass policy='full-access' "
                          "(--policy full-access) to run unconfined")
    from .bwrap import bwrap_absence, bwrap_backend  # only sandboxed runs import them

    backend = bwrap_backend()
    if backend is not None:
        return backend
    return _landlock_rung(policy, bwrap_absence(), cwd)


def _landlock_rung(policy: SandboxPolicy, absence: str, cwd: str | None) -> SandboxBackend:
    """Landlock + seccomp, if the kernel has them and the caller accepted what they
    cannot do; otherwise a PolicyError that says what is missing and the ways on."""
    from .._policy import WEAKER_GUARANTEES
    from .landlock import LandlockBackend, landlock_abi

    no_bwrap = f"policy {policy.name!r} needs bubblewrap, and {absence}"
    abi, why = landlock_abi()
    if abi < LandlockBackend.MINIMUM_ABI:
        reason = why or (f"Landlock ABI {abi} cannot let a file move from one directory to "
                         f"another (ABI {LandlockBackend.MINIMUM_ABI}, Linux 5.19, can)")
        raise PolicyError(f"{no_bwrap}, and the Landlock backend is not usable here: {reason}; "
                          "run `corral doctor` to see what this machine supports")
    backend = LandlockBackend(abi)
    missing = [n for n in backend.weaker_guarantees(policy, cwd) if n not in policy.accept_weaker]
    if missing:
        terms = "; ".join(f"{name}: {WEAKER_GUARANTEES[name]}" for name in missing)
        raise PolicyError(
            f"{no_bwrap}.  The Landlock backend can run it here with weaker guarantees "
            f"({terms}); accept them by name (accept_weaker={tuple(missing)!r}, or "
            f"{' '.join('--accept-weaker ' + n for n in missing)}) or install bubblewrap"
        )
    return backend

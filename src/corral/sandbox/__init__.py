"""Sandbox backends: each one transforms a :class:`~corral._launch.LaunchSpec`.

:func:`select_backend` is the only place that picks a backend for a policy;
the exec engine never branches on the platform or the backend itself.
"""

from __future__ import annotations

from .._policy import PolicyKind, SandboxPolicy
from .base import SandboxBackend
from .none import NoSandbox

__all__ = ["NoSandbox", "SandboxBackend", "select_backend"]


def select_backend(policy: SandboxPolicy) -> SandboxBackend:
    """The backend that enforces ``policy`` on this machine."""
    if policy.kind is PolicyKind.FULL_ACCESS:
        return NoSandbox()
    from .bwrap import bwrap_backend  # only sandboxed runs pay for importing it

    return bwrap_backend(policy)

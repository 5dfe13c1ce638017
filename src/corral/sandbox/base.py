"""The seam between the exec engine and sandbox backends."""

from __future__ import annotations

from typing import Protocol

from .._launch import LaunchSpec
from .._policy import SandboxPolicy


class SandboxBackend(Protocol):
    """Turns an unsandboxed launch into one confined by ``policy``.

    ``name`` is what results report (``None`` for no sandbox).  ``transform``
    must not start processes; it returns the launch the engine will spawn.
    """

    name: str | None

    def transform(self, launch: LaunchSpec, policy: SandboxPolicy) -> LaunchSpec: ...

    def decode_status(self, returncode: int) -> int:
        """The command's own status from the spawned process's (negative: signal)."""
        ...

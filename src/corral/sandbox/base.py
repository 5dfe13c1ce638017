"""The seam between the exec engine and sandbox backends."""

from __future__ import annotations

from .._launch import LaunchSpec
from .._policy import SandboxPolicy


class SandboxBackend:
    """Turns an unsandboxed launch into one confined by a policy.

    ``name`` is what results report (None for no sandbox).  A backend
    overrides :meth:`transform`, and the two hooks where its wrapper changes
    what the engine sees; the defaults suit a backend that execs the command
    itself.
    """

    name: str | None = None

    def transform(self, launch: LaunchSpec, policy: SandboxPolicy) -> LaunchSpec:
        """The launch the engine will spawn.  Must not start processes."""
        raise NotImplementedError

    def decode_status(self, returncode: int) -> int:
        """The command's own status from the spawned process's (negative: signal)."""
        return returncode

    def setup_failure(self, launch: LaunchSpec, stderr: str) -> str | None:
        """After a run that ended by itself: why the sandbox could not be built, if so."""
        return None

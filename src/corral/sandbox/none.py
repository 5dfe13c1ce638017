"""``full-access``: no confinement; the launch is run as planned."""

from __future__ import annotations

from .._launch import LaunchSpec
from .._policy import SandboxPolicy


class NoSandbox:
    name: str | None = None

    def transform(self, launch: LaunchSpec, policy: SandboxPolicy) -> LaunchSpec:
        return launch

    def decode_status(self, returncode: int) -> int:
        return returncode

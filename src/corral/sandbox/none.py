"""``full-access``: no confinement; the launch is run as planned."""

from __future__ import annotations

from .._launch import LaunchSpec
from .._policy import SandboxPolicy
from .base import SandboxBackend


class NoSandbox(SandboxBackend):
    def transform(self, launch: LaunchSpec, policy: SandboxPolicy) -> LaunchSpec:
        return launch

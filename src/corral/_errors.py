"""corral's exceptions, one tree::

    CorralError
    ├── RequestError (ValueError)   the request itself is malformed
    │   ├── EmptyCommandError          argv is empty
    │   ├── NulByteError               a NUL byte in argv, env or cwd
    │   └── PolicyError                unknown or unsupported policy
    ├── SpawnError (OSError)        the command could not be started
    │   ├── ProgramNotFoundError       no such program (on PATH or at the path)
    │   ├── NotExecutableError         found, but not executable / wrong format
    │   ├── CwdNotFoundError           the working directory does not exist
    │   └── SandboxSetupError          the sandbox could not be built
    └── ExecError                   the command ran; ``.result`` has everything
        ├── ExecTimeoutError           the timeout ended it (partial output)
        ├── ExecCancelledError         cancelled by a token or Ctrl-C
        ├── ExecSignaledError          killed by a signal
        ├── SandboxDeniedError         the sandbox (likely) refused something
        └── ExecFailedError            exited non-zero

``run()`` raises only ``RequestError`` and ``SpawnError``: a command that ran
always yields an ``ExecResult``.  ``ExecResult`` failures become exceptions
only on request, through :func:`corral.check`, the way
``CompletedProcess.check_returncode()`` works.
"""

from __future__ import annotations

import errno as _errno
import os
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from ._result import ExecResult

__all__ = [
    "CorralError",
    "CwdNotFoundError",
    "EmptyCommandError",
    "ExecCancelledError",
    "ExecError",
    "ExecFailedError",
    "ExecSignaledError",
    "ExecTimeoutError",
    "NotExecutableError",
    "NulByteError",
    "PolicyError",
    "ProgramNotFoundError",
    "RequestError",
    "SandboxDeniedError",
    "SandboxSetupError",
    "SpawnError",
    "spawn_error_for",
]


class CorralError(Exception):
    """Base of every error corral raises on purpose."""


class RequestError(CorralError, ValueError):
    """The request cannot be run as given; nothing was started."""


class EmptyCommandError(RequestError):
    def __init__(self) -> None:
        super().__init__("the command is empty: give at least the program to run")


class NulByteError(RequestError):
    def __init__(self, where: str) -> None:
        super().__init__(f"{where} contains a NUL byte, which no program can receive")
        self.where = where


class PolicyError(RequestError):
    """The policy is unknown, or this machine cannot enforce it."""


class SpawnError(CorralError, OSError):
    """The command could not be started.

    ``errno`` and ``filename`` are set as for ``OSError``; ``str()`` is a
    sentence a person understands.
    """

    def __init__(self, err: int, message: str, filename: str | None = None) -> None:
        super().__init__(err, message)
        self.filename = filename
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProgramNotFoundError(SpawnError):
    pass


class NotExecutableError(SpawnError):
    pass


class CwdNotFoundError(SpawnError):
    pass


class SandboxSetupError(SpawnError):
    """The sandbox could not be built, so the command never ran."""


def spawn_error_for(stage: str, err: int, program: str, cwd: str | None) -> SpawnError:
    """Turns a failure reported by the child before exec into the right error."""
    reason = os.strerror(err)
    if stage == "chdir":
        if err in (_errno.ENOENT, _errno.ENOTDIR):
            return CwdNotFoundError(err, f"working directory {cwd!r} does not exist", cwd)
        return SpawnError(err, f"cannot enter working directory {cwd!r}: {reason}", cwd)
    if stage == "exec":
        if err == _errno.ENOENT:
            return ProgramNotFoundError(err, f"program not found: {program!r}", program)
        if err in (_errno.EACCES, _errno.ENOEXEC, _errno.EISDIR, _errno.ENOTDIR):
            return NotExecutableError(err, f"cannot execute {program!r}: {reason}", program)
        return SpawnError(err, f"cannot execute {program!r}: {reason}", program)
    return SpawnError(err, f"cannot start {program!r}: {stage} failed: {reason}", program)


class ExecError(CorralError):
    """The command ran and the run did not succeed; ``result`` tells all."""

    def __init__(self, result: ExecResult, message: str) -> None:
        super().__init__(message)
        self.result = result


class ExecTimeoutError(ExecError):
    pass


class ExecCancelledError(ExecError):
    pass


class ExecSignaledError(ExecError):
    pass


class SandboxDeniedError(ExecError):
    pass


class ExecFailedError(ExecError):
    pass

"""Stage 1, the launch plan: turn a request into exactly what will be exec'd.

A :class:`LaunchSpec` is the hand-off between the request and the spawn
stage.  Sandbox backends transform it (wrap argv, add fds, set variables);
there is no other way to influence how a process starts, so every policy goes
through the one spawn path.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping

from ._env import build_env
from ._errors import NotExecutableError, ProgramNotFoundError
from ._record import record
from ._request import ExecRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .sandbox.socket_gate import SocketGate

__all__ = ["LaunchSpec", "plan_launch", "resolve_program"]


@record
class LaunchSpec:
    """A process to start: ``program`` is the file passed to execve, ``argv``
    what the process sees (``argv[0]`` included), ``env`` its whole
    environment, ``cwd`` where it starts (None: corral's own), ``pass_fds``
    descriptors it inherits at the same numbers besides stdin/out/err.

    ``landlock_ruleset`` (an fd, or -1) and ``seccomp_program`` (a
    ``struct sock_filter`` array, or None) are enforced by the child on
    itself right before exec, after ``no_new_privs`` and, with
    ``drop_capabilities``, after emptying its capability and bounding sets.  ``owned_fds`` are
    closed by the engine once the process has started (or failed to);
    ``status_fd`` (or -1) is read by the backend after the run, then closed;
    ``cleanups`` run once the run is over (removing what the backend made for
    this run only).  ``socket_gate`` (or None) serves the command's
    seccomp notifications (socket calls, writes): the child loads
    ``seccomp_program`` with a listener and sends it to the gate, or, without
    one, a program the child runs does (corral's init under bwrap); the
    gate's thread takes it, and the collect loop answers what that thread
    passes on.
    """

    program: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None
    pass_fds: tuple[int, ...] = ()
    landlock_ruleset: int = -1
    seccomp_program: bytes | None = None
    drop_capabilities: bool = False
    owned_fds: tuple[int, ...] = ()
    status_fd: int = -1
    cleanups: tuple[Callable[[], object], ...] = ()
    socket_gate: SocketGate | None = None
    #: The child's standard input (a descriptor the caller owns); -1: /dev/null.
    stdin: int = -1
    #: ``stdin`` is a pseudo-terminal's slave: also stdout, stderr and the
    #: controlling terminal.
    terminal: bool = False

    def release(self) -> None:
        """Closes ``owned_fds``; the engine calls it right after spawning."""
        for fd in self.owned_fds:
            os.close(fd)

    def finish(self) -> None:
        """Closes ``status_fd`` and runs ``cleanups``; the engine calls it when
        the run is over."""
        if self.status_fd >= 0:
            os.close(self.status_fd)
        for cleanup in self.cleanups:
            cleanup()


def resolve_program(name: str, env: Mapping[str, str], cwd: str | None) -> str:
    """The file execve must run for ``name``, searched like ``execvp`` does.

    A name with a slash is used as given (relative to the child's cwd) if it
    is an executable file; a bare name is looked up in the *child's* PATH
    (``os.defpath`` when unset).
    Raises :class:`ProgramNotFoundError`, or :class:`NotExecutableError` when
    only files without execute permission match.
    """
    if "/" in name:
        # Checked here, not only by execve, so that every backend reports the
        # same error (a sandbox's own launcher would report it its way).
        full = name if name[0] == "/" else f"{cwd or os.getcwd()}/{name}"
        if not os.path.exists(full):
            raise ProgramNotFoundError(errno.ENOENT, f"program not found: {name!r}", name)
        if os.path.isdir(full) or not os.access(full, os.X_OK):
            raise NotExecutableError(errno.EACCES, f"cannot execute {name!r}: not an "
                                     "executable file", name)
        return name
    path = env.get("PATH", os.defpath)
    not_executable = None
    for entry in path.split(os.pathsep):
        candidate = f"{entry or '.'}/{name}"
        # A relative PATH entry is relative to the child's working directory.
        full = candidate if candidate[0] == "/" else f"{cwd or os.getcwd()}/{candidate}"
        if os.access(full, os.X_OK):
            if not os.path.isdir(full):
                return candidate
        elif not_executable is None and os.path.isfile(full):
            not_executable = full
    if not_executable is not None:
        raise NotExecutableError(
            errno.EACCES, f"cannot execute {name!r}: {not_executable} is not executable", name
        )
    raise ProgramNotFoundError(
        errno.ENOENT, f"program not found: {name!r} is not on PATH ({path})", name
    )


def plan_launch(request: ExecRequest) -> LaunchSpec:
    """The unsandboxed launch for ``request``."""
    env = dict(build_env() if request.env is None else request.env)
    cwd = None if request.cwd is None else os.fspath(request.cwd)
    argv = request.argv
    assert isinstance(argv, tuple)
    program = resolve_program(argv[0], env, cwd)
    if request.arg0 is not None:
        argv = (request.arg0,) + argv[1:]
    if request.terminal is not None:
        return LaunchSpec(program=program, argv=argv, env=env, cwd=cwd, stdin=request.terminal,
                          terminal=True)
    return LaunchSpec(program=program, argv=argv, env=env, cwd=cwd,
                      stdin=-1 if request.stdin is None else request.stdin)

"""Stage 2, spawn: start the planned process, and nothing else.

On Linux the work is done by ``_cspawn`` (vfork + exec, with cgroup placement
and a parent-death signal in the child).  Elsewhere, or if the extension was
not built, :class:`subprocess.Popen` with ``start_new_session`` is used: no
parent-death signal there, and process-group containment only.

The child gets: stdin from /dev/null (an open stdin makes tools such as
ripgrep wait for input forever) unless the launch names another descriptor,
stdout and stderr on two pipes, a new
session, exactly the environment planned, and no other inherited descriptor
but ``pass_fds``.
"""

from __future__ import annotations

import fcntl
import os
import sys
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False

from ._errors import PolicyError, spawn_error_for
from ._launch import LaunchSpec
from ._record import record

if TYPE_CHECKING:
    import subprocess
    from signal import SIGKILL
else:  # signal's C core: signal itself makes IntEnums of every constant, 2 ms of start-up
    from _signal import SIGKILL

try:
    from . import _cspawn
except ImportError:  # not Linux, or built without a compiler
    _cspawn = None

__all__ = ["HAVE_NATIVE_SPAWN", "CgroupJoinError", "SpawnedProcess", "spawn", "spawn_helper"]

HAVE_NATIVE_SPAWN = _cspawn is not None

# As os.fsencode, inlined on the hot path: text from the OS (surrogate
# escapes included, PEP 383) goes back to it as the original bytes.
_FS_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
# If corral dies, so does the command (SIGKILL: it cannot be ignored).
_PARENT_DEATH_SIGNAL = SIGKILL
# A bigger pipe means fewer wake-ups for the reader on chatty commands.
_PIPE_SIZE = 1024 * 1024
_F_SETPIPE_SZ = 1031


class CgroupJoinError(OSError):
    """The child could not join its run cgroup (permissions, delegation)."""


@record
class SpawnedProcess:
    pid: int
    #: Readable when the process exits; -1 where pidfds are unavailable.
    pidfd: int
    stdout: int
    stderr: int
    #: Only on the portable path: the Popen object that owns the pid.
    popen: subprocess.Popen[bytes] | None = None


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(read_end, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass  # over /proc/sys/fs/pipe-max-size for this user: keep the default
    return read_end, write_end


def spawn(launch: LaunchSpec, cgroup_fd: int) -> SpawnedProcess:
    """Starts ``launch`` (inside the cgroup whose directory ``cgroup_fd`` is open on,
    if not -1); raises :class:`~corral.SpawnError` if it cannot run."""
    out_r, out_w = _pipe()
    err_r, err_w = _pipe()
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    # On a terminal the output goes there; the pipes, unused, end at once.
    stdout, stderr = (launch.stdin, launch.stdin) if launch.terminal else (out_w, err_w)
    try:
        if launch.socket_gate is not None:
            launch.socket_gate.contain(cgroup_fd >= 0)
        if _cspawn is not None:
            encoding, errors = _FS_ENCODING
            env = [f"{k}={v}".encode(encoding, errors) for k, v in launch.env.items()]
            pid, pidfd, stage, err = _cspawn.spawn(
                os.fsencode(launch.program),
                [a.encode(encoding, errors) for a in launch.argv],
                env,
                None if launch.cwd is None else os.fsencode(launch.cwd),
                null if launch.stdin < 0 else launch.stdin,
                stdout,
                stderr,
                sorted(launch.pass_fds),
                cgroup_fd,
                int(_PARENT_DEATH_SIGNAL),
                launch.landlock_ruleset,
                launch.seccomp_program,
                # Without a program here, the gate's listener comes from further on.
                -1 if launch.socket_gate is None or launch.seccomp_program is None
                else launch.socket_gate.child_end,
                launch.drop_capabilities,
                launch.terminal,
            )
            if stage is not None:
                if stage == "cgroup":
                    raise CgroupJoinError(err, os.strerror(err))
                raise spawn_error_for(stage, err, launch.argv[0], launch.cwd)
            return SpawnedProcess(pid, pidfd, out_r, err_r)
        return _spawn_portable(launch, null if launch.stdin < 0 else launch.stdin, stdout, stderr,
                               out_r, err_r)
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
        os.close(null)


def spawn_helper(program: str, argv: list[str], stdin: int) -> bool:
    """Starts a helper of corral's own that must outlive this process.

    Unlike :func:`spawn`: no parent-death signal, no cgroup, stdout and
    stderr to /dev/null, a minimal environment.  Returns whether it started
    (False without the C extension).
    """
    if _cspawn is None:
        return False
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        encoding, errors = _FS_ENCODING
        pid, pidfd, stage, _ = _cspawn.spawn(
            program.encode(encoding, errors), [a.encode(encoding, errors) for a in argv],
            [b"PATH=/usr/bin:/bin"], b"/", stdin, null, null, [], -1, 0, -1, None,
        )
    finally:
        os.close(null)
    if pidfd >= 0:
        os.close(pidfd)
    return stage is None


def _spawn_portable(
    launch: LaunchSpec, null: int, out_w: int, err_w: int, out_r: int, err_r: int
) -> SpawnedProcess:
    import subprocess  # only on this path: it costs start-up time

    if (launch.landlock_ruleset >= 0 or launch.seccomp_program is not None or launch.socket_gate
            or launch.drop_capabilities):
        raise PolicyError("Landlock, seccomp and capability confinement need corral's C spawn "
                          "extension")

    try:
        popen = subprocess.Popen(
            launch.argv,
            executable=launch.program,
            stdin=null,
            stdout=out_w,
            stderr=err_w,
            cwd=launch.cwd,
            env=dict(launch.env),
            pass_fds=launch.pass_fds,
            start_new_session=True,
        )
    except OSError as exc:
        stage = "chdir" if launch.cwd is not None and exc.filename == launch.cwd else "exec"
        raise spawn_error_for(stage, exc.errno or 0, launch.argv[0], launch.cwd) from None
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):
        pidfd = -1
    return SpawnedProcess(popen.pid, pidfd, out_r, err_r, popen)

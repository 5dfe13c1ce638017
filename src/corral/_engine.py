"""The exec engine: request -> sandbox transform -> spawn -> collect -> finalize.

:func:`execute` is the one path every surface (library, CLI, MCP server)
runs a command through.  It is synchronous and runs entirely in the calling
thread; the async API calls it from a worker thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ._capture import OutputCapture
from ._cancel import CancelToken
from ._collect import Collected, Ending, collect
from ._denial import find_denials, is_likely_sandbox_denied
from ._containment import ProcessGroupContainment, disable_cgroups, open_containment
from ._errors import PolicyError, RequestError, SandboxSetupError
from ._files import open_regular_file
from ._launch import LaunchSpec, plan_launch
from ._record import replace
from ._request import ExecRequest
from ._result import (
    TIMEOUT_EXIT_CODE,
    CapturedText,
    Denial,
    DenialKind,
    ExecResult,
    KillMechanism,
    OutputEvent,
)
from ._spawn import HAVE_NATIVE_SPAWN, CgroupJoinError, SpawnedProcess, spawn
from .sandbox import select_backend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import SIGKILL

    from ._containment import Containment
else:  # signal's C core: signal itself makes IntEnums of every constant, 2 ms of start-up
    from _signal import SIGKILL

__all__ = ["CANCEL_EXIT_CODE", "execute"]

#: A cancelled run (token, Ctrl-C) reports 128+SIGKILL, as Codex does.
CANCEL_EXIT_CODE = 128 + SIGKILL


def _open_spill(spill: object) -> tuple[int, str | None]:
    """The descriptor the complete output is written to, and its path.

    Whatever is already at the path may be a command's doing (a link to a
    file of the user's, a FIFO an open would wait on for ever, a device that
    acts on being opened), so nothing is followed or opened but a regular
    file: a new file is created exclusively (``O_EXCL|O_NOFOLLOW``), and one
    that exists is looked at first (``O_PATH``, which opens nothing) and
    truncated only if it is a regular file.  Raises :class:`RequestError`
    naming the path otherwise, or when it cannot be created.
    """
    if spill is False:
        return -1, None
    if spill is True:
        import tempfile  # only here: it is slow to import

        fd, path = tempfile.mkstemp(prefix="corral-output-", suffix=".log")  # O_EXCL|O_NOFOLLOW
        return fd, path
    path = os.fspath(spill)  # type: ignore[call-overload]
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            existing = open_regular_file(path, os.O_WRONLY | os.O_TRUNC, follow=False)
            if existing is None:
                raise RequestError(f"spill file {path!r} exists and is not a regular file "
                                   "(a symbolic link, FIFO or device is never written to)")
            fd = existing
    except OSError as exc:
        raise RequestError(f"cannot create the spill file {path!r}: {exc.strerror}") from None
    return fd, os.path.abspath(path)


def _spawn_contained(
    request: ExecRequest, launch_spawn: Callable[[int], SpawnedProcess]
) -> tuple[SpawnedProcess, Containment]:
    containment = open_containment(request.kill_mechanism, HAVE_NATIVE_SPAWN)
    try:
        proc = launch_spawn(containment.cgroup_fd)
    except CgroupJoinError as exc:
        containment.close()
        reason = f"the child could not join its cgroup: {exc.strerror}"
        if request.kill_mechanism is KillMechanism.CGROUP:
            raise PolicyError(f"kill mechanism 'cgroup' is not available here: {reason}") from None
        disable_cgroups(reason)
        containment = ProcessGroupContainment()
        proc = launch_spawn(-1)
    except BaseException:
        containment.close()
        raise
    containment.attach(proc.pid)
    return proc, containment


def execute(
    request: ExecRequest,
    on_output: Callable[[OutputEvent], object] | None = None,
    *,
    extra_cancel: CancelToken | None = None,
) -> ExecResult:
    """Runs ``request`` to completion and returns what happened.

    Raises :class:`~corral.RequestError` or :class:`~corral.SpawnError` when
    the command cannot start (:class:`~corral.SandboxSetupError` when its
    sandbox could not be built); once it has started, always returns an
    :class:`ExecResult` (unless the calling thread is interrupted, in which
    case every process of the run is killed before the exception propagates).
    ``on_output`` is called in this thread for each chunk, in order.
    """
    policy = request.resolved_policy
    backend = select_backend(policy, None if request.cwd is None else os.fspath(request.cwd))
    planned = plan_launch(request)
    timeout = request.timeout_seconds()
    cancel_fds = tuple(
        {t.fileno() for t in (request.cancel, extra_cancel) if t is not None}
    )
    limits = request.limits
    spill_fd, spill_path = _open_spill(limits.spill)
    launch: LaunchSpec | None = None
    try:
        capture = OutputCapture(limits.max_bytes_per_stream, limits.max_events, on_output, spill_fd)
        launch = transformed = backend.transform(planned, policy)
        started = time.monotonic()
        try:
            proc, containment = _spawn_contained(request, lambda fd: spawn(transformed, fd))
        finally:
            transformed.release()
        gate = transformed.socket_gate
        collected = collect(
            proc,
            containment,
            capture,
            started=started,
            timeout=timeout,
            cancel_fds=cancel_fds,
            drain_timeout=request.drain_timeout,
            gate=gate,
        )
        stdout, stderr, output = capture.finish()
        if collected.ending is Ending.EXITED:
            failure = backend.setup_failure(launch, stderr.text)
            if failure is not None:
                raise SandboxSetupError(
                    0, f"the {backend.name} sandbox could not be set up: {failure}")
    except BaseException:
        if spill_fd >= 0:
            os.close(spill_fd)
            spill_fd = -1
            if spill_path is not None and limits.spill is True:
                os.unlink(spill_path)
        raise
    finally:
        if spill_fd >= 0:
            os.close(spill_fd)
        if launch is not None:
            launch.finish()
    collected = replace(collected, returncode=backend.decode_status(collected.returncode))
    failed = collected.ending is not Ending.EXITED or collected.returncode != 0
    return _finalize(
        request, collected, stdout, stderr, output, containment.mechanism, spill_path,
        capture, backend.name, gate.refusals(failed) if gate is not None else (),
        gate.excused() if gate is not None else frozenset(),
    )


def _finalize(
    request: ExecRequest,
    collected: Collected,
    stdout: CapturedText,
    stderr: CapturedText,
    output: CapturedText,
    mechanism: KillMechanism,
    spill_path: str | None,
    capture: OutputCapture,
    sandbox: str | None,
    refused: tuple[Denial, ...],
    excused: frozenset[DenialKind],
) -> ExecResult:
    signal_number = None
    if collected.ending is Ending.TIMED_OUT:
        exit_code = TIMEOUT_EXIT_CODE
    elif collected.ending is Ending.CANCELLED:
        exit_code = CANCEL_EXIT_CODE
    elif collected.returncode < 0:
        signal_number = -collected.returncode
        exit_code = 128 + signal_number
    else:
        exit_code = collected.returncode
    spill = None
    if spill_path is not None:
        from pathlib import Path

        spill = Path(spill_path)
    denied = is_likely_sandbox_denied(
        sandbox, exit_code, stdout.text, stderr.text, output.text
    )
    # What the sandbox itself refused comes first; the output adds what only
    # it shows (an error message without an address adds nothing to a
    # refusal of that kind the sandbox reported with one, and the complaint
    # of a program named as a privileged call it refused, "mount: /mnt:
    # permission denied", is that refusal, not a write).  Nor does it add a
    # refusal of a kind the sandbox saw and excused: one the kernel would
    # have made outside it too (a user's raw socket).
    denials = {(d.kind, d.target): d for d in refused}
    calls = tuple(f"{d.target}:" for d in refused if d.kind is DenialKind.PRIVILEGE)
    for denial in find_denials(request.resolved_policy, os.fspath(request.cwd or os.getcwd()),
                               exit_code, output.text, sandbox):
        if denial.target is None and (denial.kind in excused
                                      or any(d.kind is denial.kind for d in refused)):
            continue
        if calls and denial.evidence.startswith(calls):
            continue
        denials.setdefault((denial.kind, denial.target), denial)
    return ExecResult(
        argv=tuple(request.argv),
        exit_code=exit_code,
        stdout_capture=stdout,
        stderr_capture=stderr,
        output=output,
        duration=collected.duration,
        timed_out=collected.ending is Ending.TIMED_OUT,
        cancelled=collected.ending is Ending.CANCELLED,
        signal=signal_number,
        kill_mechanism=mechanism,
        spill_path=spill,
        drain_timed_out=collected.drain_timed_out,
        events_emitted=capture.events_emitted,
        events_dropped=capture.events_dropped,
        policy=request.resolved_policy.name,
        sandbox=sandbox,
        likely_sandbox_denied=denied,
        denials=tuple(denials.values()),
    )

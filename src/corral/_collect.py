"""Stage 3, collect: the one reader loop.

It reads both pipes as data arrives, watches the process exit (a pidfd), the
deadline and the cancel token, all in one ``poll()`` in the calling thread:
no event loop and no helper thread per run, which is what keeps the
synchronous path as cheap as ``subprocess.run``.  The async API runs this
same loop in a worker thread.

When the command exits, anything it left running is killed; when the
deadline or cancellation comes first, everything is killed.  Either way the
pipes are then drained for at most ``drain_timeout`` seconds, so a process
that escaped the kill and holds a pipe cannot hang the run.
"""

from __future__ import annotations

import enum
import os
import select
import time

from ._capture import OutputCapture
from ._record import record
from ._result import Stream
from ._spawn import SpawnedProcess

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import SIGKILL

    from ._containment import Containment
    from .sandbox.socket_gate import SocketGate
else:  # signal's C core: signal itself makes IntEnums of every constant, 2 ms of start-up
    from _signal import SIGKILL

__all__ = ["Ending", "Collected", "collect"]

# Read size: a full default pipe (64 KiB) per wake-up, up to 1 MiB pipes.
_CHUNK = 256 * 1024
# Without a pidfd the loop polls for the exit at this period.
_EXIT_POLL_PERIOD_MS = 10


class Ending(enum.Enum):
    """Why the run stopped."""

    EXITED = "exited"
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"


@record
class Collected:
    ending: Ending
    #: As ``os.waitstatus_to_exitcode``: negative for a signal death.
    returncode: int
    duration: float
    drain_timed_out: bool


def _kill(containment: Containment, proc: SpawnedProcess, gate: SocketGate | None) -> None:
    """Kills the whole run, and its first process directly as well: reaping
    it must not wait on a kill the containment could not make (a process
    group or cgroup that is not what it was)."""
    _kill_leftovers(containment, gate)
    if proc.popen is not None:
        proc.popen.kill()
        return
    try:
        os.kill(proc.pid, SIGKILL)  # not reaped yet: the pid is still this child's
    except ProcessLookupError:
        pass


def _kill_leftovers(containment: Containment, gate: SocketGate | None) -> None:
    """Kills every process of the run: the containment's, and those of the
    sessions the run's processes made, which the gate knows where it stands
    in for a PID namespace (Landlock): a process group's kill misses them."""
    containment.kill()
    if gate is not None:
        gate.end_sessions()


def _reap(proc: SpawnedProcess, block: bool) -> int | None:
    if proc.popen is not None:
        return proc.popen.wait() if block else proc.popen.poll()
    pid, status = os.waitpid(proc.pid, 0 if block else os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if pid else None


def collect(
    proc: SpawnedProcess,
    containment: Containment,
    capture: OutputCapture,
    *,
    started: float,
    timeout: float | None,
    cancel_fds: tuple[int, ...],
    drain_timeout: float,
    gate: SocketGate | None = None,
) -> Collected:
    """Runs the loop to the end of the run; always leaves no process behind.

    ``gate`` (or None), whose thread has taken the listener of the run's
    seccomp notifier, answers the notifications that thread passes on (the
    run's socket calls) as they come, and as the connects it could not
    complete at once do.  On
    any exception (KeyboardInterrupt included) the whole run is killed and
    reaped before the exception propagates.
    """
    streams = {proc.stdout: Stream.STDOUT, proc.stderr: Stream.STDERR}
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    if proc.pidfd >= 0:
        poller.register(proc.pidfd, select.POLLIN)
    for fd in cancel_fds:
        poller.register(fd, select.POLLIN)
    gate_fd = -1

    deadline = None if timeout is None else started + timeout
    returncode: int | None = None
    ending = Ending.EXITED
    drain_deadline: float | None = None  # set once the process tree is gone
    drain_timed_out = False
    read = os.read
    feed = capture.feed

    def finish_process(why: Ending) -> None:
        nonlocal returncode, ending, drain_deadline
        if why is not Ending.EXITED:
            ending = why
            _kill(containment, proc, gate)
        if returncode is None:
            returncode = _reap(proc, block=True)
        if proc.pidfd >= 0:
            poller.unregister(proc.pidfd)
        if why is Ending.EXITED:
            for fd in cancel_fds:
                poller.unregister(fd)
        if why is Ending.EXITED and (containment.has_survivors()
                                     or gate is not None and gate.processes_left()):
            _kill_leftovers(containment, gate)  # the command is done; what it left goes too
        drain_deadline = time.monotonic() + drain_timeout

    try:
        if gate is not None:
            gate.started()
            gate_fd = gate.fileno()
            poller.register(gate_fd, select.POLLIN)
        while streams or drain_deadline is None:
            if drain_deadline is None:
                limit = deadline
                if proc.pidfd < 0:
                    returncode = _reap(proc, block=False)
                    if returncode is not None:
                        finish_process(Ending.EXITED)
                        continue
            else:
                limit = drain_deadline
            if limit is None:
                wait_ms = -1 if proc.pidfd >= 0 else _EXIT_POLL_PERIOD_MS
            else:
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    if drain_deadline is None:
                        finish_process(Ending.TIMED_OUT)
                        continue
                    drain_timed_out = True
                    break
                wait_ms = max(1, int(remaining * 1000 + 0.999))
                if proc.pidfd < 0 and drain_deadline is None:
                    wait_ms = min(wait_ms, _EXIT_POLL_PERIOD_MS)
            gate_due = gate.wake_in() if gate is not None and gate_fd >= 0 else None
            if gate_due is not None:
                due_ms = int(gate_due * 1000 + 0.999)
                wait_ms = due_ms if wait_ms < 0 else min(wait_ms, due_ms)
            ready = poller.poll(wait_ms)
            if gate_due is not None and not any(fd == gate_fd for fd, _ in ready):
                ready.append((gate_fd, select.POLLIN))  # a connect to try again
            for fd, events in ready:
                if fd == gate_fd:
                    assert gate is not None
                    if not events & select.POLLIN or not gate.handle():
                        poller.unregister(fd)  # no process left under the filter
                        gate_fd = -1
                    continue
                stream = streams.get(fd)
                if stream is not None:
                    data = read(fd, _CHUNK)
                    if data:
                        feed(stream, data)
                    else:
                        poller.unregister(fd)
                        os.close(fd)
                        del streams[fd]
                elif drain_deadline is not None:
                    continue  # pidfd/cancel events after the end are moot
                elif fd == proc.pidfd:
                    finish_process(Ending.EXITED)
                elif fd in cancel_fds:
                    finish_process(Ending.CANCELLED)
    except BaseException:
        if returncode is None:
            _kill(containment, proc, gate)
            _reap(proc, block=True)
        else:
            _kill_leftovers(containment, gate)
        raise
    finally:
        for fd in streams:
            os.close(fd)
        if proc.pidfd >= 0:
            os.close(proc.pidfd)
        containment.close()
    assert returncode is not None
    return Collected(ending, returncode, time.monotonic() - started, drain_timed_out)

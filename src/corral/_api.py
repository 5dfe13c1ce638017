"""The public entry points: :func:`run`, :func:`run_async`, :func:`stream`, :func:`check`.

All of them build an :class:`ExecRequest` and hand it to the one engine
(:func:`corral._engine.execute`).  The async forms run the engine in a
dedicated thread per run: the reader loop stays the same code, and a
cancelled task kills the run and waits until every process is gone before
``CancelledError`` propagates (cancellation is an outcome, not an accident).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._cancel import CancelToken
from ._engine import execute
from ._errors import (
    ExecCancelledError,
    ExecFailedError,
    ExecSignaledError,
    ExecTimeoutError,
    SandboxDeniedError,
)
from ._policy import SandboxPolicy
from ._record import replace
from ._request import DEFAULT_TIMEOUT, DefaultTimeout, ExecRequest, OutputLimits
from ._result import ExecResult, KillMechanism, OutputEvent

if TYPE_CHECKING:
    import asyncio

__all__ = ["OutputStream", "check", "run", "run_async", "stream"]

OutputCallback = Callable[[OutputEvent], object]

# An async consumer that falls this far behind loses live events (counted in
# ``events_dropped``; the captured output is unaffected) rather than making
# corral buffer without bound.
_MAX_PENDING_EVENT_BYTES = 16 * 1024 * 1024


def _request(
    command: Sequence[str] | ExecRequest, fields: Mapping[str, Any]
) -> ExecRequest:
    if isinstance(command, ExecRequest):
        if fields:
            raise TypeError(
                f"run() got an ExecRequest and also {', '.join(sorted(fields))}: "
                "put them in the request"
            )
        return command
    return ExecRequest(argv=command, **fields)


def _fields(
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    arg0: str | None,
    timeout: float | None | DefaultTimeout,
    cancel: CancelToken | None,
    limits: OutputLimits | None,
    policy: SandboxPolicy | str | None,
    kill_mechanism: KillMechanism | None,
    drain_timeout: float | None,
) -> dict[str, Any]:
    given: dict[str, Any] = {
        "cwd": cwd, "env": env, "arg0": arg0, "cancel": cancel, "limits": limits,
        "policy": policy, "kill_mechanism": kill_mechanism, "drain_timeout": drain_timeout,
    }
    fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if timeout is not DEFAULT_TIMEOUT:
        fields["timeout"] = timeout
    return fields


def run(
    command: Sequence[str] | ExecRequest,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    arg0: str | None = None,
    timeout: float | None | DefaultTimeout = DEFAULT_TIMEOUT,
    cancel: CancelToken | None = None,
    limits: OutputLimits | None = None,
    policy: SandboxPolicy | str | None = None,
    kill_mechanism: KillMechanism | None = None,
    drain_timeout: float | None = None,
    on_output: OutputCallback | None = None,
) -> ExecResult:
    """Runs a command to completion and returns an :class:`ExecResult`.

    **Command:** ``command`` is an argv list (no shell), or a ready
    :class:`ExecRequest` (then give no other request field).

    **Expiration:** ``timeout`` seconds (default: ``CORRAL_DEFAULT_TIMEOUT`` or
    10 s; None: no limit); ``cancel`` ends the run from another thread.
    Either way every process the command started is killed, the result has
    ``timed_out``/``cancelled`` set and exit code 124/137.

    **Sandbox:** ``policy`` (default ``"workspace-write"``: writes only
    beneath ``cwd``, protected paths excepted, no network) is enforced by
    the kernel; see :class:`SandboxPolicy`.  ``"full-access"`` confines
    nothing.  What the sandbox refused is in ``result.denials``.

    **Lifecycle:** the command runs in its own session and, where the machine
    allows, its own cgroup (``kill_mechanism`` None picks the strongest
    available; naming one refuses to run without it).  When the run ends, so
    does every process it started; pipes still held open after that are
    drained for at most ``drain_timeout`` seconds (default 2).

    **Output:** ``on_output`` is called in this thread with each chunk as it
    arrives (at most ``limits.max_events``).  The result keeps a head and a
    tail of each stream and of the interleaved output, with exact counts.

    **Errors:** raises :class:`~corral.RequestError` for a malformed request,
    :class:`~corral.PolicyError` when this machine cannot enforce the policy
    (the message says what is missing and the ways on),
    :class:`~corral.SandboxSetupError` when the sandbox failed to build, and
    :class:`~corral.SpawnError` when the program cannot be started.  A
    command that ran is never an exception here; see :func:`check`.

    Thread-safe: any number of threads may call it at once.
    """
    request = _request(
        command, _fields(cwd, env, arg0, timeout, cancel, limits, policy, kill_mechanism, drain_timeout)
    )
    return execute(request, on_output)


def check(result: ExecResult) -> ExecResult:
    """Returns ``result`` if the command succeeded, else raises the matching error.

    :class:`~corral.ExecTimeoutError`, :class:`~corral.ExecCancelledError`,
    :class:`~corral.ExecSignaledError`, :class:`~corral.SandboxDeniedError`
    (a failed run with denials, or one the heuristic suspects; the message
    names each denial and its remedy) or :class:`~corral.ExecFailedError`;
    each carries the result (and so the partial output).
    """
    command = " ".join(result.argv)
    if result.timed_out:
        raise ExecTimeoutError(result, f"{command!r} timed out after {result.duration:.3g} s")
    if result.cancelled:
        raise ExecCancelledError(result, f"{command!r} was cancelled")
    if result.signal is not None:
        raise ExecSignaledError(
            result, f"{command!r} was killed by {result.signal_name} ({result.signal})"
        )
    if result.exit_code != 0:
        if result.denials:
            what = "; ".join(f"{d.kind.value} {d.target or ''}: {d.remedy}".replace(" :", ":")
                             for d in result.denials)
            raise SandboxDeniedError(result, f"{command!r} was denied by the sandbox ({what})")
        if result.likely_sandbox_denied:
            raise SandboxDeniedError(result, f"{command!r} was denied by the sandbox")
        raise ExecFailedError(result, f"{command!r} exited with code {result.exit_code}")
    return result


class _RunThread:
    """Runs one request in a dedicated thread and reports to an event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, request: ExecRequest,
        on_output: OutputCallback | None,
    ) -> None:
        self.cancel = CancelToken()
        self.future: asyncio.Future[ExecResult] = loop.create_future()
        self._loop = loop
        self._request = request
        self._on_output = on_output
        threading.Thread(target=self._work, name="corral-run", daemon=True).start()

    def _work(self) -> None:
        outcome: tuple[Callable[[Any], None], object]
        try:
            result = execute(self._request, self._on_output, extra_cancel=self.cancel)
            outcome = (self.future.set_result, result)
        except BaseException as exc:  # delivered to the awaiting task
            outcome = (self.future.set_exception, exc)
        # Released before the task hears of the end: nothing of the run outlives it.
        self.cancel.close()
        self._deliver(*outcome)

    def _deliver(self, setter: Callable[[Any], None], value: object) -> None:
        def set_if_pending() -> None:
            if not self.future.done():
                setter(value)

        try:
            self._loop.call_soon_threadsafe(set_if_pending)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    async def wait(self) -> ExecResult:
        import asyncio

        try:
            return await asyncio.shield(self.future)
        except asyncio.CancelledError:
            self.cancel.cancel()
            try:
                await self.future
            except BaseException:
                pass
            raise


async def run_async(
    command: Sequence[str] | ExecRequest,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    arg0: str | None = None,
    timeout: float | None | DefaultTimeout = DEFAULT_TIMEOUT,
    cancel: CancelToken | None = None,
    limits: OutputLimits | None = None,
    policy: SandboxPolicy | str | None = None,
    kill_mechanism: KillMechanism | None = None,
    drain_timeout: float | None = None,
    on_output: OutputCallback | None = None,
) -> ExecResult:
    """:func:`run` for asyncio: same arguments, same result.

    ``on_output`` is called on the event loop's thread.  Cancelling the task
    kills every process of the run, waits until they are gone, then raises
    ``CancelledError``.
    """
    import asyncio

    request = _request(
        command, _fields(cwd, env, arg0, timeout, cancel, limits, policy, kill_mechanism, drain_timeout)
    )
    loop = asyncio.get_running_loop()
    callback: OutputCallback | None = None
    if on_output is not None:
        user_callback = on_output

        def on_loop(event: OutputEvent) -> None:
            loop.call_soon_threadsafe(user_callback, event)

        callback = on_loop
    return await _RunThread(loop, request, callback).wait()


class OutputStream:
    """Async iterator over a run's :class:`OutputEvent`\\ s; then ``.result``.

    ::

        async with corral.stream(["make"]) as run:
            async for event in run:
                print(event.stream, event.data)
        print(run.result.exit_code)

    Leaving the ``async with`` block early (or :meth:`aclose`) cancels the run.
    """

    _DONE = object()

    def __init__(self, request: ExecRequest) -> None:
        self._request = request
        self._runner: _RunThread | None = None
        self._queue: asyncio.Queue[Any] | None = None
        self._pending = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._result: ExecResult | None = None

    def _start(self) -> _RunThread:
        import asyncio

        if self._runner is None:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()
            self._queue = queue

            def on_event(event: OutputEvent) -> None:
                with self._lock:
                    if self._pending + len(event.data) > _MAX_PENDING_EVENT_BYTES:
                        self._dropped += 1
                        return
                    self._pending += len(event.data)
                loop.call_soon_threadsafe(queue.put_nowait, event)

            self._runner = _RunThread(loop, self._request, on_event)
            self._runner.future.add_done_callback(lambda _: queue.put_nowait(self._DONE))
        return self._runner

    def __aiter__(self) -> AsyncIterator[OutputEvent]:
        self._start()
        return self

    async def __anext__(self) -> OutputEvent:
        runner = self._start()
        assert self._queue is not None
        item = await self._queue.get()
        if item is self._DONE:
            self._result = await runner.wait()
            raise StopAsyncIteration
        with self._lock:
            self._pending -= len(item.data)
        assert isinstance(item, OutputEvent)
        return item

    async def wait(self) -> ExecResult:
        """Waits for the end of the run (discarding events not yet read)."""
        runner = self._start()
        if self._result is None:
            self._result = await runner.wait()
        return self.result

    @property
    def result(self) -> ExecResult:
        """The run's result; available once iteration has finished."""
        if self._result is None:
            raise RuntimeError("the run has not finished: iterate to the end or await wait()")
        if self._dropped:
            return replace(self._result, events_dropped=self._result.events_dropped + self._dropped)
        return self._result

    async def aclose(self) -> None:
        """Cancels the run if it is still going and waits until it is over."""
        if self._runner is not None and not self._runner.future.done():
            self._runner.cancel.cancel()
        if self._runner is not None:
            try:
                self._result = await self._runner.wait()
            except Exception:
                pass

    async def __aenter__(self) -> OutputStream:
        self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def stream(
    command: Sequence[str] | ExecRequest,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    arg0: str | None = None,
    timeout: float | None | DefaultTimeout = DEFAULT_TIMEOUT,
    cancel: CancelToken | None = None,
    limits: OutputLimits | None = None,
    policy: SandboxPolicy | str | None = None,
    kill_mechanism: KillMechanism | None = None,
    drain_timeout: float | None = None,
) -> OutputStream:
    """Starts a run whose output is read with ``async for``; see :class:`OutputStream`.

    The run starts when iteration (or ``async with``) begins.
    """
    return OutputStream(
        _request(command, _fields(cwd, env, arg0, timeout, cancel, limits, policy, kill_mechanism, drain_timeout))
    )

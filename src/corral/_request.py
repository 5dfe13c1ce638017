"""Stage 0, the request: what to run, where, with what, for how long.

:class:`ExecRequest` is validated on construction, so a request that exists
can be run; everything malformed raises a :class:`RequestError` naming the
problem before any process is created.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

from ._cancel import CancelToken
from ._errors import EmptyCommandError, NulByteError, RequestError
from ._policy import SandboxPolicy, resolve_policy
from ._record import record
from ._result import KillMechanism

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TIMEOUT_SECONDS",
    "DefaultTimeout",
    "ExecRequest",
    "OutputLimits",
    "MAX_WAIT_SECONDS",
    "TIMEOUT_ENV_VAR",
    "checked_wait",
    "resolve_default_timeout",
]

#: Codex's default for a tool call.  Users hit it constantly, so it is easy to
#: change for every surface at once through :data:`TIMEOUT_ENV_VAR`.
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
TIMEOUT_ENV_VAR: Final = "CORRAL_DEFAULT_TIMEOUT"

#: Codex caps the retained output at 1 MiB; corral keeps it as a head and a tail.
DEFAULT_MAX_BYTES_PER_STREAM: Final = 1024 * 1024
#: Codex's cap on streamed deltas per call: a chatty command must not flood the
#: consumer.  Capture goes on past it.
DEFAULT_MAX_EVENTS: Final = 10_000
#: How long a run waits for pipes after the command is gone: a process that
#: escaped the kill and holds them open must not hang the run (Codex: 2 s).
DEFAULT_DRAIN_TIMEOUT: Final = 2.0
#: The longest wait corral makes (a timeout, a drain, an MCP server's yield):
#: what one poll() can wait, INT_MAX milliseconds (about 24.8 days).
MAX_WAIT_SECONDS: Final = (2**31 - 1) / 1000


class DefaultTimeout(enum.Enum):
    """The type of :data:`DEFAULT_TIMEOUT`: "use the configured default"."""

    DEFAULT = "default"


DEFAULT_TIMEOUT: Final = DefaultTimeout.DEFAULT


def checked_wait(name: str, value: object, *, milliseconds: bool = False,
                 zero: bool = False) -> float:
    """``value`` (seconds, or ``milliseconds``) in seconds, once it is a wait
    corral can make: a number (not a bool) greater than 0, or 0 too with
    ``zero``, and at most :data:`MAX_WAIT_SECONDS`.  Every timeout and wait,
    however it is given, is checked here.  Raises :class:`RequestError`
    naming ``name`` otherwise, for NaN and infinity too (no limit is None).
    """
    units = "milliseconds" if milliseconds else "seconds"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{name} must be a number of {units}, not {value!r}")
    scale = 1000 if milliseconds else 1
    longest = MAX_WAIT_SECONDS * scale
    if not (0 <= value if zero else 0 < value) or not value <= longest:  # NaN fails both
        # Not its repr: that of an int of thousands of digits is refused.
        shown = "a number beyond 1e300" if abs(value) >= 1e300 else f"{value:.6g}"
        raise RequestError(f"{name} must be a number of {units} {'>= 0' if zero else '> 0'} "
                           f"and at most {longest:.10g} (about 24 days), got {shown}")
    return value / scale


def parse_timeout(text: str) -> float | None:
    """``"2.5"`` -> 2.5 seconds; ``"none"`` -> None (no limit).

    The one parser for timeouts given as text (CLI, environment, config);
    raises ValueError for anything but a number or ``none``, and
    :class:`RequestError` (a ValueError) for a number :func:`checked_wait`
    does not take.
    """
    if text.strip().lower() in ("none", "inf", "infinity"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a timeout: give a number of seconds > 0, "
                         "or 'none'") from None
    return checked_wait("timeout", seconds)


def resolve_default_timeout(environ: Mapping[str, str] | None = None) -> float | None:
    """The default timeout in seconds, or None for no limit.

    ``CORRAL_DEFAULT_TIMEOUT`` (seconds, or ``none`` for no limit) overrides
    the built-in 10 s.  It is read on every call, never cached, so a host can
    change it at any time.
    """
    raw = (os.environ if environ is None else environ).get(TIMEOUT_ENV_VAR)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT_SECONDS
    try:
        return parse_timeout(raw)
    except ValueError as exc:
        raise RequestError(f"{TIMEOUT_ENV_VAR}: {exc}") from None


@record
class OutputLimits:
    """Bounds on what a run keeps in memory and emits.

    ``max_bytes_per_stream`` is kept per stream (and for the interleaved
    output) as a head and a tail of half the cap each; every byte is counted
    regardless.  ``spill`` writes the complete interleaved output to a file:
    ``True`` for a new temporary file, or a path to create; its path is
    ``ExecResult.spill_path``.
    """

    max_bytes_per_stream: int = DEFAULT_MAX_BYTES_PER_STREAM
    max_events: int = DEFAULT_MAX_EVENTS
    spill: bool | str | os.PathLike[str] = False

    def __post_init__(self) -> None:
        if self.max_bytes_per_stream < 2:
            raise RequestError("max_bytes_per_stream must be at least 2 bytes")
        if self.max_events < 0:
            raise RequestError("max_events must not be negative")


def _check_text(value: str, where: str) -> None:
    if "\0" in value:
        raise NulByteError(where)


@record
class ExecRequest:
    """One command to run.

    ``argv`` is the program and its arguments (a non-empty sequence of str;
    no shell is involved).  ``cwd`` defaults to the current directory.
    ``env`` is the child's *entire* environment; None means
    :func:`corral.build_env` with its defaults (host environment minus
    secret-looking variables).  ``arg0`` overrides the ``argv[0]`` the program
    sees.  ``timeout`` is seconds, None for no limit, or
    :data:`DEFAULT_TIMEOUT`; ``cancel`` ends the run from elsewhere.
    ``kill_mechanism`` None picks the strongest this machine offers; naming
    one makes the run fail when it is not available.  ``stdin`` is a
    readable file descriptor the command gets as its standard input (the
    caller keeps and closes it: the write end of a pipe lets it talk to the
    command); None gives it /dev/null.  ``terminal`` is the slave side of a
    pseudo-terminal instead: the command gets it as stdin, stdout and stderr
    and as its controlling terminal, and the caller reads its output from the
    master (the result then holds none).
    """

    argv: Sequence[str]
    cwd: str | os.PathLike[str] | None = None
    env: Mapping[str, str] | None = None
    arg0: str | None = None
    timeout: float | None | DefaultTimeout = DEFAULT_TIMEOUT
    cancel: CancelToken | None = None
    limits: OutputLimits = OutputLimits()
    policy: SandboxPolicy | str = "workspace-write"
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    kill_mechanism: KillMechanism | None = None
    stdin: int | None = None
    terminal: int | None = None

    def __post_init__(self) -> None:
        for name in ("stdin", "terminal"):
            fd = getattr(self, name)
            if fd is not None and (isinstance(fd, bool) or not isinstance(fd, int) or fd < 0):
                raise RequestError(f"{name} must be a file descriptor (an int >= 0), not {fd!r}")
        if self.stdin is not None and self.terminal is not None:
            raise RequestError("give stdin or terminal, not both: a terminal is the stdin too")
        if isinstance(self.argv, (str, bytes)):
            raise RequestError(
                "argv must be a list of arguments, not a single string "
                "(to run a shell line, pass ['sh', '-c', line])"
            )
        argv = tuple(self.argv)
        if not argv:
            raise EmptyCommandError()
        for i, arg in enumerate(argv):
            if not isinstance(arg, str):
                raise RequestError(f"argv[{i}] must be str, not {type(arg).__name__}")
            _check_text(arg, f"argv[{i}]")
        if argv[0] == "":
            raise RequestError("argv[0], the program to run, is an empty string")
        object.__setattr__(self, "argv", argv)
        if self.arg0 is not None:
            _check_text(self.arg0, "arg0")
        if self.cwd is not None:
            _check_text(os.fspath(self.cwd), "cwd")
        if self.env is not None:
            for name, value in self.env.items():
                if not name or "=" in name:
                    raise RequestError(f"invalid environment variable name {name!r}")
                _check_text(name, f"environment variable name {name!r}")
                _check_text(value, f"environment variable {name}")
        if not isinstance(self.timeout, DefaultTimeout) and self.timeout is not None:
            checked_wait("timeout", self.timeout)
        checked_wait("drain_timeout", self.drain_timeout, zero=True)
        object.__setattr__(self, "policy", resolve_policy(self.policy))

    @property
    def resolved_policy(self) -> SandboxPolicy:
        assert isinstance(self.policy, SandboxPolicy)
        return self.policy

    def timeout_seconds(self) -> float | None:
        """The time limit for this run, with the default resolved now."""
        if isinstance(self.timeout, DefaultTimeout):
            return resolve_default_timeout()
        return None if self.timeout is None else float(self.timeout)

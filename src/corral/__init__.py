"""corral: run shell commands for AI coding agents -- confined, bounded, observed, explained.

Main API
--------
run(argv, ...) -> ExecResult         run a command to completion (sync, thread-safe)
run_async(argv, ...) -> ExecResult   the same for asyncio
stream(argv, ...) -> OutputStream    ``async for`` over live output, then ``.result``
execute(ExecRequest) -> ExecResult   run a prepared request
check(result)                        raise the typed error for a failed result
format_for_model(result, ...)        fit a result into a model's token budget
build_env(...)                       the child's environment from the host's

Values: ExecRequest, OutputLimits, SandboxPolicy, CancelToken, ExecResult,
CapturedText, OutputEvent, Stream, KillMechanism.  Errors: see
``corral._errors`` (CorralError and its tree).
"""

from ._api import OutputStream, check, run, run_async, stream
from ._cancel import CancelToken
from ._decode import decode_bytes, detect_encoding
from ._denial import is_likely_sandbox_denied
from ._engine import CANCEL_EXIT_CODE, execute
from ._env import EnvInherit, build_env
from ._errors import (
    CorralError,
    CwdNotFoundError,
    EmptyCommandError,
    ExecCancelledError,
    ExecError,
    ExecFailedError,
    ExecSignaledError,
    ExecTimeoutError,
    NotExecutableError,
    NulByteError,
    PolicyError,
    ProgramNotFoundError,
    RequestError,
    SandboxDeniedError,
    SpawnError,
)
from ._format import format_for_model, truncate_middle
from ._policy import PolicyKind, SandboxPolicy
from ._request import (
    DEFAULT_TIMEOUT,
    DEFAULT_TIMEOUT_SECONDS,
    TIMEOUT_ENV_VAR,
    ExecRequest,
    OutputLimits,
)
from ._result import TIMEOUT_EXIT_CODE, CapturedText, ExecResult, KillMechanism, OutputEvent, Stream

__version__ = "0.1.0"

__all__ = [
    "CANCEL_EXIT_CODE",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TIMEOUT_SECONDS",
    "TIMEOUT_ENV_VAR",
    "TIMEOUT_EXIT_CODE",
    "CancelToken",
    "CapturedText",
    "CorralError",
    "CwdNotFoundError",
    "EmptyCommandError",
    "EnvInherit",
    "ExecCancelledError",
    "ExecError",
    "ExecFailedError",
    "ExecRequest",
    "ExecResult",
    "ExecSignaledError",
    "ExecTimeoutError",
    "KillMechanism",
    "NotExecutableError",
    "NulByteError",
    "OutputEvent",
    "OutputLimits",
    "OutputStream",
    "PolicyError",
    "PolicyKind",
    "ProgramNotFoundError",
    "RequestError",
    "SandboxDeniedError",
    "SandboxPolicy",
    "SpawnError",
    "Stream",
    "build_env",
    "check",
    "decode_bytes",
    "detect_encoding",
    "execute",
    "format_for_model",
    "is_likely_sandbox_denied",
    "run",
    "run_async",
    "stream",
    "truncate_middle",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("corral."):
        try:
            _obj.__module__ = "corral"
        except (AttributeError, TypeError):
            pass
del _name, _obj

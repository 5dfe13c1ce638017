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
ApprovalSession(...).run(argv)       approval, a sandboxed attempt, an approved re-run
assess(argv, ...) -> Assessment      allow / prompt / forbidden for a command, and why
load_rules(paths) -> RuleSet         Codex-style prefix rules files

Values: ExecRequest, OutputLimits, SandboxPolicy, CancelToken, ExecResult,
CapturedText, OutputEvent, Stream, KillMechanism.  Errors: see
``corral._errors`` (CorralError and its tree).

Names are imported on first use, so that ``corral run`` starts fast.
"""

from __future__ import annotations

import sys
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# public name -> the private module that defines it
_EXPORTS = {
    "OutputStream": "_api", "check": "_api", "run": "_api", "run_async": "_api", "stream": "_api",
    "CancelToken": "_cancel",
    "decode_bytes": "_decode", "detect_encoding": "_decode",
    "find_denials": "_denial", "is_likely_sandbox_denied": "_denial",
    "CANCEL_EXIT_CODE": "_engine", "execute": "_engine",
    "EnvInherit": "_env", "build_env": "_env",
    "CorralError": "_errors", "CwdNotFoundError": "_errors", "EmptyCommandError": "_errors",
    "ExecCancelledError": "_errors", "ExecError": "_errors", "ExecFailedError": "_errors",
    "ExecSignaledError": "_errors", "ExecTimeoutError": "_errors",
    "NotExecutableError": "_errors", "NulByteError": "_errors", "PolicyError": "_errors",
    "ProgramNotFoundError": "_errors", "RequestError": "_errors",
    "SandboxDeniedError": "_errors", "SandboxSetupError": "_errors", "SpawnError": "_errors",
    "format_for_model": "_format", "truncate_middle": "_format", "TruncatedText": "_format",
    "DEFAULT_DENY_READ": "_policy", "DEFAULT_PROTECTED": "_policy",
    "WEAKER_GUARANTEES": "_policy", "PolicyKind": "_policy", "SandboxPolicy": "_policy",
    "DEFAULT_TIMEOUT": "_request", "DEFAULT_TIMEOUT_SECONDS": "_request",
    "TIMEOUT_ENV_VAR": "_request", "ExecRequest": "_request", "OutputLimits": "_request",
    "TIMEOUT_EXIT_CODE": "_result", "CapturedText": "_result", "Denial": "_result",
    "DenialKind": "_result", "ExecResult": "_result",
    "KillMechanism": "_result", "OutputEvent": "_result", "Stream": "_result",
    "Answer": "approvals", "ApprovalPolicy": "approvals", "ApprovalRequest": "approvals",
    "ApprovalSession": "approvals", "ApprovedRun": "approvals", "Assessment": "approvals",
    "Decision": "approvals", "Permissions": "approvals", "Question": "approvals",
    "Reply": "approvals", "RuleSet": "approvals", "RulesError": "approvals",
    "assess": "approvals", "is_known_safe": "approvals", "load_rules": "approvals",
}

__all__ = [
    "Answer",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalSession",
    "ApprovedRun",
    "Assessment",
    "CANCEL_EXIT_CODE",
    "CancelToken",
    "CapturedText",
    "CorralError",
    "CwdNotFoundError",
    "DEFAULT_DENY_READ",
    "DEFAULT_PROTECTED",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TIMEOUT_SECONDS",
    "Decision",
    "Denial",
    "DenialKind",
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
    "Permissions",
    "PolicyError",
    "PolicyKind",
    "ProgramNotFoundError",
    "Question",
    "Reply",
    "RequestError",
    "RuleSet",
    "RulesError",
    "SandboxDeniedError",
    "SandboxPolicy",
    "SandboxSetupError",
    "SpawnError",
    "Stream",
    "TIMEOUT_ENV_VAR",
    "TIMEOUT_EXIT_CODE",
    "TruncatedText",
    "WEAKER_GUARANTEES",
    "assess",
    "build_env",
    "check",
    "decode_bytes",
    "detect_encoding",
    "execute",
    "find_denials",
    "format_for_model",
    "is_known_safe",
    "is_likely_sandbox_denied",
    "load_rules",
    "run",
    "run_async",
    "stream",
    "truncate_middle",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corral' has no attribute {name!r}")
    # __import__, not importlib.import_module: importing importlib costs the
    # command line a millisecond at start-up.
    __import__(f"corral.{module}")
    value = getattr(sys.modules[f"corral.{module}"], name)
    if getattr(value, "__module__", "").startswith("corral."):
        try:
            value.__module__ = "corral"
        except (AttributeError, TypeError):
            pass
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from ._api import OutputStream, check, run, run_async, stream
    from ._cancel import CancelToken
    from ._decode import decode_bytes, detect_encoding
    from ._denial import find_denials, is_likely_sandbox_denied
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
        SandboxSetupError,
        SpawnError,
    )
    from ._format import TruncatedText, format_for_model, truncate_middle
    from ._policy import (
        DEFAULT_DENY_READ,
        DEFAULT_PROTECTED,
        WEAKER_GUARANTEES,
        PolicyKind,
        SandboxPolicy,
    )
    from ._request import (
        DEFAULT_TIMEOUT,
        DEFAULT_TIMEOUT_SECONDS,
        TIMEOUT_ENV_VAR,
        ExecRequest,
        OutputLimits,
    )
    from .approvals import (
        Answer,
        ApprovalPolicy,
        ApprovalRequest,
        ApprovalSession,
        ApprovedRun,
        Assessment,
        Decision,
        Permissions,
        Question,
        Reply,
        RuleSet,
        RulesError,
        assess,
        is_known_safe,
        load_rules,
    )
    from ._result import (
        TIMEOUT_EXIT_CODE,
        CapturedText,
        Denial,
        DenialKind,
        ExecResult,
        KillMechanism,
        OutputEvent,
        Stream,
    )

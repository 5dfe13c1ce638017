"""Codex's sandbox-denial heuristic, kept exactly as the last resort.

:func:`is_likely_sandbox_denied` guesses from the exit code and the output's
text whether a sandbox refused something.  It is a guess: an ordinary
"Permission denied" counts, and a denial swallowed by a pipeline that exits 0
is missed.  Structured denial reports from the kernel and the sandbox come
with the sandbox backends; this stays for what they cannot see.
"""

from __future__ import annotations

import signal

__all__ = ["DENIAL_KEYWORDS", "LINUX_SANDBOXES", "is_likely_sandbox_denied"]

#: Lower-case phrases whose presence in the output suggests a denial.
DENIAL_KEYWORDS = (
    "operation not permitted",
    "permission denied",
    "read-only file system",
    "seccomp",
    "sandbox",
    "landlock",
    "failed to write file",
)
#: Backends under which a SIGSYS death means seccomp killed the command.
LINUX_SANDBOXES = frozenset({"bwrap", "landlock"})
# Exit codes that mean "usage error", "not executable", "not found": the
# command failed on its own, whatever its output says.
_NEVER_DENIED = frozenset({2, 126, 127})
_SIGSYS_EXIT = 128 + int(signal.SIGSYS)


def is_likely_sandbox_denied(
    sandbox: str | None,
    exit_code: int,
    stdout: str = "",
    stderr: str = "",
    aggregated: str = "",
) -> bool:
    """True when a failed sandboxed run looks like the sandbox's doing.

    False without a sandbox (``None`` or ``"none"``) and for exit code 0;
    false for exit codes 2, 126 and 127; true when stdout, stderr or the
    aggregated output contains one of :data:`DENIAL_KEYWORDS`
    (case-insensitive); true for 128+SIGSYS under a Linux sandbox; false
    otherwise.
    """
    if sandbox is None or sandbox == "none" or exit_code == 0:
        return False
    if exit_code in _NEVER_DENIED:
        return False
    for text in (stderr, stdout, aggregated):
        lowered = text.lower()
        if any(keyword in lowered for keyword in DENIAL_KEYWORDS):
            return True
    return sandbox in LINUX_SANDBOXES and exit_code == _SIGSYS_EXIT

"""Codex's sandbox-denial heuristic, kept exactly, as the last resort.

A port of ``is_likely_sandbox_denied`` in Codex's ``codex-rs/core/src/exec.rs``.
It reads text and an exit code, nothing else, so it is a guess both ways: an
ordinary "Permission denied" counts as a denial, and a denial swallowed by a
pipeline that exits 0 is missed.  Structured denial reports (from the kernel
and the sandbox backends) are meant to come first; this is what is left when
they say nothing.
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
#: Backends that install a seccomp filter, where death by SIGSYS means the
#: filter killed the command (Codex's ``SandboxType::LinuxSeccomp``).
LINUX_SANDBOXES = frozenset({"bwrap", "landlock"})
_SIGSYS_EXIT = 128 + int(signal.SIGSYS)


def is_likely_sandbox_denied(
    sandbox: str | None,
    exit_code: int,
    stdout: str = "",
    stderr: str = "",
    aggregated: str = "",
) -> bool:
    """Guesses whether a sandbox, not the command itself, made a run fail.

    This is a text heuristic and the last resort: use it only when no
    structured denial report exists.  In Codex's order:

    1. False without a sandbox (``sandbox`` is ``None`` or ``"none"``) and
       for exit code 0.
    2. True if ``stderr``, ``stdout`` or ``aggregated``, lower-cased,
       contains any of :data:`DENIAL_KEYWORDS` -- whatever the exit code,
       including 2, 126 and 127.
    3. True if the exit code is 128+SIGSYS (159 on Linux) and ``sandbox`` is
       one of :data:`LINUX_SANDBOXES`.
    4. False otherwise, e.g. for exit code 1 with no keyword.
    """
    if sandbox is None or sandbox == "none" or exit_code == 0:
        return False
    for text in (stderr, stdout, aggregated):
        lowered = text.lower()
        if any(keyword in lowered for keyword in DENIAL_KEYWORDS):
            return True
    # Codex "quick-rejects" exit codes 2, 126 and 127 here, after the keyword
    # scan; from this point only 128+SIGSYS can answer True, so that check
    # never changes the result and is left out.
    return sandbox in LINUX_SANDBOXES and exit_code == _SIGSYS_EXIT

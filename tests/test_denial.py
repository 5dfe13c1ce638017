"""Codex's sandbox-denial heuristic, case by case.

The cases follow Codex's own tests of ``is_likely_sandbox_denied`` and its
order: the keyword scan comes before the exit codes 2/126/127 are rejected,
so those codes with a keyword still count as denials.
"""

from __future__ import annotations

import signal

import pytest

from corral import is_likely_sandbox_denied
from corral._denial import DENIAL_KEYWORDS, LINUX_SANDBOXES

SIGSYS_EXIT = 128 + int(signal.SIGSYS)
STREAMS = ("stdout", "stderr", "aggregated")


def test_constants():
    assert DENIAL_KEYWORDS == (
        "operation not permitted", "permission denied", "read-only file system",
        "seccomp", "sandbox", "landlock", "failed to write file",
    )
    assert LINUX_SANDBOXES == {"bwrap", "landlock"}
    assert SIGSYS_EXIT == 159  # Linux numbering; the tests run there


@pytest.mark.parametrize("keyword", DENIAL_KEYWORDS)
@pytest.mark.parametrize("where", STREAMS)
@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_each_keyword_in_each_stream(keyword, where, case):
    text = f"touch: x: {case(keyword)} (os error)"
    assert is_likely_sandbox_denied("bwrap", 1, **{where: text})
    assert is_likely_sandbox_denied("seatbelt", 1, **{where: text})


@pytest.mark.parametrize(
    ("sandbox", "exit_code", "stdout", "stderr", "aggregated", "expected"),
    [
        # No sandbox: never, even with keywords or SIGSYS.
        (None, 1, "", "Permission denied", "", False),
        ("none", 1, "", "Operation not permitted", "", False),
        (None, SIGSYS_EXIT, "", "", "", False),
        ("none", SIGSYS_EXIT, "", "", "", False),
        # Success: never, even with keywords.
        ("bwrap", 0, "", "Permission denied", "", False),
        ("seatbelt", 0, "sandbox", "seccomp", "landlock", False),
        # 2/126/127 without keywords: rejected.
        ("bwrap", 2, "", "usage: foo", "", False),
        ("bwrap", 126, "", "cannot execute binary file", "", False),
        ("bwrap", 127, "", "command not found", "", False),
        # 2/126/127 with keywords: the keyword scan comes first in Codex.
        ("bwrap", 2, "", "Permission denied", "", True),
        ("landlock", 126, "Operation not permitted", "", "", True),
        ("seatbelt", 127, "", "", "sandbox-exec: denied", True),
        # Ordinary failures without keywords.
        ("bwrap", 1, "", "", "", False),
        ("bwrap", 1, "FAILED: 3 tests", "error: no such file", "", False),
        ("seatbelt", 101, "", "", "", False),
        # Codex's own aggregated-output case.
        ("seatbelt", 101, "", "", "cargo failed: Read-only file system when writing target",
         True),
        # 128+SIGSYS: a seccomp kill under the Linux sandboxes only.
        ("bwrap", SIGSYS_EXIT, "", "", "", True),
        ("landlock", SIGSYS_EXIT, "", "", "", True),
        ("seatbelt", SIGSYS_EXIT, "", "", "", False),
        ("bwrap", 128 + int(signal.SIGSEGV), "", "", "", False),
        ("bwrap", int(signal.SIGSYS), "", "", "", False),
    ],
)
def test_cases(sandbox, exit_code, stdout, stderr, aggregated, expected):
    assert is_likely_sandbox_denied(sandbox, exit_code, stdout, stderr, aggregated) is expected


def test_streams_default_to_empty():
    assert is_likely_sandbox_denied("bwrap", SIGSYS_EXIT)
    assert not is_likely_sandbox_denied("bwrap", 1)

"""Codex's sandbox-denial heuristic, case by case."""

from __future__ import annotations

import pytest

from corral import is_likely_sandbox_denied
from corral._denial import DENIAL_KEYWORDS


@pytest.mark.parametrize("keyword", DENIAL_KEYWORDS)
@pytest.mark.parametrize("where", ["stdout", "stderr", "aggregated"])
def test_each_keyword_in_each_stream(keyword, where):
    text = f"error: {keyword.upper()} while writing"
    assert is_likely_sandbox_denied("bwrap", 1, **{where: text})


@pytest.mark.parametrize(
    ("sandbox", "exit_code", "stderr", "expected"),
    [
        (None, 1, "Permission denied", False),          # no sandbox, never
        ("none", 1, "Permission denied", False),
        ("bwrap", 0, "Permission denied", False),       # success, never
        ("bwrap", 2, "Permission denied", False),       # quick rejects
        ("bwrap", 126, "Operation not permitted", False),
        ("bwrap", 127, "sandbox", False),
        ("bwrap", 1, "some other failure", False),
        ("bwrap", 159, "", True),                       # 128 + SIGSYS under Linux sandboxes
        ("landlock", 159, "", True),
        ("seatbelt", 159, "", False),
        ("seatbelt", 1, "Operation not permitted", True),
    ],
)
def test_cases(sandbox, exit_code, stderr, expected):
    assert is_likely_sandbox_denied(sandbox, exit_code, stderr=stderr) is expected

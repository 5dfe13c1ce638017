"""Fitting results into a model's budget, with exact notices."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import corral
from corral._capture import OutputCapture
from corral._result import ExecResult, Stream


def _result(data: bytes, cap: int = 1 << 20, **fields: object) -> ExecResult:
    capture = OutputCapture(cap, 0, None)
    for i in range(0, len(data), 65536):
        capture.feed(Stream.STDOUT, data[i : i + 65536])
    stdout, stderr, output = capture.finish()
    return ExecResult(argv=("x",), exit_code=fields.pop("exit_code", 0), stdout_capture=stdout,
                      stderr_capture=stderr, output=output, duration=0.5, **fields)  # type: ignore[arg-type]


NOTICE = re.compile(
    r"showing the first (\d+) and the last (\d+) of (\d+) lines?; (\d+) lines? \((\d+) bytes\)"
)


def _check_numbered(text: str, n: int) -> None:
    """Verifies a notice against the numbered lines 1..n actually shown."""
    head, _, body = text.partition("Output:\n")
    first, last, total, omitted, omitted_bytes = map(int, NOTICE.search(head).groups())
    assert head.index("[corral: output truncated") < len(head)  # notice above the output
    shown = [int(line) for line in body.splitlines() if line.isdigit()]
    assert shown == list(range(1, first + 1)) + list(range(n - last + 1, n + 1))
    assert total == n and omitted == n - first - last
    assert omitted_bytes == sum(len(f"{i}\n") for i in range(first + 1, n - last + 1))


def test_small_output_is_verbatim():
    text = corral.format_for_model(_result(b"hello\nworld\n", exit_code=2))
    assert text == "Exit code: 2\nWall time: 0.50 s\nOutput:\nhello\nworld\n"


@pytest.mark.parametrize("tokens", [50, 200, 1000, 5000])
def test_numbered_lines_with_exact_notice(tokens):
    n = 5000
    text = corral.format_for_model(_result(b"".join(b"%d\n" % i for i in range(1, n + 1))),
                                   max_tokens=tokens)
    assert len(text) <= tokens * 4
    _check_numbered(text, n)


def test_capture_already_truncated_counts_stay_exact():
    n = 200_000
    data = b"".join(b"%d\n" % i for i in range(1, n + 1))
    result = _result(data, cap=10_000)  # the capture itself dropped the middle
    assert result.output.truncated
    text = corral.format_for_model(result, max_chars=3000)
    assert len(text) <= 3000
    _check_numbered(text, n)


def test_tail_gets_the_larger_share():
    n = 5000
    text = corral.format_for_model(_result(b"".join(b"%d\n" % i for i in range(1, n + 1))),
                                   max_tokens=500)
    first, last = map(int, NOTICE.search(text).groups()[:2])
    head_bytes = sum(len(f"{i}\n") for i in range(1, first + 1))
    tail_bytes = sum(len(f"{i}\n") for i in range(n - last + 1, n + 1))
    assert tail_bytes > head_bytes


def test_spill_path_timeout_and_signal_headers():
    spilled = _result(b"x\n" * 10_000, spill_path=Path("/tmp/out.log"), timed_out=True,
                      exit_code=124)
    text = corral.format_for_model(spilled, max_chars=500)
    assert "Full output: /tmp/out.log]" in text and "Timed out" in text
    signalled = corral.format_for_model(_result(b"boom\n", signal=11, exit_code=139))
    assert "Killed by signal SIGSEGV (11)" in signalled


def test_single_huge_line():
    result = _result(b"y" * 1_000_000)
    text = corral.format_for_model(result, max_chars=1000)
    assert len(text) <= 1000
    assert "0 lines" not in text.split("Output:")[0] or "1 line (" in text
    assert "1 line (" in text and "…[line truncated]" in text
    shown = text.split("Output:\n")[1].split("…")[0]
    assert set(shown) == {"y"}
    omitted = int(re.search(r"\((\d+) bytes\)", text).group(1))
    assert omitted == 1_000_000 - len(shown)


@pytest.mark.parametrize("budget", [120, 300, 1000, 4000, 20000])
@pytest.mark.parametrize("size", [10, 1000, 100_000])
def test_budget_is_respected(budget, size):
    data = b"".join(b"line %d of the output\n" % i for i in range(size))
    text = corral.format_for_model(_result(data), max_chars=budget)
    if budget >= 300:
        assert len(text) <= budget
    else:  # too small for the notice itself: header and notice only, nothing else
        assert len(data) <= budget or "line " not in text.split("Output:\n")[1]


def test_errors():
    result = _result(b"x\n")
    with pytest.raises(ValueError, match="not both"):
        corral.format_for_model(result, max_tokens=10, max_chars=10)
    with pytest.raises(ValueError, match="positive"):
        corral.format_for_model(result, max_tokens=0)


def test_truncate_middle():
    text = "\n".join(str(i) for i in range(1000)) + "\n"
    cut = corral.truncate_middle(text, max_chars=200)
    assert len(cut.text) <= 200
    assert cut.text.startswith("0\n1\n") and cut.text.endswith("998\n999\n")
    assert cut.omitted_lines == 1000 - cut.shown_head_lines - cut.shown_tail_lines
    assert f"[... {cut.omitted_lines} lines omitted ...]" in cut.text
    assert corral.truncate_middle("short", max_chars=10).text == "short"

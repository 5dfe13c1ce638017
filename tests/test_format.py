"""Fitting results into a model's budget, with notices checked against what is shown."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

import corral
from corral._format import BYTES_PER_TOKEN, DEFAULT_MAX_TOKENS, TruncatedText, fit_for_model
from corral._record import replace
from corral._result import CapturedText, ExecResult

HEAD_CUT = "…[line truncated]\n"
TAIL_CUT = "[line truncated]…"
NOTICE = re.compile(
    r"\[corral: output truncated: showing the first (\d+) and the last (\d+) of (\d+) lines?;"
    r" omitted (\d+) lines? \((\d+) bytes\) from the middle\.(?: Full output: (.+))?\]\n"
)
MARKER = re.compile(r"\[\.\.\. (\d+) lines? omitted \.\.\.\]\n")


def _lines_in(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _captured(data: bytes, cap: int | None = None) -> CapturedText:
    """What a capture keeps of UTF-8 ``data``: all, or its first and last ``cap // 2`` bytes."""
    if cap is None or len(data) <= cap:
        return CapturedText(data.decode(), "", len(data), _lines_in(data), 0, 0, "utf-8")
    half = cap // 2
    middle = data[half : len(data) - half]
    return CapturedText(data[:half].decode(), data[len(data) - half :].decode(), len(data),
                        _lines_in(data), len(middle), middle.count(b"\n"), "utf-8")


def _result(data: bytes, cap: int | None = None, exit_code: int = 0,
            **fields: object) -> ExecResult:
    output = _captured(data, cap)
    return ExecResult(argv=("x",), exit_code=exit_code, stdout_capture=output,
                      stderr_capture=_captured(b""), output=output, duration=0.42,
                      **fields)  # type: ignore[arg-type]


def _verify(formatted: str, data: bytes, capture: CapturedText | None = None) -> tuple[str, str]:
    """Checks ``formatted`` against the complete output ``data``; returns the shown head and tail.

    Recomputes from the positions of the shown text in ``data`` which lines
    are shown (in whole or in part) and how many bytes are missing, and
    compares that with the notice and the marker.  ``capture``: what the
    capture kept of ``data`` when it dropped a middle.
    """
    status, _, body = formatted.partition("Output:\n")
    notice = NOTICE.search(status)
    original = data.decode()
    if notice is None:
        assert body == original
        return body, ""
    assert status.endswith(notice.group(0))  # the notice is the last line above the output
    first, last, total, omitted, omitted_bytes = map(int, notice.groups()[:5])
    marker = MARKER.search(body)
    if marker:
        head, tail = body[: marker.start()], body[marker.end() :]
    else:
        split = body.index(HEAD_CUT) + len(HEAD_CUT) if HEAD_CUT in body else body.index(TAIL_CUT)
        head, tail = body[:split], body[split:]
    head_cut, tail_cut = head.endswith(HEAD_CUT), tail.startswith(TAIL_CUT)
    head = head.removesuffix(HEAD_CUT)
    tail = tail.removeprefix(TAIL_CUT)
    tail_at = len(original) - len(tail)
    assert original.startswith(head) and original.endswith(tail) and len(head) < tail_at
    # Whole lines unless marked cut.
    assert head_cut == (head != "" and not head.endswith("\n"))
    at_line_start = tail_at == 0 or original[tail_at - 1] == "\n"
    # A tail that starts where the capture's did is marked cut: whether the dropped
    # middle ended with a newline is not known.
    capture_cut = capture is not None and tail == capture.tail
    assert tail_cut == (tail != "" and (not at_line_start or capture_cut))
    head_lines = original.count("\n", 0, len(head) - 1) + 1 if head else 0
    tail_first = original.count("\n", 0, tail_at) if tail else total
    shown = head_lines + (total - max(tail_first, head_lines))
    assert total == _lines_in(data)
    assert (first, last, omitted) == (head_lines, shown - head_lines, total - shown)
    assert omitted_bytes == len(data) - len(head.encode()) - len(tail.encode())
    assert (int(marker.group(1)) if marker else 0) == omitted
    return head, tail


def _numbered(n: int) -> bytes:
    return b"".join(b"%d\n" % i for i in range(1, n + 1))


def test_small_output_is_verbatim():
    text = corral.format_for_model(_result(b"hello\nworld\n", exit_code=2))
    assert text == "Exit code: 2\nWall time: 0.42 s\nOutput:\nhello\nworld\n"
    assert corral.format_for_model(_result(b"")) == "Exit code: 0\nWall time: 0.42 s\nOutput:\n"


@pytest.mark.parametrize("tokens", [60, 200, 1000, 5000])
def test_numbered_lines_with_exact_notice(tokens):
    n = 5000
    data = _numbered(n)
    text = corral.format_for_model(_result(data), max_tokens=tokens)
    assert len(text) <= tokens * BYTES_PER_TOKEN
    assert text.index("[corral: output truncated") < text.index("Output:\n")
    first, last, total, omitted, omitted_bytes = map(int, NOTICE.search(text).groups()[:5])
    shown = [int(line) for line in text.split("Output:\n")[1].splitlines() if line.isdigit()]
    assert shown == [*range(1, first + 1), *range(n - last + 1, n + 1)]
    assert shown[0] == 1 and shown[-1] == n
    missing = sorted(set(range(1, n + 1)) - set(shown))
    assert total == n and omitted == len(missing)
    assert omitted_bytes == sum(len(b"%d\n" % i) for i in missing)
    assert f"[... {omitted} lines omitted ...]\n" in text
    _verify(text, data)


def test_capture_already_truncated_counts_stay_exact():
    # Cuts fall inside lines ("...|49\n" / "...|1\n"): those lines are partial and omitted.
    data = _numbered(200_000)
    for cap in (10_001, 10_000, 999, 100):
        result = _result(data, cap=cap)
        assert result.output.truncated
        for budget in (400, 3000, 20_000):
            text = corral.format_for_model(result, max_chars=budget)
            assert len(text) <= budget
            _verify(text, data, result.output)


def test_capture_cut_inside_one_line():
    data = b"start " * 10_000 + b"end"  # one line, no newline, cut by the capture
    result = _result(data, cap=1000)
    text = corral.format_for_model(result, max_chars=600)
    assert len(text) <= 600
    head, tail = _verify(text, data, result.output)
    assert head.startswith("start") and tail.endswith("end")
    assert "showing the first 1 and the last 0 of 1 line; omitted 0 lines" in text


def test_spill_path_and_status_lines():
    spilled = _result(b"x\n" * 10_000, spill_path=Path("/tmp/x/output.log"), timed_out=True,
                      exit_code=124)
    text = corral.format_for_model(spilled, max_chars=500)
    assert text.startswith(
        "Exit code: 124\nWall time: 0.42 s\nTimed out: the command was killed after the timeout\n"
        "[corral: output truncated: showing the first "
    )
    assert text.split("\n")[3].endswith(" from the middle. Full output: /tmp/x/output.log]")
    assert text.split("\n")[4] == "Output:"
    signalled = corral.format_for_model(_result(b"boom\n", signal=11, exit_code=139))
    assert signalled == (
        "Exit code: 139\nWall time: 0.42 s\nKilled by signal SIGSEGV (11)\nOutput:\nboom\n"
    )
    cancelled = corral.format_for_model(_result(b"", signal=9, cancelled=True, exit_code=137))
    assert cancelled == "Exit code: 137\nWall time: 0.42 s\nCancelled\nOutput:\n"


def test_the_notice_names_where_a_caller_serves_the_full_output():
    """fit_for_model: format_for_model's text, its notice naming what the
    caller gives (the MCP server's read_output call), not the spill path."""
    spilled = _result(b"x\n" * 10_000, spill_path=Path("/tmp/x/output.log"))
    served = fit_for_model(spilled, 500, "read_output(output_id=7)")
    assert served == corral.format_for_model(
        replace(spilled, spill_path=Path("read_output(output_id=7)")), max_chars=500)
    assert "/tmp/x/output.log" not in served
    assert fit_for_model(spilled, 500, None) == corral.format_for_model(
        replace(spilled, spill_path=None), max_chars=500)
    assert "Full output" not in fit_for_model(spilled, 500, None)


def test_tail_gets_the_larger_share():
    data = _numbered(5000)
    head, tail = _verify(corral.format_for_model(_result(data), max_tokens=500), data)
    assert len(head) * 1.3 < len(tail) <= len(head) * 1.6


def test_unused_share_goes_to_the_other_side():
    long = b"=" * 5000 + b"\n"
    short = b"short line\n"
    # The tail stops at the long line after 3 lines: the head gets the rest.
    data = short * 1000 + long + short * 3
    head, tail = _verify(corral.format_for_model(_result(data), max_chars=2500), data)
    assert tail == "short line\n" * 3 and len(head) > 1500
    # The head stops at the long line after 1 line: the tail gets the rest.
    data = short + long + short * 1000
    head, tail = _verify(corral.format_for_model(_result(data), max_chars=2500), data)
    assert head == "short line\n" and len(tail) > 1500


def test_single_huge_line():
    data = b"y" * 999_999 + b"z"  # 1 MB, no newline
    text = corral.format_for_model(_result(data), max_chars=1000)
    assert len(text) <= 1000
    head, tail = _verify(text, data)
    assert set(head) == {"y"} and tail.endswith("yz") and len(tail) > len(head)
    assert "showing the first 1 and the last 0 of 1 line; omitted 0 lines" in text
    assert f"{HEAD_CUT}{TAIL_CUT}" in text and "lines omitted ..." not in text


def test_huge_last_line_shows_its_end():
    data = _numbered(100) + b"e" * 100_000 + b" error: the end"
    text = corral.format_for_model(_result(data), max_chars=2000)
    head, tail = _verify(text, data)
    assert head.startswith("1\n2\n") and tail.endswith("error: the end")


def test_multibyte_text_counts_bytes():
    data = "".join(f"ligne {i}: é€😀\n" for i in range(3000)).encode()
    for budget in (500, 5000):
        text = corral.format_for_model(_result(data), max_chars=budget)
        assert len(text) <= budget
        _verify(text, data)


def _shapes(rng: random.Random, size: int) -> dict[str, bytes]:
    def line(length: int) -> bytes:
        return bytes(rng.choice(b"abcdef ") for _ in range(length)) + b"\n"

    varied = b"".join(line(rng.choice((0, 1, 5, 30, 80, 400))) for _ in range(size))
    return {
        "uniform": b"".join(b"line %d of the output\n" % i for i in range(size)),
        "varied": varied,
        "unterminated": varied + b"no newline at the end",
        "huge first line": b"h" * (size * 50) + b"\n" + varied,
        "huge middle line": varied + b"m" * (size * 50) + b"\n" + varied,
        "huge last line": varied + b"l" * (size * 50),
        "two huge lines": b"a" * (size * 50) + b"\n" + b"b" * (size * 50) + b"\n",
        "blank lines": b"\n" * size,
        "carriage returns": b"".join(b"progress %d%%\r" % (i % 100) for i in range(size)) + b"\n",
    }


@pytest.mark.parametrize("size", [10, 300, 10_000])
def test_budget_respected_and_counts_exact(size):
    rng = random.Random(size)
    budgets = [250, 260, 300, 333, 400, 1000, 4000, 20_000, 200_000]
    for name, data in _shapes(rng, size).items():
        for cap in (None, 5000, 777):
            result = _result(data, cap=cap, spill_path=Path("/tmp/spill/output.log"))
            for budget in budgets:
                text = corral.format_for_model(result, max_chars=budget)
                assert len(text) <= budget, (name, cap, budget)
                _verify(text, data, result.output)


def test_tiny_budget_returns_status_and_notice():
    data = _numbered(1000)
    text = corral.format_for_model(_result(data), max_chars=1)
    assert text.startswith("Exit code: 0\n") and "Output:\n[... 1000 lines omitted ...]\n" in text
    _verify(text, data)


def test_large_output_is_fast():
    lines = _numbered(300_000)  # about 2 MiB
    one_line = b"x" * (2 << 20)
    start = time.perf_counter()
    for data in (lines, one_line):
        for cap in (None, 1 << 20):
            result = _result(data, cap=cap)
            for budget in (1000, 40_000, 1_000_000):
                corral.format_for_model(result, max_chars=budget)
    assert time.perf_counter() - start < 2.0


def test_budgets_and_errors():
    result = _result(b"x\n" * 100_000)
    assert len(corral.format_for_model(result)) <= DEFAULT_MAX_TOKENS * BYTES_PER_TOKEN
    assert len(corral.format_for_model(result, max_tokens=100)) <= 400
    with pytest.raises(ValueError, match="not both"):
        corral.format_for_model(result, max_tokens=10, max_chars=10)
    with pytest.raises(ValueError, match="max_tokens must be positive"):
        corral.format_for_model(result, max_tokens=0)
    with pytest.raises(ValueError, match="max_chars must be positive"):
        corral.format_for_model(result, max_chars=-5)
    with pytest.raises(ValueError, match="max_chars must be positive"):
        corral.truncate_middle("x", max_chars=0)


def test_truncate_middle():
    text = "".join(f"{i}\n" for i in range(1000))
    cut = corral.truncate_middle(text, max_chars=200)
    assert isinstance(cut, TruncatedText) and len(cut.text) <= 200
    assert cut.text.startswith("0\n1\n") and cut.text.endswith("998\n999\n")
    assert cut.omitted_lines == 1000 - cut.shown_head_lines - cut.shown_tail_lines > 0
    assert f"[... {cut.omitted_lines} lines omitted ...]\n" in cut.text
    head, _, tail = cut.text.partition(f"[... {cut.omitted_lines} lines omitted ...]\n")
    assert cut.omitted_chars == len(text) - len(head) - len(tail)
    assert head.count("\n") == cut.shown_head_lines and tail.count("\n") == cut.shown_tail_lines
    assert corral.truncate_middle("short", max_chars=10) == TruncatedText("short", 0, 0, 1, 0)


def test_truncate_middle_one_long_line():
    cut = corral.truncate_middle("a" * 500 + "b" * 500, max_chars=100)
    assert len(cut.text) <= 100
    assert (cut.shown_head_lines, cut.shown_tail_lines, cut.omitted_lines) == (1, 0, 0)
    head, _, tail = cut.text.partition(HEAD_CUT + TAIL_CUT)
    assert set(head) == {"a"} and set(tail) == {"b"}
    assert cut.omitted_chars == 1000 - len(head) - len(tail)

"""Output: live events, interleaving, bounded capture with exact counts, spill."""

from __future__ import annotations

import asyncio
import os
import re
import textwrap

import pytest

import corral
from conftest import PYTHON

N_LINES = 13_000_000  # `seq` prints ~100 MB


def _seq_bytes(n: int) -> int:
    total, digits, start = 0, 1, 1
    while start <= n:
        end = min(n, 10**digits - 1)
        total += (end - start + 1) * (digits + 1)
        start, digits = end + 1, digits + 1
    return total


def test_head_and_tail_of_100_mb_with_exact_counts():
    limits = corral.OutputLimits(max_bytes_per_stream=1024 * 1024)
    result = corral.run(["seq", str(N_LINES)], limits=limits, timeout=120, policy="full-access")
    out = result.stdout_capture
    assert out.total_bytes == _seq_bytes(N_LINES) > 100_000_000
    assert out.total_lines == N_LINES
    assert out.truncated
    assert out.head.startswith("1\n2\n3\n")
    assert out.tail.endswith(f"{N_LINES - 1}\n{N_LINES}\n")
    head, tail = out.head.encode(), out.tail.encode()
    assert len(head) == len(tail) == 512 * 1024
    assert out.omitted_bytes == out.total_bytes - len(head) - len(tail)
    # Count the omitted newlines independently, from the numbers themselves:
    # the last complete line of the head and the first complete line of the tail.
    last_in_head = int(out.head[: out.head.rindex("\n")].rsplit("\n", 1)[-1])
    tail_lines = out.tail.split("\n")
    first_in_tail = int(tail_lines[1])  # tail_lines[0] is the cut line's remainder
    # Newlines of lines last_in_head+1 .. first_in_tail-2 are in the gap; the
    # newline of first_in_tail-1 is the one the tail starts with.
    assert out.omitted_lines == first_in_tail - 2 - last_in_head
    assert result.output.total_bytes == out.total_bytes  # nothing on stderr
    assert "corral omitted" in result.stdout  # the marker stands where the middle was


def test_interleaving_follows_arrival_order():
    script = "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 0.1; echo four >&2"
    events: list[corral.OutputEvent] = []
    result = corral.run(["sh", "-c", script], on_output=events.append, policy="full-access")
    assert result.aggregated_output == "one\ntwo\nthree\nfour\n"
    assert result.stdout == "one\nthree\n" and result.stderr == "two\nfour\n"
    assert [e.seq for e in events] == list(range(len(events)))
    assert [e.stream for e in events] == [
        corral.Stream.STDOUT, corral.Stream.STDERR, corral.Stream.STDOUT, corral.Stream.STDERR
    ]
    assert result.events_emitted == 4 and result.events_dropped == 0


def test_event_cap_of_10000_keeps_capturing(tmp_path):
    # The child writes one byte and waits for an acknowledgement before the
    # next, so each write is its own chunk and its own event.  The callback
    # acknowledges each event; with the last event before the cap it also
    # releases the remaining 2,000 writes, which arrive after the cap.
    fifo = tmp_path / "acks"
    os.mkfifo(fifo)
    child = textwrap.dedent(
        f"""
        import os
        acks = os.open({str(fifo)!r}, os.O_RDONLY)
        for _ in range(12_000):
            os.write(1, b"x")
            os.read(acks, 1)
        """
    )
    acks = os.open(fifo, os.O_RDWR)
    try:
        count = 0

        def on_output(event: corral.OutputEvent) -> None:
            nonlocal count
            count += 1
            os.write(acks, b"a" if count < 10_000 else b"a" * 2_001)

        result = corral.run([PYTHON, "-c", child], on_output=on_output, timeout=60, policy="full-access")
    finally:
        os.close(acks)
    assert result.exit_code == 0
    assert count == result.events_emitted == 10_000
    assert result.events_dropped >= 1
    assert result.stdout_capture.total_bytes == 12_000 and result.stdout == "x" * 12_000


def test_spill_file_has_the_complete_interleaved_output(tmp_path):
    spill = tmp_path / "out.log"
    limits = corral.OutputLimits(max_bytes_per_stream=64, spill=spill)
    script = "seq 1000; echo err >&2; seq 1001 2000"
    result = corral.run(["sh", "-c", script], limits=limits, policy="full-access")
    assert result.spill_path == spill
    data = spill.read_bytes()
    assert data.count(b"\n") == 2001 and b"err\n" in data
    assert result.output.truncated and result.output.total_bytes == len(data)


def test_spill_to_a_temporary_file():
    result = corral.run(["echo", "hi"], limits=corral.OutputLimits(spill=True), policy="full-access")
    assert result.spill_path is not None
    try:
        assert result.spill_path.read_bytes() == b"hi\n"
    finally:
        result.spill_path.unlink()


def test_a_spill_path_that_is_a_link_or_not_a_file_is_refused_and_never_opened(tmp_path):
    """What lies at a spill path may be a command's doing: a link to a file of
    the user's is not followed, a FIFO (whose open would wait for ever) or a
    device is not opened; each is a RequestError naming the path."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "link").symlink_to(victim)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "device").symlink_to("/dev/null")  # and a device itself:
    for spill in (tmp_path / "link", tmp_path / "fifo", tmp_path / "device", "/dev/null"):
        limits = corral.OutputLimits(spill=spill)
        with pytest.raises(corral.RequestError, match=re.escape(repr(str(spill)))):
            corral.run(["echo", "attacker"], limits=limits, policy="full-access", timeout=10)
    assert victim.read_text() == "precious\n"
    # The control: an existing regular file is truncated and written.
    limits = corral.OutputLimits(spill=victim)
    assert corral.run(["echo", "new"], limits=limits, policy="full-access").exit_code == 0
    assert victim.read_text() == "new\n"


def test_async_stream_yields_events_then_result():
    async def main() -> tuple[list[corral.OutputEvent], corral.ExecResult]:
        events = []
        async with corral.stream(["sh", "-c", "echo a; echo b >&2; exit 4"], policy="full-access") as run:
            async for event in run:
                events.append(event)
        return events, run.result

    events, result = asyncio.run(main())
    assert b"".join(e.data for e in events) in (b"a\nb\n", b"b\na\n")
    assert result.exit_code == 4


def test_leaving_the_stream_early_cancels_the_run():
    async def main() -> corral.ExecResult:
        async with corral.stream(["sh", "-c", "echo first; sleep 30"], timeout=None, policy="full-access") as run:
            async for _ in run:
                break
        return run.result

    result = asyncio.run(main())
    assert result.cancelled and result.duration < 5


def test_binary_output_never_raises():
    result = corral.run([PYTHON, "-c", "import os; os.write(1, bytes(range(256)) * 4)"], policy="full-access")
    assert result.exit_code == 0
    assert result.stdout_capture.total_bytes == 1024
    assert isinstance(result.stdout, str)


def test_legacy_encoding_is_decoded():
    text = "Привет, мир! Это проверка кодировки вывода.\n" * 3
    code = f"import sys; sys.stdout.buffer.write({text.encode('cp1251')!r})"
    result = corral.run([PYTHON, "-c", code], policy="full-access")
    assert result.stdout == text
    assert result.stdout_capture.encoding == "cp1251"

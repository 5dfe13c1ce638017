"""The capture buffers on their own: retention, counts and decoding at the cut."""

from __future__ import annotations

import random

from corral._capture import HeadTailBuffer, OutputCapture
from corral._result import Stream

OUT, ERR = Stream.STDOUT, Stream.STDERR


def _feed(buffer: HeadTailBuffer, data: bytes, chunk: int) -> None:
    for i in range(0, len(data), chunk):
        piece = data[i : i + chunk]
        buffer.feed(OUT, piece, piece.count(b"\n"))


def test_head_and_tail_hold_exactly_the_ends():
    data = random.Random(7).randbytes(10_000)
    for chunk in (1, 7, 100, 4096, 20_000):
        buffer = HeadTailBuffer(1000)
        _feed(buffer, data, chunk)
        head = b"".join(d for _, d in buffer.head)
        tail = b"".join(d for _, d in buffer.tail_segments())
        assert head == data[:500] and tail == data[-500:]
        assert buffer.total_bytes == 10_000
        assert buffer.total_newlines == data.count(b"\n")


def test_everything_kept_when_under_the_cap():
    buffer = HeadTailBuffer(1000)
    _feed(buffer, b"a\nb\nc", 2)
    assert b"".join(d for _, d in buffer.head + buffer.tail_segments()) == b"a\nb\nc"
    assert buffer.total_lines == 3


def _capture(cap: int, chunks: list[tuple[Stream, bytes]]) -> OutputCapture:
    capture = OutputCapture(cap, 10, None)
    for stream, data in chunks:
        capture.feed(stream, data)
    return capture


def test_counts_are_exact_when_truncated():
    lines = b"".join(b"line %d\n" % i for i in range(1000))
    stdout, _, output = _capture(200, [(OUT, lines)]).finish()
    assert stdout.truncated and stdout.total_lines == 1000
    shown = (stdout.head + stdout.tail).encode()
    assert stdout.omitted_bytes == len(lines) - len(shown)
    assert stdout.omitted_lines == 1000 - shown.count(b"\n")
    assert output.omitted_bytes == stdout.omitted_bytes


def test_utf8_character_cut_by_the_cap_keeps_utf8():
    text = "日本語のテキスト。" * 200
    data = text.encode()
    stdout, _, _ = _capture(301, [(OUT, data)]).finish()  # 150/151: cuts inside characters
    assert stdout.encoding == "utf-8"
    assert "\ufffd" not in stdout.head + stdout.tail
    assert text.startswith(stdout.head) and text.endswith(stdout.tail)
    assert stdout.omitted_bytes == len(data) - len((stdout.head + stdout.tail).encode())


def test_character_split_across_reads_and_streams_decodes_whole():
    euro = "€".encode()  # 3 bytes
    chunks = [(OUT, b"price " + euro[:1]), (ERR, b"warn\n"), (OUT, euro[1:] + b"5\n")]
    stdout, stderr, output = _capture(1 << 20, chunks).finish()
    assert stdout.text == "price €5\n" and stderr.text == "warn\n"
    assert output.text == "price warn\n€5\n"  # interleaved in arrival order, no U+FFFD


def test_events_are_capped_and_counted():
    events = []
    capture = OutputCapture(1 << 20, 3, events.append)
    for i in range(5):
        capture.feed(OUT, b"%d" % i)
    assert [e.data for e in events] == [b"0", b"1", b"2"]
    assert capture.events_emitted == 3 and capture.events_dropped == 2
    assert capture.finish()[0].text == "01234"

"""Output capture in bounded memory: head and tail kept, every byte counted.

The reader loop hands every chunk to :meth:`OutputCapture.feed`, which

* emits it as a live :class:`OutputEvent` (up to ``max_events`` per run),
* appends it to the spill file when one was asked for (complete output),
* keeps it in three :class:`HeadTailBuffer`\\ s -- stdout, stderr, and the
  interleaved output in arrival order -- each holding at most
  ``max_bytes_per_stream``.

Decoding happens once, in :meth:`OutputCapture.finish`, per stream with that
stream's detected encoding; the interleaved output is decoded segment by
segment with one incremental decoder per stream, so a character split across
two reads, or around a chunk of the other stream, still decodes whole.
"""

from __future__ import annotations

import codecs
import os
from collections import deque
from collections.abc import Callable, Iterable

from ._decode import decode_pieces, orphan_continuation_bytes
from ._result import CapturedText, OutputEvent, Stream

try:
    from ._ccount import count_newlines  # type: ignore[import-not-found]
except ImportError:  # built without a compiler: 3-4x slower on line-dense output
    def count_newlines(data: bytes) -> int:
        return data.count(b"\n")

__all__ = ["HeadTailBuffer", "OutputCapture"]

Segment = tuple[Stream, bytes]


class HeadTailBuffer:
    """Keeps the first ``cap // 2`` and the last ``cap - cap // 2`` bytes fed.

    Chunks are stored as they came (never copied or joined while capturing),
    tagged with their stream, so one class serves a single stream and the
    interleaved output alike.  ``total_bytes`` and ``total_newlines`` count
    everything ever fed.
    """

    __slots__ = (
        "head", "head_len", "head_cap", "tail", "tail_len", "tail_cap",
        "total_bytes", "total_newlines", "ends_with_newline",
    )

    def __init__(self, cap: int) -> None:
        self.head_cap = cap // 2
        self.tail_cap = cap - self.head_cap
        self.head: list[Segment] = []
        self.head_len = 0
        self.tail: deque[Segment] = deque()
        self.tail_len = 0
        self.total_bytes = 0
        self.total_newlines = 0
        self.ends_with_newline = False

    def feed(self, stream: Stream, data: bytes, newlines: int) -> None:
        self.total_bytes += len(data)
        self.total_newlines += newlines
        self.ends_with_newline = data[-1:] == b"\n"
        room = self.head_cap - self.head_len
        if room > 0:
            if len(data) <= room:
                self.head.append((stream, data))
                self.head_len += len(data)
                return
            self.head.append((stream, data[:room]))
            self.head_len += room
            data = data[room:]
        tail = self.tail
        tail.append((stream, data))
        self.tail_len += len(data)
        while self.tail_len - len(tail[0][1]) >= self.tail_cap:
            self.tail_len -= len(tail.popleft()[1])

    def tail_segments(self) -> list[Segment]:
        """The tail, its first segment trimmed so that at most ``tail_cap`` remain."""
        segments = list(self.tail)
        excess = self.tail_len - self.tail_cap
        if excess > 0:
            stream, data = segments[0]
            segments[0] = (stream, data[excess:])
        return segments

    @property
    def truncated(self) -> bool:
        """True when bytes between the head and the tail were dropped."""
        return self.total_bytes > self.head_len + min(self.tail_len, self.tail_cap)

    @property
    def total_lines(self) -> int:
        partial = 1 if self.total_bytes and not self.ends_with_newline else 0
        return self.total_newlines + partial


def _join(segments: Iterable[Segment]) -> bytes:
    return b"".join(data for _, data in segments)


def _captured(
    buffer: HeadTailBuffer, head: str, tail: str, kept_head: bytes, kept_tail: bytes, encoding: str
) -> CapturedText:
    """``kept_*`` are the raw bytes that ``head``/``tail`` decode; the rest is omitted."""
    return CapturedText(
        head=head,
        tail=tail,
        total_bytes=buffer.total_bytes,
        total_lines=buffer.total_lines,
        omitted_bytes=buffer.total_bytes - len(kept_head) - len(kept_tail),
        omitted_lines=buffer.total_newlines - kept_head.count(b"\n") - kept_tail.count(b"\n"),
        encoding=encoding,
    )


_EMPTY = CapturedText("", "", 0, 0, 0, 0, "utf-8")


def _decode_stream(buffer: HeadTailBuffer) -> CapturedText:
    if not buffer.total_bytes:
        return _EMPTY
    if buffer.truncated:
        head, tail = _join(buffer.head), _join(buffer.tail_segments())
    else:  # one piece: a character split between head and tail is not cut
        head, tail = _join(buffer.head + list(buffer.tail)), b""
    pieces = decode_pieces(head, tail)
    kept_head = head[: len(head) - pieces.dropped_head_bytes]
    kept_tail = tail[pieces.dropped_tail_bytes:]
    return _captured(buffer, pieces.head, pieces.tail, kept_head, kept_tail, pieces.encoding)


def _decode_segments(
    segments: list[Segment], encodings: dict[Stream, str], *, after_cut: bool, final: bool
) -> tuple[str, bytes]:
    """Decodes interleaved segments, each stream with its own incremental decoder.

    ``after_cut``: the segments follow an omitted middle, so a UTF-8 stream's
    first continuation bytes belong to a character that was cut and are
    dropped.  Without ``final``, a character cut at the end stays in its
    decoder and is dropped.  Returns the text and the raw bytes it decodes.
    """
    decoders = {s: codecs.getincrementaldecoder(e)(errors="replace") for s, e in encodings.items()}
    seen: set[Stream] = set()
    parts: list[str] = []
    kept: list[bytes] = []
    for stream, data in segments:
        if after_cut and stream not in seen and encodings[stream] == "utf-8":
            data = data[orphan_continuation_bytes(data):]
        seen.add(stream)
        parts.append(decoders[stream].decode(data))
        kept.append(data)
    raw = b"".join(kept)
    if final:
        parts.extend(decoder.decode(b"", True) for decoder in decoders.values())
    else:
        pending = sum(len(decoder.getstate()[0]) for decoder in decoders.values())
        raw = raw[: len(raw) - pending]  # approximate position, exact count
    return "".join(parts), raw


def _decode_interleaved(
    buffer: HeadTailBuffer, encodings: dict[Stream, str], encoding: str
) -> CapturedText:
    """The interleaved output; ``encoding`` is reported (the dominant stream's)."""
    if buffer.truncated:
        head, kept_head = _decode_segments(buffer.head, encodings, after_cut=False, final=False)
        tail, kept_tail = _decode_segments(
            buffer.tail_segments(), encodings, after_cut=True, final=True
        )
    else:
        head, kept_head = _decode_segments(
            [*buffer.head, *buffer.tail], encodings, after_cut=False, final=True
        )
        tail, kept_tail = "", b""
    return _captured(buffer, head, tail, kept_head, kept_tail, encoding)


class OutputCapture:
    """Everything a run does with its output, fed one chunk at a time."""

    __slots__ = ("_stdout", "_stderr", "_output", "_on_event", "_max_events", "_seq",
                 "events_dropped", "_spill_fd")

    def __init__(
        self,
        max_bytes_per_stream: int,
        max_events: int,
        on_event: Callable[[OutputEvent], object] | None,
        spill_fd: int = -1,
    ) -> None:
        self._stdout = HeadTailBuffer(max_bytes_per_stream)
        self._stderr = HeadTailBuffer(max_bytes_per_stream)
        self._output = HeadTailBuffer(max_bytes_per_stream)
        self._on_event = on_event
        self._max_events = max_events
        self._seq = 0
        self.events_dropped = 0
        self._spill_fd = spill_fd

    @property
    def events_emitted(self) -> int:
        return min(self._seq, self._max_events) if self._on_event else 0

    def feed(self, stream: Stream, data: bytes) -> None:
        newlines = count_newlines(data)
        (self._stdout if stream is Stream.STDOUT else self._stderr).feed(stream, data, newlines)
        self._output.feed(stream, data, newlines)
        if self._spill_fd >= 0:
            view = memoryview(data)
            while view:
                view = view[os.write(self._spill_fd, view):]
        if self._on_event is not None:
            if self._seq < self._max_events:
                self._on_event(OutputEvent(stream, data, self._seq))
            else:
                self.events_dropped += 1
            self._seq += 1

    def finish(self) -> tuple[CapturedText, CapturedText, CapturedText]:
        """(stdout, stderr, interleaved) decoded, with exact counts."""
        stdout = _decode_stream(self._stdout)
        stderr = _decode_stream(self._stderr)
        if not stderr.total_bytes or not stdout.total_bytes:
            # One stream only: the interleaved output is that stream, kept the same way.
            return stdout, stderr, stderr if not stdout.total_bytes else stdout
        dominant = stdout if stdout.total_bytes >= stderr.total_bytes else stderr
        output = _decode_interleaved(
            self._output,
            {Stream.STDOUT: stdout.encoding, Stream.STDERR: stderr.encoding},
            dominant.encoding,
        )
        return stdout, stderr, output

"""Decoding command output: UTF-8 when it is, the detected legacy encoding when not.

The rules, in order (Codex's ``bytes_to_string_smart``, adapted):

1. Valid UTF-8 (ASCII included) is UTF-8.  Output cut by the capture cap is
   still UTF-8 if the only invalid bytes are a character cut at the cut: an
   incomplete sequence at the end of the head, orphan continuation bytes at
   the start of the tail.
2. Otherwise charset-normalizer guesses (imported only then: it is slow to
   import), and two corrections apply to its guess:

   * Short text is often guessed as a rare code page of the right script
     (Western text as cp1250, cp1257, cp775...; Russian as mac_cyrillic).
     When Windows-1252 (or, for Cyrillic, Windows-1251) decodes the sample
     about as plausibly, it wins: it is what terminals actually produce.
   * Codex's special case: IBM866 guessed while every byte >= 0x80 is one of
     Windows-1252's smart punctuation bytes (0x91-0x97, 0x99) and the text has
     ASCII letters means Windows-1252.

   Among encodings that decode the sample identically, the common name is
   reported (``cp866`` rather than ``cp1125``).
3. No guess (binary data) decodes as UTF-8 with U+FFFD replacements.

Encodings are reported as Python codec names normalised by
:func:`codecs.lookup` (``"utf-8"``, ``"cp1251"``, ``"iso8859-1"``).
Decoding never raises.
"""

from __future__ import annotations

import codecs

from ._record import record
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from charset_normalizer import CharsetMatch, CharsetMatches

__all__ = [
    "DecodedPieces", "decode_bytes", "decode_pieces", "detect_encoding", "orphan_continuation_bytes",
]

UTF8 = "utf-8"
# Detection looks at most this much of each end: enough to decide, bounded cost.
_SAMPLE_BYTES = 32 * 1024
# Guesses charset-normalizer gives for short text in the script of the key,
# where the key -- the Windows code page that terminals actually produce --
# decodes the sample about as plausibly and wins.
_PREFERRED_OVER = {
    "cp1252": frozenset({
        "cp1250", "cp1257", "cp775", "cp437", "cp850", "cp852", "cp858", "cp860", "cp861",
        "iso8859_2", "iso8859_4", "iso8859_10", "iso8859_13", "mac_latin2", "mac_roman",
        "mac_iceland", "hp_roman8",
    }),
    "cp1251": frozenset({"mac_cyrillic", "kz1048", "ptcp154", "iso8859_5"}),
}
# How much worse (charset-normalizer's "chaos", 0..1) the preferred code page
# may score and still win over an ambiguous guess.
_CHAOS_MARGIN = 0.15
# The name reported when several encodings decode a sample identically.
_PREFERRED = ("cp1252", "cp1251", "cp866", "cp932", "gb18030", "big5", "euc_kr", "koi8_r",
              "latin_1")
_IBM866_NAMES = frozenset({"cp866", "cp1125"})
_SMART_PUNCTUATION = frozenset(range(0x91, 0x98)) | {0x99}


@record
class DecodedPieces:
    """A head and a tail decoded with one encoding.

    ``dropped_*_bytes`` count the bytes of characters cut at the head's end
    or the tail's start, which are left out of the text (the caller counts
    them as omitted).
    """

    head: str
    tail: str
    encoding: str
    dropped_head_bytes: int = 0
    dropped_tail_bytes: int = 0


def _incomplete_utf8_suffix(data: bytes) -> int:
    """Length of an incomplete (but so far valid) UTF-8 sequence ending ``data``."""
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return 0
        if byte >= 0xC0:  # a lead byte: does its sequence run past the end?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back if need > back else 0
    return 0


def orphan_continuation_bytes(data: bytes) -> int:
    """How many bytes at the start of ``data`` finish a UTF-8 character cut before it."""
    count = 0
    while count < min(3, len(data)) and 0x80 <= data[count] <= 0xBF:
        count += 1
    return count


def _utf8_cut_edges(head: bytes, tail: bytes) -> tuple[int, int] | None:
    """(bytes to drop at head's end, at tail's start) if the pieces are UTF-8, else None.

    Without a tail, a character cut at the very end (a process killed
    mid-write) still counts as UTF-8; it is decoded as U+FFFD, not dropped.
    """
    drop_head = _incomplete_utf8_suffix(head)
    drop_tail = orphan_continuation_bytes(tail)
    try:
        head[: len(head) - drop_head].decode(UTF8)
        tail[drop_tail:].decode(UTF8)
    except UnicodeDecodeError:
        return None
    return drop_head, drop_tail


def _normalise(name: str) -> str:
    return codecs.lookup(name).name


def _common_name(match: CharsetMatch) -> str:
    equivalent = match.could_be_from_charset
    return next((name for name in _PREFERRED if name in equivalent), match.encoding)


def _windows_1252_punctuation_only(sample: bytes) -> bool:
    """Codex's test: high bytes are all smart punctuation, and there are ASCII letters."""
    high = {b for b in sample if b >= 0x80}
    return bool(high) and high <= _SMART_PUNCTUATION and any(
        0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in sample
    )


def _choose(matches: CharsetMatches, sample: bytes) -> str:
    best = matches.best()
    if best is None:
        return UTF8
    name = _common_name(best)
    for preferred, ambiguous in _PREFERRED_OVER.items():
        if name in ambiguous and any(
            match.chaos <= best.chaos + _CHAOS_MARGIN and preferred in match.could_be_from_charset
            for match in matches
        ):
            name = preferred
            break
    if name in _IBM866_NAMES and _windows_1252_punctuation_only(sample):
        name = "cp1252"
    return _normalise(name)


def detect_encoding(head: bytes, tail: bytes = b"") -> str:
    """The codec for one stream's output, given its head and its tail.

    ``tail`` is the end of the same output when its middle was dropped (empty
    otherwise); see the module docstring for the rules.
    """
    if _utf8_cut_edges(head, tail) is not None:
        return UTF8
    return _detect_legacy(head, tail)


def _detect_legacy(head: bytes, tail: bytes) -> str:
    from charset_normalizer import from_bytes

    sample = head[:_SAMPLE_BYTES] + (b"\n" + tail[-_SAMPLE_BYTES:] if tail else b"")
    return _choose(from_bytes(sample), sample)


def decode_pieces(head: bytes, tail: bytes = b"") -> DecodedPieces:
    """Decodes a head and a tail with one detected encoding (errors replaced)."""
    edges = _utf8_cut_edges(head, tail)
    if edges is not None and not tail:
        return DecodedPieces(head.decode(UTF8, errors="replace"), "", UTF8)
    if edges is not None:
        drop_head, drop_tail = edges
        return DecodedPieces(
            head[: len(head) - drop_head].decode(UTF8),
            tail[drop_tail:].decode(UTF8),
            UTF8,
            drop_head,
            drop_tail,
        )
    encoding = _detect_legacy(head, tail)
    return DecodedPieces(
        head.decode(encoding, errors="replace"), tail.decode(encoding, errors="replace"), encoding
    )


def decode_bytes(data: bytes) -> str:
    """Decodes a complete buffer: UTF-8 if valid, else the detected encoding."""
    return decode_pieces(data).head

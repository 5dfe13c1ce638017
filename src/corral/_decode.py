"""Decoding command output: UTF-8 when it is, the detected legacy encoding when not.

Codex's ``bytes_to_string_smart``, for one stream's head and tail around a
middle dropped by the capture cap:

1. UTF-8 (ASCII and empty output included) if the bytes are valid UTF-8,
   allowing a character cut where the middle was dropped: an incomplete but
   so far valid sequence at the end of the head, up to 3 continuation bytes
   at the start of the tail.  The C decoder checks it, so the common case
   costs one decode and no detector.
2. Otherwise the encoding charset-normalizer scores best (imported only
   then: it costs tens of milliseconds) on at most 64 KiB of each piece, cut
   at line starts so that a multi-byte code page can decode the sample.  Its
   guesses on the few words commands often print are poor; these corrections
   fix the failures seen:

   * Only code pages that command output comes in are tried (``_POPULAR``):
     rarer ones (cp1006, mac_greek, cp869...) won on a line of text.  This
     also keeps charset-normalizer trying single-byte code pages after a CJK
     one decodes the sample, which made "Ошибка: файл не найден." in
     Windows-1251 come out as Korean.
   * Among the candidates it scores as well as its best (chaos within 0.005,
     its own tie margin), the most common code page wins, rather than its
     coherence and multi-byte tie-breaks (noise on a few words; the latter
     made NUL-free text UTF-16).  Windows-1252 comes first if most bytes
     >= 0x80 stand alone between ASCII bytes (accented letters in Latin
     words, quotes), and then also when scored up to 0.15 worse; otherwise
     it comes after the Cyrillic and CJK code pages, whose text writes whole
     words in such bytes.  Shift-JIS comes last if it reads halfwidth
     katakana: that is how it reads most Korean and Chinese text, and
     Japanese text hardly uses them.
   * Codex's rule: an OEM (DOS) code page -- IBM866, and here also 437, 850
     and 852, which read the same bytes as letters -- chosen while every byte
     >= 0x80 is Windows-1252 smart punctuation (0x91-0x97, 0x99) and the
     sample has ASCII letters means Windows-1252.

   No candidate (binary data) means UTF-8.

Encodings are named as :func:`codecs.lookup` names them (``"utf-8"``,
``"cp1251"``, ``"koi8-r"``); of code pages that decode the sample
identically, the most common is named (``cp1252`` rather than ``cp1254``).
A BOM stays in the text as U+FEFF.  Bytes the encoding cannot decode become
U+FFFD: decoding never raises.
"""

from __future__ import annotations

import codecs

from ._record import record

# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from charset_normalizer import CharsetMatch

__all__ = [
    "DecodedPieces", "decode_bytes", "decode_pieces", "detect_encoding", "orphan_continuation_bytes",
]

UTF8 = "utf-8"
# Detection reads at most this much of each end: enough to decide, bounded cost.
_SAMPLE_BYTES = 64 * 1024
# A cut is moved to a line start found this close to it.
_LINE_SEARCH = 4096
# The code pages tried (normalised names), most common in command output
# first: Windows ANSI and OEM, CJK, then Unix and ISO ones.
_POPULAR = (
    "cp1251", "cp866", "gb18030", "cp932", "cp949", "big5", "cp1252", "cp1250", "cp1253",
    "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "cp437", "cp850", "cp852",
    "koi8-r", "koi8-u", "euc_jp", "iso8859-2", "iso8859-5", "iso8859-7", "iso8859-15",
    "iso8859-1", "utf-16-le", "utf-16-be",
)
_BY_POPULARITY = {name: rank for rank, name in enumerate(_POPULAR)}
_LATIN_FIRST = {**_BY_POPULARITY, "cp1252": -1}
_MULTI_BYTE = frozenset({"gb18030", "cp932", "cp949", "big5", "euc_jp", "utf-16-le", "utf-16-be"})
# Chaos differences charset-normalizer itself treats as a tie (CharsetMatch.__lt__).
_TIE = 0.005
# charset-normalizer's chaos penalises a sentence of French accents about this
# much more than the Baltic letters that cp1257 reads the same bytes as.
_LATIN_MARGIN = 0.15
_OEM = frozenset({"cp866", "cp437", "cp850", "cp852"})

_ASCII = bytes(range(0x80))
_SMART_PUNCTUATION = bytes((0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x99))
_RUNS = b" " * 0x80 + b"\x80" * 0x80  # a translation table: ASCII to space, the rest to 0x80
_NOT_LETTERS = bytes(b for b in range(256) if not (0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A))


@record
class DecodedPieces:
    """A head and a tail decoded with one encoding.

    ``dropped_*_bytes`` count the bytes left out of the text because the
    cut (a non-empty tail) may have split a character there; the caller
    counts them as omitted.  At the head's end: the incomplete character the
    decoder holds back (0-3 bytes).  At the tail's start: in UTF-8 the
    continuation bytes (0-3); in a multi-byte code page (CJK, UTF-16),
    where a cut character cannot be told from a whole one, the partial first
    line, if a line starts within 4 KiB; in a single-byte code page, none.
    """

    head: str
    tail: str
    encoding: str
    dropped_head_bytes: int = 0
    dropped_tail_bytes: int = 0


def orphan_continuation_bytes(data: bytes) -> int:
    """How many bytes (0-3) at the start of ``data`` finish a UTF-8 character cut before it."""
    count = 0
    while count < min(3, len(data)) and 0x80 <= data[count] <= 0xBF:
        count += 1
    return count


def _utf8_pieces(head: bytes, tail: bytes) -> DecodedPieces | None:
    """The pieces decoded as UTF-8 if they are UTF-8 but for a cut character, else None.

    Without a tail nothing was cut, so a character left incomplete at the
    very end (a process killed mid-write) becomes U+FFFD instead of being
    dropped.
    """
    skip = orphan_continuation_bytes(tail)
    try:
        # final=False leaves an incomplete but valid sequence at the end undecoded.
        head_text, used = codecs.utf_8_decode(head, "strict", False)
        tail_text = codecs.utf_8_decode(memoryview(tail)[skip:], "strict", True)[0]
    except UnicodeDecodeError:
        return None
    if used < len(head) and not tail:
        return DecodedPieces(head_text + "\ufffd", "", UTF8)
    return DecodedPieces(head_text, tail_text, UTF8, len(head) - used, skip)


def _line_start(data: bytes, line_feed: int) -> int:
    """The offset of the line after the line feed at ``line_feed``.

    A line feed ends a character in every ASCII-compatible encoding, so a
    line start begins one even in a multi-byte code page; in UTF-16LE the
    NUL byte after it is part of it.
    """
    return line_feed + (2 if data[line_feed + 1 : line_feed + 2] == b"\0" else 1)


def _first_line_start(tail: bytes) -> int:
    """The offset of the first line start in a tail that begins at a cut, 0 if none is near."""
    line_feed = tail.find(b"\n", 0, _LINE_SEARCH)
    return _line_start(tail, line_feed) if line_feed >= 0 else 0


def _sample(head: bytes, tail: bytes) -> bytes:
    """What detection reads: at most ``_SAMPLE_BYTES`` of each piece, cut at line starts."""
    if tail or len(head) > _SAMPLE_BYTES:  # the head ends at a cut
        head = head[:_SAMPLE_BYTES]
        line_feed = head.rfind(b"\n", max(0, len(head) - _LINE_SEARCH))
        if line_feed >= 0:
            head = head[: _line_start(head, line_feed)]
    if tail:  # which starts at a cut
        tail = tail[-_SAMPLE_BYTES:]
        tail = tail[_first_line_start(tail) :]
    return head + tail


def _latin_like(sample: bytes) -> bool:
    """True if most bytes >= 0x80 stand alone between ASCII bytes.

    Accented Latin letters and typographic quotes do; Cyrillic, Greek or CJK
    text writes whole words in bytes >= 0x80.
    """
    runs = sample.translate(_RUNS).split()  # the runs of bytes >= 0x80, as b"\x80" * length
    return 2 * runs.count(b"\x80") >= len(sample.translate(None, _ASCII))


def _windows_1252_punctuation_only(sample: bytes) -> bool:
    """Codex's test: every byte >= 0x80 is smart punctuation, and there are ASCII letters."""
    high = sample.translate(None, _ASCII)
    return (
        bool(high)
        and not high.translate(None, _SMART_PUNCTUATION)
        and bool(sample.translate(None, _NOT_LETTERS))
    )


def _names(match: CharsetMatch) -> set[str]:
    """The code pages that decode the sample exactly as ``match`` does."""
    return {codecs.lookup(name).name for name in match.could_be_from_charset}


def _choose(matches: list[CharsetMatch], sample: bytes) -> str:
    """The encoding among charset-normalizer's matches, corrected as the module doc says."""
    if not matches:
        return UTF8
    import re  # charset-normalizer has imported it

    latin = _latin_like(sample)
    order = _LATIN_FIRST if latin else _BY_POPULARITY
    floor = min(match.chaos for match in matches)

    def tied(match: CharsetMatch) -> bool:
        latin_1252 = latin and "cp1252" in _names(match)
        return match.chaos <= floor + (_LATIN_MARGIN if latin_1252 else _TIE)

    def key(match: CharsetMatch) -> tuple[bool, int]:
        # Shift-JIS reads most Korean or Chinese bytes as single-byte (halfwidth)
        # katakana, which Japanese text today hardly uses.
        katakana = match.encoding == "cp932" and re.search("[\uff61-\uff9f]", str(match))
        return bool(katakana), min(order.get(name, len(order)) for name in _names(match))

    best = _names(min(filter(tied, matches), key=key))
    name = min(best, key=lambda name: _LATIN_FIRST.get(name, len(_LATIN_FIRST)))
    if name in _OEM and _windows_1252_punctuation_only(sample):
        return "cp1252"
    return name


def _detect_legacy(head: bytes, tail: bytes) -> str:
    from charset_normalizer import from_bytes

    sample = _sample(head, tail)
    return _choose(list(from_bytes(sample, cp_isolation=list(_POPULAR))), sample)


def detect_encoding(head: bytes, tail: bytes = b"") -> str:
    """The codec for one stream's output, named as :func:`codecs.lookup` does.

    ``tail`` is the end of the same output when its middle was dropped
    (empty otherwise).  See the module docstring for the rules.
    """
    if _utf8_pieces(head, tail) is not None:
        return UTF8
    return _detect_legacy(head, tail)


def decode_pieces(head: bytes, tail: bytes = b"") -> DecodedPieces:
    """Decodes a head and a tail with one detected encoding (errors replaced).

    A non-empty ``tail`` means the middle was dropped: a character cut there
    is left out and counted in ``dropped_head_bytes``/``dropped_tail_bytes``
    (see :class:`DecodedPieces`).  Never raises.
    """
    pieces = _utf8_pieces(head, tail)
    if pieces is not None:
        return pieces
    encoding = _detect_legacy(head, tail)
    if not tail:
        return DecodedPieces(head.decode(encoding, "replace"), "", encoding)
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    head_text = decoder.decode(head)  # final=False: a cut character stays in the decoder
    cut = len(decoder.getstate()[0])
    # Only a line start is known to begin a character in a multi-byte code page.
    skip = _first_line_start(tail) if encoding in _MULTI_BYTE else 0
    tail_text = tail[skip:].decode(encoding, "replace")
    return DecodedPieces(head_text, tail_text, encoding, cut, skip)


def decode_bytes(data: bytes) -> str:
    """Decodes a complete buffer: UTF-8 if valid, else the detected encoding.  Never raises."""
    return decode_pieces(data).head

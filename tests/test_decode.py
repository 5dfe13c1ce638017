"""Decoding: UTF-8 as is, legacy encodings detected, binary never raises."""

from __future__ import annotations

import random

import pytest

from corral._decode import _windows_1252_punctuation_only, decode_bytes, decode_pieces, detect_encoding

RUSSIAN = "Привет, мир! Это проверка кодировки вывода.\nОшибка: файл не найден.\n"


@pytest.mark.parametrize("text", ["hello\n", "", "naïve café — ✓ 日本語 🙂\n"])
def test_utf8_passes_through(text):
    assert detect_encoding(text.encode()) == "utf-8"
    assert decode_bytes(text.encode()) == text


@pytest.mark.parametrize(
    ("text", "encoding", "reported"),
    [
        (RUSSIAN, "cp1251", "cp1251"),
        ("Привет, мир! Это проверка кодировки.\n", "cp1251", "cp1251"),
        (RUSSIAN * 3, "cp1251", "cp1251"),
        (RUSSIAN, "cp866", "cp866"),
        ("café naïve résumé\n", "latin-1", "cp1252"),
        ("Le café est très bon, déjà vu à la façon française.\n", "latin-1", "cp1252"),
        ("Año nuevo: el niño pequeño comió piña en la mañana.\n", "latin-1", "cp1252"),
        ("He said “hello” – and left — quickly.\n", "cp1252", "cp1252"),
        ("“quoted” – dash — em\n", "cp1252", "cp1252"),
        ("Größe: Überprüfung fehlgeschlagen für Datei Straße.txt\n", "cp1252", "cp1252"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.\n", "cp1250", "cp1250"),
        ("日本語のテキストです。エラーが発生しました。ファイルが見つかりません。\n" * 2,
         "shift_jis", "cp932"),
        ("这是一个中文文本。发生错误，找不到文件。请检查路径。\n" * 2, "gbk", "gb18030"),
    ],
)
def test_legacy_encodings(text, encoding, reported):
    data = text.encode(encoding)
    assert decode_bytes(data) == text
    assert detect_encoding(data) == reported


def test_codex_ibm866_special_case():
    # Only Windows-1252 smart punctuation among ASCII letters: Windows-1252.
    assert _windows_1252_punctuation_only("“fancy” – quotes".encode("cp1252"))
    assert not _windows_1252_punctuation_only(RUSSIAN.encode("cp866"))
    assert not _windows_1252_punctuation_only(b"\x93\x94")  # no letters
    assert not _windows_1252_punctuation_only(b"plain ascii")


@pytest.mark.parametrize(
    "data",
    [b"\x00\xff\xfe\x80garbage", bytes(range(256)), bytes(range(256)) * 64,
     bytes(random.Random(1).randrange(256) for _ in range(10_000))],
)
def test_binary_never_raises(data):
    assert isinstance(decode_bytes(data), str)
    assert isinstance(decode_pieces(data[:100], data[100:]).head, str)


def test_character_cut_at_the_edges_keeps_utf8():
    text = "価格は€5です。" * 50
    data = text.encode()
    def continuation(i: int) -> bool:
        return 0x80 <= data[i] <= 0xBF

    cut_head = next(i for i in range(100, 200) if continuation(i))  # inside a character
    cut_tail = next(i for i in range(len(data) - 100, len(data)) if continuation(i))
    head, tail = data[:cut_head], data[cut_tail:]
    assert detect_encoding(head, tail) == "utf-8"
    pieces = decode_pieces(head, tail)
    assert pieces.encoding == "utf-8"
    assert "\ufffd" not in pieces.head + pieces.tail
    assert text.startswith(pieces.head) and text.endswith(pieces.tail)
    assert len(pieces.head.encode()) + pieces.dropped_head_bytes == len(head)
    assert len(pieces.tail.encode()) + pieces.dropped_tail_bytes == len(tail)
    assert pieces.dropped_head_bytes > 0 and pieces.dropped_tail_bytes > 0


def test_truncated_final_character_of_a_complete_buffer():
    data = "done ✓".encode()[:-1]  # killed mid-character
    assert decode_bytes(data) == "done \ufffd"

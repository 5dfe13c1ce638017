"""Decoding: UTF-8 as is, legacy encodings detected, binary never raises, cut characters dropped."""

from __future__ import annotations

import codecs
import random
import subprocess
import sys

import pytest
from charset_normalizer import CharsetMatch

from corral._decode import (
    _choose,
    _windows_1252_punctuation_only,
    decode_bytes,
    decode_pieces,
    detect_encoding,
)

RUSSIAN = (
    "Привет, мир! Это проверка кодировки вывода.\n"
    "Ошибка: файл не найден.\n"
    "Сборка завершена с ошибками, подробности в журнале.\n"
)
JAPANESE = "日本語のテキストです。エラーが発生しました。ファイルが見つかりません。\n" * 2
CHINESE = "这是一个中文文本。发生错误，找不到文件。请检查路径。\n" * 2


@pytest.mark.parametrize("text", ["", "hello\n", "naïve café — ✓ 日本語 🙂\n", "𝄞" * 1000])
def test_utf8_passes_through(text):
    data = text.encode()
    assert detect_encoding(data) == "utf-8"
    assert decode_bytes(data) == text
    assert decode_pieces(data[:1], data[1:]).encoding == "utf-8"


@pytest.mark.parametrize(
    ("text", "encoding", "reported"),
    [
        ("Привет, мир! Это проверка кодировки.", "cp1251", "cp1251"),
        (RUSSIAN, "cp1251", "cp1251"),
        (RUSSIAN * 50, "cp1251", "cp1251"),
        ("Привет, мир! Это проверка кодировки.", "cp866", "cp866"),
        (RUSSIAN, "cp866", "cp866"),
        ("Системе не удается найти указанный путь.\r\n", "cp866", "cp866"),
        ("café naïve résumé", "latin-1", "cp1252"),  # identical in cp1252, named so
        ("Le café est très bon, déjà vu à la façon française.\n", "latin-1", "cp1252"),
        ("“quoted” – dash — em\n", "cp1252", "cp1252"),
        ("Can’t open “config.yaml” – permission denied\n", "cp1252", "cp1252"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.\n", "cp1250", "cp1250"),
        ("Γεια σου κόσμε! Αυτό είναι ένα τεστ.\n", "cp1253", "cp1253"),
        (JAPANESE, "shift_jis", "cp932"),
        (JAPANESE, "cp932", "cp932"),
        (CHINESE, "gbk", "gb18030"),
        ("這是一個中文文本。發生錯誤，找不到檔案。請檢查路徑。\n" * 2, "big5", "big5"),
        ("이것은 한국어 텍스트입니다. 파일을 찾을 수 없습니다.\n" * 2, "cp949", "cp949"),
    ],
)
def test_legacy_encodings(text, encoding, reported):
    data = text.encode(encoding)
    assert decode_bytes(data) == text
    assert detect_encoding(data) == reported


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        # charset-normalizer alone: Korean (it stops trying single-byte code pages)
        ("Ошибка: файл не найден.\n", "cp1251"),
        ("Доступ запрещён.\n", "cp1251"),
        # alone: UTF-16, though there is no NUL byte
        ("“test”", "cp1252"),
        ("系统找不到指定的文件。\r\n", "gbk"),
        # alone: a rare code page (cp869, cp1006)
        ("Copyright © 2024 Foo™ — all rights reserved.\n", "cp1252"),
        ("Café\n", "cp1252"),
        # single words that Latin and Cyrillic code pages tie on
        ("Готово\n", "cp1251"),
        ("Übung\n", "cp1252"),
        # Shift-JIS reads them as halfwidth katakana
        ("액세스가 거부되었습니다.\r\n", "cp949"),
        ("存取被拒。\r\n", "big5"),
    ],
)
def test_short_output_charset_normalizer_alone_gets_wrong(text, encoding):
    assert decode_bytes(text.encode(encoding)) == text


def test_codex_ibm866_special_case():
    # The rule on its own: only smart punctuation among ASCII letters.
    assert _windows_1252_punctuation_only("“fancy” – quotes™".encode("cp1252"))
    assert not _windows_1252_punctuation_only("ПРИ test".encode("cp866"))  # 0x8F, 0x90, 0x88
    assert not _windows_1252_punctuation_only(b"\x93\x94 42")  # no letters
    assert not _windows_1252_punctuation_only(b"plain ascii")
    assert not _windows_1252_punctuation_only("“café”".encode("cp1252"))  # 0xE9
    # Applied to an IBM866 guess, whatever charset-normalizer would have said.
    smart = b"\x93test\x94"
    assert _choose([CharsetMatch(smart, "cp866", 0.0, False, [])], smart) == "cp1252"
    cyrillic = "ПРИ test".encode("cp866")
    assert _choose([CharsetMatch(cyrillic, "cp866", 0.0, False, [])], cyrillic) == "cp866"
    assert decode_bytes(smart) == "“test”"  # Codex's own test case


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\xff\xfe\x80garbage",
        bytes(range(256)),
        bytes(range(256)) * 300,
        random.Random(1).randbytes(10_000),
        random.Random(2).randbytes(200_000),
        b"\x00" * 100,
        b"\xff\xfe" + b"\x00\xd8" * 10,  # UTF-16 BOM, then lone surrogates
    ],
)
def test_binary_never_raises(data):
    assert isinstance(decode_bytes(data), str)
    assert isinstance(detect_encoding(data), str)
    for cut in (0, 1, 3, len(data) // 2, len(data) - 1):
        pieces = decode_pieces(data[:cut], data[cut:])
        assert isinstance(pieces.head, str) and isinstance(pieces.tail, str)


def test_random_bytes_fall_back_to_utf8_with_replacements():
    data = random.Random(3).randbytes(5000)
    assert detect_encoding(data) == "utf-8"
    assert decode_bytes(data) == data.decode("utf-8", "replace")


@pytest.mark.parametrize("text", ["価格は€5です。" * 50, "日本" * 300, "𝄞 music " * 200])
def test_utf8_character_cut_at_both_edges(text):
    data = text.encode()
    for head_cut in range(100, 104):
        for tail_cut in range(len(data) - 104, len(data) - 100):
            head, tail = data[:head_cut], data[tail_cut:]
            assert detect_encoding(head, tail) == "utf-8"
            pieces = decode_pieces(head, tail)
            assert pieces.encoding == "utf-8"
            assert "\ufffd" not in pieces.head + pieces.tail
            assert text.startswith(pieces.head) and text.endswith(pieces.tail)
            assert len(pieces.head.encode()) + pieces.dropped_head_bytes == len(head)
            assert len(pieces.tail.encode()) + pieces.dropped_tail_bytes == len(tail)
    # A cut inside a 3-byte character: 1 or 2 bytes on each side.
    euro = "€".encode()
    pieces = decode_pieces(b"price " + euro[:2], euro[2:] + b"5")
    assert (pieces.head, pieces.tail) == ("price ", "5")
    assert (pieces.dropped_head_bytes, pieces.dropped_tail_bytes) == (2, 1)


def test_truncated_final_character_of_a_complete_buffer():
    data = "done ✓".encode()[:-1]  # killed mid-character: nothing was cut, so it shows
    assert detect_encoding(data) == "utf-8"
    assert decode_bytes(data) == "done \ufffd"
    assert decode_pieces(data).dropped_head_bytes == 0


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(RUSSIAN, "cp1251"), (JAPANESE, "cp932"), (CHINESE, "gbk"),
     ("이것은 한국어 텍스트입니다. 파일을 찾을 수 없습니다.\n", "cp949")],
)
def test_legacy_character_cut_at_both_edges(text, encoding):
    # Pieces longer than the detection sample, cut at every byte offset of a character.
    full = text * 3000
    data = full.encode(encoding)
    for shift in range(4):
        head, tail = data[: 90_001 + shift], data[-90_001 - shift :]
        pieces = decode_pieces(head, tail)
        assert pieces.encoding == detect_encoding(data)
        assert "\ufffd" not in pieces.head + pieces.tail
        assert full.startswith(pieces.head) and full.endswith(pieces.tail)
        assert len(pieces.head.encode(encoding)) + pieces.dropped_head_bytes == len(head)
        assert len(pieces.tail.encode(encoding)) + pieces.dropped_tail_bytes == len(tail)


def test_utf16_with_bom_keeps_the_bom_as_text():
    text = "Build failed. Ошибка: файл не найден.\r\n"
    assert decode_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le")) == "\ufeff" + text


def test_utf8_never_imports_charset_normalizer():
    code = (
        "import sys, corral._decode as d\n"
        "assert d.decode_bytes('naïve ✓'.encode()) == 'naïve ✓'\n"
        "assert d.decode_pieces('€'.encode()[:2], b'x').encoding == 'utf-8'\n"
        "print('charset_normalizer' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

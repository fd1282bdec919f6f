from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.attachments import (
    ALLOWED_EXTENSIONS,
    MAX_ATTACHMENT_BYTES,
    MAX_FILENAME_BYTES,
    SNIFF_BYTES,
    check_attachment_start,
    content_type_for,
    extension_of,
    safe_filename,
    size_error,
)
from domain.attachments import (
    StoredAttachment as AttachmentRef,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8\x00"
DOCX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml"
CUR = b"\x00\x00\x02\x00\x01\x00\x20\x20\x00\x00\x00\x00\x00\x00\xa8\x08\x00\x00"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'

# Real starts of each allowed type, as the programs patients use write them.
GOOD_STARTS: dict[str, bytes] = {
    "bmp": b"BM6\x00\x0c\x00\x00\x00\x00\x006\x00\x00\x00(\x00\x00\x00",
    "cur": CUR,
    "docx": DOCX,
    "gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04",
    "ico": b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00h\x04\x00\x00",
    "jfif": JPEG,
    "jpeg": JPEG,
    "jpg": b"\xff\xd8\xff\xe1\x00\x18Exif\x00\x00II*\x00\x08\x00\x00\x00",
    "log": b"2024-05-01 09:12:44 INFO sync finished\r\n2024-05-01 09:13:02 WARN retry\r\n",
    "pdf": PDF,
    "pjp": JPEG,
    "pjpeg": JPEG,
    "png": PNG,
    "svg": b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    b"<!-- Created with Inkscape (http://www.inkscape.org/) -->\n" + SVG,
    "tif": b"II*\x00\x08\x00\x00\x00\x10\x00\xfe\x00\x04\x00\x01\x00\x00\x00",
    "tiff": b"MM\x00*\x00\x00\x00\x08\x00\x10\x01\x00\x00\x03\x00\x00\x00\x01",
    "txt": "Dear Dr. Smith,\nmy crown feels loose. — Zoë\n".encode(),
}


def test_check_attachment_start_covers_every_allowed_type() -> None:
    assert set(GOOD_STARTS) == ALLOWED_EXTENSIONS


@pytest.mark.parametrize("extension", sorted(GOOD_STARTS))
def test_check_attachment_start_accepts_real_content(extension: str) -> None:
    assert check_attachment_start(f"scan.{extension}", GOOD_STARTS[extension]) is None


@pytest.mark.parametrize("extension", sorted(GOOD_STARTS))
def test_check_attachment_start_accepts_upper_case_extension(extension: str) -> None:
    assert check_attachment_start(f"SCAN.{extension.upper()}", GOOD_STARTS[extension]) is None


@pytest.mark.parametrize(
    "head",
    [
        b"\xef\xbb\xbf" + SVG,
        b"\n\n  " + SVG,
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n' + SVG,
        b'<?xml version="1.0"?>\n<!DOCTYPE svg [\n<!ENTITY ns "http://x">\n]>\n' + SVG,
        b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>',
        b"<svg>" + b"<g/>" * (SNIFF_BYTES // 4),
    ],
    ids=["bom", "whitespace", "doctype", "doctype-subset", "prefixed", "truncated-head"],
)
def test_check_attachment_start_accepts_svg_variants(head: bytes) -> None:
    assert check_attachment_start("chart.svg", head[:SNIFF_BYTES]) is None


@pytest.mark.parametrize(
    "head",
    [
        b"\xef\xbb\xbfhello\r\n",
        "ok caf\u00e9 \u2014".encode()[:-1],  # a head cut inside a multi-byte character
        "Patient: Jos\u00e9 Mu\u00f1oz\r\n".encode("cp1252"),
        b"\x1b[32mOK\x1b[0m started\n",
    ],
    ids=["bom", "cut-character", "windows-1252", "ansi-colours"],
)
def test_check_attachment_start_accepts_text_variants(head: bytes) -> None:
    assert check_attachment_start("notes.txt", head) is None


def test_check_attachment_start_refuses_disallowed_extension() -> None:
    reason = check_attachment_start("setup.exe", EXE)
    assert reason is not None
    assert reason.startswith("files of type .exe are not accepted; allowed: bmp, cur, docx")
    assert "txt" in reason


def test_check_attachment_start_refuses_missing_extension() -> None:
    reason = check_attachment_start("README", b"hello")
    assert reason is not None
    assert "no extension" in reason


@pytest.mark.parametrize(
    ("filename", "head", "reason"),
    [
        ("xray.png", PDF, "the content is not a PNG image (it looks like a PDF document)"),
        ("invoice.pdf", EXE, "the content is not a PDF document (it looks like a Windows program)"),
        ("photo.jpg", PNG, "the content is not a JPEG image (it looks like a PNG image)"),
        ("letter.docx", PDF, "the content is not a Word document (it looks like a PDF document)"),
        ("icon.ico", CUR, "the content is not an icon file (it looks like a cursor file)"),
        ("scan.tif", b"IM*\x00\x08\x00", "the content is not a TIFF image"),
        ("anim.gif", b"GIF90a\x01\x00", "the content is not a GIF image"),
        ("pic.bmp", b"PM6\x00", "the content is not a BMP image"),
        ("logo.svg", PNG, "the content is not an SVG image (it looks like a PNG image)"),
    ],
)  # fmt: skip
def test_check_attachment_start_refuses_content_that_lies_about_type(
    filename: str, head: bytes, reason: str
) -> None:
    assert check_attachment_start(filename, head) == reason


@pytest.mark.parametrize("extension", ["txt", "log"])
def test_check_attachment_start_refuses_nul_bytes_in_text(extension: str) -> None:
    reason = check_attachment_start(f"notes.{extension}", b"hello\x00world")
    assert reason == "the content is not plain text (it contains binary data)"


def test_check_attachment_start_refuses_binary_text_without_nul() -> None:
    binary = bytes(range(1, 32)) * 10 + b"\xff\xfe"
    assert check_attachment_start("notes.txt", binary) is not None


def test_check_attachment_start_refuses_utf16_text() -> None:
    # UTF-16 is full of NUL bytes; the rule is UTF-8 or a legacy single-byte code page.
    assert check_attachment_start("notes.txt", "hello".encode("utf-16")) is not None


@pytest.mark.parametrize(
    "head",
    [
        b'<?xml version="1.0"?>\n<html><body>not a drawing</body></html>',
        b"<!-- <svg> only in a comment -->\n<div/>",
        b"hello <svg> in the middle",
        b"<svgfoo/>",
        b'<?xml version="1.0"?>' + b" " * 10,
        b"<!-- a comment that never ends",
        b"\xff\xfe<\x00s\x00v\x00g\x00",
    ],
    ids=["html", "svg-in-comment", "svg-after-text", "other-element", "prolog-only",
         "open-comment", "utf16"],
)  # fmt: skip
def test_check_attachment_start_refuses_svg_without_svg_root(head: bytes) -> None:
    assert check_attachment_start("logo.svg", head) == "the content is not an SVG image"


@pytest.mark.parametrize("extension", sorted(ALLOWED_EXTENSIONS))
def test_check_attachment_start_refuses_empty_file(extension: str) -> None:
    assert check_attachment_start(f"scan.{extension}", b"") == "the file is empty"


def test_check_attachment_start_names_extension_before_emptiness() -> None:
    reason = check_attachment_start("virus.exe", b"")
    assert reason is not None
    assert ".exe" in reason


def test_size_error_accepts_limit() -> None:
    assert MAX_ATTACHMENT_BYTES == 20 * 1024 * 1024
    assert size_error(0) is None
    assert size_error(MAX_ATTACHMENT_BYTES) is None


def test_size_error_refuses_over_limit() -> None:
    assert size_error(MAX_ATTACHMENT_BYTES + 1) == (
        "the file is 20.1 MB, larger than the 20 MB limit for each file"
    )
    assert size_error(35 * 1024 * 1024) == (
        "the file is 35.0 MB, larger than the 20 MB limit for each file"
    )


def test_size_error_rejects_negative_size() -> None:
    with pytest.raises(ValueError):
        size_error(-1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("/abs/x.pdf", "x.pdf"),
        ("C:\\Users\\pat\\Desktop\\x-ray.png", "x-ray.png"),
        ("uploads/../../../secret.txt", "secret.txt"),
        ("..", "attachment"),
        ("../", "attachment"),
        ("..\\..\\", "attachment"),
        ("....//....//x.pdf", "x.pdf"),
    ],
)
def test_safe_filename_strips_path_traversal(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..\\..\\win.ini", "/abs/x.pdf", "..", ".", "a/../../b", "\\\\srv\\share"],
)
def test_safe_filename_never_yields_a_path(name: str) -> None:
    result = safe_filename(name)
    assert "/" not in result
    assert "\\" not in result
    assert not result.startswith(".")
    assert result not in {"", ".", ".."}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (".bashrc", "attachment.bashrc"),
        ("...hidden.pdf", "hidden.pdf"),
        (".pdf", "attachment.pdf"),
        ("report.pdf. . ", "report.pdf"),
        ("", "attachment"),
        ("   ", "attachment"),
        ("\x00\x01\x1f", "attachment"),
    ],
)
def test_safe_filename_strips_dots_and_blanks(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_strips_control_characters() -> None:
    assert safe_filename("x-ray\x00\r\n\x1b[31m.png") == "x-ray[31m.png"


def test_safe_filename_strips_bidi_override() -> None:
    # "invoice<RLO>fdp.exe" displays as "invoiceexe.pdf" but is an .exe.
    name = safe_filename("invoice\u202efdp.exe")
    assert name == "invoicefdp.exe"
    assert extension_of(name) == "exe"


def test_safe_filename_replaces_characters_windows_refuses() -> None:
    assert safe_filename('what?"why"<x>|y*:z.pdf') == "what__why__x__y__z.pdf"


def test_safe_filename_renames_windows_device_names() -> None:
    assert safe_filename("CON.txt") == "_CON.txt"
    assert safe_filename("lpt1.tar.log") == "_lpt1.tar.log"


def test_safe_filename_normalises_unicode_to_nfc() -> None:
    decomposed = "Zoe\u0308 re\u0301sume\u0301.pdf"
    assert safe_filename(decomposed) == "Zo\u00eb r\u00e9sum\u00e9.pdf"


def test_safe_filename_keeps_non_latin_names() -> None:
    assert safe_filename("рентген 歯科.jpg") == "рентген 歯科.jpg"


def test_safe_filename_caps_length_keeping_extension() -> None:
    name = safe_filename("a" * 1000 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) == MAX_FILENAME_BYTES


def test_safe_filename_caps_multibyte_length_on_character_boundary() -> None:
    name = safe_filename("歯" * 500 + ".jpeg")
    assert name.endswith(".jpeg")
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    assert set(name.removesuffix(".jpeg")) == {"歯"}


def test_safe_filename_caps_length_without_dangling_combining_mark() -> None:
    # Characters with no precomposed form stay decomposed after NFC.
    name = safe_filename("q\u0307" * 200 + ".txt")
    stem = name.removesuffix(".txt")
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    assert stem.endswith("\u0307")
    assert stem.count("q") == stem.count("\u0307")


def test_safe_filename_caps_overlong_extension_as_part_of_name() -> None:
    name = safe_filename("x." + "p" * 500)
    assert len(name.encode()) == MAX_FILENAME_BYTES


def test_safe_filename_is_idempotent() -> None:
    for name in ["../../etc/passwd", "Zoe\u0308.pdf", "a" * 999 + ".pdf", ".pdf", "CON.txt"]:
        once = safe_filename(name)
        assert safe_filename(once) == once


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("scan.PDF", "pdf"),
        ("archive.tar.gz", "gz"),
        ("noext", ""),
        ("trailing.", ""),
        (".pdf", "pdf"),
        ("dir.d/noext", ""),
        ("dir.d\\x.Png", "png"),
        ("x.pdf. ", "pdf"),
    ],
)
def test_extension_of_returns_lowercase_without_dot(filename: str, expected: str) -> None:
    assert extension_of(filename) == expected


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [
        ("pdf", "application/pdf"),
        ("PNG", "image/png"),
        (".jpg", "image/jpeg"),
        ("pjp", "image/jpeg"),
        ("svg", "image/svg+xml"),
        ("txt", "text/plain"),
        ("tif", "image/tiff"),
        ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("exe", "application/octet-stream"),
    ],
)
def test_content_type_for_maps_extension(extension: str, content_type: str) -> None:
    assert content_type_for(extension) == content_type


def test_content_type_for_covers_every_allowed_type() -> None:
    for extension in ALLOWED_EXTENSIONS:
        assert content_type_for(extension) != "application/octet-stream"


def test_attachment_ref_round_trips_json() -> None:
    ref = AttachmentRef(
        object_key="replies/r-1/a-1",
        filename="x-ray.png",
        size=1234,
        content_type="image/png",
        sha256="a" * 64,
    )
    assert AttachmentRef.model_validate_json(ref.model_dump_json()) == ref


@pytest.mark.parametrize(
    "changes",
    [
        {"filename": "../x.png"},
        {"size": -1},
        {"sha256": "xyz"},
        {"object_key": ""},
    ],
)
def test_attachment_ref_rejects_invalid_fields(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "object_key": "replies/r-1/a-1",
        "filename": "x-ray.png",
        "size": 1,
        "content_type": "image/png",
        "sha256": "0" * 64,
    }
    with pytest.raises(ValidationError):
        AttachmentRef.model_validate({**fields, **changes})

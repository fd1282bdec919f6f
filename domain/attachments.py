"""Attachment rules (R9): which files a patient may send, how they are named and checked.

Pure functions only, so the web layer, activities and workflows can share them. The web
layer reads the first ``SNIFF_BYTES`` of an upload, asks ``check_attachment_start`` and
``size_error`` for a reason to refuse, and names each refused file with that reason.
"""

from __future__ import annotations

import math
import unicodedata
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from domain.phrases import N_, Phrase

ALLOWED_EXTENSIONS: frozenset[str] = frozenset(
    {
        "bmp",
        "cur",
        "docx",
        "gif",
        "ico",
        "jfif",
        "jpeg",
        "jpg",
        "log",
        "pdf",
        "pjp",
        "pjpeg",
        "png",
        "svg",
        "tif",
        "tiff",
        "txt",
    }
)

MB = 1024 * 1024
MAX_ATTACHMENT_BYTES = 20 * MB

# Enough for an SVG's XML prolog, DOCTYPE and a licence comment before its root element.
SNIFF_BYTES = 8192

# Bytes, not characters: file systems and Content-Disposition headers limit encoded length.
MAX_FILENAME_BYTES = 200
# Longer "extensions" are really part of the name and may be cut like it.
_MAX_EXTENSION_CHARS = 10

FALLBACK_FILENAME = "attachment"

_ALLOWED_LIST = ", ".join(sorted(ALLOWED_EXTENSIONS))

# Reserved on Windows, where office staff open downloaded chart documents.
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
# Characters Windows refuses in file names; quotes would also break Content-Disposition.
_UNSAFE_CHARS = frozenset('<>:"|?*')

_CONTENT_TYPES: dict[str, str] = {
    "bmp": "image/bmp",
    "cur": "image/x-icon",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "gif": "image/gif",
    "ico": "image/vnd.microsoft.icon",
    "jfif": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "log": "text/plain",
    "pdf": "application/pdf",
    "pjp": "image/jpeg",
    "pjpeg": "image/jpeg",
    "png": "image/png",
    "svg": "image/svg+xml",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "txt": "text/plain",
}

# What a patient reads when the content does not match the name ("is not <this>").
_KIND_NAMES: dict[str, Phrase] = {
    "bmp": Phrase(N_("a BMP image")),
    "cur": Phrase(N_("a cursor file")),
    "docx": Phrase(N_("a Word document")),
    "gif": Phrase(N_("a GIF image")),
    "ico": Phrase(N_("an icon file")),
    "jpeg": Phrase(N_("a JPEG image")),
    "pdf": Phrase(N_("a PDF document")),
    "png": Phrase(N_("a PNG image")),
    "svg": Phrase(N_("an SVG image")),
    "tiff": Phrase(N_("a TIFF image")),
    "text": Phrase(N_("plain text")),
}

_JPEG_FAMILY = frozenset({"jfif", "jpeg", "jpg", "pjp", "pjpeg"})
_TEXT_TYPES = frozenset({"txt", "log"})

_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "bmp": (b"BM",),
    "cur": (b"\x00\x00\x02\x00",),
    # Only the ZIP container can be seen in the first bytes; that it holds a Word document
    # is not checked (the parts a .docx needs may lie anywhere in the archive).
    "docx": (b"PK\x03\x04",),
    "gif": (b"GIF87a", b"GIF89a"),
    "ico": (b"\x00\x00\x01\x00",),
    "jpeg": (b"\xff\xd8\xff",),
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "tiff": (b"II*\x00", b"MM\x00*"),
}

# Formats recognised only to tell the patient what a mislabelled file seems to be.
_OTHER_SIGNATURES: tuple[tuple[bytes, Phrase], ...] = (
    (b"MZ", Phrase(N_("a Windows program"))),
    (b"\x7fELF", Phrase(N_("a program"))),
    (b"Rar!", Phrase(N_("a RAR archive"))),
    (b"7z\xbc\xaf\x27\x1c", Phrase(N_("a 7-Zip archive"))),
    (b"\x1f\x8b", Phrase(N_("a compressed (gzip) file"))),
)

_UTF8_BOM = b"\xef\xbb\xbf"
# Share of control bytes above which a file that is not UTF-8 is taken for binary.
_MAX_CONTROL_SHARE = 0.05
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v")


def safe_filename(name: str) -> str:
    """A file name safe to store, show and offer for download, keeping its extension.

    Only the last path component survives (``/`` and ``\\`` both count as separators), so
    ``../../etc/passwd`` becomes ``passwd``. Control and format characters go (a
    right-to-left override could disguise ``exe`` as ``pdf``), as do characters Windows
    refuses, leading dots (hidden files, ``..``) and trailing dots and spaces (which Windows
    drops, changing the extension). The result is never empty.
    """
    text = unicodedata.normalize("NFC", name)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(
        "_" if ch in _UNSAFE_CHARS else ch for ch in text if not _is_invisible_or_control(ch)
    )
    text = " ".join(text.split())
    text = text.rstrip(". ")

    stem, dot, extension = text.rpartition(".")
    if not dot or len(extension) > _MAX_EXTENSION_CHARS or " " in extension:
        stem, extension = text, ""
    stem = stem.lstrip(". ").rstrip(" ")
    if not stem:
        stem = FALLBACK_FILENAME
    if stem.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"

    suffix = f".{extension}" if extension else ""
    budget = MAX_FILENAME_BYTES - len(suffix.encode())
    stem = _truncate_utf8(stem, budget).rstrip(". ") or FALLBACK_FILENAME
    return f"{stem}{suffix}"


def extension_of(filename: str) -> str:
    """The extension in lower case without the dot, or ``""`` when there is none.

    ``.pdf`` counts as a PDF named only by its extension, matching ``safe_filename``,
    which turns it into ``attachment.pdf``.
    """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ")
    _, dot, extension = base.rpartition(".")
    return extension.lower() if dot else ""


def check_attachment_start(filename: str, head: bytes) -> str | None:
    """Why this file is refused, or ``None`` if it may be sent.

    ``head`` is the start of the file (at least ``SNIFF_BYTES`` of it when the file is that
    long), so an empty ``head`` means an empty file. The reason names the problem in words
    a patient can act on; the caller adds the file name.
    """
    extension = extension_of(filename)
    if not extension:
        return Phrase(
            N_("the file name has no extension, so its type is unknown; allowed: %(allowed)s"),
            allowed=_ALLOWED_LIST,
        )
    if extension not in ALLOWED_EXTENSIONS:
        return Phrase(
            N_("files of type .%(extension)s are not accepted; allowed: %(allowed)s"),
            extension=extension,
            allowed=_ALLOWED_LIST,
        )
    if not head:
        return Phrase(N_("the file is empty"))

    kind = _kind_of(extension)
    if kind == "text":
        if b"\x00" in head or not _looks_like_text(head):
            return Phrase(N_("the content is not plain text (it contains binary data)"))
        return None
    if kind == "svg":
        return None if _looks_like_svg(head) else _mismatch(kind, head)
    if head.startswith(_SIGNATURES[kind]):
        return None
    return _mismatch(kind, head)


def size_error(size: int) -> str | None:
    """Why a file of ``size`` bytes is refused, or ``None`` if it is within the limit."""
    if size < 0:
        raise ValueError("size must not be negative")
    if size <= MAX_ATTACHMENT_BYTES:
        return None
    # Round up so a file just over the limit never reads as "20.0 MB".
    shown = math.ceil(size * 10 / MB) / 10
    return Phrase(
        N_("the file is %(size)s MB, larger than the %(limit)d MB limit for each file"),
        size=f"{shown:.1f}",
        limit=MAX_ATTACHMENT_BYTES // MB,
    )


def content_type_for(extension: str) -> str:
    """The media type a stored file is served with (always as a download, never inline)."""
    return _CONTENT_TYPES.get(extension.lower().lstrip("."), "application/octet-stream")


Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class StoredAttachment(BaseModel):
    """A file in the object store, of a secure email or a reply: the one attachment model
    the web app, workflows, activities and the database's pending replies pass around
    (the database's ``attachments`` table is its row).

    ``object_key`` is built from ids only (see ``infra.objects.keys``); the patient's file name
    lives here, never in the key. ``content_type`` is kept here too because not every
    object store keeps an object's metadata (rclone's S3 server forgets it on restart).
    The field names are those of the histories and rows written before this model
    (``attachment_id``), so both still read.
    """

    model_config = ConfigDict(frozen=True)

    attachment_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    object_key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    filename: str
    size: int = Field(ge=0)
    content_type: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    sha256: Sha256Hex

    @field_validator("filename")
    @classmethod
    def _filename_is_safe(cls, value: str) -> str:
        if safe_filename(value) != value:
            raise ValueError("filename must be passed through safe_filename first")
        return value


def _is_invisible_or_control(ch: str) -> bool:
    # Cc: control, Cf: format (bidi overrides, zero-width), Zl/Zp: line/paragraph separators.
    return unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    cut = encoded[:max_bytes].decode(errors="ignore")
    # Cutting between a letter and its combining marks would change the letter: drop it.
    while cut and unicodedata.category(text[len(cut)]).startswith("M"):
        cut = cut[:-1]
    return cut


def _kind_of(extension: str) -> str:
    if extension in _JPEG_FAMILY:
        return "jpeg"
    if extension in _TEXT_TYPES:
        return "text"
    if extension == "tif":
        return "tiff"
    return extension


def _mismatch(kind: str, head: bytes) -> Phrase:
    seems = _what_it_seems(head)
    if seems:
        return Phrase(
            N_("the content is not %(kind)s (it looks like %(seems)s)"),
            kind=_KIND_NAMES[kind],
            seems=seems,
        )
    return Phrase(N_("the content is not %(kind)s"), kind=_KIND_NAMES[kind])


def _what_it_seems(head: bytes) -> Phrase | None:
    for kind, signatures in _SIGNATURES.items():
        if head.startswith(signatures):
            return _KIND_NAMES[kind]
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return name
    if _looks_like_svg(head):
        return _KIND_NAMES["svg"]
    return None


def _decode_utf8_start(head: bytes) -> str | None:
    """``head`` as text if it is UTF-8, allowing a BOM and a character cut off at the end."""
    data = head.removeprefix(_UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        # The head ends wherever the read stopped, possibly inside a multi-byte character.
        if error.reason == "unexpected end of data" and error.start >= len(data) - 3:
            return data[: error.start].decode("utf-8")
        return None


def _looks_like_text(head: bytes) -> bool:
    if _decode_utf8_start(head) is not None:
        return True
    # Older Windows programs write text in a legacy code page: accept it when it is mostly
    # printable, counting bytes >= 0x80 as letters of that code page.
    controls = sum(
        1 for byte in head if (byte < 0x20 or byte == 0x7F) and byte not in _TEXT_CONTROLS
    )
    return controls <= len(head) * _MAX_CONTROL_SHARE


def _looks_like_svg(head: bytes) -> bool:
    text = _decode_utf8_start(head)
    if text is None:
        return False
    rest = text.lstrip()
    while rest:
        if rest.startswith("<?"):
            end = rest.find("?>")
            if end < 0:
                return False
            rest = rest[end + 2 :].lstrip()
        elif rest.startswith("<!--"):
            end = rest.find("-->", 4)
            if end < 0:
                return False
            rest = rest[end + 3 :].lstrip()
        elif rest[:9].upper() == "<!DOCTYPE":
            end = _doctype_end(rest)
            if end < 0:
                return False
            rest = rest[end:].lstrip()
        else:
            break
    if not rest.startswith("<svg"):
        return False
    after = rest[4:5]
    return after == "" or after.isspace() or after in ">/:"


def _doctype_end(text: str) -> int:
    """Index just past a DOCTYPE declaration, or -1 if it does not end within ``text``."""
    bracket = text.find("[")
    close = text.find(">")
    if 0 <= bracket < close or (bracket >= 0 and close < 0):
        # An internal subset holds its own '>' characters; the declaration ends after ']'.
        subset_end = text.find("]", bracket)
        if subset_end < 0:
            return -1
        close = text.find(">", subset_end)
    return close + 1 if close >= 0 else -1

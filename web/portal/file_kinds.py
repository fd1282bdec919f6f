"""The files a patient may attach, in the words a patient knows ("Photos, PDF, Word or
text files"), derived from ``domain.attachments.ALLOWED_EXTENSIONS`` so that the words
stay true when the allowed types change. The words themselves live in the reply page's
template, where they can be translated; this module only says which kinds to name."""

from __future__ import annotations

from collections.abc import Iterable

from domain.attachments import ALLOWED_EXTENSIONS

# The kind a patient would call each allowed file; pictures of every format are "Photos".
KIND_OF_EXTENSION: dict[str, str] = {
    "bmp": "photo",
    "cur": "photo",
    "gif": "photo",
    "ico": "photo",
    "jfif": "photo",
    "jpeg": "photo",
    "jpg": "photo",
    "pjp": "photo",
    "pjpeg": "photo",
    "png": "photo",
    "svg": "photo",
    "tif": "photo",
    "tiff": "photo",
    "pdf": "pdf",
    "docx": "word",
    "log": "text",
    "txt": "text",
}

# The order they are named in: what patients send most first.
KIND_ORDER = ("photo", "pdf", "word", "text")


def allowed_kinds(extensions: Iterable[str] = ALLOWED_EXTENSIONS) -> list[str]:
    """The kinds to name, in ``KIND_ORDER``. An extension without a kind is named by
    itself (the template shows it as ``.heic``), so the list never leaves a type out."""
    named = {KIND_OF_EXTENSION.get(extension, extension) for extension in extensions}
    known = [kind for kind in KIND_ORDER if kind in named]
    return known + sorted(named - set(KIND_ORDER))

"""Object keys, built by callers from ids only: ``object_key("replies", reply_id,
attachment_id)``.

Never from file names or subjects: keys show up in server logs, listings and the
bucket's directory tree, and a patient's file name may be PHI. The file name and the
content type travel beside the key in ``domain.attachments.AttachmentRef``.
"""

from __future__ import annotations

import re

# Segments are ids: letters, digits, '-', '_' and inner dots. No leading dot, which also
# keeps clear of rclone's reserved ".rclone_temp_" names and hidden files on disk.
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_MAX_KEY_BYTES = 1024


def object_key(*parts: str) -> str:
    """Join id segments into an object key, refusing anything that is not an id."""
    if any("/" in part for part in parts):
        raise ValueError("object key parts are ids and must not contain '/'")
    key = "/".join(parts)
    validate_key(key)
    return key


def validate_key(key: str) -> None:
    """Refuse keys that are not made of ids.

    S3 servers that map keys to files (rclone, MinIO) refuse ``.``/``..`` segments, ``//``
    and leading or trailing slashes; refusing them here gives one clear error everywhere.
    """
    if not key or len(key.encode()) > _MAX_KEY_BYTES:
        raise ValueError("an object key must be 1 to 1024 bytes long")
    for segment in key.split("/"):
        if not _KEY_SEGMENT.fullmatch(segment):
            raise ValueError(
                f"invalid object key {key!r}: build keys from ids "
                "(letters, digits, '-', '_', '.') joined by '/'"
            )

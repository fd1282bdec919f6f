"""Checking and storing attachments (R9), shared by Send Secure and Reply All; no HTTP.

Every file is checked before any is stored, so a refusal stores nothing and names each
refused file with its reason. Storing streams each file in parts, never holding a whole
file in memory.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from domain.attachments import (
    MAX_ATTACHMENT_BYTES,
    SNIFF_BYTES,
    StoredAttachment,
    check_attachment_start,
    content_type_for,
    extension_of,
    safe_filename,
    size_error,
)
from domain.phrases import Phrase
from infra.objects.interface import ObjectStore
from infra.objects.keys import object_key


class Upload(Protocol):
    """A file to attach as it was handed in: its name as sent, its size if known, and its
    content, seekable. Starlette's ``UploadFile`` (spooled to a temporary file) is one."""

    @property
    def filename(self) -> str | None: ...

    @property
    def size(self) -> int | None: ...

    @property
    def file(self) -> BinaryIO: ...

    async def read(self, size: int = -1) -> bytes: ...

    async def seek(self, offset: int) -> None: ...


@dataclass(frozen=True)
class RefusedFile:
    filename: str
    reason: str

    def __str__(self) -> str:
        return f"{self.filename}: {self.reason}"

    def in_language(self, gettext: Callable[[str], str]) -> str:
        """As a patient's page names it: the reason in their language."""
        reason = self.reason
        shown = reason.in_language(gettext) if isinstance(reason, Phrase) else reason
        return f"{self.filename}: {shown}"


class AttachmentsRefused(Exception):
    def __init__(self, refused: list[RefusedFile]) -> None:
        super().__init__("; ".join(str(item) for item in refused))
        self.refused = refused


async def check_uploads(uploads: Sequence[Upload]) -> None:
    refused: list[RefusedFile] = []
    for upload in uploads:
        filename = safe_filename(upload.filename or "")
        size = upload.size if upload.size is not None else await _measure(upload)
        reason = size_error(size)
        if reason is None:
            await upload.seek(0)
            head = await upload.read(SNIFF_BYTES)
            await upload.seek(0)
            reason = check_attachment_start(filename, head)
        if reason is not None:
            refused.append(RefusedFile(filename, reason))
    if refused:
        raise AttachmentsRefused(refused)


async def store_uploads(
    store: ObjectStore, prefix: tuple[str, ...], uploads: Sequence[Upload]
) -> list[StoredAttachment]:
    """Stores checked uploads under ``prefix`` (ids only). All or nothing; raises
    ``StoreUnavailable`` when the store is down, so callers answer in words, not a 500."""
    stored: list[StoredAttachment] = []
    try:
        for upload in uploads:
            attachment_id = str(uuid.uuid4())
            key = object_key(*prefix, attachment_id)
            filename = safe_filename(upload.filename or "")
            content_type = content_type_for(extension_of(filename))
            await upload.seek(0)
            result = await store.put_file(
                key, upload.file, content_type, max_bytes=MAX_ATTACHMENT_BYTES
            )
            stored.append(result.as_attachment(attachment_id, filename, content_type))
    except BaseException:
        await discard(store, stored)
        raise
    return stored


@asynccontextmanager
async def stored_uploads(
    store: ObjectStore, prefix: tuple[str, ...], uploads: Sequence[Upload]
) -> AsyncIterator[list[StoredAttachment]]:
    """Stores checked uploads (``store_uploads``) for what the block does with them: if
    the block raises, what was stored is discarded, so a failure leaves no file behind."""
    stored = await store_uploads(store, prefix, uploads)
    try:
        yield stored
    except BaseException:
        await discard(store, stored)
        raise


async def discard(store: ObjectStore, stored: list[StoredAttachment]) -> None:
    await asyncio.gather(
        *(store.delete(item.object_key) for item in stored), return_exceptions=True
    )


async def _measure(upload: Upload) -> int:
    def size_of(file: BinaryIO) -> int:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(0)
        return size

    return await asyncio.to_thread(size_of, upload.file)

"""Checking and storing uploaded attachments (R9), shared by Send Secure and Reply All.

Every file is checked before any is stored, so a refusal stores nothing and names each
refused file with its reason. Starlette has already spooled each upload to a temporary
file; storing streams it from there in parts, never holding a whole file in memory.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import BinaryIO, cast

import urllib3
from fastapi import UploadFile
from minio.error import MinioException

from domain.attachments import (
    MAX_ATTACHMENT_BYTES,
    SNIFF_BYTES,
    check_attachment_start,
    content_type_for,
    extension_of,
    safe_filename,
    size_error,
)
from infra.db.models import Attachment
from infra.objects import ObjectStore, object_key


@dataclass(frozen=True)
class RefusedFile:
    filename: str
    reason: str

    def __str__(self) -> str:
        return f"{self.filename}: {self.reason}"


@dataclass(frozen=True)
class StoredAttachment:
    id: str
    object_key: str
    filename: str
    size: int
    content_type: str
    sha256: str


# What the object store's client raises when the store is down or failing: minio's own
# errors, and urllib3's once its retries are spent (connection refused, timeouts).
STORE_ERRORS = (MinioException, urllib3.exceptions.HTTPError)


class StoreUnavailable(Exception):
    """The object store could not take the files; nothing of them was kept."""


class AttachmentsRefused(Exception):
    def __init__(self, refused: list[RefusedFile]) -> None:
        super().__init__("; ".join(str(item) for item in refused))
        self.refused = refused


def chosen(uploads: list[UploadFile] | None) -> list[UploadFile]:
    """Browsers send an empty, nameless part when no file was chosen."""
    return [upload for upload in uploads or [] if upload.filename or (upload.size or 0) > 0]


async def check_uploads(uploads: list[UploadFile]) -> None:
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
    store: ObjectStore, prefix: tuple[str, ...], uploads: list[UploadFile]
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
            stored.append(
                StoredAttachment(
                    attachment_id, key, filename, result.size, content_type, result.sha256
                )
            )
    except STORE_ERRORS as error:
        await discard(store, stored)
        raise StoreUnavailable(str(error)) from error
    except BaseException:
        await discard(store, stored)
        raise
    return stored


async def discard(store: ObjectStore, stored: list[StoredAttachment]) -> None:
    await asyncio.gather(
        *(store.delete(item.object_key) for item in stored), return_exceptions=True
    )


async def _measure(upload: UploadFile) -> int:
    def size_of(file: BinaryIO) -> int:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(0)
        return size

    return await asyncio.to_thread(size_of, upload.file)


async def reopen_attachments(store: ObjectStore, attachments: list[Attachment]) -> list[UploadFile]:
    """Stored attachments as uploads again (Send again), spooled to disk past 1 MB."""
    reopened: list[UploadFile] = []
    for attachment in attachments:
        spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
        async with await store.get_stream(attachment.object_key) as chunks:
            async for chunk in chunks:
                await asyncio.to_thread(spool.write, chunk)
        spool.seek(0)
        reopened.append(
            UploadFile(cast(BinaryIO, spool), size=attachment.size, filename=attachment.filename)
        )
    return reopened

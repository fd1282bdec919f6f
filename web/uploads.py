"""Checking and storing uploaded attachments (R9), shared by Send Secure and Reply All.

Every file is checked before any is stored, so a refusal stores nothing and names each
refused file with its reason. Starlette spools each upload to a temporary file; storing
streams it from there in parts, never holding a whole file in memory.

The form itself is read by ``read_upload_form``, called by the routes once they know who
is sending: a route with ``Form``/``File`` parameters would have FastAPI read the whole
body before any dependency (CSRF, sign-in) ran.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from typing import BinaryIO, cast

from fastapi import Request, UploadFile
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as ParsedFile
from starlette.formparsers import MultiPartException, MultiPartParser

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
from infra.db.models import Attachment
from infra.objects import ObjectStore, object_key

# An uploaded file as the routes hand it on (Starlette spools it to a temporary file).
Upload = UploadFile

# At most this many files in one secure email or reply; with 20 MB each, the body limits
# of web.body_limits follow from it.
MAX_FILES = 10
# Send Secure's and Reply All's fields: the form token, patient, subject, body, files and
# CC/BCC (only to be refused by name), with room to spare.
MAX_FIELDS = 20
TOO_MANY_FILES = (
    f"At most {MAX_FILES} files can be sent in one message. Choose {MAX_FILES} or fewer "
    "and send again."
)
TOO_MANY_FIELDS = f"This form has more than {MAX_FIELDS} fields and was not read."
UNREADABLE_FORM = "This form could not be read. Reload the page and try again."


@dataclass(frozen=True)
class RefusedFile:
    filename: str
    reason: str

    def __str__(self) -> str:
        return f"{self.filename}: {self.reason}"


class AttachmentsRefused(Exception):
    def __init__(self, refused: list[RefusedFile]) -> None:
        super().__init__("; ".join(str(item) for item in refused))
        self.refused = refused


class UploadFormRefused(Exception):
    """The form was refused before it was whole (too many files); ``typed`` holds the
    text fields read until then (the browser sends them before the files), so the page
    can show them again."""

    def __init__(self, reason: str, typed: dict[str, str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.typed = typed


async def read_upload_form(request: Request) -> FormData:
    """Send Secure's or Reply All's form, at most ``MAX_FILES`` files and ``MAX_FIELDS``
    fields; the caller closes it. Raises ``UploadFormRefused`` in words."""
    content_type, _ = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        # No files possible; web.body_limits keeps such a body to 1 MB.
        return await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    # Starlette's parser, as ``request.form(max_files=…, max_fields=…)`` runs it, but kept
    # in hand: when it stops at the 11th file, what was typed before it is in its items.
    async with aclosing(request.stream()) as stream:
        parser = MultiPartParser(
            request.headers, stream, max_files=MAX_FILES, max_fields=MAX_FIELDS
        )
        try:
            return await parser.parse()
        except MultiPartException as error:
            typed = {name: value for name, value in parser.items if isinstance(value, str)}
            if error.message.startswith("Too many files"):
                reason = TOO_MANY_FILES
            elif error.message.startswith("Too many fields"):
                reason = TOO_MANY_FIELDS
            else:
                reason = UNREADABLE_FORM
            # The sender is signed in (the routes check first) and web.body_limits bounds
            # the rest: it is taken and dropped unparsed, so the browser, still sending,
            # gets the refusal; a server that closes on unread bytes makes it show a
            # connection reset instead, and what was typed would be lost.
            async for _ in stream:
                pass
            raise UploadFormRefused(reason, typed) from None


def form_text(form: FormData | dict[str, str], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_files(form: FormData, name: str) -> list[UploadFile]:
    # Starlette's parser makes Starlette's UploadFile; FastAPI's adds only schema helpers.
    files = [value for value in form.getlist(name) if isinstance(value, ParsedFile)]
    return cast(list[UploadFile], files)


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
                    attachment_id=attachment_id,
                    object_key=key,
                    filename=filename,
                    size=result.size,
                    content_type=content_type,
                    sha256=result.sha256,
                )
            )
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

"""Send Secure's and Reply All's forms with their files (R9); checking and storing the
files is ``web.services.files``. Starlette spools each upload to a temporary file.

The form is read by ``read_upload_form``, called by the routes once they know who
is sending: a route with ``Form``/``File`` parameters would have FastAPI read the whole
body before any dependency (CSRF, sign-in) ran.
"""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import aclosing
from typing import BinaryIO, cast

from fastapi import Request, UploadFile
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as ParsedFile
from starlette.formparsers import MultiPartException, MultiPartParser

from infra.db.models import Attachment
from infra.objects.interface import ObjectStore

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

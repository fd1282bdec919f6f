"""What a secure email puts into the patient's Open Dental (R21): a commlog when it is
sent and when the patient replies ("Secure email sent, readable until ...", "Secure
email reply received, 2 files": never a subject, a body or a file's name), and each file
the patient sends, into their Imaging module (``POST /documents/Upload``).

Each thing goes once: its DocNum or CommlogNum is recorded as soon as Open Dental
answers, and an attempt finds what earlier attempts recorded and skips it. Open Dental
busy or failing (429, 5xx, no answer) raises a retryable error, so the workflow's retry
policy backs off; at the last attempt, or when Open Dental refuses for good (400/404,
the keys 401/403), the refusal is recorded and, for a file, the office alerted once,
naming the patient and the file. The file stays in this product's chart either way.
Keys refused are also the connector's (as for a sync): the office is told once and the
sync schedule paused until an admin saves them again.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.open_dental import ClientFor, keys_refused
from domain.open_dental import (
    OPEN_DENTAL_ATTEMPTS,
    OPEN_DENTAL_BUSY_ERROR,
    CommlogToAdd,
    ReplyFilesToUpload,
    reply_description,
    reply_note,
    sent_note,
)
from infra import alerts, open_dental, replies
from infra.i18n import moment_text
from infra.objects.interface import ObjectStore
from infra.open_dental_client import KeysRefused, OpenDentalError, TryLater
from infra.open_dental_records import (
    OpenDentalLink,
    commlog_key,
    document_key,
    is_recorded,
    link_of,
    office_time,
    record,
    reply_files,
)

log = logging.getLogger(__name__)

FILE = "a file of a reply"


def _busy(error: TryLater) -> ApplicationError:
    return ApplicationError(str(error), type=OPEN_DENTAL_BUSY_ERROR)


def _last_attempt() -> bool:
    return activity.info().attempt >= OPEN_DENTAL_ATTEMPTS


def _gave_up(error: TryLater) -> str:
    return f"no answer after {OPEN_DENTAL_ATTEMPTS} tries ({error})"


def _number(answer: Any, field: str) -> int | None:
    value = answer.get(field) if isinstance(answer, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class File:
    """A file of the reply, as read before anything is recorded."""

    id: str
    name: str
    object_key: str

    @property
    def extension(self) -> str:
        """With its dot, as Open Dental wants it: ".png"."""
        _, dot, suffix = self.name.rpartition(".")
        return f".{suffix.lower()}" if dot and suffix else ""

    @property
    def key(self) -> str:
        return document_key(self.id)


class ToOpenDentalActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: ObjectStore,
        client_for: ClientFor | None = None,
    ) -> None:
        self._sessions = sessions
        self._store = store
        # Tests may hand in a client of their own; the integration's own otherwise.
        self._client_for: ClientFor = client_for or open_dental.client_of

    @activity.defn(name="upload_reply_files_to_open_dental")
    async def upload_reply_files(self, files: ReplyFilesToUpload) -> int:
        """Each of the reply's files not yet in Open Dental, one at a time; returns how
        many went with this attempt."""
        async with self._sessions() as db:
            link = await link_of(db, files.secure_email_id)
            reply = await replies.reply(db, files.reply_id)
            if link is None or reply is None:
                return 0
            # Read before anything is recorded: a record refused (a concurrent attempt's)
            # rolls the session back and expires what it loaded.
            pending = [
                File(attachment.id, attachment.filename, attachment.object_key)
                for attachment in await reply_files(db, reply)
                if not await is_recorded(db, document_key(attachment.id))
            ]
            client = self._client_for(link.integration)
            category = link.integration.document_category
            uploaded = 0
            for file in pending:
                document: dict[str, Any] = {
                    "PatNum": link.pat_num,
                    "rawBase64": base64.b64encode(await self._read(file.object_key)).decode(),
                    "extension": file.extension,
                    "Description": reply_description(file.name),
                }
                if category is not None:
                    document["DocCategory"] = category
                try:
                    answer = await client.upload_document(document)
                except TryLater as error:
                    if not _last_attempt():
                        raise _busy(error) from None
                    await self._refused(db, link, file, _gave_up(error))
                    continue
                except OpenDentalError as error:
                    await self._refused(db, link, file, error.explanation)
                    if isinstance(error, KeysRefused):
                        await keys_refused(self._sessions, link.practice_id)
                    continue
                number = _number(answer, "DocNum")
                await record(db, link, file.key, FILE, number=number)
                uploaded += 1
            return uploaded

    async def _read(self, object_key: str) -> bytes:
        # At most 20 MB (R9): read whole, as Open Dental takes it in one JSON body.
        parts: list[bytes] = []
        async with await self._store.get_stream(object_key) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
        return b"".join(parts)

    async def _refused(self, db: AsyncSession, link: OpenDentalLink, file: File, why: str) -> None:
        """Open Dental will not take this file: recorded (never tried again) and the
        office told once, in the same transaction."""
        log.warning("Open Dental refused attachment %s of practice %s", file.id, link.practice_id)
        alerts.raise_open_dental_refused(
            db, link.practice_id, link.patient_id, link.secure_email_id, file.id
        )
        await record(db, link, file.key, FILE, refused=why or "refused")

    @activity.defn(name="add_open_dental_commlog")
    async def add_commlog(self, commlog: CommlogToAdd) -> None:
        """The commlog of the sending, or of one reply, once."""
        key = commlog_key(commlog.secure_email_id, commlog.reply_id)
        async with self._sessions() as db:
            link = await link_of(db, commlog.secure_email_id)
            if link is None or await is_recorded(db, key):
                return
            if commlog.reply_id is None:
                at = link.sent_at
                direction, what = "Sent", "the commlog of the sending"
                note = sent_note(moment_text(link.expires_at, "en", link.time_zone))
            else:
                reply = await replies.reply(db, commlog.reply_id)
                if reply is None:
                    return
                at = reply.sent_at
                direction, what = "Received", "the commlog of a reply"
                note = reply_note(len(await reply_files(db, reply)))
            body = {
                "PatNum": link.pat_num,
                "CommDateTime": office_time(at, link.time_zone),
                "Mode_": "Email",
                "SentOrReceived": direction,
                "Note": note,
            }
            try:
                answer = await self._client_for(link.integration).add_commlog(body)
            except TryLater as error:
                if not _last_attempt():
                    raise _busy(error) from None
                await record(db, link, key, what, refused=_gave_up(error))
                return
            except OpenDentalError as error:
                log.warning(
                    "Open Dental refused a commlog of secure email %s: %s",
                    link.secure_email_id,
                    error,
                )
                await record(db, link, key, what, refused=error.explanation)
                if isinstance(error, KeysRefused):
                    await keys_refused(self._sessions, link.practice_id)
                return
            await record(db, link, key, what, number=_number(answer, "CommlogNum"))

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [self.upload_reply_files, self.add_commlog]

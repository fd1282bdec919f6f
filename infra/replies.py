"""Patients' replies: kept pending until the workflow accepts them, recorded into the
thread, and read by the office in the Email Client.

Every office read takes the staff member's reach (``domain.reach``), so another
practice's ids, and those of patients out of reach, find nothing (the routes answer 404,
never 403, and confirm nothing exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import TypeAdapter
from sqlalchemy import case, delete, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.attachments import StoredAttachment
from domain.reach import Reach
from infra.db.engine import commit_or_refusal
from infra.db.models import Alert, Attachment, Patient, PendingReply, Reply, SecureEmail
from infra.reach import within
from infra.secure_emails import BadCursor, Cursor, attachment_row, attachments_of

THREADS_PAGE_SIZE = 50
_FILES = TypeAdapter(list[StoredAttachment])


@dataclass(frozen=True)
class ReplyLine:
    """A reply as a thread's list shows it: when it came, whether it was read, and its
    first line (``preview``), decrypted here for the office's eyes only."""

    id: str
    sent_at: datetime
    read: bool
    preview: str = ""


PREVIEW_CHARACTERS = 80


def preview_of(body: str, limit: int = PREVIEW_CHARACTERS) -> str:
    """The first line with words in it, cut to ``limit`` characters with an ellipsis."""
    line = next((text.strip() for text in body.splitlines() if text.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Thread:
    """A secure email with the patient's replies to it."""

    secure_email_id: str
    subject: str
    patient_id: str
    patient_name: str
    reply_count: int
    unread_count: int
    has_unread: bool
    latest_at: datetime
    replies: list[ReplyLine]


@dataclass(frozen=True)
class ThreadCursor:
    """Where a page of the Email Client ends: the last thread's place in its order
    (unread or not, then its latest reply's time and its id)."""

    unread: bool
    latest: Cursor

    def encode(self) -> str:
        return ("u" if self.unread else "r") + self.latest.encode()

    @classmethod
    def decode(cls, text: str) -> ThreadCursor:
        if text[:1] not in ("u", "r"):
            raise BadCursor(text)
        return cls(text[0] == "u", Cursor.decode(text[1:]))


@dataclass(frozen=True)
class ThreadPage:
    threads: list[Thread]
    next_cursor: ThreadCursor | None


async def threads(
    db: AsyncSession,
    reach: Reach,
    *,
    limit: int = THREADS_PAGE_SIZE,
    after: ThreadCursor | None = None,
) -> ThreadPage:
    """Threads with replies, those with unread replies first, then by the latest reply,
    the page after ``after``: read from the thread's counters by keyset on the index
    ``ix_secure_emails_practice_threads``, whatever the number of messages or replies."""
    place = (SecureEmail.has_unread, SecureEmail.latest_reply_at, SecureEmail.id)
    statement = (
        # Labelled as the fields of ``Thread``; only answered messages have a latest reply.
        select(
            SecureEmail.id.label("secure_email_id"),
            SecureEmail.subject,
            Patient.id.label("patient_id"),
            Patient.name.label("patient_name"),
            SecureEmail.reply_count,
            SecureEmail.unread_count,
            SecureEmail.has_unread,
            SecureEmail.latest_reply_at.label("latest_at"),
        )
        .join(Patient, Patient.id == SecureEmail.patient_id)
        .where(
            SecureEmail.practice_id == reach.practice_id,
            SecureEmail.latest_reply_at.is_not(None),
            *within(reach),
        )
    )
    if after is not None:
        statement = statement.where(
            tuple_(*place) < (after.unread, after.latest.sent_at, after.latest.id)
        )
    statement = statement.order_by(*(column.desc() for column in place)).limit(limit + 1)
    rows = (await db.execute(statement)).all()
    more, rows = len(rows) > limit, rows[:limit]
    lines: dict[str, list[ReplyLine]] = {row[0]: [] for row in rows}
    if lines:
        # By thread id only (these threads are the practice's) and sorted here: with an
        # ORDER BY or the practice's id PostgreSQL walked an index through every reply of
        # the practice (80 ms at 20,000) instead of looking up these fifty threads.
        replies = await db.execute(
            select(Reply.id, Reply.secure_email_id, Reply.sent_at, Reply.read_at, Reply.body).where(
                Reply.secure_email_id.in_(list(lines))
            )
        )
        for reply_id, secure_email_id, sent_at, read_at, body in replies:
            lines[secure_email_id].append(
                ReplyLine(reply_id, sent_at, read_at is not None, preview_of(body))
            )
        for thread_lines in lines.values():
            thread_lines.sort(key=lambda line: line.id)
            thread_lines.sort(key=lambda line: line.sent_at, reverse=True)
    found = [Thread(**row._mapping, replies=lines[row.secure_email_id]) for row in rows]
    last = found[-1] if more else None
    return ThreadPage(
        found,
        ThreadCursor(last.has_unread, Cursor(last.latest_at, last.secure_email_id))
        if last
        else None,
    )


async def reply_of_practice(db: AsyncSession, reach: Reach, reply_id: str) -> Reply | None:
    """The reply of that id if its patient is within reach; None for any other."""
    statement = (
        select(Reply)
        .join(Patient, Patient.id == Reply.patient_id)
        .where(Reply.id == reply_id, Reply.practice_id == reach.practice_id, *within(reach))
    )
    return await db.scalar(statement)


async def mark_read(db: AsyncSession, reply: Reply) -> None:
    """Opening a reply reads it and settles its alert; the first reader's time stays."""
    now = datetime.now(UTC)
    first_read = await db.execute(
        update(Reply).where(Reply.id == reply.id, Reply.read_at.is_(None)).values(read_at=now)
    )
    if first_read.rowcount == 1:  # type: ignore[attr-defined]
        # Both sides of SET read the row as it was: one fewer unread.
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == reply.secure_email_id)
            .values(
                unread_count=SecureEmail.unread_count - 1,
                has_unread=SecureEmail.unread_count > 1,
            )
            .execution_options(synchronize_session=False)
        )
    await db.execute(
        update(Alert)
        .where(Alert.reply_id == reply.id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now)
    )
    await db.commit()
    await db.refresh(reply)


def _by_reply(
    attachments: Sequence[Attachment], reply_ids: Sequence[str]
) -> dict[str, list[Attachment]]:
    """Each reply's files, given in (created_at, id) order, sorted by time then name."""
    found: dict[str, list[Attachment]] = {reply_id: [] for reply_id in reply_ids}
    for attachment in attachments:
        if attachment.reply_id in found:
            found[attachment.reply_id].append(attachment)
    # File names are encrypted (SQL cannot sort them): sorted here, stable on the id order.
    for files in found.values():
        files.sort(key=lambda attachment: (attachment.created_at, attachment.filename))
    return found


async def files_of_replies(db: AsyncSession, reply_ids: list[str]) -> dict[str, list[Attachment]]:
    if not reply_ids:
        return {}
    statement = (
        select(Attachment)
        .where(Attachment.reply_id.in_(reply_ids))
        .order_by(Attachment.created_at, Attachment.id)
    )
    return _by_reply(list(await db.scalars(statement)), reply_ids)


@dataclass(frozen=True)
class Conversation:
    """A secure email as its page and the API show it: the office's files, and the
    patient's replies (oldest first) with the files of each, by reply id."""

    office_files: list[Attachment]
    replies: list[Reply]
    reply_files: dict[str, list[Attachment]]


async def conversation(db: AsyncSession, secure_email_id: str) -> Conversation:
    # The office's files and the replies' share the table: one query for both.
    attachments = await attachments_of(db, secure_email_id)
    statement = (
        select(Reply)
        .where(Reply.secure_email_id == secure_email_id)
        .order_by(Reply.sent_at, Reply.id)
    )
    replies = list((await db.scalars(statement)).all())
    office_files = [a for a in attachments if a.reply_id is None]
    return Conversation(office_files, replies, _by_reply(attachments, [r.id for r in replies]))


async def replies_of_patient(
    db: AsyncSession, patient_id: str, secure_email_ids: Sequence[str]
) -> list[Reply]:
    """The patient's replies in these threads, newest first (the portal's Sent tab)."""
    statement = (
        select(Reply)
        .where(Reply.patient_id == patient_id, Reply.secure_email_id.in_(list(secure_email_ids)))
        .order_by(Reply.sent_at.desc())
    )
    return list((await db.scalars(statement)).all())


async def reply(db: AsyncSession, reply_id: str, *, fresh: bool = False) -> Reply | None:
    return await db.get(Reply, reply_id, populate_existing=fresh)


# Pending replies and recording them (the workflow's ``record_reply``) --------------------


@dataclass(frozen=True)
class Written:
    """What a patient wrote: the subject, the body and the files already stored."""

    subject: str
    body: str
    files: list[StoredAttachment]


async def keep_pending(
    db: AsyncSession,
    secure_email_id: str,
    reply_id: str,
    written: Written,
    client_address: str | None,
) -> None:
    """Kept (encrypted) until the workflow accepts the reply by its id (R12), with the
    patient's client address its audit event names."""
    db.add(
        PendingReply(
            id=reply_id,
            secure_email_id=secure_email_id,
            subject=written.subject,
            body=written.body,
            attachments=_FILES.dump_json(written.files).decode(),
            client_address=client_address,
        )
    )
    await db.commit()


async def drop_pending(db: AsyncSession, reply_id: str) -> None:
    await db.execute(delete(PendingReply).where(PendingReply.id == reply_id))
    await db.commit()


@dataclass(frozen=True)
class Pending:
    """A pending reply as the worker takes it: what was written, and where from."""

    written: Written
    client_address: str | None


async def take_pending(db: AsyncSession, secure_email_id: str, reply_id: str) -> Pending | None:
    """The pending reply of this thread, removed as it is taken (in the caller's commit);
    a reply id of another thread is never moved across."""
    pending = await db.get(PendingReply, reply_id)
    if pending is None or pending.secure_email_id != secure_email_id:
        return None
    written = Written(pending.subject, pending.body, _FILES.validate_json(pending.attachments))
    await db.delete(pending)
    return Pending(written, pending.client_address)


async def add_to_thread(
    db: AsyncSession, secure_email: SecureEmail, reply_id: str, written: Written, sent_at: datetime
) -> None:
    """The reply and its files as part of the thread; not committed (the caller audits)."""
    db.add(
        Reply(
            id=reply_id,
            secure_email_id=secure_email.id,
            practice_id=secure_email.practice_id,
            patient_id=secure_email.patient_id,
            subject=written.subject,
            body=written.body,
            sent_at=sent_at,
        )
    )
    await db.flush()
    for item in written.files:
        db.add(attachment_row(item, secure_email.id, reply_id))
    # The thread's counters, in the same commit as the reply: a concurrent attempt that
    # loses on the reply's id rolls them back with it (``commit_recorded``).
    latest = SecureEmail.latest_reply_at
    await db.execute(
        update(SecureEmail)
        .where(SecureEmail.id == secure_email.id)
        .values(
            reply_count=SecureEmail.reply_count + 1,
            unread_count=SecureEmail.unread_count + 1,
            has_unread=True,
            latest_reply_at=case((or_(latest.is_(None), latest < sent_at), sent_at), else_=latest),
        )
        .execution_options(synchronize_session=False)
    )


async def commit_recorded(db: AsyncSession, reply_id: str) -> None:
    """Commits a recorded reply; a concurrent attempt that got there first is no error."""
    refused = await commit_or_refusal(db)
    if refused is not None and await db.get(Reply, reply_id) is None:
        raise refused

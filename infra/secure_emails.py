"""Secure emails in the database: the read model of each workflow, and its files.

The workflow owns a secure email's lifecycle; this module writes only what the web app
records before the workflow starts (and takes back when it cannot start) and the status
changes the workflow projects. Lookups by practice or patient find nothing of another
practice's or patient's messages, so routes answer 404 and confirm nothing exists.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Row, and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.attachments import StoredAttachment
from domain.reach import Reach
from domain.secure_email import OPEN_STATUSES, SecureEmailStatus, StatusChange, is_expired
from domain.secure_email_views import SentLine
from infra.db.engine import hold
from infra.db.models import Attachment, Patient, Practice, SecureEmail
from infra.reach import within


def expired(secure_email: SecureEmail, now: datetime | None = None) -> bool:
    return is_expired(secure_email.status, secure_email.expires_at, now or datetime.now(UTC))


# Reading ----------------------------------------------------------------------------


async def find(db: AsyncSession, secure_email_id: str) -> SecureEmail | None:
    return await db.get(SecureEmail, secure_email_id)


# Built once, its token a bound parameter: every portal page reached by a link runs it,
# and a statement built per call costs SQLAlchemy its construction and cache key each
# time (about 0.18 ms a lookup, ``python -m bench.hot_reads``).
_BY_LINK = (
    select(SecureEmail, Patient, Practice)
    .outerjoin(Patient, Patient.id == SecureEmail.patient_id)
    .outerjoin(Practice, Practice.id == SecureEmail.practice_id)
    .where(SecureEmail.link_token_hash == bindparam("link_token_hash"))
)


async def by_link(db: AsyncSession, link_token_hash: str) -> SecureEmail | None:
    """The secure email a notice's link opens, whatever its status (the portal says when
    it is closed: a failed one may have had its notice delivered before its workflow
    stopped).

    Its patient and practice come in the same statement: every portal page reached by
    the link names them (the page's language, the practice's name and phone), and the
    rows are held in ``db``'s identity map (``hold``), so ``patient_of`` and the
    practice's ``db.get`` find them without another statement."""
    found = await db.execute(_BY_LINK, {"link_token_hash": link_token_hash})
    row = found.first()
    if row is None:
        return None
    hold(db, *row)
    return row[0]


async def of_practice(db: AsyncSession, reach: Reach, secure_email_id: str) -> SecureEmail | None:
    """The secure email of that id if its patient is within reach; None for any other."""
    statement = (
        select(SecureEmail)
        .join(Patient, Patient.id == SecureEmail.patient_id)
        .where(SecureEmail.id == secure_email_id, *within(reach))
    )
    return await db.scalar(statement)


async def of_patient(db: AsyncSession, patient_id: str, secure_email_id: str) -> SecureEmail | None:
    secure_email = await db.get(SecureEmail, secure_email_id)
    if secure_email is None or secure_email.patient_id != patient_id:
        return None
    return secure_email


@dataclass(frozen=True)
class InboxLine:
    """A secure email as the portal's Inbox lists it: never its body, and once it has
    expired not its subject either (R8: nothing of it can be viewed), only that it was."""

    id: str
    patient_id: str
    recipient_address: str | None
    subject: str
    status: str
    sent_at: datetime
    expires_at: datetime
    opened_at: datetime | None
    expired: bool


async def inbox_page_of_patients(
    db: AsyncSession,
    patient_ids: Sequence[str],
    *,
    limit: int,
    after: Cursor | None = None,
    now: datetime | None = None,
) -> tuple[list[InboxLine], Cursor | None]:
    """The patients' secure emails newest first (one patient's, or a family's), expired
    ones included (listed as
    expired, so a message does not silently vanish), ``limit`` of them after ``after``,
    and where the next page starts: a keyset on the index ``ix_secure_emails_patient_sent``,
    whatever the number of messages. ``now``: the moment the expiry rule is applied at
    (the present unless a test names one)."""
    at = now or datetime.now(UTC)
    statement = select(
        SecureEmail.id,
        SecureEmail.patient_id,
        SecureEmail.recipient_address,
        SecureEmail.subject,
        SecureEmail.status,
        SecureEmail.sent_at,
        SecureEmail.expires_at,
        SecureEmail.opened_at,
    ).where(SecureEmail.patient_id.in_(list(patient_ids)))
    if after is not None:
        statement = statement.where(
            tuple_(SecureEmail.sent_at, SecureEmail.id) < (after.sent_at, after.id)
        )
    statement = statement.order_by(SecureEmail.sent_at.desc(), SecureEmail.id.desc())
    rows = (await db.execute(statement.limit(limit + 1))).all()
    lines = [_inbox_line(row, at) for row in rows[:limit]]
    more = len(rows) > limit
    return lines, Cursor(lines[-1].sent_at, lines[-1].id) if more else None


def _inbox_line(
    row: Row[str, str, str | None, str, str, datetime, datetime, datetime | None],
    now: datetime,
) -> InboxLine:
    message_id, patient_id, recipient, subject, status, sent_at, expires_at, opened_at = row
    closed = is_expired(status, expires_at, now)
    return InboxLine(
        id=message_id,
        patient_id=patient_id,
        recipient_address=recipient,
        subject="" if closed else subject,
        status=status,
        sent_at=sent_at,
        expires_at=expires_at,
        opened_at=opened_at,
        expired=closed,
    )


async def unexpired_of_patient(db: AsyncSession, patient_id: str) -> list[SecureEmail]:
    """The secure emails to this patient that can still be read, newest first."""
    messages = await db.scalars(
        select(SecureEmail)
        .where(SecureEmail.patient_id == patient_id)
        .order_by(SecureEmail.sent_at.desc())
    )
    now = datetime.now(UTC)
    return [message for message in messages if not expired(message, now)]


async def practice_of(db: AsyncSession, secure_email: SecureEmail) -> Practice | None:
    return await db.get(Practice, secure_email.practice_id)


async def patient_of(db: AsyncSession, secure_email: SecureEmail) -> Patient | None:
    return await db.get(Patient, secure_email.patient_id)


@dataclass(frozen=True)
class Parties:
    """Who a secure email is from and to, as the mail activities need them."""

    secure_email: SecureEmail
    practice: Practice | None
    patient: Patient | None


async def parties(db: AsyncSession, secure_email_id: str) -> Parties | None:
    secure_email = await db.get(SecureEmail, secure_email_id)
    if secure_email is None:
        return None
    return Parties(
        secure_email, await practice_of(db, secure_email), await patient_of(db, secure_email)
    )


@dataclass(frozen=True)
class Owner:
    id: str
    practice_id: str
    patient_id: str


async def owners(db: AsyncSession, secure_email_ids: Sequence[str]) -> list[Owner]:
    """Whose each of these secure emails is (unknown ids are left out)."""
    rows = await db.execute(
        select(SecureEmail.id, SecureEmail.practice_id, SecureEmail.patient_id).where(
            SecureEmail.id.in_(list(secure_email_ids))
        )
    )
    return [Owner(row.id, row.practice_id, row.patient_id) for row in rows]


# The Sent box ---------------------------------------------------------------------------

SENT_PAGE_SIZE = 50
SENT_PAGE_MAX = 200


class BadCursor(ValueError):
    """A cursor this module did not make (or one mangled on the way)."""


@dataclass(frozen=True)
class Cursor:
    """Where a page of the Sent box ends: the last line's send time and id."""

    sent_at: datetime
    id: str

    def encode(self) -> str:
        raw = f"{self.sent_at.astimezone(UTC).isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at, _, secure_email_id = raw.partition("|")
            sent_at = datetime.fromisoformat(at)
            if sent_at.tzinfo is None or not secure_email_id or len(secure_email_id) > 36:
                raise BadCursor(text)
            return cls(sent_at.astimezone(UTC), secure_email_id)
        except (ValueError, OverflowError) as wrong:  # binascii.Error is a ValueError
            raise BadCursor(text) from wrong


@dataclass(frozen=True)
class SentPage:
    lines: list[SentLine]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class SentQuery:
    """Which of a practice's secure emails the Sent box lists (``since <= sent_at <
    until``), and how many a page."""

    status: SecureEmailStatus | None = None
    patient_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = SENT_PAGE_SIZE


async def sent_by_practice(
    db: AsyncSession,
    reach: Reach,
    query: SentQuery,
    *,
    after: Cursor | None = None,
) -> SentPage:
    """A practice's secure emails newest first (``since <= sent_at < until``), the page
    after ``after``: a keyset on (sent_at, id), which the index
    ``ix_secure_emails_practice_sent`` serves; no OFFSET."""
    limit = max(1, min(query.limit, SENT_PAGE_MAX))
    statement = (
        select(
            SecureEmail.id,
            SecureEmail.patient_id,
            Patient.name.label("patient_name"),
            SecureEmail.subject,
            SecureEmail.status,
            SecureEmail.sent_at,
            SecureEmail.expires_at,
            SecureEmail.opened_at,
            SecureEmail.reply_count,
        )
        .join(Patient, Patient.id == SecureEmail.patient_id)
        .where(SecureEmail.practice_id == reach.practice_id, *within(reach))
    )
    if query.status is not None:
        statement = statement.where(SecureEmail.status == query.status.value)
    if query.patient_id is not None:
        statement = statement.where(SecureEmail.patient_id == query.patient_id)
    if query.since is not None:
        statement = statement.where(SecureEmail.sent_at >= query.since)
    if query.until is not None:
        statement = statement.where(SecureEmail.sent_at < query.until)
    if after is not None:
        statement = statement.where(
            or_(
                SecureEmail.sent_at < after.sent_at,
                and_(SecureEmail.sent_at == after.sent_at, SecureEmail.id < after.id),
            )
        )
    statement = statement.order_by(SecureEmail.sent_at.desc(), SecureEmail.id.desc()).limit(
        limit + 1
    )
    rows = (await db.execute(statement)).all()
    lines = [SentLine.model_validate(dict(row._mapping)) for row in rows[:limit]]
    more = len(rows) > limit
    return SentPage(lines, Cursor(lines[-1].sent_at, lines[-1].id) if more else None)


# Files --------------------------------------------------------------------------------


async def attachments_of(db: AsyncSession, secure_email_id: str) -> list[Attachment]:
    """The office's files and the patient's reply files: they share the table."""
    statement = (
        select(Attachment)
        .where(Attachment.secure_email_id == secure_email_id)
        .order_by(Attachment.created_at, Attachment.id)
    )
    return list((await db.scalars(statement)).all())


async def office_files_of(db: AsyncSession, secure_email_id: str) -> list[Attachment]:
    """The files the office sent."""
    return [a for a in await attachments_of(db, secure_email_id) if a.reply_id is None]


async def files_of_threads(db: AsyncSession, secure_email_ids: Sequence[str]) -> list[Attachment]:
    """Every file of these secure emails and their replies, newest first."""
    statement = (
        select(Attachment)
        .where(Attachment.secure_email_id.in_(list(secure_email_ids)))
        .order_by(Attachment.created_at.desc())
    )
    return list((await db.scalars(statement)).all())


async def attachment_of(
    db: AsyncSession,
    attachment_id: str,
    *,
    secure_email_id: str | None = None,
    reply_id: str | None = None,
) -> Attachment | None:
    """A file, if it belongs to the given secure email (or reply)."""
    attachment = await db.get(Attachment, attachment_id)
    if attachment is None:
        return None
    if secure_email_id is not None and attachment.secure_email_id != secure_email_id:
        return None
    if reply_id is not None and attachment.reply_id != reply_id:
        return None
    return attachment


def attachment_row(
    item: StoredAttachment, secure_email_id: str, reply_id: str | None = None
) -> Attachment:
    # The row holds the stored file as it is (its key, name, size, type and hash).
    fields = item.model_dump(exclude={"attachment_id"})
    return Attachment(
        id=item.attachment_id, secure_email_id=secure_email_id, reply_id=reply_id, **fields
    )


# Writing ------------------------------------------------------------------------------


async def record_new(
    db: AsyncSession, secure_email: SecureEmail, files: Sequence[StoredAttachment]
) -> None:
    """Written before the workflow starts, so its first status change finds the row."""
    db.add(secure_email)
    await db.flush()  # the attachments' foreign key needs the row first
    for item in files:
        db.add(attachment_row(item, secure_email.id))
    await db.commit()


async def forget_unstarted(
    db: AsyncSession, secure_email: SecureEmail, files: Sequence[StoredAttachment]
) -> None:
    """Takes back a secure email whose workflow could not be started."""
    for item in files:
        attachment = await db.get(Attachment, item.attachment_id)
        if attachment is not None:
            await db.delete(attachment)
    await db.delete(secure_email)
    await db.commit()


async def project_status(db: AsyncSession, change: StatusChange) -> Owner | None:
    """Applies a workflow's status change if it is newer than the row's; whose secure
    email it changed, or None when a newer change was already there (a retried or late
    activity cannot move a secure email back). Not committed: the caller audits first."""
    changed = (
        await db.execute(
            update(SecureEmail)
            .where(
                SecureEmail.id == change.secure_email_id,
                SecureEmail.status_sequence < change.sequence,
            )
            .values(
                status=change.status.value,
                status_sequence=change.sequence,
                opened_at=change.opened_at,
            )
            .returning(SecureEmail.practice_id, SecureEmail.patient_id)
        )
    ).one_or_none()
    if changed is None:
        return None
    return Owner(change.secure_email_id, changed.practice_id, changed.patient_id)


async def fail_if_open(db: AsyncSession, secure_email_id: str) -> Owner | None:
    """Marks an open secure email failed, after its workflow ended without closing it
    (``infra.stopped_workflows``); whose it was, or None if it was not open (closed
    meanwhile, or marked by an earlier run). Numbered after the row's latest change.
    Not committed."""
    changed = (
        await db.execute(
            update(SecureEmail)
            .where(
                SecureEmail.id == secure_email_id,
                SecureEmail.status.in_([status.value for status in OPEN_STATUSES]),
            )
            .values(
                status=SecureEmailStatus.FAILED.value,
                status_sequence=SecureEmail.status_sequence + 1,
            )
            .returning(SecureEmail.practice_id, SecureEmail.patient_id)
        )
    ).one_or_none()
    if changed is None:
        return None
    return Owner(secure_email_id, changed.practice_id, changed.patient_id)


async def move_expiry(db: AsyncSession, secure_email_id: str, expires_at: datetime) -> None:
    """The expiry the workflow now keeps (the office moved it). Not committed."""
    await db.execute(
        update(SecureEmail).where(SecureEmail.id == secure_email_id).values(expires_at=expires_at)
    )


async def open_on_workflow(db: AsyncSession, workflow_version: int, now: datetime) -> int:
    """How many secure emails whose lifecycle runs on ``workflow_version`` are still open:
    not expired, withdrawn or failed, and their expiry still to come."""
    count = await db.scalar(
        select(func.count())
        .select_from(SecureEmail)
        .where(
            SecureEmail.workflow_version == workflow_version,
            SecureEmail.expires_at > now,
            SecureEmail.status.not_in(
                [SecureEmailStatus.EXPIRED, SecureEmailStatus.WITHDRAWN, SecureEmailStatus.FAILED]
            ),
        )
    )
    return count or 0

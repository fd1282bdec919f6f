"""Tables of what is not a workflow's: practices, staff, the patient directory, sessions.

Lifecycle state of a secure email belongs to its workflow; these tables hold only the
directory, accounts and (later) the read model the workflow projects into.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from domain.reach import Reach
from domain.staff import StaffRole
from infra.crypto.fields import EncryptedText

# Stable constraint names so Alembic migrations can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    secure_email_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    expiry_days: Mapped[int] = mapped_column(Integer, default=7)
    # Times on pages and in emails are shown in this IANA zone (R16); stored times are UTC.
    time_zone: Mapped[str] = mapped_column(
        String(64), default="America/New_York", server_default="America/New_York"
    )
    # One reminder notice to a patient who has not opened a message by then; 0 is off.
    reminder_after_hours: Mapped[int] = mapped_column(Integer, default=48, server_default="48")
    # Shown to patients in mails and portal pages when set (R20): "Call … at …".
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The header image of the patient mails, sent inside each (a ``cid:`` part). Not PHI,
    # so stored plain; deferred so that the many reads of a practice do not carry it
    # (``infra.practices.logo_of`` loads it).
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Clinic(Base):
    """A location of a practice with its own sender, phone, address, time zone and Secure
    Email switch (R19). A practice without clinics sends as itself."""

    __tablename__ = "clinics"
    __table_args__ = (UniqueConstraint("practice_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secure_email_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffUser(Base):
    """An account that signs in: practice staff (admin, clerk) or a platform operator.

    Operators have no practice (``practice_id`` is None); see ``domain.staff``.
    """

    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # NULL for operators only. Typed ``str`` on purpose: every office and API dependency
    # refuses operators (web.deps), so code that reaches a practice holds practice staff.
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True, nullable=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default=StaffRole.CLERK.value)
    # A deactivated account's sessions and tokens stop working at once.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    # Set for a temporary password an admin gave out; changed at the next log-in.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false()
    )
    # The clinics whose patients this member of staff works with, besides the patients
    # of no clinic; empty for every clinic (``reach``). Ids of the practice's clinics,
    # checked when set (``infra.accounts``); clinics are never deleted.
    clinic_ids: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN

    @property
    def reach(self) -> Reach:
        """The patients of the practice this member of staff may see and write to."""
        return Reach(self.practice_id, frozenset(self.clinic_ids) or None)

    @property
    def is_operator(self) -> bool:
        return self.role == StaffRole.OPERATOR


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # For the idle log-off: the session ends after a setting's minutes without a request.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token for practice software; acts as the staff user who created it."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Patient(Base):
    __tablename__ = "patients"
    # Families share one address, so an address is not unique in a practice; the index
    # serves finding who holds one (``infra.directory``, ``infra.families``).
    __table_args__ = (
        Index("ix_patients_practice_address", "practice_id", "email_normalised"),
        # One patient per record of the system they came from (``external_source``).
        UniqueConstraint(
            "practice_id", "external_source", "external_id", name="uq_patients_external"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    email_normalised: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20))
    # What the patient's mails and portal pages are written in (``domain.languages``).
    language: Mapped[str] = mapped_column(String(5), default="en", server_default="en")
    # The clinic whose sender, phone and zone the patient's messages use; None: the
    # practice's own (R19).
    clinic_id: Mapped[str | None] = mapped_column(
        ForeignKey("clinics.id"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The head of the patient's family (who answers for it), another patient of the same
    # practice; None for a head or a patient on their own. Chains end: never a cycle.
    guarantor_id: Mapped[str | None] = mapped_column(
        ForeignKey("patients.id"), nullable=True, index=True
    )
    # Where the patient came from when not added by hand (``domain.patient_sources``:
    # "csv" for a CSV import, "open_dental" for the connector), and their id there (a CSV
    # file's external_id, Open Dental's PatNum); both None for a patient added by hand.
    external_source: Mapped[str | None] = mapped_column(String(20), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SecureEmail(Base):
    """The read model of one secure email; its workflow owns the lifecycle.

    ``status``, ``opened_at`` and ``status_sequence`` are written only by the workflow's
    ``record_status`` activity. Subject and body are the office's words (PHI).
    """

    __tablename__ = "secure_emails"
    __table_args__ = (
        # The Sent box: a practice's secure emails newest first, a page at a time.
        Index("ix_secure_emails_practice_sent", "practice_id", "sent_at", "id"),
        # The portal's Inbox: a patient's, newest first, a page at a time.
        Index("ix_secure_emails_patient_sent", "patient_id", "sent_at", "id"),
        # The Email Client: a practice's threads with replies, unread first, then the
        # latest reply's; only answered messages are in it (a fifth of them, say).
        Index(
            "ix_secure_emails_practice_threads",
            "practice_id",
            "has_unread",
            "latest_reply_at",
            "id",
            sqlite_where=text("latest_reply_at IS NOT NULL"),
            postgresql_where=text("latest_reply_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"))
    subject: Mapped[str] = mapped_column(EncryptedText("secure_emails.subject"))
    body: Mapped[str] = mapped_column(EncryptedText("secure_emails.body"))
    link_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    status_sequence: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resent_from_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # The address the notice went to: passcodes follow it even if the patient's address
    # changes later. None for messages sent before it was kept (the patient's address).
    recipient_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # The clinic it was sent for (the patient's at the moment of sending): its mails come
    # from the clinic's sender with its phone and zone. None: the practice's own.
    clinic_id: Mapped[str | None] = mapped_column(ForeignKey("clinics.id"), nullable=True)
    # Which workflow runs its lifecycle: 1 for ``workflows.legacy`` (messages
    # sent before histories held ids only; the column's default for those rows), 2 for
    # ``workflows.secure_email``. The portal speaks to each in its own terms.
    workflow_version: Mapped[int] = mapped_column(Integer, default=2, server_default="1")
    # The thread's counters, kept where replies are recorded and read
    # (``infra.replies``), so the Email Client and the Sent box never count replies.
    reply_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unread_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    has_unread: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    latest_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SecureEmailEvent(Base):
    """One line of a secure email's timeline (read receipts): what happened, and when.

    Written by the activities that do it (and the portal for "viewed"); ``key`` makes a
    retried activity or a repeated webhook add the line once."""

    __tablename__ = "secure_email_events"
    __table_args__ = (UniqueConstraint("secure_email_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secure_email_id: Mapped[str] = mapped_column(ForeignKey("secure_emails.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    key: Mapped[str] = mapped_column(String(100))


class NoticeClaim(Base):
    """One notice mail a secure email may get: its first notice, its one reminder, or a
    resend the office asked for (written by the web app before it asks the workflow).

    The notice activity claims its row in one statement before it mails, naming its run
    and activity (``infra.notice_claims``): a retry of that activity may mail again, any
    other run or activity (a start copied from a history, an update sent by hand) finds
    it claimed, or not recorded, and mails nothing."""

    __tablename__ = "notice_claims"
    __table_args__ = (UniqueConstraint("secure_email_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secure_email_id: Mapped[str] = mapped_column(ForeignKey("secure_emails.id"), index=True)
    # "first", "reminder", or "resend:<request id>".
    key: Mapped[str] = mapped_column(String(100))
    # The staff user who asked for a resend; None for the first notice and the reminder.
    requested_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "<run id>/<activity id>" of the activity that mails it; None until then.
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OfficeRequest(Base):
    """A change the office asked for on a sent secure email (withdraw it, move its
    expiry), written by the web app before it asks the workflow.

    The workflow claims the request in one statement before it changes anything
    (``infra.office_requests``): the one update that carries it may act, once; an update
    sent by hand or copied from a history finds no request, or one that is claimed or
    for another change, and changes nothing."""

    __tablename__ = "office_requests"

    # The request id the update carries.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    secure_email_id: Mapped[str] = mapped_column(ForeignKey("secure_emails.id"), index=True)
    # "withdraw" or "change_expiry" (``domain.secure_email.OfficeChange``).
    kind: Mapped[str] = mapped_column(String(20))
    staff_id: Mapped[str] = mapped_column(String(36))
    # The expiry the office asked for; None for a withdrawal.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "<run id>/<activity id>" of the workflow's confirmation; None until then.
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Attachment(Base):
    """A file in a secure email thread; the bytes live in the object store."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    secure_email_id: Mapped[str] = mapped_column(ForeignKey("secure_emails.id"), index=True)
    # Set for a file the patient sent with a reply; None for the office's files.
    reply_id: Mapped[str | None] = mapped_column(
        ForeignKey("replies.id"), nullable=True, index=True
    )
    object_key: Mapped[str] = mapped_column(String(200), unique=True)
    # May be PHI ("biopsy-jane.pdf"): encrypted like subjects, so sorted in Python.
    filename: Mapped[str] = mapped_column(EncryptedText("attachments.filename"))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortalSession(Base):
    """A patient's portal session after Verify, bound to the patient's address (R7)."""

    __tablename__ = "portal_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    address_normalised: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Append-only (triggers refuse UPDATE, DELETE and TRUNCATE): see ``domain.audit``.
    Its place in the hash chain is its ``AuditLink`` (``infra.audit_chain``)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    practice_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    patient_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    secure_email_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Short for most events; a list's read names the ids of every patient it showed.
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditLink(Base):
    """An event's link in the hash chain: written empty with the event, by a trigger on
    ``audit_events`` (migration 0033: no insert of an event, through the ORM or not, can
    skip the chain, and the link costs no statement of its own; the empty link commits
    with the event, and linking it later takes no lock a request waits on), filled once
    by the linker as the next link after the chain's head (triggers refuse any other
    change, and every DELETE)."""

    __tablename__ = "audit_links"
    # What the linker looks for: the empty links, however long the log.
    __table_args__ = (
        Index(
            "ix_audit_links_unlinked",
            "event_id",
            sqlite_where=text("position IS NULL"),
            postgresql_where=text("position IS NULL"),
        ),
    )

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Its place in the chain (1, 2, ...); empty until linked.
    position: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditChainHead(Base):
    """The newest link of the audit chain, one row; it moves with each link filled, and
    triggers refuse any other change."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_position: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class RateLimitCount(Base):
    """The attempts counted against one limit in one fixed window; ``bucket`` is a hash,
    never an address. Counted with one upsert, so concurrent attempts each see their own
    number (``infra.rate_limits``)."""

    __tablename__ = "rate_limit_counts"

    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        # Pruning the oldest windows a batch at a time, without scanning the table.
        Index("ix_rate_limit_counts_window_start", "window_start"),
    )


class Reply(Base):
    """A patient's Reply All, recorded by the workflow's ``record_reply`` activity."""

    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    secure_email_id: Mapped[str] = mapped_column(ForeignKey("secure_emails.id"), index=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    subject: Mapped[str] = mapped_column(EncryptedText("replies.subject"))
    body: Mapped[str] = mapped_column(EncryptedText("replies.body"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When office staff first opened it in the Email Client.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Alert(Base):
    """An office alert: a patient replied (R10), a notice could not be delivered, a file
    did not go to Open Dental. Names the patient (and such a file) only, never what
    anyone wrote."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(20), default="reply", server_default="reply")
    secure_email_id: Mapped[str | None] = mapped_column(
        ForeignKey("secure_emails.id"), nullable=True
    )
    # One alert per reply, however often the activity is retried; None for other kinds.
    reply_id: Mapped[str | None] = mapped_column(
        ForeignKey("replies.id"), unique=True, nullable=True
    )
    # The patient's file an alert is about (one Open Dental refused); None for other kinds.
    attachment_id: Mapped[str | None] = mapped_column(ForeignKey("attachments.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ChartDocument(Base):
    """A file the patient sent, filed into their chart (R11); shares the stored object."""

    __tablename__ = "chart_documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    # Exactly once per file, however often the activity is retried.
    attachment_id: Mapped[str] = mapped_column(ForeignKey("attachments.id"), unique=True)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingReply(Base):
    """A Reply All the workflow has not yet accepted: the web app keeps it here, so the
    ``reply`` update carries only its id (R12), and ``record_reply`` moves it into the
    thread. A refused reply's row is removed with its files."""

    __tablename__ = "pending_replies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    secure_email_id: Mapped[str] = mapped_column(ForeignKey("secure_emails.id"), index=True)
    subject: Mapped[str] = mapped_column(EncryptedText("pending_replies.subject"))
    body: Mapped[str] = mapped_column(EncryptedText("pending_replies.body"))
    # The stored files, as JSON (``domain.attachments.StoredAttachment``); names are PHI.
    attachments: Mapped[str] = mapped_column(EncryptedText("pending_replies.attachments"))
    # Where the patient's browser sent it from (an IP address, as the audit log keeps
    # it): ``record_reply`` audits the reply with it in the commit that records it.
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` a practice's software sent with a ``POST``, and the answer
    its first request got (``infra.idempotency``): the key itself is kept only as its
    SHA-256, the request only as a fingerprint (a SHA-256 of what it asked for). No
    answer yet while that first request runs. The answer is encrypted: a refusal may
    name the files it refused."""

    __tablename__ = "idempotency_keys"

    # Random, never reused: a claim's request records its answer by this id.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    key_hash: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(
        EncryptedText("idempotency_keys.response_body"), nullable=True
    )
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # Decides between two first requests with one key, on every backend.
        UniqueConstraint("practice_id", "key_hash"),
        # Purging a practice's expired keys without scanning the others'.
        Index("ix_idempotency_keys_practice_created", "practice_id", "created_at"),
    )


class OpenDentalIntegration(Base):
    """A practice's Open Dental connector (``domain.open_dental``): one per practice.

    The keys open the practice's Open Dental: stored encrypted, never shown whole, never
    audited. ``server_date_time`` is what Open Dental said its clock read at the last
    sync, sent back as ``DateTStamp`` so the next sync asks only for what changed since.
    """

    __tablename__ = "open_dental_integrations"

    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(300))
    developer_key: Mapped[str] = mapped_column(
        EncryptedText("open_dental_integrations.developer_key")
    )
    customer_key: Mapped[str] = mapped_column(
        EncryptedText("open_dental_integrations.customer_key")
    )
    document_category: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sync_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    server_date_time: Mapped[str | None] = mapped_column(String(30), nullable=True)
    # Open Dental answered 401/403: the schedule is paused and one alert raised until an
    # admin saves the keys again.
    keys_refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Counts only ("250 read: 3 added, 2 changed, 1 without an email"), never a name.
    last_sync: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OpenDentalClinic(Base):
    """Which of the practice's clinics an Open Dental ``ClinicNum`` is: a synced
    patient of that ClinicNum belongs to that clinic."""

    __tablename__ = "open_dental_clinics"
    __table_args__ = (UniqueConstraint("practice_id", "clinic_num"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    clinic_num: Mapped[int] = mapped_column(Integer)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), unique=True)


class OpenDentalRecord(Base):
    """What this product put into a patient's Open Dental, one row per thing sent, so a
    retry sends nothing twice (R21): a reply's file (``key`` "document:<attachment id>",
    ``number`` its DocNum) or a commlog ("commlog:sent:<secure email id>",
    "commlog:reply:<reply id>", ``number`` its CommlogNum). ``refused`` says why Open
    Dental refused it for good (its status and explanation); nothing is tried again then.
    """

    __tablename__ = "open_dental_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refused: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

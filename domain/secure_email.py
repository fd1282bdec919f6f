"""A secure email's lifecycle: statuses, and the inputs and results of its workflow.

A workflow's input and every payload of its history carry ids, counters, times, statuses
and key ids (R12): never an address, the practice's name or sender, the link token, a
passcode or anything a passcode can be computed from. Activities read what they need from
the database by id; links and passcodes are derived from a key only the worker and the web
app hold (``infra.crypto.portal_secrets``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class SecureEmailStatus(StrEnum):
    SENDING = "sending"  # accepted by the office, notice not yet delivered
    SENT = "sent"  # notice delivered to the patient's mail server
    OPENED = "opened"  # the patient verified a passcode
    REPLIED = "replied"
    EXPIRED = "expired"
    # The notice could not be delivered (refused, or bounced later), or the workflow
    # stopped before the message's end (terminated, failed or timed out in Temporal).
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # the office took it back; the patient sees that, not the words


class EventKind(StrEnum):
    """The lines of a secure email's timeline (read receipts), in the office's words."""

    SENT = "sent"  # the notice was handed to the mail service
    # The first notice accepted by the mail service (SMTP or SendGrid), when it was.
    NOTICE_EMAILED = "notice_emailed"
    NOTICE_DELIVERED = "notice_delivered"  # SendGrid's Event Webhook: the mailbox took it
    NOTICE_RESENT = "notice_resent"  # the office sent the notice again
    REMINDER_SENT = "reminder_sent"
    PASSCODE_SENT = "passcode_sent"
    OPENED = "opened"  # the patient verified a passcode (or opened it from their Inbox)
    VIEWED = "viewed"  # the patient read it again, in a later portal session
    REPLIED = "replied"  # one per reply
    EXPIRY_CHANGED = "expiry_changed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    FAILED = "failed"  # the notice was refused when sent
    BOUNCED = "bounced"  # accepted, then bounced or dropped (SendGrid's Event Webhook)
    # Its workflow ended before the message did (terminated by hand, failed, timed out):
    # found by the reconciliation (``workflows.reconciling``), which marks it failed.
    STOPPED = "stopped"


# Statuses whose workflow is still waiting for the patient, the office or the expiry.
OPEN_STATUSES = (
    SecureEmailStatus.SENDING,
    SecureEmailStatus.SENT,
    SecureEmailStatus.OPENED,
    SecureEmailStatus.REPLIED,
)


# A conversation stays a conversation: past these a patient is asked to call the office.
MAX_REPLIES_PER_HOUR = 10
MAX_REPLIES = 100
REPLY_WINDOW = timedelta(hours=1)


def re_subject(subject: str) -> str:
    """The subject of an answer in a thread: "RE: " once, however often it is answered."""
    return subject if subject.casefold().startswith("re:") else f"RE: {subject}"


def is_expired(status: str, expires_at: datetime, now: datetime) -> bool:
    """R8, the one rule the workflow, the portal and the office apply: a secure email is
    closed once its workflow marked it expired or its expiry time has come."""
    return status == SecureEmailStatus.EXPIRED or now >= expires_at


def is_closed(status: str, expires_at: datetime, now: datetime) -> bool:
    """Nothing more can happen to it: expired, withdrawn, or never delivered."""
    return is_expired(status, expires_at, now) or status in (
        SecureEmailStatus.WITHDRAWN,
        SecureEmailStatus.FAILED,
    )


# The office's changes to a sent secure email (R15)
MAX_LIFETIME = timedelta(days=90)  # expiry may move up to 90 days after sending
MIN_NOTICE = timedelta(hours=1)  # and no sooner than an hour from now
MAX_NOTICE_RESENDS = 3
RESEND_WINDOW = timedelta(days=1)


def expiry_refusal(new_expires_at: datetime, sent_at: datetime, now: datetime) -> str | None:
    """Why ``new_expires_at`` is not a valid expiry, in the office's words; None if it is."""
    if new_expires_at.tzinfo is None:
        return "Give the time with its zone (ISO 8601, e.g. 2026-12-24T17:00:00Z)"
    if new_expires_at < now + MIN_NOTICE:
        return "The new expiry must be at least one hour from now"
    if new_expires_at > sent_at + MAX_LIFETIME:
        return "The new expiry must be within 90 days of sending"
    return None


def reminder_time(sent_at: datetime, expires_at: datetime, after_hours: int) -> datetime | None:
    """When the unopened-message reminder goes, or None (off, or not before expiry)."""
    if after_hours <= 0:
        return None
    at = sent_at + timedelta(hours=after_hours)
    return at if at < expires_at else None


def workflow_id_for(secure_email_id: str) -> str:
    return f"secure-email-{secure_email_id}"


# Histories recorded before the web app kept the patient's client address to itself (in
# the audit log) carry a ``client_address`` in ``PasscodeRequest``: it is ignored when
# decoded, and never sent again.
_OLD_FIELDS_IGNORED = ConfigDict(extra="ignore")

# The two updates that carry what a patient typed or wrote keep the fields they do not
# name, instead of dropping them: the workflow refuses one that carries anything beyond
# its own fields (``unexpected_fields``), which would otherwise be recorded in its history
# unread. Histories recorded by earlier code (a blank ``passcode``, a ``client_address``,
# a reply's ``subject``, ``body`` and ``attachments``) decode as they were.
_OTHER_FIELDS_KEPT = ConfigDict(extra="allow")


def unexpected_fields(model: BaseModel) -> list[str]:
    """The names of the fields ``model`` carries beyond its own that hold a value (an
    empty one, as earlier web apps sent, carries nothing)."""
    return sorted(name for name, value in (model.model_extra or {}).items() if value)


class PasscodeRequest(BaseModel):
    """The portal asks for a passcode; who asked, and from where, is in its audit log."""

    model_config = _OLD_FIELDS_IGNORED


class PasscodeIssued(BaseModel):
    valid_until: datetime


class PasscodeAttempt(BaseModel):
    """A typed passcode, as the check of it under each portal key (key id -> check)."""

    model_config = _OTHER_FIELDS_KEPT

    checks: dict[str, str] = {}


class VerifyOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    BURNED = "burned"  # too many wrong tries; a new passcode must be requested
    TIMED_OUT = "timed_out"  # older than 15 minutes
    NONE_ISSUED = "none_issued"


class VerifyResult(BaseModel):
    outcome: VerifyOutcome
    tries_left: int = 0


class SecureEmailState(BaseModel):
    """What a query returns: the lifecycle, for operators and tests."""

    status: SecureEmailStatus
    sent_at: datetime
    expires_at: datetime
    opened_at: datetime | None = None
    passcodes_issued: int = 0
    reminder_at: datetime | None = None
    reminder_sent: bool = False
    notices_resent: int = 0


class IssuedPasscode(BaseModel):
    """The passcode most recently issued; earlier ones stop working when a new one is sent."""

    counter: int
    issued_at: datetime
    key_id: str
    # The check of the code that was mailed (``infra.crypto.portal_secrets``), not the code.
    check: str
    wrong_tries: int = 0
    used: bool = False


class CarriedState(BaseModel):
    """What a secure email's workflow hands its next run when it continues as new."""

    status: SecureEmailStatus
    opened_at: datetime | None = None
    status_changes: int = 0
    passcodes_issued: int = 0
    # Issue times within the rate window, and the passcode that can still be verified.
    recent_passcodes: list[datetime] = []
    passcode: IssuedPasscode | None = None
    replies: int = 0
    recent_replies: list[datetime] = []
    # Replies recorded but not yet alerted and filed into the chart.
    to_file: list[str] = []
    # The office's changes (R15): the expiry as last moved, how often, the reminder,
    # and when the notice was sent again (within the resend window).
    expires_at: datetime | None = None
    expiry_changes: int = 0
    reminder_sent: bool = False
    notices_resent: int = 0
    recent_resends: list[datetime] = []


class SecureEmailStart(BaseModel):
    """The input of ``SecureEmailWorkflow``: ids and times only."""

    secure_email_id: str
    practice_id: str
    patient_id: str
    sent_at: datetime
    expires_at: datetime
    # The portal key the notice link is derived from (the web app stored its hash).
    portal_key_id: str
    # When an unopened message gets its one reminder (the practice's setting at sending);
    # None: no reminder (off, or messages sent before reminders existed).
    reminder_at: datetime | None = None
    # Set when a run continues as new; None on the first run.
    carried: CarriedState | None = None
    # The workflow this input was made for (``workflows.starting`` sets it): the same
    # encrypted input copied from a history and started under another id is refused.
    workflow_id: str | None = None
    # The patient came from the practice's Open Dental and its connector was set up when
    # this was sent: the sending and each reply get a commlog there, and each file the
    # patient sends goes into their Imaging module. False: nothing goes to Open Dental.
    open_dental: bool = False


# Activity inputs


class NoticeOccasion(StrEnum):
    FIRST = "first"
    REMINDER = "reminder"  # unopened after the practice's reminder hours
    RESEND = "resend"  # the office asked for it again


class NoticeToSend(BaseModel):
    """The notice of a secure email: the activity reads addresses and names by id."""

    workflow_id: str
    secure_email_id: str
    practice_id: str
    patient_id: str
    portal_key_id: str
    occasion: NoticeOccasion = NoticeOccasion.FIRST
    # Which resend (1, 2, ...): its own Message-ID and timeline line.
    number: int = 0
    # The office's resend request the web app recorded (``infra.notice_claims``).
    request_id: str | None = None


class PasscodeToSend(BaseModel):
    workflow_id: str
    secure_email_id: str
    practice_id: str
    patient_id: str
    counter: int
    valid_until: datetime


class PasscodeSent(BaseModel):
    key_id: str
    check: str


class StatusChange(BaseModel):
    secure_email_id: str
    status: SecureEmailStatus
    at: datetime
    # Increases with every change, so a late retry never overwrites a newer status.
    sequence: int
    opened_at: datetime | None = None
    # The timeline line it adds, when not the status's own (a bounce makes "failed").
    event: EventKind | None = None


# The office's changes (R15): updates by staff id, never by name or address


class OfficeChange(StrEnum):
    """What an office request asks of the workflow (``infra.office_requests``)."""

    WITHDRAW = "withdraw"
    CHANGE_EXPIRY = "change_expiry"


class Withdrawal(BaseModel):
    staff_id: str
    # The request the web app recorded first; a withdrawal without one changes nothing.
    request_id: str | None = None


class ExpiryChange(BaseModel):
    staff_id: str
    expires_at: datetime
    # As for ``Withdrawal``: the request names this expiry too.
    request_id: str | None = None


class OfficeRequestToConfirm(BaseModel):
    """A withdrawal or expiry change the workflow was asked for, to be claimed against
    the request the web app recorded: its secure email (the workflow's own), its kind,
    its staff user and, for an expiry, the time asked for."""

    secure_email_id: str
    request_id: str
    kind: OfficeChange
    staff_id: str
    expires_at: datetime | None = None


class NoticeResend(BaseModel):
    staff_id: str
    # The request the web app recorded first; a resend without one mails nothing.
    request_id: str | None = None


class NoticeResent(BaseModel):
    # How many more times the notice can be sent again today.
    resends_left: int


class ExpiryToRecord(BaseModel):
    secure_email_id: str
    expires_at: datetime
    at: datetime
    # The change's number, the key of its timeline line.
    number: int


class NoticeBounced(BaseModel):
    """SendGrid's Event Webhook said the notice bounced or was dropped after it was
    accepted: a signal to its workflow."""

    at: datetime


class ReportToConfirm(BaseModel):
    """A report a signal brought (the patient viewed it, its notice bounced), to be
    confirmed by what the web app recorded and audited in the database."""

    secure_email_id: str


# Replies (R9-R11)


class ReplySubmitted(BaseModel):
    """Reply All from the portal, by id: the web app keeps the reply (encrypted) and its
    files before sending this, and the ``record_reply`` activity makes it part of the
    thread once the workflow accepts it. The portal audits the reply, with the patient's
    client address, once the workflow has accepted it."""

    model_config = _OTHER_FIELDS_KEPT

    reply_id: str


class ReplyAccepted(BaseModel):
    reply_id: str
    sent_at: datetime


class ReplyToRecord(BaseModel):
    secure_email_id: str
    reply: ReplySubmitted
    sent_at: datetime


class ReplyToFile(BaseModel):
    """After a reply is recorded: the office's alert and the patient's chart."""

    secure_email_id: str
    reply_id: str


class NoticeFailed(BaseModel):
    """The notice could not be delivered for good: the office is alerted."""

    secure_email_id: str

"""A secure email's lifecycle: statuses, and the inputs and results of its workflow.

A workflow's input and every payload of its history carry ids, counters, times, statuses
and key ids (R12): never an address, the practice's name or sender, the link token, a
passcode or anything a passcode can be computed from. Activities read what they need from
the database by id; links and passcodes are derived from a key only the worker and the web
app hold (``infra.crypto.portal_secrets``).

The models marked *v1* belong to ``workflows.secure_email_v1``: secure emails started
before this rule, kept running until the last of them expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from domain.attachments import StoredAttachment


class SecureEmailStatus(StrEnum):
    SENDING = "sending"  # accepted by the office, notice not yet delivered
    SENT = "sent"  # notice delivered to the patient's mail server
    OPENED = "opened"  # the patient verified a passcode
    REPLIED = "replied"
    EXPIRED = "expired"
    FAILED = "failed"  # the notice could not be delivered


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


def workflow_id_for(secure_email_id: str) -> str:
    return f"secure-email-{secure_email_id}"


class SecureEmailInput(BaseModel):
    """v1: the input of secure emails started before ids-only histories."""

    secure_email_id: str
    practice_id: str
    patient_id: str
    practice_name: str
    sender_address: str
    patient_address: str
    link_token: str
    sent_at: datetime
    expires_at: datetime


class PasscodeRequest(BaseModel):
    client_address: str | None = None


class PasscodeIssued(BaseModel):
    valid_until: datetime


class PasscodeAttempt(BaseModel):
    """A typed passcode, as the check of it under each portal key (key id -> check).

    ``passcode`` in clear is sent only to v1 workflows, whose passcodes come from a
    secret in their own history."""

    checks: dict[str, str] = {}
    passcode: str = ""
    client_address: str | None = None


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


class SecureEmailStart(BaseModel):
    """The input of ``SecureEmailWorkflow``: ids and times only."""

    secure_email_id: str
    practice_id: str
    patient_id: str
    sent_at: datetime
    expires_at: datetime
    # The portal key the notice link is derived from (the web app stored its hash).
    portal_key_id: str
    # Set when a run continues as new; None on the first run.
    carried: CarriedState | None = None


# Activity inputs


class NoticeToSend(BaseModel):
    """The notice of a secure email: the activity reads addresses and names by id."""

    workflow_id: str
    secure_email_id: str
    practice_id: str
    patient_id: str
    portal_key_id: str


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


class NoticeToDeliver(BaseModel):
    """v1."""

    workflow_id: str
    practice_name: str
    sender_address: str
    patient_address: str
    link_token: str
    expires_at: datetime


class PasscodeToDeliver(BaseModel):
    """v1."""

    workflow_id: str
    practice_name: str
    sender_address: str
    patient_address: str
    secret: str
    counter: int
    valid_until: datetime


class StatusChange(BaseModel):
    secure_email_id: str
    status: SecureEmailStatus
    at: datetime
    # Increases with every change, so a late retry never overwrites a newer status.
    sequence: int
    opened_at: datetime | None = None


# Replies (R9-R11)


class ReplySubmitted(BaseModel):
    """Reply All from the portal, by id: the web app keeps the reply (encrypted) and its
    files before sending this, and the ``record_reply`` activity makes it part of the
    thread once the workflow accepts it. Subject, body and attachments are filled only in
    the histories of replies sent before that (v1)."""

    reply_id: str
    subject: str = ""
    body: str = ""
    attachments: list[StoredAttachment] = []
    client_address: str | None = None


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

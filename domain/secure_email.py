"""A secure email's lifecycle: statuses, and the inputs and results of its workflow.

Workflow inputs carry ids, addresses and the link token; never the subject, body or file
names, which stay in the (encrypted) read model and object store.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class SecureEmailStatus(StrEnum):
    SENDING = "sending"  # accepted by the office, notice not yet delivered
    SENT = "sent"  # notice delivered to the patient's mail server
    OPENED = "opened"  # the patient verified a passcode
    REPLIED = "replied"
    EXPIRED = "expired"
    FAILED = "failed"  # the notice could not be delivered


def re_subject(subject: str) -> str:
    """The subject of an answer in a thread: "RE: " once, however often it is answered."""
    return subject if subject.casefold().startswith("re:") else f"RE: {subject}"


def workflow_id_for(secure_email_id: str) -> str:
    return f"secure-email-{secure_email_id}"


class SecureEmailInput(BaseModel):
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
    passcode: str
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


# Activity inputs


class NoticeToDeliver(BaseModel):
    workflow_id: str
    practice_name: str
    sender_address: str
    patient_address: str
    link_token: str
    expires_at: datetime


class PasscodeToDeliver(BaseModel):
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


class ReplyAttachment(BaseModel):
    """A file of a reply, already in the object store."""

    attachment_id: str
    object_key: str
    filename: str
    size: int
    content_type: str
    sha256: str


class ReplySubmitted(BaseModel):
    """Reply All from the portal. The files are in the object store before this is sent,
    so a reply the workflow accepts is complete."""

    reply_id: str
    subject: str
    body: str
    attachments: list[ReplyAttachment] = []
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

"""What the API shows of a secure email (never the link token)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, computed_field

from domain.secure_email import EventKind, SecureEmailStatus


class SecureEmailCreated(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: SecureEmailStatus
    sent_at: datetime
    expires_at: datetime


class AttachmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    filename: str
    size: int
    content_type: str


class ReplyPublic(BaseModel):
    id: str
    sent_at: datetime
    body: str
    attachments: list[AttachmentPublic]


class TimelineEvent(BaseModel):
    """One line of the timeline (read receipts): what happened and when, nothing more."""

    model_config = ConfigDict(from_attributes=True)

    kind: EventKind
    at: datetime


class SecureEmailPublic(SecureEmailCreated):
    patient_id: str
    subject: str
    opened_at: datetime | None
    attachments: list[AttachmentPublic]
    replies: list[ReplyPublic]
    # Oldest first.
    events: list[TimelineEvent] = []


# The Sent box (R15): a practice's secure emails, newest first, a page at a time


class SecureEmailListItem(BaseModel):
    """One line of the Sent box: never the body, nor any reply's words."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    patient_id: str
    subject: str
    status: SecureEmailStatus
    sent_at: datetime
    expires_at: datetime
    opened_at: datetime | None
    reply_count: int


class SentLine(SecureEmailListItem):
    """A line of the office's Sent box page, which names the patient too (the API's
    line names the patient by id only)."""

    patient_name: str


class SecureEmailPage(BaseModel):
    items: list[SecureEmailListItem]
    # Opaque: hand it back as ``cursor`` for the next (older) page; null on the last.
    next_cursor: str | None


# The office's side of replies (R10, R11)


class AlertKind(StrEnum):
    REPLY = "reply"  # a patient replied (R10)
    NOTICE_FAILED = "notice_failed"  # the patient never got the notice (refused, bounced)
    EXPIRED_UNOPENED = "expired_unopened"  # it expired before the patient opened it
    # A file the patient sent that Open Dental refused for good: it is in this chart only.
    OPEN_DENTAL_REFUSED = "open_dental_refused"
    # Its workflow stopped before the message's end (``EventKind.STOPPED``).
    STOPPED = "stopped"


class AlertPublic(BaseModel):
    """An office alert: ids, the patient's name and times; never anyone's words."""

    # Which office page it leads to is the web layer's (``web.office.alerts``).

    id: str
    kind: AlertKind
    patient_id: str
    patient_name: str
    reply_id: str | None
    secure_email_id: str | None
    created_at: datetime
    acknowledged_at: datetime | None = None
    # The file an alert is about (Open Dental refused it); None for other kinds.
    file_name: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message(self) -> str:
        if self.kind == AlertKind.OPEN_DENTAL_REFUSED:
            return (
                f"{self.file_name or 'A file'} from {self.patient_name} could not be put "
                "into Open Dental: it is in the patient's chart here"
            )
        if self.kind == AlertKind.NOTICE_FAILED:
            return f"The secure email to {self.patient_name} could not be delivered"
        if self.kind == AlertKind.STOPPED:
            return f"The secure email to {self.patient_name} stopped unexpectedly; send again"
        if self.kind == AlertKind.EXPIRED_UNOPENED:
            return f"The secure email to {self.patient_name} expired unopened: call the patient"
        return f"New secure email reply from {self.patient_name}"


class ChartDocumentPublic(BaseModel):
    id: str
    filename: str
    size: int
    content_type: str
    filed_at: datetime
    secure_email_id: str


class ChartDocumentList(BaseModel):
    items: list[ChartDocumentPublic]

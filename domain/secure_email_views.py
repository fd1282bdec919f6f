"""What the API shows of a secure email (never the link token)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from domain.secure_email import SecureEmailStatus


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


class SecureEmailPublic(SecureEmailCreated):
    patient_id: str
    subject: str
    opened_at: datetime | None
    attachments: list[AttachmentPublic]
    replies: list[ReplyPublic]


# The office's side of replies (R10, R11)


class AlertPublic(BaseModel):
    """A reply alert: ids, the patient's name and times; never the reply's content."""

    id: str
    patient_id: str
    patient_name: str
    reply_id: str
    secure_email_id: str
    created_at: datetime
    acknowledged_at: datetime | None = None


class AlertList(BaseModel):
    items: list[AlertPublic]


class AlertFeed(BaseModel):
    """One server-sent event of the Main Menu's alerts: the count and the newest few."""

    count: int
    items: list[AlertPublic]


class ChartDocumentPublic(BaseModel):
    id: str
    filename: str
    size: int
    content_type: str
    filed_at: datetime
    secure_email_id: str


class ChartDocumentList(BaseModel):
    items: list[ChartDocumentPublic]

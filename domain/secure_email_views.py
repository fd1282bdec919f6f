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

"""The input of a version-1 workflow (``workflows.legacy.secure_email_v1``): it carries
what histories no longer hold (addresses, the practice's name and sender, the link
token). Kept apart from the workflow module so the sandbox passes it through."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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

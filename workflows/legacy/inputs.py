"""The inputs of a version-1 workflow (``workflows.legacy.secure_email_v1``): its start
carries what histories no longer hold (addresses, the practice's name and sender, the
link token), its Verify the typed passcode. Kept apart from the workflow module so the
sandbox passes them through."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from domain.secure_email import PasscodeAttempt


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


class PasscodeInClear(PasscodeAttempt):
    """Verify, as the legacy workflow takes it: the typed code itself, which it compares
    with the code computed from the secret in its own history. Decodes the updates its
    histories hold (``{"passcode": …, "client_address": …}``) as they were."""

    model_config = ConfigDict(extra="ignore")

    passcode: str = ""

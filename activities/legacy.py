"""The activities only version-1 workflows call (``workflows.legacy``), their inputs, and
what they need that nothing else does.

They live here, not in ``workflows/legacy/``, because the worker's activities sit below
the workflows (layers point down). Their names (``deliver_notice``, ``deliver_passcode``,
``make_passcode_secret``) are recorded in histories and do not change. This module goes
with ``workflows.legacy``, once no version-1 workflow is open, and with it the ``pyotp``
dependency (pyproject.toml), which only its HOTP passcodes (``passcode_for``) use.

A version-1 history carries the patient's address, the practice's name and sender, the
link token and a passcode secret; mail goes only where the database confirms them. Its
replies may carry their subject, body and attachments (``written_in_payload``).
"""

from __future__ import annotations

from datetime import datetime

import pyotp
from pydantic import BaseModel
from temporalio import activity

from activities.mail import MailActivities, Recipient, unknown
from domain.addresses import same_address
from domain.attachments import StoredAttachment
from domain.passcodes import PASSCODE_DIGITS
from domain.secure_email import ReplySubmitted
from infra.replies import Written


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


class LegacyMailActivities(MailActivities):
    """The notice and passcode mails of a version-1 workflow, through the same recipient
    checks and mail building as the current ones."""

    @activity.defn
    async def deliver_notice(self, notice: NoticeToDeliver) -> None:
        to = await self._recipient(notice.workflow_id)
        _refuse_other_addresses(to, notice.patient_address, notice.sender_address)
        await self._send_notice(to, notice.workflow_id, notice.link_token, notice.expires_at)

    @activity.defn
    async def deliver_passcode(self, passcode: PasscodeToDeliver) -> None:
        to = await self._recipient(passcode.workflow_id)
        _refuse_other_addresses(to, passcode.patient_address, passcode.sender_address)
        code = passcode_for(passcode.secret, passcode.counter)
        await self._send_passcode(
            to, passcode.workflow_id, code, passcode.counter, passcode.valid_until
        )


@activity.defn
async def make_passcode_secret() -> str:
    """A version-1 workflow's passcode secret: random, so made outside the workflow."""
    # 160 bits, the HOTP recommendation (RFC 4226).
    return str(pyotp.random_base32(32))


def passcode_for(secret: str, counter: int) -> str:
    """The HOTP code for the ``counter``-th passcode of a version-1 secure email.

    Deterministic, so the workflow can check a code without storing it, and the mail
    activity can compute it again on a retry.
    """
    return str(pyotp.HOTP(secret, digits=PASSCODE_DIGITS).at(counter))


class _ReplyContent(BaseModel):
    """What a reply a version-1 workflow accepted before replies were kept by id carries
    beside its id (``ReplySubmitted`` keeps it as fields it does not name)."""

    subject: str = ""
    body: str = ""
    attachments: list[StoredAttachment] = []


def written_in_payload(reply: ReplySubmitted) -> Written | None:
    """The reply's text and files as its payload carries them, or None when it carries
    none (every reply the portal sends now: its text waits in the database)."""
    content = _ReplyContent.model_validate(reply.model_extra or {})
    if not content.body:
        return None
    return Written(content.subject, content.body, content.attachments)


def _refuse_other_addresses(to: Recipient, patient_address: str, sender: str) -> None:
    if not same_address(to.patient_address, patient_address):
        raise unknown("the patient's address does not match")
    if not same_address(to.sender_address, sender):
        raise unknown("the practice's sender does not match")

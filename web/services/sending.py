"""Send Secure: the checks of R1-R4 and R9, then the secure email's workflow is started.

A send either completes (files stored, read model written, workflow started) or leaves
nothing behind (R14): a refusal stores nothing, and a failure to start the workflow
removes what was stored. Knows nothing of HTTP: a refusal says which rule refused, the
routes choose the status; Temporal and object-store failures reach ``web.errors``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from temporalio.client import Client
from temporalio.service import RPCError

from domain.addresses import same_address
from domain.attachments import StoredAttachment
from domain.audit import AuditAction
from domain.patients import not_sendable_reason
from domain.secure_email import (
    SecureEmailStatus,
)
from infra import clinics, practices, secure_emails
from infra.audit import Actor, audit
from infra.crypto import portal_secrets
from infra.crypto.keys import PortalKeys
from infra.db.models import Patient, Practice, SecureEmail, StaffUser
from infra.directory import get_patient
from infra.objects.interface import ObjectStore
from infra.security import token_hash
from infra.workflow_start import workflow_start
from web.deps import DbSession, temporal_of
from web.services.files import AttachmentsRefused, Upload, check_uploads, stored_uploads
from web.state import AppState
from workflows.starting import start_secure_email

NOT_ENABLED = (
    "Secure Email is not enabled for this practice. An administrator can enable it in "
    "Settings; nothing was sent."
)
# A patient of a clinic gets the clinic's notices (R19): its switch and sender decide too.
CLINIC_NOT_ENABLED = (
    "Secure Email is not enabled for {clinic}. An administrator can enable it in Settings, "
    "Clinics; nothing was sent."
)
CLINIC_WITHOUT_SENDER = (
    "{clinic} has no sender address, so no notice could be sent. An administrator can set "
    "one in Settings, Clinics; nothing was sent."
)
UNKNOWN_PATIENT = "There is no such patient in the practice's directory"
SAME_ADDRESS = (
    "The patient's email address is the practice's own sender address, so no notification "
    "could be delivered. Use a different address for the patient."
)
NO_COPIES = "Secure email goes only to the patient: CC and BCC are not allowed"
UNAVAILABLE = "Secure Email is unavailable right now and nothing was sent. Try again shortly."


class Rule(Enum):
    """Which rule refused a send."""

    NOT_ENABLED = "not enabled"  # R1: the practice's (or the patient's clinic's) is off
    INVALID = "invalid"  # R2-R4, R9: a field or a file


@dataclass
class SendRefused(Exception):
    """Why a send was refused, per form field; nothing was sent."""

    errors: dict[str, str]
    rule: Rule = Rule.INVALID
    refused_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sender:
    """What Send Secure needs from the app: who sends, and the services it uses."""

    db: DbSession
    staff: StaffUser
    store: ObjectStore
    temporal: Client
    task_queue: str
    actor: Actor
    portal_keys: PortalKeys


@dataclass(frozen=True)
class Draft:
    """What the office wrote, and to whom."""

    patient_id: str
    subject: str
    body: str


def check_draft(draft: Draft) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not draft.subject.strip():
        errors["subject"] = "Subject is required"
    if not draft.body.strip():
        errors["body"] = "Body is required"
    return errors


async def send_secure_email(
    sender: Sender, draft: Draft, uploads: Sequence[Upload], *, resent_from: str | None = None
) -> SecureEmail:
    """Raises ``SendRefused``, or what Temporal or the object store raised (nothing kept)."""
    db = sender.db
    practice = await practices.practice(db, sender.staff.practice_id)
    if practice is None or not practice.secure_email_enabled or not practice.sender_address:
        raise SendRefused({"secure_email_enabled": NOT_ENABLED}, Rule.NOT_ENABLED)
    patient = await get_patient(db, sender.staff.reach, draft.patient_id)
    # The practice as the patient sees it: their clinic's sender, or the practice's.
    sending_as = await _sending_as(db, practice, patient)
    errors = check_draft(draft)
    if patient is None:
        errors["patient_id"] = UNKNOWN_PATIENT
    elif (reason := not_sendable_reason(patient.status, patient.email)) is not None:
        errors["patient_id"] = reason
    elif same_address(patient.email, sending_as.sender_address or ""):
        errors["patient_id"] = SAME_ADDRESS
    try:
        await check_uploads(uploads)
    except AttachmentsRefused as refused:
        errors["attachments"] = "; ".join(str(item) for item in refused.refused)
        raise SendRefused(errors, refused_files=[str(item) for item in refused.refused]) from None
    if errors or patient is None:
        raise SendRefused(errors)

    secure_email_id = str(uuid.uuid4())
    async with stored_uploads(sender.store, ("secure-emails", secure_email_id), uploads) as stored:
        return await _record_and_start(
            sender, practice, patient, draft, secure_email_id, stored, resent_from
        )


async def _sending_as(db: DbSession, practice: Practice, patient: Patient | None) -> Practice:
    """The practice as ``patient``'s notices show it (``infra.clinics.as_seen_from``), or
    ``SendRefused`` (409) when the patient's clinic has Secure Email off or no sender:
    the practice's switch is for the whole practice, a clinic's for its patients (R1)."""
    clinic = await clinics.clinic_of_patient(db, patient) if patient is not None else None
    if clinic is not None and not clinic.secure_email_enabled:
        words = CLINIC_NOT_ENABLED.format(clinic=clinic.name)
        raise SendRefused({"secure_email_enabled": words}, Rule.NOT_ENABLED)
    if clinic is not None and not clinic.sender_address:
        words = CLINIC_WITHOUT_SENDER.format(clinic=clinic.name)
        raise SendRefused({"secure_email_enabled": words}, Rule.NOT_ENABLED)
    return clinics.as_seen_from(practice, clinic)


async def _record_and_start(
    sender: Sender,
    practice: Practice,
    patient: Patient,
    draft: Draft,
    secure_email_id: str,
    stored: list[StoredAttachment],
    resent_from: str | None,
) -> SecureEmail:
    db = sender.db
    # Derived, not random: the notice activity derives the same token from the id and
    # the key, so the token itself is kept nowhere, only its hash here (R12).
    portal_key_id = sender.portal_keys.current_id
    link_token = portal_secrets.link_token(sender.portal_keys, portal_key_id, secure_email_id)
    sent_at = datetime.now(UTC)
    expires_at = sent_at + timedelta(days=practice.expiry_days)
    secure_email = SecureEmail(
        id=secure_email_id,
        practice_id=practice.id,
        patient_id=patient.id,
        staff_id=sender.staff.id,
        subject=draft.subject,
        body=draft.body,
        link_token_hash=token_hash(link_token),
        status=SecureEmailStatus.SENDING.value,
        status_sequence=0,
        sent_at=sent_at,
        expires_at=expires_at,
        resent_from_id=resent_from,
        # The address this message's notice and passcodes go to, kept with it: a later
        # change of the patient's address is for new messages only.
        recipient_address=patient.email,
        # Its mails and portal pages are the clinic's (R19), whatever the patient's later.
        clinic_id=patient.clinic_id,
    )
    await secure_emails.record_new(db, secure_email, stored)
    try:
        await start_secure_email(
            sender.temporal,
            sender.task_queue,
            # The practice's reminder setting at the moment of sending.
            await workflow_start(
                db, secure_email, patient, portal_key_id, practice.reminder_after_hours
            ),
        )
    except RPCError:
        await secure_emails.forget_unstarted(db, secure_email, stored)
        raise
    # Recorded once the send has happened: the audit log cannot take an event back.
    audit(
        db,
        practice.id,
        AuditAction.SEND,
        sender.actor,
        patient_id=patient.id,
        secure_email_id=secure_email_id,
        detail=f"{len(stored)} attachment(s)"
        + (f", again from {resent_from}" if resent_from else ""),
    )
    await db.commit()
    return secure_email


async def sender_for(state: AppState, db: DbSession, staff: StaffUser, actor: Actor) -> Sender:
    """Connects to Temporal if the app has not yet (``TemporalUnavailable`` if it cannot)."""
    return Sender(
        db=db,
        staff=staff,
        store=state.store,
        temporal=await temporal_of(state),
        task_queue=state.settings.task_queue,
        actor=actor,
        portal_keys=state.portal_keys,
    )

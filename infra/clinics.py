"""A practice's clinics: listing, adding and changing them, audited as settings changes
(R13, R19); and the practice as a clinic's patient sees it (R19)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.clinics import DUPLICATE_NAME, ClinicCreate, ClinicUpdate, shown_name
from domain.practice import CLEARABLE, PracticeRuleError, check_practice
from infra.audit import Actor, audit
from infra.db.models import Clinic, Patient, Practice, SecureEmail
from infra.mail.factory import sender_is_verified
from infra.practices import UNVERIFIED_SENDER, shown_setting
from infra.settings import Settings

# Audited field by field, old → new, like the practice's settings: none of it is PHI.
_SETTINGS = ("name", "secure_email_enabled", "sender_address", "phone", "address", "time_zone")


async def practice_clinics(db: AsyncSession, practice_id: str) -> list[Clinic]:
    statement = select(Clinic).where(Clinic.practice_id == practice_id)
    return list((await db.scalars(statement.order_by(Clinic.name, Clinic.id))).all())


async def has_clinics(db: AsyncSession, practice_id: str) -> bool:
    found = await db.scalar(select(Clinic.id).where(Clinic.practice_id == practice_id).limit(1))
    return found is not None


async def practice_clinic(db: AsyncSession, practice_id: str, clinic_id: str) -> Clinic | None:
    """The clinic of that id if it is this practice's; None for another practice's."""
    clinic = await db.get(Clinic, clinic_id)
    return clinic if clinic is not None and clinic.practice_id == practice_id else None


def _settings(clinic: Clinic) -> dict[str, Any]:
    return {name: getattr(clinic, name) for name in _SETTINGS}


def _check(values: dict[str, Any], settings: Settings) -> None:
    """The practice's rules: Secure Email on needs a sender, a verified one (R1, R5)."""
    check_practice(bool(values["secure_email_enabled"]), values["sender_address"])
    sender = values["sender_address"]
    if sender and not sender_is_verified(sender, settings):
        raise PracticeRuleError("sender_address", UNVERIFIED_SENDER)


async def _save(db: AsyncSession, clinic: Clinic, values: dict[str, Any]) -> None:
    # The unique name decides, two admins adding the same clinic at once included; a
    # savepoint (which the values are set inside of, so that they are flushed in it)
    # keeps the rest of the session (the signed-in admin) intact.
    try:
        async with db.begin_nested():
            for name, value in values.items():
                setattr(clinic, name, value)
            db.add(clinic)
    except IntegrityError as error:
        raise PracticeRuleError("name", DUPLICATE_NAME) from error


async def add_clinic(
    db: AsyncSession, practice: Practice, new: ClinicCreate, settings: Settings, actor: Actor
) -> Clinic:
    """Adds the clinic (its zone the practice's unless given), audited; or raises
    ``PracticeRuleError`` and adds nothing."""
    values = new.model_dump()
    values["sender_address"] = new.sender_address and str(new.sender_address)
    values["time_zone"] = new.time_zone or practice.time_zone
    _check(values, settings)
    clinic = Clinic(practice_id=practice.id)
    await _save(db, clinic, values)
    audit(
        db,
        practice.id,
        AuditAction.SETTINGS_CHANGE,
        actor,
        detail=f"clinic {clinic.id} added: {shown_setting(clinic.name)}",
    )
    await db.commit()
    return clinic


async def change_clinic(
    db: AsyncSession, clinic: Clinic, change: ClinicUpdate, settings: Settings, actor: Actor
) -> Clinic:
    """Applies a partial update with one audit event per changed field; or raises
    ``PracticeRuleError`` and changes (and records) nothing."""
    before = _settings(clinic)
    given = change.model_dump(exclude_unset=True)
    if given.get("sender_address") is not None:
        given["sender_address"] = str(given["sender_address"])
    values = before | {
        name: value for name, value in given.items() if value is not None or name in CLEARABLE
    }
    _check(values, settings)
    changed = {name: value for name, value in values.items() if value != before[name]}
    if not changed:
        return clinic
    try:
        await _save(db, clinic, changed)
    except PracticeRuleError:
        await db.refresh(clinic)  # the savepoint is gone; keep what is stored
        raise
    for name, value in changed.items():
        detail = f"clinic {clinic.id}: {name}: {shown_setting(before[name])} → "
        audit(
            db,
            clinic.practice_id,
            AuditAction.SETTINGS_CHANGE,
            actor,
            detail=detail + shown_setting(value),
        )
    await db.commit()
    return clinic


def as_seen_from(practice: Practice, clinic: Clinic | None) -> Practice:
    """The practice as a patient of ``clinic`` sees it in mails and portal pages (R19):
    the clinic's name with the practice's, its sender, zone, and its phone and address
    (the practice's where the clinic has none). The practice itself without a clinic.

    A detached copy, never added to a session: nothing of it is written back."""
    if clinic is None:
        return practice
    return Practice(
        id=practice.id,
        name=shown_name(clinic.name, practice.name),
        secure_email_enabled=clinic.secure_email_enabled,
        sender_address=clinic.sender_address,
        expiry_days=practice.expiry_days,
        time_zone=clinic.time_zone,
        reminder_after_hours=practice.reminder_after_hours,
        phone=clinic.phone or practice.phone,
        address=clinic.address or practice.address,
        logo_type=practice.logo_type,
    )


async def clinic_of_patient(db: AsyncSession, patient: Patient) -> Clinic | None:
    if patient.clinic_id is None:
        return None
    return await practice_clinic(db, patient.practice_id, patient.clinic_id)


async def practice_of_message(db: AsyncSession, secure_email: SecureEmail) -> Practice | None:
    """The practice as the message's patient sees it: its clinic's (``as_seen_from``)
    when it was sent for one."""
    practice = await db.get(Practice, secure_email.practice_id)
    if practice is None or secure_email.clinic_id is None:
        return practice
    return as_seen_from(practice, await practice_clinic(db, practice.id, secure_email.clinic_id))


async def practice_of_patient(db: AsyncSession, patient: Patient) -> Practice | None:
    """The practice as the patient sees it now: their clinic's when they have one."""
    practice = await db.get(Practice, patient.practice_id)
    if practice is None:
        return None
    return as_seen_from(practice, await clinic_of_patient(db, patient))

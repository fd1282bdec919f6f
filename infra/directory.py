"""The patient directory: add, change and find patients by name or email (R2).

A change made by someone is audited in the same commit as the change (R13), by field
name only: names and addresses are PHI.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from domain.audit import AuditAction
from domain.patients import PatientCreate, PatientUpdate
from infra.audit import Actor, audit
from infra.clinics import practice_clinic
from infra.db.models import Patient

SEARCH_LIMIT = 50


class DuplicatePatientEmail(Exception):
    """Another patient of the practice already has this address."""


class UnknownClinic(Exception):
    """The clinic given is not one of the patient's practice's (R19)."""


async def _check_clinic(db: AsyncSession, practice_id: str, clinic_id: str | None) -> None:
    if clinic_id is not None and await practice_clinic(db, practice_id, clinic_id) is None:
        raise UnknownClinic


async def add_patient(
    db: AsyncSession, practice_id: str, new: PatientCreate, *, added_by: Actor | None = None
) -> Patient:
    await _check_clinic(db, practice_id, new.clinic_id)
    patient = Patient(
        practice_id=practice_id,
        name=new.name,
        email=str(new.email),
        email_normalised=new.email_normalised,
        status=new.status.value,
        language=new.language,
        clinic_id=new.clinic_id,
    )
    try:
        # A savepoint, so a refusal leaves the rest of the session (the signed-in staff
        # user) intact. The unique constraint decides: two clerks adding the same patient
        # at once cannot both succeed.
        async with db.begin_nested():
            db.add(patient)
    except IntegrityError as error:
        raise DuplicatePatientEmail from error
    if added_by is not None:
        audit(db, practice_id, AuditAction.PATIENT_ADD, added_by, patient_id=patient.id)
    await db.commit()
    return patient


async def change_patient(
    db: AsyncSession, patient: Patient, change: PatientUpdate, *, changed_by: Actor | None = None
) -> list[str]:
    """Applies the change; returns the names of the fields whose value changed."""
    changed = [
        field for field, value in change.changes().items() if getattr(patient, field) != value
    ]
    if not changed:
        return []
    await _check_clinic(db, patient.practice_id, change.changes().get("clinic_id"))
    try:
        async with db.begin_nested():
            for field in changed:
                setattr(patient, field, change.changes()[field])
            if "email" in changed:
                patient.email_normalised = normalise_address(patient.email)
    except IntegrityError as error:
        await db.refresh(patient)  # the savepoint is gone; show what is stored
        raise DuplicatePatientEmail from error
    if changed_by is not None:
        audit(
            db,
            patient.practice_id,
            AuditAction.PATIENT_EDIT,
            changed_by,
            patient_id=patient.id,
            detail=f"changed: {', '.join(changed)}",
        )
    await db.commit()
    return changed


async def find_patients(db: AsyncSession, practice_id: str, query: str = "") -> list[Patient]:
    statement = select(Patient).where(Patient.practice_id == practice_id)
    query = query.strip()
    if query:
        statement = statement.where(
            or_(
                Patient.name.ilike(f"%{_escape_like(query)}%", escape="\\"),
                Patient.email_normalised.like(
                    f"%{_escape_like(normalise_address(query))}%", escape="\\"
                ),
            )
        )
    statement = statement.order_by(Patient.name, Patient.id).limit(SEARCH_LIMIT)
    return list((await db.scalars(statement)).all())


async def get_patient(db: AsyncSession, practice_id: str, patient_id: str) -> Patient | None:
    patient = await db.get(Patient, patient_id)
    return patient if patient is not None and patient.practice_id == practice_id else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def patient_by_id(db: AsyncSession, patient_id: str) -> Patient | None:
    """Any practice's patient: for the portal, whose session names the patient itself."""
    return await db.get(Patient, patient_id)

"""Open Dental's patients into the directory: one patient per PatNum
(``external_source="open_dental"``, ``external_id=str(PatNum)``), added or brought up to
date, never a patient added by hand. A patient without an email address is not added;
one synced before whose address was removed in Open Dental is kept without an address,
so no secure email goes to an address the patient no longer has (Send Secure says why,
as for an inactive patient), and gets it back when Open Dental has one again.

Each added or changed patient is audited as the system's doing, naming no field's value.
"""

from __future__ import annotations

from typing import Any

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from domain.audit import AuditAction
from domain.languages import from_open_dental
from domain.open_dental import PageSynced
from domain.patient_sources import PatientSource
from domain.patients import PatientStatus
from infra.audit import SYSTEM, audit
from infra.db.models import Patient

_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)
_SOURCE = PatientSource.OPEN_DENTAL.value
# Open Dental's statuses this directory has no word of its own for.
_OTHER_STATUSES = {"Prospective": PatientStatus.PATIENT}
# The columns the sync keeps as Open Dental has them (the guarantor apart: by PatNum).
_SYNCED = ("name", "email", "email_normalised", "status", "language", "clinic_id")


def _text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return " ".join(str(value).split()) if value is not None else ""


def _number(record: dict[str, Any], field: str) -> int:
    try:
        return int(record.get(field) or 0)
    except (TypeError, ValueError):
        return 0


def name_of(record: dict[str, Any]) -> str:
    """ "First Last", with the preferred name beside the first: "Robert (Bob) Smith"."""
    first, last, preferred = (_text(record, f) for f in ("FName", "LName", "Preferred"))
    if preferred and preferred != first:
        first = f"{first} ({preferred})" if first else preferred
    return (" ".join(part for part in (first, last) if part) or "Open Dental patient")[:200]


def status_of(record: dict[str, Any]) -> PatientStatus:
    """As Open Dental has it; a status of its that is unknown here is not sent to."""
    value = _text(record, "PatStatus")
    try:
        return PatientStatus(value)
    except ValueError:
        return _OTHER_STATUSES.get(value, PatientStatus.INACTIVE)


def email_of(record: dict[str, Any]) -> str | None:
    value = _text(record, "Email")
    if not value:
        return None
    try:
        return _EMAIL.validate_python(value)
    except ValidationError:
        return None


async def _by_pat_nums(
    db: AsyncSession, practice_id: str, pat_nums: set[int]
) -> dict[int, Patient]:
    if not pat_nums:
        return {}
    found = await db.scalars(
        select(Patient).where(
            Patient.practice_id == practice_id,
            Patient.external_source == _SOURCE,
            Patient.external_id.in_(sorted(str(number) for number in pat_nums)),
        )
    )
    return {int(patient.external_id or 0): patient for patient in found}


async def sync_patients(
    db: AsyncSession,
    practice_id: str,
    records: list[dict[str, Any]],
    clinics: dict[int, str],
) -> PageSynced:
    """Adds or updates the patients of one page of ``GET /patients/Simple``, in one
    transaction. ``clinics`` maps Open Dental's ClinicNum to the practice's clinic."""
    counts = PageSynced(read=len(records))
    wanted: dict[int, dict[str, Any]] = {}
    for record in records:
        pat_num = _number(record, "PatNum")
        email = email_of(record)
        if email is None:
            counts.without_email += 1
        if pat_num <= 0:
            continue
        wanted[pat_num] = {
            "name": name_of(record),
            "email": email or "",
            "email_normalised": normalise_address(email) if email else "",
            "status": status_of(record).value,
            "language": from_open_dental(_text(record, "Language")),
            "clinic_id": clinics.get(_number(record, "ClinicNum")),
            "guarantor": _number(record, "Guarantor"),
        }
    existing = await _by_pat_nums(db, practice_id, set(wanted))
    # Without an address, only a patient synced before is kept (its address removed).
    wanted = {k: v for k, v in wanted.items() if v["email"] or k in existing}
    heads = {v["guarantor"] for k, v in wanted.items() if v["guarantor"] not in (0, k)}
    known = await _by_pat_nums(db, practice_id, heads - set(existing))
    known.update(existing)
    added: dict[int, Patient] = {}
    changed: set[int] = set()
    for pat_num, values in wanted.items():
        patient = existing.get(pat_num)
        if patient is None:
            patient = Patient(
                practice_id=practice_id,
                external_source=_SOURCE,
                external_id=str(pat_num),
                **{column: values[column] for column in _SYNCED},
            )
            db.add(patient)
            added[pat_num] = patient
            continue
        for column in _SYNCED:
            if getattr(patient, column) != values[column]:
                setattr(patient, column, values[column])
                changed.add(pat_num)
    await db.flush()
    known.update(added)
    for pat_num, values in wanted.items():
        patient = known[pat_num]
        head = values["guarantor"]
        if head in (0, pat_num):
            guarantor_id = None
        elif head in known:
            guarantor_id = known[head].id
        else:
            counts.unlinked.append((pat_num, head))
            continue
        if patient.guarantor_id != guarantor_id:
            patient.guarantor_id = guarantor_id
            if pat_num not in added:
                changed.add(pat_num)
    for pat_num, patient in added.items():
        audit(
            db,
            practice_id,
            AuditAction.PATIENT_ADD,
            SYSTEM,
            patient_id=patient.id,
            detail=f"from Open Dental, PatNum {pat_num}",
        )
    for pat_num in sorted(changed):
        audit(
            db,
            practice_id,
            AuditAction.PATIENT_EDIT,
            SYSTEM,
            patient_id=existing[pat_num].id,
            detail=f"from Open Dental, PatNum {pat_num}",
        )
    await db.commit()
    counts.added = len(added)
    counts.changed = len(changed)
    counts.unchanged = len(wanted) - counts.added - counts.changed
    return counts


async def link_families(db: AsyncSession, practice_id: str, unlinked: list[tuple[int, int]]) -> int:
    """Sets the guarantors a page could not (the guarantor came on a later page); a
    guarantor Open Dental has but the directory has not (no email) is left unset.
    Returns how many patients were linked."""
    found = await _by_pat_nums(db, practice_id, {p for p, _ in unlinked} | {g for _, g in unlinked})
    linked = 0
    for pat_num, head in unlinked:
        patient, guarantor = found.get(pat_num), found.get(head)
        if patient is None or guarantor is None or patient.guarantor_id == guarantor.id:
            continue
        patient.guarantor_id = guarantor.id
        audit(
            db,
            practice_id,
            AuditAction.PATIENT_EDIT,
            SYSTEM,
            patient_id=patient.id,
            detail=f"from Open Dental, PatNum {pat_num}",
        )
        linked += 1
    await db.commit()
    return linked

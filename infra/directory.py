"""The patient directory: add, change and find patients by name or email (R2).

Families may share an address, with consent: an address another patient of the practice
has is taken only by a patient joining that patient's family (the same head, through
``guarantor_id``) or when the request says so (``share_address``). A guarantor is another
patient of the same practice whose chain of guarantors does not lead back to the patient.

A change made by someone is audited in the same commit as the change (R13), by field
name only: names and addresses are PHI.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from domain.audit import AuditAction
from domain.patients import PatientCreate, PatientUpdate
from domain.reach import Reach
from infra.audit import Actor, audit
from infra.clinics import practice_clinic
from infra.db.models import Patient, Practice
from infra.families import chain_of, head_of, holders_of
from infra.reach import within

SEARCH_LIMIT = 50


class AddressInUse(Exception):
    """Another patient of the practice already has this address, and the change came
    without consent to share it."""

    def __init__(self, holders: list[Patient], head: Patient) -> None:
        super().__init__("address in use")
        # Who has the address now, the earliest added first; and the head of the first
        # one's family, whom joining the family names as guarantor.
        self.holders = holders
        self.head = head


class GuarantorProblem(StrEnum):
    NOT_FOUND = "not_found"
    SELF = "self"
    CYCLE = "cycle"


class GuarantorRefused(Exception):
    """The guarantor named is not one this patient may have."""

    def __init__(self, problem: GuarantorProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class UnknownClinic(Exception):
    """The clinic given is not one of the patient's practice's (R19), or not one the
    member of staff making the change works for."""


async def _check_clinic(
    db: AsyncSession, practice_id: str, clinic_id: str | None, reach: Reach | None
) -> None:
    if clinic_id is None:
        return
    if reach is not None and not reach.covers(clinic_id):
        raise UnknownClinic
    if await practice_clinic(db, practice_id, clinic_id) is None:
        raise UnknownClinic


async def add_patient(
    db: AsyncSession,
    practice_id: str,
    new: PatientCreate,
    *,
    added_by: Actor | None = None,
    reach: Reach | None = None,
) -> Patient:
    """Adds the patient, to a clinic of the practice (within ``reach``, the reach of
    the member of staff adding them, when given)."""
    await _check_clinic(db, practice_id, new.clinic_id, reach)
    guarantor = await _guarantor(db, practice_id, new.guarantor_id, patient_id=None)
    head = await head_of(db, guarantor) if guarantor is not None else None
    await _check_address(
        db, practice_id, new.email_normalised, head=head, share=new.share_address, besides=None
    )
    patient = Patient(
        practice_id=practice_id,
        name=new.name,
        email=str(new.email),
        email_normalised=new.email_normalised,
        status=new.status.value,
        language=new.language,
        guarantor_id=new.guarantor_id,
        clinic_id=new.clinic_id,
    )
    db.add(patient)
    await db.flush()
    if added_by is not None:
        audit(db, practice_id, AuditAction.PATIENT_ADD, added_by, patient_id=patient.id)
    await db.commit()
    return patient


async def change_patient(
    db: AsyncSession,
    patient: Patient,
    change: PatientUpdate,
    *,
    changed_by: Actor | None = None,
    reach: Reach | None = None,
) -> list[str]:
    """Applies the change; returns the names of the fields whose value changed. A new
    clinic must be within ``reach`` when given (as when adding)."""
    wanted = change.changes()
    changed = [field for field, value in wanted.items() if getattr(patient, field) != value]
    if not changed:
        return []
    if "clinic_id" in changed:
        await _check_clinic(db, patient.practice_id, wanted["clinic_id"], reach)
    guarantor_id = wanted["guarantor_id"] if "guarantor_id" in wanted else patient.guarantor_id
    guarantor = await _guarantor(db, patient.practice_id, guarantor_id, patient_id=patient.id)
    address = normalise_address(wanted.get("email") or patient.email)
    if address != patient.email_normalised:
        head = await head_of(db, guarantor) if guarantor is not None else patient
        await _check_address(
            db,
            patient.practice_id,
            address,
            head=head,
            share=change.share_address,
            besides=patient.id,
        )
    for field in changed:
        setattr(patient, field, wanted[field])
    patient.email_normalised = address
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


async def family_to_join(
    db: AsyncSession, practice_id: str, address_normalised: str, *, besides: str | None = None
) -> Patient | None:
    """The head of the family of the first patient at this address (whom the office's
    "Join the family" names as guarantor); None when nobody else has the address."""
    holders = await holders_of(db, practice_id, address_normalised, besides=besides)
    return await head_of(db, holders[0]) if holders else None


async def _guarantor(
    db: AsyncSession, practice_id: str, guarantor_id: str | None, *, patient_id: str | None
) -> Patient | None:
    """The guarantor named, checked: a patient of the same practice, not the patient, and
    not one whose own chain of guarantors leads back to the patient."""
    if guarantor_id is None:
        return None
    if guarantor_id == patient_id:
        raise GuarantorRefused(GuarantorProblem.SELF)
    guarantor = await get_patient(db, Reach(practice_id), guarantor_id)
    if guarantor is None:
        # Another practice's patient is answered as no patient at all.
        raise GuarantorRefused(GuarantorProblem.NOT_FOUND)
    if patient_id is not None and any(p.id == patient_id for p in await chain_of(db, guarantor)):
        raise GuarantorRefused(GuarantorProblem.CYCLE)
    return guarantor


async def _check_address(
    db: AsyncSession,
    practice_id: str,
    address_normalised: str,
    *,
    head: Patient | None,
    share: bool,
    besides: str | None,
) -> None:
    """Refuses an address other patients have, unless sharing it was consented to or the
    patient is of the same family as one of them (the same head)."""
    await _one_at_a_time(db, practice_id, address_normalised)
    holders = await holders_of(db, practice_id, address_normalised, besides=besides)
    if not holders or share:
        return
    heads = [await head_of(db, holder) for holder in holders]
    if head is not None and any(h.id == head.id for h in heads):
        return
    raise AddressInUse(holders, heads[0])


async def _one_at_a_time(db: AsyncSession, practice_id: str, address_normalised: str) -> None:
    """Holds the practice's check of this address until the transaction ends, so two
    clerks adding patients at one new address at the same moment are checked one after
    the other: the second sees the first and is asked about the family. PostgreSQL: a
    transaction's advisory lock on the practice and address; SQLite: its one write lock,
    taken by a write that changes nothing (its checks otherwise read outside any
    transaction)."""
    if db.get_bind().dialect.name == "postgresql":
        # The lock's key is a hash taken here: the address never goes to the server.
        named = f"patient-address:{practice_id}:{address_normalised}".encode()
        key = int.from_bytes(hashlib.sha256(named).digest()[:8], "big", signed=True)
        await db.execute(select(func.pg_advisory_xact_lock(key)))
    else:
        await db.execute(update(Practice).where(Practice.id == practice_id).values(id=Practice.id))


async def find_patients(db: AsyncSession, reach: Reach, query: str = "") -> list[Patient]:
    """The patients within reach whose name or address contains the query, by name."""
    statement = select(Patient).where(*within(reach))
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


async def get_patient(db: AsyncSession, reach: Reach, patient_id: str) -> Patient | None:
    """The patient of that id if within reach; None for any other (another practice's)."""
    patient = await db.get(Patient, patient_id)
    if patient is None or patient.practice_id != reach.practice_id:
        return None
    return patient if reach.covers(patient.clinic_id) else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def patient_by_id(db: AsyncSession, patient_id: str) -> Patient | None:
    """Any practice's patient: for the portal, whose session names the patient itself."""
    return await db.get(Patient, patient_id)

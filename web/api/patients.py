"""``/api/v1/patients``: the patient directory.

Searches, reads, additions and changes are audited (R13): a search by how many it found
and their ids, never by what was typed; a change by the names of the fields changed,
never their values.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from domain.audit import AuditAction
from domain.clinics import UNKNOWN_CLINIC
from domain.patients import PatientCreate, PatientList, PatientPublic, PatientUpdate
from infra.directory import (
    AddressInUse,
    GuarantorRefused,
    UnknownClinic,
    add_patient,
    change_patient,
    find_patients,
)
from web.api.responses import INVALID, NOT_FOUND, declared, with_address
from web.deps import (
    ApiStaff,
    DbSession,
    audit_staff,
    practice_patient,
    staff_actor,
)
from web.errors import field_error
from web.services.families import ADDRESS_IN_USE, GUARANTOR_REFUSED, GUARANTOR_STATUS
from web.services.patients import search_detail

router = APIRouter(prefix="/patients", tags=["patients"])

CHANGE = with_address(
    clinic_id="a clinic of the practice (for staff restricted to clinics, one of theirs)",
    guarantor_id="another patient of the practice (a family of more generations: 409)",
)


@router.post("", status_code=status.HTTP_201_CREATED, responses=CHANGE)
async def create_patient(
    request: Request, db: DbSession, staff: ApiStaff, new: PatientCreate
) -> PatientPublic:
    """Adds a patient. An address another patient of the practice has is taken only with
    consent: ``guarantor_id`` names a patient at that address (or their family's
    guarantor), or ``"share_address": true``; otherwise 409, whose detail names in
    ``ctx.patients`` who has the address and in ``ctx.family_head`` whom to name."""
    try:
        patient = await add_patient(
            db, staff.practice_id, new, added_by=staff_actor(request, staff), reach=staff.reach
        )
    except (AddressInUse, GuarantorRefused) as error:
        raise _refusal(error) from error
    except UnknownClinic as error:
        raise field_error("clinic_id", UNKNOWN_CLINIC) from error
    return PatientPublic.model_validate(patient)


@router.get("", responses=INVALID)
async def search_patients(
    request: Request, db: DbSession, staff: ApiStaff, q: str = ""
) -> PatientList:
    patients = await find_patients(db, staff.reach, q)
    await audit_staff(
        db, request, staff, AuditAction.OFFICE_PATIENT_SEARCH, detail=search_detail(q, patients)
    )
    return PatientList(items=[PatientPublic.model_validate(p) for p in patients])


@router.get("/{patient_id}", responses=declared(NOT_FOUND, INVALID))
async def read_patient(
    request: Request, db: DbSession, staff: ApiStaff, patient_id: str
) -> PatientPublic:
    patient = await practice_patient(db, staff, patient_id)
    await audit_staff(db, request, staff, AuditAction.OFFICE_PATIENT_VIEW, patient_id=patient.id)
    return PatientPublic.model_validate(patient)


@router.patch("/{patient_id}", responses=declared(NOT_FOUND, CHANGE))
async def edit_patient(
    request: Request, db: DbSession, staff: ApiStaff, patient_id: str, change: PatientUpdate
) -> PatientPublic:
    """Changes the fields given (``name``, ``email``, ``status``, ``language``,
    ``clinic_id``, ``guarantor_id``, null to leave the family); the others
    stay. A new address another
    patient has needs consent, as when adding."""
    patient = await practice_patient(db, staff, patient_id)
    try:
        await change_patient(
            db, patient, change, changed_by=staff_actor(request, staff), reach=staff.reach
        )
    except (AddressInUse, GuarantorRefused) as error:
        raise _refusal(error) from error
    except UnknownClinic as error:
        raise field_error("clinic_id", UNKNOWN_CLINIC) from error
    return PatientPublic.model_validate(patient)


def _refusal(error: AddressInUse | GuarantorRefused) -> HTTPException:
    if isinstance(error, GuarantorRefused):
        return field_error(
            "guarantor_id", GUARANTOR_REFUSED[error.problem], GUARANTOR_STATUS[error.problem]
        )
    # Ids only: the caller may see the practice's directory, and no address is repeated.
    context = {"patients": [p.id for p in error.holders], "family_head": error.head.id}
    detail = [
        {"loc": ["body", "email"], "msg": ADDRESS_IN_USE, "type": "value_error", "ctx": context}
    ]
    return HTTPException(status.HTTP_409_CONFLICT, detail=detail)

"""``/api/v1/patients``: the patient directory."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from domain.patients import PatientCreate, PatientList, PatientPublic
from infra.directory import DuplicatePatientEmail, add_patient, find_patients, get_patient
from web.deps import ApiStaff, DbSession
from web.errors import field_error

router = APIRouter(prefix="/patients", tags=["patients"])

DUPLICATE_EMAIL = "A patient with this email address is already in the directory"


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_patient(db: DbSession, staff: ApiStaff, new: PatientCreate) -> PatientPublic:
    try:
        patient = await add_patient(db, staff.practice_id, new)
    except DuplicatePatientEmail as error:
        raise field_error("email", DUPLICATE_EMAIL, status.HTTP_409_CONFLICT) from error
    return PatientPublic.model_validate(patient)


@router.get("")
async def search_patients(db: DbSession, staff: ApiStaff, q: str = "") -> PatientList:
    patients = await find_patients(db, staff.practice_id, q)
    return PatientList(items=[PatientPublic.model_validate(p) for p in patients])


@router.get("/{patient_id}")
async def read_patient(db: DbSession, staff: ApiStaff, patient_id: str) -> PatientPublic:
    patient = await get_patient(db, staff.practice_id, patient_id)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Patient not found")
    return PatientPublic.model_validate(patient)

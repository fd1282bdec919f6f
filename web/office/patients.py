"""The patient directory: the page, search and adding a patient.

Searches and additions are audited (R13): a search by how many it found, never by what
was typed. The words and audit detail here serve ``web.api.patients`` too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from domain.audit import AuditAction
from domain.patients import PatientCreate, PatientStatus
from infra.db.models import Patient
from infra.directory import DuplicatePatientEmail, add_patient, find_patients
from web.deps import CurrentStaff, DbSession, audit_staff, staff_actor
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)

DUPLICATE_EMAIL = "A patient with this email address is already in the directory"


def search_detail(query: str, found: list[Patient]) -> str:
    """What a search's audit event says: whether a query was typed, and how many matched."""
    kind = "search" if query.strip() else "directory"
    return f"{kind}: {len(found)} {'result' if len(found) == 1 else 'results'}"


@router.get("/patients")
async def patients_page(request: Request, db: DbSession, staff: CurrentStaff) -> HTMLResponse:
    # A `?q=` from an old bookmark is not searched: a typed name belongs in no URL.
    return await _patients(request, db, staff)


@router.get("/patients/search")
async def patients_search_page() -> RedirectResponse:
    return RedirectResponse("/patients", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/patients/search")
async def search_patients_form(
    request: Request, db: DbSession, staff: CurrentStaff, q: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """By POST, so what was typed (often a patient's name) stays out of the URL, the
    browser's history and the server's logs."""
    return await _patients(request, db, staff, q=q)


@router.post("/patients")
async def add_patient_form(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    patient_status: Annotated[str, Form(alias="status")] = PatientStatus.PATIENT.value,
) -> Response:
    typed = {"name": name, "email": email, "status": patient_status}
    try:
        new = PatientCreate.model_validate(typed)
    except ValidationError as error:
        return await _patients(request, db, staff, typed=typed, errors=form_errors(error))
    try:
        await add_patient(db, staff.practice_id, new, added_by=staff_actor(request, staff))
    except DuplicatePatientEmail:
        return await _patients(request, db, staff, typed=typed, errors={"email": DUPLICATE_EMAIL})
    return RedirectResponse("/patients?added=1", status_code=status.HTTP_303_SEE_OTHER)


async def _patients(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    *,
    q: str = "",
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    patients = await find_patients(db, staff.practice_id, q)
    # Every listing shows names and addresses: audited by count, never by what was typed.
    await audit_staff(
        db, request, staff, AuditAction.OFFICE_PATIENT_SEARCH, detail=search_detail(q, patients)
    )
    return render(
        request,
        "office/patients.html",
        {
            "staff": staff,
            "patients": patients,
            "q": q,
            "searched": bool(q.strip()),
            "typed": typed or {"status": PatientStatus.PATIENT.value},
            "errors": errors or {},
            "statuses": list(PatientStatus),
            "added": request.query_params.get("added") == "1",
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if errors else status.HTTP_200_OK,
    )

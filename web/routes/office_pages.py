"""Office pages: Main Menu, patient directory, practice settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from domain.audit import AuditAction
from domain.patients import PatientCreate, PatientStatus
from domain.practice import PracticeRuleError, PracticeUpdate
from infra.directory import DuplicatePatientEmail, add_patient, find_patients
from infra.replies import count_open_alerts, open_alerts
from web.deps import (
    CurrentAdmin,
    CurrentStaff,
    DbSession,
    SettingsDep,
    audit_staff,
    practice_of,
    staff_actor,
)
from web.routes.api_patients import DUPLICATE_EMAIL, search_detail
from web.routes.api_practice import change_settings
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)


@router.get("/")
async def main_menu(request: Request, db: DbSession, staff: CurrentStaff) -> HTMLResponse:
    practice = await practice_of(db, staff)
    context = {
        "staff": staff,
        "practice": practice,
        "alert_count": await count_open_alerts(db, staff.practice_id),
        "alerts": await open_alerts(db, staff.practice_id),
    }
    return render(request, "office/menu.html", context)


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


@router.get("/settings")
async def settings_page(request: Request, db: DbSession, staff: CurrentAdmin) -> HTMLResponse:
    practice = await practice_of(db, staff)
    typed = {
        "name": practice.name,
        "sender_address": practice.sender_address or "",
        "expiry_days": str(practice.expiry_days),
        "secure_email_enabled": practice.secure_email_enabled,
    }
    saved = request.query_params.get("saved") == "1"
    return render(
        request,
        "office/settings.html",
        {"staff": staff, "typed": typed, "errors": {}, "saved": saved},
    )


@router.post("/settings")
async def save_settings(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    staff: CurrentAdmin,
    name: Annotated[str, Form()] = "",
    sender_address: Annotated[str, Form()] = "",
    expiry_days: Annotated[str, Form()] = "",
    secure_email_enabled: Annotated[str | None, Form()] = None,
) -> Response:
    practice = await practice_of(db, staff)
    enabled = secure_email_enabled is not None
    typed = {
        "name": name,
        "sender_address": sender_address,
        "expiry_days": expiry_days,
        "secure_email_enabled": enabled,
    }
    context = {"staff": staff, "typed": typed, "saved": False}
    try:
        change = PracticeUpdate.model_validate(
            {
                "name": name,
                "sender_address": sender_address.strip() or None,
                "expiry_days": expiry_days,
                "secure_email_enabled": enabled,
            }
        )
        await change_settings(db, request, staff, practice, change, settings)
    except ValidationError as error:
        errors = form_errors(error)
        if "expiry_days" in errors:
            errors["expiry_days"] = "Expiry days: enter a whole number from 1 to 90"
        return render(
            request, "office/settings.html", {**context, "errors": errors}, status_code=422
        )
    except PracticeRuleError as error:
        return render(
            request,
            "office/settings.html",
            {**context, "errors": {error.field: error.message}},
            status_code=422,
        )
    return RedirectResponse("/settings?saved=1", status_code=status.HTTP_303_SEE_OTHER)

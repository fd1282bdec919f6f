"""The Clinics page of Settings, for office administrators (R19): the practice's clinics
listed, added and changed, each with its own sender, phone, address, time zone and Secure
Email switch, checked by the practice's rules and audited like the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from domain.clinics import UNKNOWN_CLINIC, ClinicCreate, ClinicUpdate
from domain.practice import PracticeRuleError, time_zone_choices
from infra.clinics import add_clinic, change_clinic, practice_clinic, practice_clinics
from infra.db.models import Clinic, StaffUser
from web.deps import CurrentAdmin, DbSession, SettingsDep, or_404, practice_of, staff_actor
from web.office.settings import ADDRESS, PHONE, TIME_ZONE
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)

SAVED = {"added": "Clinic added.", "saved": "Clinic saved."}


class ClinicTyped(BaseModel):
    """The clinic form as typed; blank sender, phone and address mean none."""

    name: str = ""
    sender_address: str = ""
    phone: str = ""
    address: str = ""
    time_zone: str = ""
    secure_email_enabled: str | None = None

    def values(self) -> dict[str, object]:
        return {
            "name": self.name,
            "sender_address": self.sender_address.strip() or None,
            "phone": self.phone,
            "address": self.address,
            "time_zone": self.time_zone,
            "secure_email_enabled": self.secure_email_enabled is not None,
        }

    def shown(self) -> dict[str, object]:
        return self.model_dump() | {"secure_email_enabled": self.secure_email_enabled is not None}


def _typed(clinic: Clinic) -> dict[str, object]:
    return {
        "name": clinic.name,
        "sender_address": clinic.sender_address or "",
        "phone": clinic.phone or "",
        "address": clinic.address or "",
        "time_zone": clinic.time_zone,
        "secure_email_enabled": clinic.secure_email_enabled,
    }


def _errors(error: ValidationError | PracticeRuleError) -> dict[str, str]:
    if isinstance(error, PracticeRuleError):
        return {error.field: error.message}
    return form_errors(error, {"time_zone": TIME_ZONE, "phone": PHONE, "address": ADDRESS})


async def _page(
    request: Request,
    db: DbSession,
    staff: StaffUser,
    *,
    clinic: Clinic | None = None,
    typed: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    """The list with the add form, or (``clinic``) the edit form of one clinic."""
    if typed is None:
        practice = await practice_of(db, staff)
        typed = _typed(clinic) if clinic else {"time_zone": practice.time_zone}
    context = {
        "staff": staff,
        "clinics": [] if clinic else await practice_clinics(db, staff.practice_id),
        "clinic": clinic,
        "typed": typed,
        "errors": errors or {},
        "saved": SAVED.get(request.query_params.get("saved", "")),
        "time_zones": time_zone_choices(),
    }
    code = status.HTTP_422_UNPROCESSABLE_CONTENT if errors else status.HTTP_200_OK
    return render(request, "office/clinics.html", context, status_code=code)


@router.get("/settings/clinics")
async def clinics_page(request: Request, db: DbSession, staff: CurrentAdmin) -> HTMLResponse:
    return await _page(request, db, staff)


@router.post("/settings/clinics")
async def add_clinic_form(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    staff: CurrentAdmin,
    form: Annotated[ClinicTyped, Form()],
) -> Response:
    practice = await practice_of(db, staff)
    try:
        new = ClinicCreate.model_validate(form.values(), strict=False)
        await add_clinic(db, practice, new, settings, staff_actor(request, staff))
    except (ValidationError, PracticeRuleError) as error:
        return await _page(request, db, staff, typed=form.shown(), errors=_errors(error))
    return RedirectResponse("/settings/clinics?saved=added", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/settings/clinics/{clinic_id}")
async def edit_clinic_page(
    request: Request, db: DbSession, staff: CurrentAdmin, clinic_id: str
) -> HTMLResponse:
    clinic = or_404(await practice_clinic(db, staff.practice_id, clinic_id), UNKNOWN_CLINIC)
    return await _page(request, db, staff, clinic=clinic)


@router.post("/settings/clinics/{clinic_id}")
async def edit_clinic_form(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    staff: CurrentAdmin,
    clinic_id: str,
    form: Annotated[ClinicTyped, Form()],
) -> Response:
    clinic = or_404(await practice_clinic(db, staff.practice_id, clinic_id), UNKNOWN_CLINIC)
    try:
        change = ClinicUpdate.model_validate(form.values(), strict=False)
        await change_clinic(db, clinic, change, settings, staff_actor(request, staff))
    except (ValidationError, PracticeRuleError) as error:
        errors = _errors(error)
        return await _page(request, db, staff, clinic=clinic, typed=form.shown(), errors=errors)
    return RedirectResponse("/settings/clinics?saved=saved", status_code=status.HTTP_303_SEE_OTHER)

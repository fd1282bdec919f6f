"""The practice's Secure Email settings page, for office administrators (R1, R8, R16)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from domain.practice import MAX_EXPIRY_DAYS, PracticeRuleError, PracticeUpdate, time_zone_choices
from infra.db.models import StaffUser
from infra.practices import change_settings
from web.deps import CurrentAdmin, DbSession, SettingsDep, practice_of, staff_actor
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)

REMINDER_HOURS = (
    f"Reminder after (hours): enter a whole number from 0 to {MAX_EXPIRY_DAYS * 24}, "
    "0 turns reminders off"
)
TIME_ZONE = "Time zone: choose one of the listed time zones"


def _page(
    request: Request,
    staff: StaffUser,
    typed: dict[str, object],
    errors: dict[str, str],
    *,
    saved: bool = False,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    context = {
        "staff": staff,
        "typed": typed,
        "errors": errors,
        "saved": saved,
        "time_zones": time_zone_choices(),
    }
    return render(request, "office/settings.html", context, status_code=status_code)


@router.get("/settings")
async def settings_page(request: Request, db: DbSession, staff: CurrentAdmin) -> HTMLResponse:
    practice = await practice_of(db, staff)
    typed = {
        "name": practice.name,
        "sender_address": practice.sender_address or "",
        "expiry_days": str(practice.expiry_days),
        "secure_email_enabled": practice.secure_email_enabled,
        "time_zone": practice.time_zone,
        "reminder_after_hours": str(practice.reminder_after_hours),
    }
    return _page(request, staff, typed, {}, saved=request.query_params.get("saved") == "1")


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
    # Left out (a form of before these settings) keeps the practice's value.
    time_zone: Annotated[str | None, Form()] = None,
    reminder_after_hours: Annotated[str | None, Form()] = None,
) -> Response:
    practice = await practice_of(db, staff)
    enabled = secure_email_enabled is not None
    typed: dict[str, object] = {
        "name": name,
        "sender_address": sender_address,
        "expiry_days": expiry_days,
        "secure_email_enabled": enabled,
        "time_zone": practice.time_zone if time_zone is None else time_zone,
        "reminder_after_hours": (
            str(practice.reminder_after_hours)
            if reminder_after_hours is None
            else reminder_after_hours
        ),
    }
    values: dict[str, object] = {
        "name": name,
        "sender_address": sender_address.strip() or None,
        "expiry_days": expiry_days,
        "secure_email_enabled": enabled,
    }
    if time_zone is not None:
        values["time_zone"] = time_zone
    if reminder_after_hours is not None:
        values["reminder_after_hours"] = reminder_after_hours.strip()
    refused = status.HTTP_422_UNPROCESSABLE_CONTENT
    try:
        change = PracticeUpdate.model_validate(values)
        await change_settings(db, practice, change, settings, staff_actor(request, staff))
    except ValidationError as error:
        errors = form_errors(error)
        if "expiry_days" in errors:
            errors["expiry_days"] = f"Expiry days: enter a whole number from 1 to {MAX_EXPIRY_DAYS}"
        if "reminder_after_hours" in errors:
            errors["reminder_after_hours"] = REMINDER_HOURS
        if "time_zone" in errors:
            errors["time_zone"] = TIME_ZONE
        return _page(request, staff, typed, errors, status_code=refused)
    except PracticeRuleError as error:
        return _page(request, staff, typed, {error.field: error.message}, status_code=refused)
    return RedirectResponse("/settings?saved=1", status_code=status.HTTP_303_SEE_OTHER)

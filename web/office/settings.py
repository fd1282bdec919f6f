"""The practice's Secure Email settings page, for office administrators (R1, R8, R16),
with the phone, address and logo the patient mails show (R20)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from domain.practice import (
    ADDRESS_REFUSED,
    MAX_EXPIRY_DAYS,
    MAX_LOGO_BYTES,
    PHONE_REFUSED,
    PracticeRuleError,
    PracticeUpdate,
    time_zone_choices,
)
from infra.db.models import Practice, StaffUser
from infra.practices import change_logo, change_settings
from web.deps import CurrentAdmin, DbSession, SettingsDep, practice_of, staff_actor
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)

TIME_ZONE = "Time zone: choose one of the listed time zones"
PHONE = f"Phone: {PHONE_REFUSED}"
ADDRESS = f"Address: {ADDRESS_REFUSED}"
# What a refused field says in place of the general words.
OWN_WORDS = {
    "expiry_days": f"Expiry days: enter a whole number from 1 to {MAX_EXPIRY_DAYS}",
    "reminder_after_hours": (
        f"Reminder after (hours): enter a whole number from 0 to {MAX_EXPIRY_DAYS * 24}, "
        "0 turns reminders off"
    ),
    "time_zone": TIME_ZONE,
    "phone": PHONE,
    "address": ADDRESS,
}
# What the page says after a save (``?saved=``).
SAVED = {"1": "Settings saved.", "logo": "Logo saved.", "logo-removed": "Logo removed."}
# Read one byte past the limit: enough to know a file is too large, never the rest.
LOGO_READ = MAX_LOGO_BYTES + 1


def _page(
    request: Request,
    staff: StaffUser,
    practice: Practice,
    typed: dict[str, object],
    errors: dict[str, str],
    *,
    saved: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    context = {
        "staff": staff,
        "typed": typed,
        "errors": errors,
        "saved": saved,
        "time_zones": time_zone_choices(),
        "logo_type": practice.logo_type,
        "max_logo_kb": MAX_LOGO_BYTES // 1024,
    }
    return render(request, "office/settings.html", context, status_code=status_code)


@router.get("/settings")
async def settings_page(request: Request, db: DbSession, staff: CurrentAdmin) -> HTMLResponse:
    practice = await practice_of(db, staff)
    saved = SAVED.get(request.query_params.get("saved", ""))
    return _page(request, staff, practice, _current(practice), {}, saved=saved)


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
    phone: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
) -> Response:
    practice = await practice_of(db, staff)
    # Blank empties them; left out (a form of before them) keeps them. FastAPI reads a
    # blank field as left out, so the form itself says which.
    posted = await request.form()
    given = {name for name in ("phone", "address") if name in posted}
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
        "phone": phone if "phone" in given else (practice.phone or ""),
        "address": address if "address" in given else (practice.address or ""),
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
    if "phone" in given:
        values["phone"] = phone
    if "address" in given:
        values["address"] = address
    refused = status.HTTP_422_UNPROCESSABLE_CONTENT
    try:
        change = PracticeUpdate.model_validate(values, strict=False)
        await change_settings(db, practice, change, settings, staff_actor(request, staff))
    except ValidationError as error:
        errors = form_errors(error, OWN_WORDS)
        return _page(request, staff, practice, typed, errors, status_code=refused)
    except PracticeRuleError as error:
        errors = {error.field: error.message}
        return _page(request, staff, practice, typed, errors, status_code=refused)
    return RedirectResponse("/settings?saved=1", status_code=status.HTTP_303_SEE_OTHER)


def _current(practice: Practice) -> dict[str, object]:
    return {
        "name": practice.name,
        "sender_address": practice.sender_address or "",
        "expiry_days": str(practice.expiry_days),
        "secure_email_enabled": practice.secure_email_enabled,
        "time_zone": practice.time_zone,
        "reminder_after_hours": str(practice.reminder_after_hours),
        "phone": practice.phone or "",
        "address": practice.address or "",
    }


@router.post("/settings/logo")
async def upload_logo(
    request: Request,
    db: DbSession,
    staff: CurrentAdmin,
    logo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """A PNG or JPEG of at most 200 KB, known by its first bytes, for the mails' header."""
    practice = await practice_of(db, staff)
    data = await logo.read(LOGO_READ) if logo is not None else b""
    try:
        await change_logo(db, practice, data, staff_actor(request, staff))
    except PracticeRuleError as error:
        errors = {error.field: error.message}
        refused = status.HTTP_422_UNPROCESSABLE_CONTENT
        return _page(request, staff, practice, _current(practice), errors, status_code=refused)
    return RedirectResponse("/settings?saved=logo", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/settings/logo/remove")
async def remove_logo(request: Request, db: DbSession, staff: CurrentAdmin) -> Response:
    practice = await practice_of(db, staff)
    await change_logo(db, practice, None, staff_actor(request, staff))
    return RedirectResponse("/settings?saved=logo-removed", status_code=status.HTTP_303_SEE_OTHER)

"""The practice's Secure Email settings page, for office administrators (R1, R8, R16)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from domain.practice import PracticeRuleError, PracticeUpdate
from infra.practices import change_settings
from web.deps import CurrentAdmin, DbSession, SettingsDep, practice_of, staff_actor
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)


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
        await change_settings(db, practice, change, settings, staff_actor(request, staff))
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

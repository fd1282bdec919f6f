"""Settings, Open Dental: an administrator connects the practice's Open Dental (its
API's address and keys, the Imaging category, how often patients are synced), tests
the connection, and starts a sync now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from domain.errors import FieldRefused
from domain.open_dental import (
    CLOUD_API,
    DEFAULT_SYNC_MINUTES,
    MAX_SYNC_MINUTES,
    MIN_SYNC_MINUTES,
    OpenDentalChange,
    OpenDentalPublic,
)
from infra import open_dental
from infra.db.models import StaffUser
from infra.practices import time_zone_of
from web.deps import CurrentAdmin, DbSession, StateDep, staff_actor
from web.errors import on_unavailable
from web.services import open_dental as connector
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)

PAGE = "/settings/open-dental"
# What a refused field says in place of the general words.
OWN_WORDS = {
    "sync_minutes": (
        f"Sync every (minutes): enter a whole number from {MIN_SYNC_MINUTES} to {MAX_SYNC_MINUTES}"
    ),
    "document_category": (
        "Document category: enter the number of an Imaging category, or leave it blank"
    ),
}
SAVED = {"1": "Open Dental settings saved.", "sync": connector.SYNC_STARTED}


async def _page(
    request: Request,
    db: DbSession,
    staff: StaffUser,
    current: OpenDentalPublic | None,
    typed: dict[str, str],
    errors: dict[str, str],
    *,
    notice: str | None = None,
    check: tuple[bool, str] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    context = {
        "staff": staff,
        "current": current,
        "typed": typed,
        "errors": errors,
        "notice": notice,
        "check": check,
        "time_zone": await time_zone_of(db, staff.practice_id),
    }
    return render(request, "office/open_dental.html", context, status_code=status_code)


def _typed(current: OpenDentalPublic | None) -> dict[str, str]:
    if current is None:
        return {"base_url": CLOUD_API, "document_category": "", "sync_minutes": "15"}
    return {
        "base_url": current.base_url,
        "document_category": str(current.document_category or ""),
        "sync_minutes": str(current.sync_minutes),
    }


async def _current(db: DbSession, staff: StaffUser) -> OpenDentalPublic | None:
    found = await open_dental.integration_of(db, staff.practice_id)
    return open_dental.public(found) if found else None


@router.get(PAGE)
async def open_dental_page(request: Request, db: DbSession, staff: CurrentAdmin) -> HTMLResponse:
    current = await _current(db, staff)
    notice = SAVED.get(request.query_params.get("saved", ""))
    return await _page(request, db, staff, current, _typed(current), {}, notice=notice)


@router.post(PAGE)
async def save_open_dental(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: CurrentAdmin,
    base_url: Annotated[str, Form()] = "",
    developer_key: Annotated[str, Form()] = "",
    customer_key: Annotated[str, Form()] = "",
    document_category: Annotated[str, Form()] = "",
    sync_minutes: Annotated[str, Form()] = "",
) -> Response:
    current = await _current(db, staff)
    typed = {
        "base_url": base_url,
        "document_category": document_category,
        "sync_minutes": sync_minutes,
    }
    refused = status.HTTP_422_UNPROCESSABLE_CONTENT
    values: dict[str, object] = {
        "base_url": base_url,
        "document_category": document_category.strip() or None,
        "sync_minutes": sync_minutes.strip() or DEFAULT_SYNC_MINUTES,
    }
    # A key field left blank keeps the stored key.
    for name, given in (("developer_key", developer_key), ("customer_key", customer_key)):
        if given.strip():
            values[name] = given

    async def unavailable(message: str) -> Response:
        errors = {"form": f"Saved, but the sync could not be scheduled: {message}"}
        saved = await _current(db, staff)
        return await _page(request, db, staff, saved, typed, errors, status_code=503)

    on_unavailable(request, unavailable)
    try:
        change = OpenDentalChange.model_validate(values, strict=False)
        await connector.save(state, db, staff.practice_id, change, staff_actor(request, staff))
    except ValidationError as error:
        errors = form_errors(error, OWN_WORDS)
        return await _page(request, db, staff, current, typed, errors, status_code=refused)
    except FieldRefused as error:
        errors = {error.field: error.message}
        return await _page(request, db, staff, current, typed, errors, status_code=refused)
    return RedirectResponse(f"{PAGE}?saved=1", status_code=status.HTTP_303_SEE_OTHER)


@router.post(f"{PAGE}/test")
async def test_open_dental(request: Request, db: DbSession, staff: CurrentAdmin) -> HTMLResponse:
    found = await open_dental.integration_of(db, staff.practice_id)
    current = open_dental.public(found) if found else None
    if found is None:
        errors = {"form": connector.NOT_CONNECTED}
        return await _page(request, db, staff, None, _typed(None), errors, status_code=409)
    check = await connector.check_connection(found)
    return await _page(
        request, db, staff, current, _typed(current), {}, check=(check.ok, check.message)
    )


@router.post(f"{PAGE}/sync")
async def sync_open_dental(
    request: Request, state: StateDep, db: DbSession, staff: CurrentAdmin
) -> Response:
    found = await open_dental.integration_of(db, staff.practice_id)
    current = open_dental.public(found) if found else None
    if found is None or found.keys_refused_at is not None:
        words = connector.NOT_CONNECTED if found is None else connector.PAUSED
        return await _page(
            request, db, staff, current, _typed(current), {"form": words}, status_code=409
        )

    async def unavailable(message: str) -> Response:
        return await _page(
            request, db, staff, current, _typed(current), {"form": message}, status_code=503
        )

    on_unavailable(request, unavailable)
    await connector.start_sync(state, found)
    return RedirectResponse(f"{PAGE}?saved=sync", status_code=status.HTTP_303_SEE_OTHER)

"""API tokens for practice software, managed by office admins: the Tokens page
(``/api/v1/tokens`` makes the same changes, through ``web.services.tokens``).

A token acts as the staff member it belongs to, with their role: a token for a clerk
cannot change settings. It is shown once when made; only its hash is kept, and no list
shows either. A revoked or expired token is refused at once (``web.deps``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from domain.api_tokens import TokenPublic
from domain.staff import PRINTABLE
from infra import accounts
from infra.db.models import StaffUser
from infra.practices import time_zone_of
from web.deps import CurrentAdmin, DbSession
from web.services.tokens import (
    TokenRefused,
    create_token_for,
    practice_token_of,
    public,
    revoke_audited,
)
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

# The Tokens page offers these lifetimes; the API takes any future time.
LIFETIMES = {"": "Never", "30": "30 days", "90": "90 days", "365": "1 year"}


class TokenTyped(BaseModel):
    """The New token form as typed: checked by the route, shown again when refused."""

    label: str = ""
    staff_id: str = ""
    lifetime: str = ""


async def _tokens_page(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    issued: tuple[str, TokenPublic] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    rows = await accounts.practice_tokens(db, admin.practice_id)
    members = [m for m in await accounts.practice_staff(db, admin.practice_id) if m.active]
    return render(
        request,
        "office/tokens.html",
        {
            "staff": admin,
            "time_zone": await time_zone_of(db, admin.practice_id),
            "tokens": [public(token, owner) for token, owner in rows],
            "members": members,
            "lifetimes": LIFETIMES,
            "typed": typed or {"staff_id": admin.id, "lifetime": ""},
            "errors": errors or {},
            "issued": issued,
            "revoked": request.query_params.get("revoked") == "1",
        },
        status_code=status_code,
    )


@router.post("/tokens")
async def create_token_form(
    request: Request,
    db: DbSession,
    admin: CurrentAdmin,
    form: Annotated[TokenTyped, Form()],
) -> Response:
    typed = form.model_dump()
    label, staff_id, lifetime = form.label, form.staff_id, form.lifetime
    errors: dict[str, str] = {}
    if not label.strip():
        errors["label"] = "Label is required: say what the token is for"
    elif len(label.strip()) > 200:
        errors["label"] = "Label: at most 200 characters"
    elif not re.fullmatch(PRINTABLE, label):
        errors["label"] = "Label: letters, digits, spaces and punctuation only"
    if lifetime not in LIFETIMES:
        errors["lifetime"] = "Expires: choose one of the listed options"
    if errors:
        return await _tokens_page(request, db, admin, typed=typed, errors=errors, status_code=422)
    expires_at = datetime.now(UTC) + timedelta(days=int(lifetime)) if lifetime else None
    try:
        token, row, owner = await create_token_for(
            request, db, admin, label.strip(), staff_id or None, expires_at
        )
    except TokenRefused as error:
        return await _tokens_page(
            request, db, admin, typed=typed, errors={error.field: error.message}, status_code=422
        )
    # Shown in this answer only: the token is in no URL, log or later page.
    return await _tokens_page(request, db, admin, issued=(token, public(row, owner)))


@router.get("/tokens")
async def tokens_page(request: Request, db: DbSession, admin: CurrentAdmin) -> HTMLResponse:
    return await _tokens_page(request, db, admin)


@router.post("/tokens/{token_id}/revoke")
async def revoke_form(
    request: Request, db: DbSession, admin: CurrentAdmin, token_id: str
) -> Response:
    token, _ = await practice_token_of(db, admin, token_id)
    await revoke_audited(request, db, admin, token)
    return RedirectResponse("/tokens?revoked=1", status_code=status.HTTP_303_SEE_OTHER)

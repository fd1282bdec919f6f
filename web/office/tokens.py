"""API tokens for practice software, managed by office admins: the Tokens page, with the
schemas and changes it shares with ``/api/v1/tokens`` (``web.api.tokens``).

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
from pydantic import BaseModel, ConfigDict, Field

from domain.audit import AuditAction
from domain.errors import FieldRefused
from infra import accounts
from infra.db.models import ApiToken, StaffUser
from infra.practices import time_zone_of
from web.deps import CurrentAdmin, DbSession, audit_staff, or_404
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

NOT_FOUND = "No API token of this practice has that id"
NO_OWNER = "Choose an active staff member of this practice"
PAST_EXPIRY = "Choose an expiry in the future"
# The Tokens page offers these lifetimes; the API takes any future time.
# No control characters (PostgreSQL refuses NUL in text; a label is shown on a page).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
LIFETIMES = {"": "Never", "30": "30 days", "90": "90 days", "365": "1 year"}


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        min_length=1, max_length=200, pattern=PRINTABLE, description="What the token is for"
    )
    expires_at: datetime | None = Field(default=None, description="UTC; none for no expiry")
    staff_id: str | None = Field(
        default=None,
        description="The staff member the token acts as (their role applies); you if left out",
    )


class TokenTyped(BaseModel):
    """The New token form as typed: checked by the route, shown again when refused."""

    label: str = ""
    staff_id: str = ""
    lifetime: str = ""


class TokenPublic(BaseModel):
    """What a list shows: never the token or its hash."""

    id: str
    label: str
    staff_id: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    state: str = Field(description="`active`, `expired` or `revoked`")


class TokenList(BaseModel):
    items: list[TokenPublic]


class NewToken(TokenPublic):
    token: str = Field(description="Shown this once; only its hash is kept")


def token_state(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def public(token: ApiToken, owner: StaffUser) -> TokenPublic:
    return TokenPublic(
        id=token.id,
        label=token.label,
        staff_id=owner.id,
        owner=owner.name,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        state=token_state(token, datetime.now(UTC)),
    )


async def practice_token_of(
    db: DbSession, admin: StaffUser, token_id: str
) -> tuple[ApiToken, StaffUser]:
    """A token of the admin's practice, and its owner."""
    return or_404(await accounts.practice_token(db, admin.practice_id, token_id), NOT_FOUND)


class TokenRefused(FieldRefused):
    """A token that cannot be made: an owner not of this practice, an expiry past."""


async def create_token_for(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    label: str,
    staff_id: str | None,
    expires_at: datetime | None,
) -> tuple[str, ApiToken, StaffUser]:
    owner = admin
    if staff_id and staff_id != admin.id:
        found = await accounts.staff_member(db, admin.practice_id, staff_id)
        if found is None or not found.active:
            raise TokenRefused("staff_id", NO_OWNER)
        owner = found
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at <= datetime.now(UTC):
            raise TokenRefused("expires_at", PAST_EXPIRY)
    token, row = await accounts.issue_api_token(db, owner, label, expires_at=expires_at)
    await audit_staff(
        db, request, admin, AuditAction.TOKEN_CREATE, detail=f"token {row.id} for staff {owner.id}"
    )
    return token, row, owner


async def revoke_audited(
    request: Request, db: DbSession, admin: StaffUser, token: ApiToken
) -> None:
    if await accounts.revoke_token(db, token):
        await audit_staff(db, request, admin, AuditAction.TOKEN_REVOKE, detail=f"token {token.id}")


# The Tokens page -------------------------------------------------------------------


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

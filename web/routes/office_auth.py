"""Staff log-in and log-out, with server-side sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete

from domain.addresses import normalise_address
from domain.audit import AuditAction
from infra.accounts import find_staff_user
from infra.audit import audit
from infra.db.models import StaffSession, StaffUser
from infra.rate_limits import (
    STAFF_LOGIN_PER_ACCOUNT,
    STAFF_LOGIN_PER_CLIENT,
    Checks,
    exceeded,
    record,
)
from infra.security import new_token, token_hash, verify_password
from web.deps import (
    STAFF_COOKIE,
    DbSession,
    SettingsDep,
    audit_practice,
    client_address,
    staff_actor,
)
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

BAD_LOGIN = "That email and password do not match an office account"
TOO_MANY_LOGINS = "Too many log-in attempts. Wait 15 minutes, then try again."


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return render(request, "office/login.html")


@router.post("/login")
async def log_in(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    # Only failures count: a busy front desk logging in all day is never locked out.
    checks: Checks = [
        (STAFF_LOGIN_PER_CLIENT, client_address(request)),
        (STAFF_LOGIN_PER_ACCOUNT, normalise_address(email)),
    ]
    if await exceeded(db, checks):
        return render(
            request,
            "office/login.html",
            {"error": TOO_MANY_LOGINS, "email": email},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
    user = await find_staff_user(db, email) if email.strip() else None
    # Checks a dummy hash for unknown accounts, so timing does not tell which exist.
    if not verify_password(password, user.password_hash if user else None) or user is None:
        if user is not None:
            audit(
                db,
                audit_practice(user),
                AuditAction.STAFF_LOG_IN_FAILED,
                staff_actor(request, user),
            )
        await record(db, checks)
        return render(
            request,
            "office/login.html",
            {"error": BAD_LOGIN, "email": email},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    token = new_token()
    expires = datetime.now(UTC) + timedelta(hours=settings.staff_session_hours)
    db.add(StaffSession(token_hash=token_hash(token), staff_id=user.id, expires_at=expires))
    audit(db, audit_practice(user), AuditAction.STAFF_LOG_IN, staff_actor(request, user))
    await db.commit()
    # Operators have no office: their page lists practices and links to the Temporal UI.
    home = "/operator" if user.is_operator else "/"
    response = RedirectResponse(home, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        STAFF_COOKIE,
        token,
        max_age=settings.staff_session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return response


@router.post("/logout")
async def log_out(request: Request, db: DbSession) -> Response:
    token = request.cookies.get(STAFF_COOKIE)
    session = await db.get(StaffSession, token_hash(token)) if token else None
    if session is not None:
        user = await db.get(StaffUser, session.staff_id)
        await db.execute(delete(StaffSession).where(StaffSession.token_hash == session.token_hash))
        if user is not None:
            audit(db, audit_practice(user), AuditAction.STAFF_LOG_OUT, staff_actor(request, user))
        await db.commit()
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(STAFF_COOKIE)
    return response

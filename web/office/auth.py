"""Staff log-in and log-out, with server-side sessions; choosing one's own password.

Wrong passwords are answered in a way nobody can turn against the account's owner:
- the client sending them is refused (429) after a few for one account, and after more
  across accounts (per client and per account+client pair, 15-minute windows);
- every attempt at an account that has had wrong passwords lately, from any client, waits
  a little first (growing with the failures, capped at a few seconds), so guessing from
  many clients is slowed too;
- the account itself is never locked: its owner, at another client, logs in after at
  most that short wait.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from domain.addresses import normalise_address
from domain.audit import AuditAction
from infra.accounts import (
    PasswordChange,
    StaffRuleError,
    change_own_password,
    end_staff_session,
    find_staff_user,
    staff_session,
    staff_user,
    start_staff_session,
)
from infra.audit import audit
from infra.db.models import StaffUser
from infra.rate_limits import (
    STAFF_LOGIN_PER_ACCOUNT,
    STAFF_LOGIN_PER_ACCOUNT_CLIENT,
    STAFF_LOGIN_PER_CLIENT,
    Attempt,
    Checks,
    count,
    uncount,
)
from infra.security import token_hash, verify_password
from web.cookies import STAFF_COOKIE, set_cookie
from web.deps import (
    DbSession,
    SettingsDep,
    audit_practice,
    client_address,
    signed_in_account,
    staff_actor,
    staff_cookie_name,
)
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

BAD_LOGIN = "That email and password do not match an office account"
TOO_MANY_LOGINS = (
    "Too many wrong passwords from this device. Wait 15 minutes, then try again, or log in "
    "from another device."
)
DEACTIVATED_STAFF = "This account has been deactivated. Ask an office administrator."
# Operators are ended and enabled again from the server's command line.
DEACTIVATED_OPERATOR = "This operator has been revoked. Ask whoever runs the server."

# The wait before checking a password, by wrong passwords for the account in the last
# 15 minutes: none for the first few (typos), then doubling up to the cap. Thresholds
# start at STAFF_LOGIN_PER_ACCOUNT.attempts; tests read this table rather than a number.
ACCOUNT_DELAYS: tuple[tuple[int, float], ...] = (
    (STAFF_LOGIN_PER_ACCOUNT.attempts, 0.25),
    (STAFF_LOGIN_PER_ACCOUNT.attempts + 1, 0.5),
    (STAFF_LOGIN_PER_ACCOUNT.attempts + 2, 1.0),
    (STAFF_LOGIN_PER_ACCOUNT.attempts + 3, 2.0),
    (STAFF_LOGIN_PER_ACCOUNT.attempts + 5, 3.0),
)


def account_delay(at_account: Attempt) -> float:
    """Seconds to wait before checking a password, given this attempt counted against
    its account: by the attempts counted before it."""
    failures = max((c.attempts - 1 for c in at_account.counted), default=0.0)
    return max((seconds for count, seconds in ACCOUNT_DELAYS if failures >= count), default=0.0)


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return render(request, "office/login.html")


class LogInForm(BaseModel):
    """The office log-in form, named as its inputs (an empty field is a wrong password)."""

    email: str = ""
    password: str = ""


@router.post("/login")
async def log_in(
    request: Request, db: DbSession, settings: SettingsDep, form: Annotated[LogInForm, Form()]
) -> Response:
    email, password = form.email, form.password
    client = client_address(request)
    account = normalise_address(email)
    # Every attempt is counted before its password is checked, so a burst sent at once
    # is counted one by one and refused past the limit; a right password takes its count
    # back, so only failures count and a busy front desk is never slowed down.
    per_client: Checks = [
        (STAFF_LOGIN_PER_CLIENT, client),
        (STAFF_LOGIN_PER_ACCOUNT_CLIENT, f"{account}|{client}" if client else None),
    ]
    from_client = await count(db, per_client)
    if not from_client.allowed:
        # Still counted, so a client that keeps hammering stays refused; never checked.
        refused = render(
            request,
            "office/login.html",
            {"error": TOO_MANY_LOGINS, "email": email},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        refused.headers["Retry-After"] = str(from_client.retry_after())
        return refused
    # Counted against the account only once the client is allowed, so the account's
    # wait grows with the passwords actually checked.
    at_account = await count(db, [(STAFF_LOGIN_PER_ACCOUNT, account)])
    # Before the check, whatever its outcome: a guesser cannot cut the wait short by
    # hanging up early on the answers that are slow. ``count`` has handed the session's
    # connection back: guessers kept waiting do not keep the front desk's requests
    # waiting too.
    if delay := account_delay(at_account):
        await asyncio.sleep(delay)
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
            await db.commit()
        return render(
            request,
            "office/login.html",
            {"error": BAD_LOGIN, "email": email},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    await uncount(db, Attempt(from_client.counted + at_account.counted))
    if not user.active:
        # Said only to someone who knows the password: no account list for guessers.
        return render(
            request,
            "office/login.html",
            {"error": DEACTIVATED_OPERATOR if user.is_operator else DEACTIVATED_STAFF},
            status_code=status.HTTP_403_FORBIDDEN,
        )
    token = await start_staff_session(db, user, timedelta(hours=settings.staff_session_hours))
    audit(db, audit_practice(user), AuditAction.STAFF_LOG_IN, staff_actor(request, user))
    await db.commit()
    # Operators have no office: their page lists practices and links to the Temporal UI.
    home = "/operator" if user.is_operator else "/"
    if user.must_change_password:
        home = "/change-password"
    response = RedirectResponse(home, status_code=status.HTTP_303_SEE_OTHER)
    set_cookie(response, settings, STAFF_COOKIE, token, max_age=settings.staff_session_hours * 3600)
    return response


@router.post("/logout")
async def log_out(request: Request, db: DbSession, settings: SettingsDep) -> Response:
    name = staff_cookie_name(settings)
    token = request.cookies.get(name)
    session = await staff_session(db, token)
    if session is not None:
        user = await staff_user(db, session.staff_id)
        await end_staff_session(db, session)
        if user is not None:
            audit(db, audit_practice(user), AuditAction.STAFF_LOG_OUT, staff_actor(request, user))
        await db.commit()
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(name, path="/", secure=settings.secure_cookies, httponly=True)
    return response


# Choosing one's own password -----------------------------------------------------------

SignedIn = Annotated[StaffUser, Depends(signed_in_account)]


@router.get("/change-password")
async def change_password_page(request: Request, user: SignedIn) -> HTMLResponse:
    return render(request, "office/change_password.html", {"user": user, "errors": {}})


class PasswordForm(BaseModel):
    """The Change password form, named as its inputs (an empty field is a refusal)."""

    current_password: str = ""
    new_password: str = ""
    confirm_password: str = ""


@router.post("/change-password")
async def change_password(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    user: SignedIn,
    form: Annotated[PasswordForm, Form()],
) -> Response:
    change = PasswordChange(form.current_password, form.new_password, form.confirm_password)
    token = request.cookies.get(staff_cookie_name(settings))
    try:
        await change_own_password(
            db, user, change, session_hash=token_hash(token) if token else None
        )
    except StaffRuleError as error:
        return render(
            request,
            "office/change_password.html",
            {"user": user, "errors": {error.field or "new_password": error.message}},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    audit(db, audit_practice(user), AuditAction.STAFF_PASSWORD_CHANGE, staff_actor(request, user))
    await db.commit()
    home = "/operator" if user.is_operator else "/"
    return RedirectResponse(home, status_code=status.HTTP_303_SEE_OTHER)

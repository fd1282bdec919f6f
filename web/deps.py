"""Dependencies shared by every router: settings, database session, Temporal, signed-in staff.

The one web module that names SQLAlchemy: routes take ``DbSession`` and hand it to infra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from domain.audit import PLATFORM, ActorType, AuditAction, listing_detail
from infra import accounts, directory, practices
from infra.audit import Actor, audit
from infra.db.models import Patient, Practice, StaffUser
from infra.settings import Settings
from web.client_address import resolve as resolve_client_address
from web.cookies import STAFF_COOKIE, cookie_name
from web.state import AppState

# A token's last use is written at most this often, so each API call is not a write.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)
# The idle clock is moved at most this often, for the same reason.
SESSION_SEEN_RESOLUTION = timedelta(seconds=30)
PATIENT_NOT_FOUND = "Patient not found"

T = TypeVar("T")


# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def``
# dependency in its thread pool, a hand-off to another thread and back on every request
# (py-spy: the largest single item of a signed-in portal page's own CPU).
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.app_state
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_app_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_db(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]


class TemporalUnavailable(Exception):
    """Temporal could not be reached; ``web.errors`` answers 503 in words."""


async def temporal_of(state: AppState) -> Client:
    """The app's Temporal client, connected on first use (a route calls this once it has
    read its form, so a failure can answer with the form again)."""
    try:
        return await state.temporal()
    except RuntimeError as error:  # the SDK's "failed client connect"
        raise TemporalUnavailable from error


class NotSignedIn(Exception):
    """Raised by office page dependencies; the app turns it into a redirect to log-in."""


class NotOfficeStaff(Exception):
    """An operator on an office page: the app sends them to the operator page."""


class MustChangePassword(Exception):
    """Signed in with a temporary password: the app sends them to choose their own."""


def staff_cookie_name(settings: Settings) -> str:
    """``__Host-`` when the public URL is https (``web.cookies``)."""
    return cookie_name(settings, STAFF_COOKIE)


async def signed_in_account(request: Request, db: DbSession, settings: SettingsDep) -> StaffUser:
    """The account of a live session, even one that must still change its password.

    A session ends 12 hours after log-in (a setting) and after 15 minutes without a
    request (a setting); an ended session's row is deleted, so its cookie opens nothing.
    """
    token = request.cookies.get(staff_cookie_name(settings))
    if not token:
        raise NotSignedIn
    session = await accounts.staff_session(db, token)
    if session is None:
        raise NotSignedIn
    now = datetime.now(UTC)
    last_seen = session.last_seen_at or session.created_at
    idle = timedelta(minutes=settings.staff_idle_minutes)
    if session.expires_at <= now or now - last_seen >= idle:
        await accounts.end_staff_session(db, session)
        await db.commit()
        raise NotSignedIn
    user = await accounts.staff_user(db, session.staff_id)
    if user is None or not user.active:
        raise NotSignedIn
    if now - last_seen >= SESSION_SEEN_RESOLUTION:
        session.last_seen_at = now
        await db.commit()
    return user


async def account_from_cookie(
    user: Annotated[StaffUser, Depends(signed_in_account)],
) -> StaffUser:
    """Whoever is signed in: practice staff or an operator, with a password of their own."""
    if user.must_change_password:
        raise MustChangePassword
    return user


async def staff_from_cookie(
    user: Annotated[StaffUser, Depends(account_from_cookie)],
) -> StaffUser:
    """Practice staff only: operators see no practice's patients or messages."""
    if user.is_operator:
        raise NotOfficeStaff
    return user


CurrentStaff = Annotated[StaffUser, Depends(staff_from_cookie)]
CurrentAccount = Annotated[StaffUser, Depends(account_from_cookie)]

_bearer = HTTPBearer(auto_error=False, description="An API token from `securemail token create`")


def _bearer_refused(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def account_from_bearer(
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StaffUser:
    """The account an API token acts as: practice staff or an operator."""
    unauthorised = _bearer_refused("A valid API token is required")
    if credentials is None:
        raise unauthorised
    found = await accounts.token_and_owner(db, credentials.credentials)
    if found is None:
        raise unauthorised
    api_token, user = found
    now = datetime.now(UTC)
    if api_token.revoked_at is not None:
        raise _bearer_refused("This API token has been revoked")
    if api_token.expires_at is not None and api_token.expires_at <= now:
        raise _bearer_refused("This API token has expired")
    if not user.active:
        raise unauthorised
    if api_token.last_used_at is None or now - api_token.last_used_at >= TOKEN_USE_RESOLUTION:
        api_token.last_used_at = now
        await db.commit()
    return user


async def staff_from_bearer(
    user: Annotated[StaffUser, Depends(account_from_bearer)],
) -> StaffUser:
    if user.is_operator:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="Operators belong to no practice: this API is for practice software",
        )
    return user


ApiStaff = Annotated[StaffUser, Depends(staff_from_bearer)]
ApiAccount = Annotated[StaffUser, Depends(account_from_bearer)]


def or_404(found: T | None, detail: str) -> T:
    """What a route looked up (by an id from its URL), or 404 with ``detail`` if none."""
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail)
    return found


async def practice_of(db: AsyncSession, user: StaffUser) -> Practice:
    # A foreign key guarantees it; the 404 keeps mypy and readers honest.
    return or_404(await practices.practice(db, user.practice_id), "Practice not found")


async def practice_patient(db: AsyncSession, staff: StaffUser, patient_id: str) -> Patient:
    """A patient of the staff member's practice, for the office pages and the API."""
    return or_404(await directory.get_patient(db, staff.reach, patient_id), PATIENT_NOT_FOUND)


def client_address(request: Request) -> str | None:
    """The client's IP address (never anything else): see ``web.client_address``."""
    state: AppState = request.app.state.app_state
    return resolve_client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        state.settings.forwarded_allow_ips,
    )


def staff_actor(request: Request, user: StaffUser) -> Actor:
    kind = ActorType.OPERATOR if user.is_operator else ActorType.STAFF
    return Actor(kind, user.id, client_address(request))


def audit_practice(user: StaffUser) -> str:
    """Whose log an account's own events (log-in, log-out) go to."""
    return PLATFORM if user.is_operator else user.practice_id


def _require_admin(user: StaffUser) -> StaffUser:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Office administrators only")
    return user


async def admin_from_cookie(user: CurrentStaff) -> StaffUser:
    return _require_admin(user)


async def admin_from_bearer(user: ApiStaff) -> StaffUser:
    return _require_admin(user)


CurrentAdmin = Annotated[StaffUser, Depends(admin_from_cookie)]
ApiAdmin = Annotated[StaffUser, Depends(admin_from_bearer)]


async def audit_staff(
    db: AsyncSession,
    request: Request,
    staff: StaffUser,
    action: AuditAction,
    *,
    patient_id: str | None = None,
    secure_email_id: str | None = None,
    detail: str | None = None,
) -> None:
    """Records what a staff member did, in its own commit."""
    audit(
        db,
        audit_practice(staff),
        action,
        staff_actor(request, staff),
        patient_id=patient_id,
        secure_email_id=secure_email_id,
        detail=detail,
    )
    await db.commit()


async def audit_list(
    db: AsyncSession,
    request: Request,
    staff: StaffUser,
    action: AuditAction,
    summary: str,
    patient_ids: Iterable[str],
) -> None:
    """Records that a staff member was shown a list naming patients (R13): by the list's
    summary (a count, never what was typed) and the ids of the patients it showed."""
    await audit_staff(db, request, staff, action, detail=listing_detail(summary, patient_ids))

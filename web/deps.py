"""Dependencies shared by every router: settings, database session, signed-in staff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import PLATFORM, ActorType, AuditAction
from infra.audit import Actor, audit
from infra.db.models import ApiToken, Practice, StaffSession, StaffUser
from infra.security import token_hash
from infra.settings import Settings
from web.state import AppState

STAFF_COOKIE = "staff_session"


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.app_state
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_app_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_db(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]


class NotSignedIn(Exception):
    """Raised by office page dependencies; the app turns it into a redirect to log-in."""


class NotOfficeStaff(Exception):
    """An operator on an office page: the app sends them to the operator page."""


async def account_from_cookie(request: Request, db: DbSession) -> StaffUser:
    """Whoever is signed in: practice staff or an operator."""
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        raise NotSignedIn
    session = await db.get(StaffSession, token_hash(token))
    if session is None or session.expires_at <= datetime.now(UTC):
        raise NotSignedIn
    user = await db.get(StaffUser, session.staff_id)
    if user is None or not user.active:
        raise NotSignedIn
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


async def account_from_bearer(
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StaffUser:
    """The account an API token acts as: practice staff or an operator."""
    unauthorised = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="A valid API token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None:
        raise unauthorised
    user = await db.scalar(
        select(StaffUser)
        .join(ApiToken, ApiToken.staff_id == StaffUser.id)
        .where(ApiToken.token_hash == token_hash(credentials.credentials))
    )
    if user is None or not user.active:
        raise unauthorised
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


async def practice_of(db: AsyncSession, user: StaffUser) -> Practice:
    practice = await db.get(Practice, user.practice_id)
    if practice is None:  # a foreign key guarantees it; this keeps mypy and readers honest
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Practice not found")
    return practice


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


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

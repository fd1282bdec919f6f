"""Making and revoking API tokens, for an office administrator on the Tokens page or
through ``/api/v1/tokens``; both are audited by token and staff id, never the token.

A revoked or expired token is refused at once (``web.deps``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request

from domain.api_tokens import TokenPublic
from domain.audit import AuditAction
from domain.errors import FieldRefused
from infra import accounts
from infra.db.models import ApiToken, StaffUser
from web.deps import DbSession, audit_staff, or_404

NOT_FOUND = "No API token of this practice has that id"
NO_OWNER = "Choose an active staff member of this practice"
PAST_EXPIRY = "Choose an expiry in the future"


class TokenRefused(FieldRefused):
    """A token that cannot be made: an owner not of this practice, an expiry past."""


def token_state(token: ApiToken, now: datetime) -> str:
    """``revoked``, ``expired`` or ``active``, as of ``now``."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def public(token: ApiToken, owner: StaffUser) -> TokenPublic:
    """The token as lists show it: its owner by name, never the token or its hash."""
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


async def create_token_for(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    label: str,
    staff_id: str | None,
    expires_at: datetime | None,
) -> tuple[str, ApiToken, StaffUser]:
    """A new token (shown once), its row and its owner: ``staff_id``'s, or the admin's own.
    ``TokenRefused`` names the field when the owner or the expiry cannot be used."""
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
    """Revokes the token; audited only if it was not revoked already."""
    if await accounts.revoke_token(db, token):
        await audit_staff(db, request, admin, AuditAction.TOKEN_REVOKE, detail=f"token {token.id}")

"""Creating practices, staff users and API tokens: used by the CLI and the dev stack."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from domain.staff import StaffRole
from infra.db.models import ApiToken, Practice, StaffUser
from infra.security import hash_password, new_token, token_hash


async def create_practice(
    db: AsyncSession,
    name: str,
    *,
    sender_address: str | None = None,
    secure_email_enabled: bool = False,
) -> Practice:
    practice = Practice(
        name=name,
        sender_address=sender_address,
        secure_email_enabled=secure_email_enabled,
        expiry_days=7,
    )
    db.add(practice)
    await db.flush()
    return practice


async def create_staff_user(
    db: AsyncSession,
    practice: Practice | None,
    email: str,
    password: str,
    *,
    name: str = "Office admin",
    role: StaffRole = StaffRole.CLERK,
) -> StaffUser:
    """Practice staff need their practice; an operator has none."""
    if (practice is None) != (role == StaffRole.OPERATOR):
        raise ValueError("practice staff belong to a practice; operators to none")
    user = StaffUser(
        practice_id=practice.id if practice is not None else None,
        email=normalise_address(email),
        name=name,
        password_hash=hash_password(password),
        role=role.value,
    )
    db.add(user)
    await db.flush()
    return user


async def find_staff_user(db: AsyncSession, email: str) -> StaffUser | None:
    return await db.scalar(select(StaffUser).where(StaffUser.email == normalise_address(email)))


async def create_api_token(db: AsyncSession, user: StaffUser, label: str) -> str:
    """Returns the token itself; only its hash is kept."""
    token = new_token()
    db.add(ApiToken(token_hash=token_hash(token), staff_id=user.id, label=label))
    await db.flush()
    return token

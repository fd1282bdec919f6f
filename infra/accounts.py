"""Practices, staff accounts and API tokens: made by the CLI, the dev stack and admins.

The rules an office relies on live here, not in the routes, so the Staff page, the API
and the command line cannot disagree: a practice always keeps one active admin; a
deactivated account's sessions end and its tokens are revoked at once; a temporary
password must be replaced at the next log-in.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from domain.staff import StaffRole
from infra.db.models import ApiToken, Clinic, Practice, StaffSession, StaffUser
from infra.security import NewSession, hash_password, new_token, token_hash, verify_password

# Long enough that a guess-per-second attacker gets nowhere; no composition rules, which
# mostly make people write passwords down (NIST SP 800-63B).
MIN_PASSWORD_LENGTH = 12
LAST_ADMIN = (
    "This is the practice's last active administrator. Make another staff member an "
    "administrator first."
)
ALREADY_HAS_ACCOUNT = "This email address already has a Secure Email account"


class StaffRuleError(ValueError):
    """A staff change the practice's rules refuse; ``message`` says why in words.

    Raised before anything is changed, so the caller need not roll back (a rollback
    would expire every loaded object, which async sessions cannot reload implicitly).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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
    must_change_password: bool = False,
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
        must_change_password=must_change_password,
    )
    db.add(user)
    await db.flush()
    return user


async def find_staff_user(db: AsyncSession, email: str) -> StaffUser | None:
    return await db.scalar(select(StaffUser).where(StaffUser.email == normalise_address(email)))


async def create_api_token(
    db: AsyncSession, user: StaffUser, label: str, *, expires_at: datetime | None = None
) -> str:
    """Returns the token itself; only its hash is kept."""
    token, _ = await issue_api_token(db, user, label, expires_at=expires_at)
    return token


async def issue_api_token(
    db: AsyncSession, user: StaffUser, label: str, *, expires_at: datetime | None = None
) -> tuple[str, ApiToken]:
    """The token (shown once) and its row (what lists show)."""
    token = new_token()
    row = ApiToken(
        token_hash=token_hash(token), staff_id=user.id, label=label, expires_at=expires_at
    )
    db.add(row)
    await db.flush()
    return token, row


def temporary_password() -> str:
    """Shown once to the admin, who passes it on; the user replaces it at log-in."""
    return secrets.token_urlsafe(12)


# Staff management (admins, through the Staff page and /api/v1/staff) ---------------------


async def practice_staff(db: AsyncSession, practice_id: str) -> list[StaffUser]:
    statement = (
        select(StaffUser)
        .where(StaffUser.practice_id == practice_id)
        .order_by(StaffUser.active.desc(), StaffUser.name, StaffUser.email)
    )
    return list((await db.scalars(statement)).all())


async def staff_member(db: AsyncSession, practice_id: str, staff_id: str) -> StaffUser | None:
    """Someone of this practice only: another practice's id finds nobody."""
    return await db.scalar(
        select(StaffUser).where(StaffUser.id == staff_id, StaffUser.practice_id == practice_id)
    )


async def add_staff(
    db: AsyncSession,
    practice_id: str,
    email: str,
    name: str,
    role: StaffRole,
    clinic_ids: Sequence[str] = (),
) -> tuple[StaffUser, str]:
    """A new account with a temporary password (returned, to be shown once), working for
    the clinics given (none: every clinic)."""
    if role == StaffRole.OPERATOR:
        raise StaffRuleError("Choose administrator or clerk", field="role")
    clinics = await _practice_clinic_ids(db, practice_id, clinic_ids)
    if await find_staff_user(db, email) is not None:
        raise StaffRuleError(ALREADY_HAS_ACCOUNT, field="email")
    practice = await db.get(Practice, practice_id)
    if practice is None:
        raise StaffRuleError("Practice not found")
    password = temporary_password()
    user = await create_staff_user(
        db, practice, email, password, name=name, role=role, must_change_password=True
    )
    user.clinic_ids = clinics
    await db.flush()
    return user, password


class UnknownClinics(ValueError):
    """A clinic id given for a member of staff is not one of the practice's clinics."""


async def _practice_clinic_ids(
    db: AsyncSession, practice_id: str, clinic_ids: Sequence[str]
) -> list[str]:
    """The ids given, each once and sorted; ``UnknownClinics`` if one is not a clinic of
    the practice (another practice's is answered as none at all)."""
    wanted = sorted(set(clinic_ids))
    if not wanted:
        return []
    found = set(
        (
            await db.scalars(
                select(Clinic.id).where(Clinic.practice_id == practice_id, Clinic.id.in_(wanted))
            )
        ).all()
    )
    if found != set(wanted):
        raise UnknownClinics
    return wanted


async def change_clinics(db: AsyncSession, user: StaffUser, clinic_ids: Sequence[str]) -> list[str]:
    """Gives the member of staff these clinics (none: every clinic); returns those they
    had. Their next request already sees only the patients of the new ones."""
    before = list(user.clinic_ids)
    wanted = await _practice_clinic_ids(db, user.practice_id, clinic_ids)
    if wanted != before:
        user.clinic_ids = wanted
        await db.flush()
    return before


async def _lock_practice(db: AsyncSession, practice_id: str) -> None:
    """Serialises admin changes of one practice (PostgreSQL row lock), so two admins
    demoting each other at the same moment cannot leave the practice with none."""
    await db.execute(select(Practice.id).where(Practice.id == practice_id).with_for_update())


async def _other_active_admins(db: AsyncSession, user: StaffUser) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(StaffUser)
        .where(
            StaffUser.practice_id == user.practice_id,
            StaffUser.role == StaffRole.ADMIN.value,
            StaffUser.active.is_(True),
            StaffUser.id != user.id,
        )
    )
    return count or 0


async def change_role(db: AsyncSession, user: StaffUser, role: StaffRole) -> StaffRole:
    """Returns the role it had. Refuses to demote the last active admin."""
    if role == StaffRole.OPERATOR:
        raise StaffRuleError("Choose administrator or clerk", field="role")
    before = StaffRole(user.role)
    if before == role:
        return before
    await _lock_practice(db, user.practice_id)
    if before == StaffRole.ADMIN and user.active and await _other_active_admins(db, user) == 0:
        raise StaffRuleError(LAST_ADMIN)
    user.role = role.value
    await db.flush()
    return before


async def end_sessions(db: AsyncSession, user: StaffUser, *, keep: str | None = None) -> None:
    """Signs the account out everywhere (but the session whose hash is ``keep``)."""
    statement = delete(StaffSession).where(StaffSession.staff_id == user.id)
    if keep is not None:
        statement = statement.where(StaffSession.token_hash != keep)
    await db.execute(statement)


async def deactivate(db: AsyncSession, user: StaffUser) -> None:
    """Their sessions end and their tokens are revoked now, not at the next expiry."""
    if not user.active:
        return
    await _lock_practice(db, user.practice_id)
    if user.is_admin and await _other_active_admins(db, user) == 0:
        raise StaffRuleError(LAST_ADMIN)
    user.active = False
    await end_sessions(db, user)
    await db.execute(
        update(ApiToken)
        .where(ApiToken.staff_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    await db.flush()


async def reset_password(db: AsyncSession, user: StaffUser) -> str:
    """A new temporary password (returned, shown once); whoever held the old one, on
    any browser, is signed out."""
    if not user.active:
        raise StaffRuleError("This account is deactivated")
    password = temporary_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    await end_sessions(db, user)
    await db.flush()
    return password


@dataclass(frozen=True)
class PasswordChange:
    current: str
    new: str
    confirm: str


async def change_own_password(
    db: AsyncSession, user: StaffUser, change: PasswordChange, *, session_hash: str | None
) -> None:
    """The account's own choice; other browsers signed in as them are signed out."""
    if not verify_password(change.current, user.password_hash):
        raise StaffRuleError("Your current password is not correct", field="current_password")
    if len(change.new) < MIN_PASSWORD_LENGTH:
        raise StaffRuleError(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters",
            field="new_password",
        )
    if change.new == change.current:
        raise StaffRuleError(
            "Choose a password different from the current one", field="new_password"
        )
    if change.new != change.confirm:
        raise StaffRuleError("The two new passwords do not match", field="confirm_password")
    user.password_hash = hash_password(change.new)
    user.must_change_password = False
    await end_sessions(db, user, keep=session_hash)
    await db.flush()


# API tokens (admins, through the Tokens page and /api/v1/tokens) --------------------------


async def practice_tokens(db: AsyncSession, practice_id: str) -> list[tuple[ApiToken, StaffUser]]:
    """Every token acting as someone of the practice, newest first."""
    statement = (
        select(ApiToken, StaffUser)
        .join(StaffUser, ApiToken.staff_id == StaffUser.id)
        .where(StaffUser.practice_id == practice_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    )
    return [(token, user) for token, user in (await db.execute(statement)).all()]


async def practice_token(
    db: AsyncSession, practice_id: str, token_id: str
) -> tuple[ApiToken, StaffUser] | None:
    row = (
        await db.execute(
            select(ApiToken, StaffUser)
            .join(StaffUser, ApiToken.staff_id == StaffUser.id)
            .where(ApiToken.id == token_id, StaffUser.practice_id == practice_id)
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def revoke_token(db: AsyncSession, token: ApiToken) -> bool:
    """False if it was already revoked (nothing changes)."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = datetime.now(UTC)
    await db.flush()
    return True


# Staff sessions (log-in, the session cookie) ----------------------------------------------


async def start_staff_session(db: AsyncSession, user: StaffUser, lifetime: timedelta) -> str:
    """The new session's token (for the cookie); only its hash is kept. Not committed:
    the caller audits the log-in in the same commit."""
    session = NewSession.begin(lifetime)
    db.add(StaffSession(staff_id=user.id, **session.columns()))
    return session.token


async def staff_session(db: AsyncSession, token: str | None) -> StaffSession | None:
    return await db.get(StaffSession, token_hash(token)) if token else None


async def end_staff_session(db: AsyncSession, session: StaffSession) -> None:
    """Not committed: the caller audits the log-out in the same commit."""
    await db.execute(delete(StaffSession).where(StaffSession.token_hash == session.token_hash))


async def staff_user(db: AsyncSession, staff_id: str) -> StaffUser | None:
    return await db.get(StaffUser, staff_id)


async def token_and_owner(db: AsyncSession, token: str) -> tuple[ApiToken, StaffUser] | None:
    found = (
        await db.execute(
            select(ApiToken, StaffUser)
            .join(StaffUser, ApiToken.staff_id == StaffUser.id)
            .where(ApiToken.token_hash == token_hash(token))
        )
    ).first()
    return (found[0], found[1]) if found is not None else None

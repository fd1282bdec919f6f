"""Platform operators: made, listed and ended from the command line (``securemail operator``).

An operator is a staff account of role operator, with no practice, that alone may have
Temporal payloads decoded (``web.ops.codec``): in a signed-in browser, or with a bearer
token for the ``temporal`` CLI's ``--codec-auth``. Such a token opens every practice's
histories, so it lives 90 days unless asked otherwise, and never for ever.

Revoking an operator deactivates the account, deletes its sessions and revokes its
tokens in one commit. Every request looks its token or session up in the database (no
process keeps a copy), so the next request of each is refused. Revoked is not deleted:
the audit log keeps naming the account, and ``create`` enables it again, with a new
password and a new token, never the old ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from domain.audit import PLATFORM, ActorType, AuditAction
from domain.operators import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS
from domain.staff import StaffRole
from infra.accounts import (
    MIN_PASSWORD_LENGTH,
    create_staff_user,
    find_staff_user,
    issue_api_token,
    token_and_owner,
)
from infra.audit import SYSTEM, Actor, audit
from infra.db.models import ApiToken, AuditEvent, StaffSession, StaffUser
from infra.security import hash_password

TOKEN_LABEL = "Temporal codec"
# A token's last use is written at most this often: the Temporal UI and CLI send a decode
# per page of a history, and a write per request would make each of them a transaction
# on the token's row. "Last used" is then exact to the minute, which is what a person
# reading the list needs.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


class OperatorError(ValueError):
    """An operator command refused; ``message`` says why and what to do instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_token_days(days: int) -> None:
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise OperatorError(
            f"--days must be a whole number of days from 1 to {MAX_TOKEN_DAYS}, not {days}"
        )


async def issue_operator_token(
    db: AsyncSession, user: StaffUser, *, days: int = DEFAULT_TOKEN_DAYS, label: str = TOKEN_LABEL
) -> tuple[str, ApiToken]:
    """A codec token for ``user`` (shown once) that ends ``days`` from now; not audited
    here: the caller says in which event it was made."""
    check_token_days(days)
    expires_at = datetime.now(UTC) + timedelta(days=days)
    return await issue_api_token(db, user, label, expires_at=expires_at)


def _token_created(db: AsyncSession, user: StaffUser, row: ApiToken) -> None:
    expires = f"{row.expires_at:%Y-%m-%d}" if row.expires_at else "never"
    detail = f"token {row.id} for staff {user.id}, expires {expires} (command line)"
    audit(db, PLATFORM, AuditAction.TOKEN_CREATE, SYSTEM, detail=detail)


@dataclass(frozen=True)
class NewOperator:
    email: str
    token: str
    expires_at: datetime
    enabled_again: bool


async def create_operator(
    db: AsyncSession,
    email: str,
    password: str,
    *,
    name: str | None = None,
    days: int = DEFAULT_TOKEN_DAYS,
) -> NewOperator:
    """A new operator, or a revoked one enabled again, with ``password`` and a new token.

    Whoever runs the command line holds the server: the events name the system as actor.
    Not committed; nothing is changed when it refuses.
    """
    check_token_days(days)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters")
    address = normalise_address(email)
    user = await find_staff_user(db, address)
    enabled_again = False
    if user is None:
        user = await create_staff_user(
            db, None, address, password, name=name or address, role=StaffRole.OPERATOR
        )
    elif not user.is_operator:
        raise OperatorError(f"{address} is a practice's staff account, not an operator")
    elif user.active:
        raise OperatorError(
            f"{address} is already an operator. For another codec token: "
            f"securemail token create --email {address}; to end every token and session "
            f"of theirs: securemail operator revoke {address}"
        )
    else:
        # The password may be why they were revoked: the old one never comes back.
        user.active = True
        user.password_hash = hash_password(password)
        user.must_change_password = False
        if name:
            user.name = name
        enabled_again = True
    token, row = await issue_operator_token(db, user, days=days)
    how = "enabled again" if enabled_again else "created"
    detail = f"operator {user.id} {how} (command line)"
    audit(db, PLATFORM, AuditAction.OPERATOR_CREATE, SYSTEM, detail=detail)
    _token_created(db, user, row)
    await db.flush()
    assert row.expires_at is not None
    return NewOperator(address, token, row.expires_at, enabled_again)


async def create_token(db: AsyncSession, user: StaffUser, label: str = TOKEN_LABEL) -> str:
    """Another codec token for a live operator (``securemail token create``), audited."""
    token, row = await issue_operator_token(db, user, label=label)
    _token_created(db, user, row)
    return token


@dataclass(frozen=True)
class Revoked:
    email: str
    tokens: int
    sessions: int
    was_active: bool


async def revoke_operator(db: AsyncSession, email: str) -> Revoked:
    """Ends the operator: account, sessions and tokens, at once. Again on a revoked one
    ends whatever was made since (nothing, unless someone wrote to the database)."""
    user = await find_staff_user(db, email)
    if user is None or not user.is_operator:
        raise OperatorError(f"No operator {normalise_address(email)}: nothing was revoked")
    now = datetime.now(UTC)
    live_tokens = (ApiToken.staff_id == user.id, ApiToken.revoked_at.is_(None))
    tokens = await db.scalar(select(func.count()).select_from(ApiToken).where(*live_tokens))
    sessions = await db.scalar(
        select(func.count()).select_from(StaffSession).where(StaffSession.staff_id == user.id)
    )
    await db.execute(update(ApiToken).where(*live_tokens).values(revoked_at=now))
    await db.execute(delete(StaffSession).where(StaffSession.staff_id == user.id))
    was_active = user.active
    user.active = False
    detail = (
        f"operator {user.id}: {tokens or 0} token(s) revoked, "
        f"{sessions or 0} session(s) ended (command line)"
    )
    audit(db, PLATFORM, AuditAction.OPERATOR_REVOKE, SYSTEM, detail=detail)
    await db.flush()
    return Revoked(user.email, tokens or 0, sessions or 0, was_active)


@dataclass(frozen=True)
class OperatorSummary:
    email: str
    name: str
    active: bool
    created_at: datetime
    # The latest of a token's use, a session's request and a log-in; None if never.
    last_used_at: datetime | None
    live_tokens: int
    live_sessions: int


def _latest(times: Iterable[datetime | None]) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


async def list_operators(
    db: AsyncSession, *, session_idle: timedelta, now: datetime | None = None
) -> list[OperatorSummary]:
    """Every operator, revoked ones included, by email. Operators are a handful of
    people: their tokens and sessions are read whole and counted here."""
    now = now or datetime.now(UTC)
    users = list(
        (
            await db.scalars(
                select(StaffUser)
                .where(StaffUser.role == StaffRole.OPERATOR.value)
                .order_by(StaffUser.email)
            )
        ).all()
    )
    ids = [user.id for user in users]
    tokens = (await db.scalars(select(ApiToken).where(ApiToken.staff_id.in_(ids)))).all()
    sessions = (await db.scalars(select(StaffSession).where(StaffSession.staff_id.in_(ids)))).all()
    # Sessions are deleted when they end; the log-in events in the platform's log stay.
    latest_log_ins = await db.execute(
        select(AuditEvent.actor_id, func.max(AuditEvent.at))
        .where(
            AuditEvent.practice_id == PLATFORM,
            AuditEvent.action == AuditAction.STAFF_LOG_IN.value,
            AuditEvent.actor_id.in_(ids),
        )
        .group_by(AuditEvent.actor_id)
    )
    log_ins = {row[0]: row[1] for row in latest_log_ins}
    summaries = []
    for user in users:
        own_tokens = [t for t in tokens if t.staff_id == user.id]
        own_sessions = [s for s in sessions if s.staff_id == user.id]
        live_tokens = [
            t
            for t in own_tokens
            if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
        ]
        live_sessions = [
            s
            for s in own_sessions
            if s.expires_at > now and now - (s.last_seen_at or s.created_at) < session_idle
        ]
        last_used = _latest(
            [
                *(t.last_used_at for t in own_tokens),
                *(s.last_seen_at or s.created_at for s in own_sessions),
                _utc(log_ins.get(user.id)),
            ]
        )
        summaries.append(
            OperatorSummary(
                user.email,
                user.name,
                user.active,
                user.created_at,
                last_used,
                len(live_tokens) if user.active else 0,
                len(live_sessions) if user.active else 0,
            )
        )
    return summaries


def _utc(value: datetime | None) -> datetime | None:
    # An aggregate's result bypasses the column's type on SQLite, which forgets the zone.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# The codec's bearer tokens --------------------------------------------------------------


async def codec_account(
    db: AsyncSession, token: str, *, session_idle: timedelta, client_address: str | None
) -> StaffUser | None:
    """The account a bearer token acts as at the codec, or None.

    Unknown, revoked and expired tokens, and those of a deactivated account, all give
    None, so the codec answers them alike: a finder learns nothing about whether a token
    was ever good. The caller decides what practice staff may do (nothing).

    A token's first use after ``session_idle`` without one opens a decoding session:
    one audit event in the platform's log naming the token and the client's address
    (each decode is audited besides, in the logs of the practices it concerns).
    """
    found = await token_and_owner(db, token)
    if found is None:
        return None
    row, user = found
    now = datetime.now(UTC)
    if row.revoked_at is not None or not user.active:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    last_used = row.last_used_at
    if last_used is not None and now - last_used < TOKEN_USE_RESOLUTION:
        return user
    # Guarded, so of two first requests at once only one writes, and audits, the use.
    moved = cast(
        "CursorResult[Any]",
        await db.execute(
            update(ApiToken)
            .where(
                ApiToken.id == row.id,
                or_(
                    ApiToken.last_used_at.is_(None),
                    ApiToken.last_used_at <= now - TOKEN_USE_RESOLUTION,
                ),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    opens_session = last_used is None or now - last_used >= session_idle
    if moved.rowcount == 1 and opens_session and user.is_operator:
        actor = Actor(ActorType.OPERATOR, user.id, client_address)
        audit(db, PLATFORM, AuditAction.OPERATOR_TOKEN_SESSION, actor, detail=f"token {row.id}")
    await db.commit()
    return user

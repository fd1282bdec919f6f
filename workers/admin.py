"""Administration tasks behind ``securemail token create``, ``staff create`` and
``operator create|list|revoke``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.staff import StaffRole
from infra import operators
from infra.accounts import create_practice, create_staff_user, find_staff_user, issue_api_token
from infra.audit import SYSTEM, audit
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import require_migrated
from infra.db.models import Practice
from infra.settings import Settings


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = make_engine(settings.database_url)
    try:
        await require_migrated(engine)  # `securemail migrate` alone migrates
        async with make_sessionmaker(engine)() as db:
            yield db
    finally:
        await engine.dispose()


async def create_token(settings: Settings, email: str, label: str) -> str:
    async with _database(settings) as db:
        user = await find_staff_user(db, email)
        if user is None:
            raise typer.BadParameter(f"no staff account {email!r}", param_hint="--email")
        if user.is_operator:
            # A codec token opens every practice's histories: it always ends.
            if not user.active:
                raise typer.BadParameter(
                    f"{email!r} was revoked; `securemail operator create {email}` "
                    "enables them again",
                    param_hint="--email",
                )
            token = await operators.create_token(db, user, label)
            await db.commit()
            return token
        token, row = await issue_api_token(db, user, label)
        # Whoever runs the command line holds the server: recorded as the system.
        detail = f"token {row.id} for staff {user.id} (command line)"
        audit(db, user.practice_id, AuditAction.TOKEN_CREATE, SYSTEM, detail=detail)
        await db.commit()
        return token


async def create_staff(
    settings: Settings, email: str, name: str, practice_name: str, password: str, admin: bool
) -> None:
    async with _database(settings) as db:
        if await find_staff_user(db, email) is not None:
            raise typer.BadParameter(f"{email!r} already has an account", param_hint="--email")
        practice = await db.scalar(select(Practice).where(Practice.name == practice_name))
        if practice is None:
            practice = await create_practice(db, practice_name)
        user = await create_staff_user(
            db,
            practice,
            email,
            password,
            name=name,
            role=StaffRole.ADMIN if admin else StaffRole.CLERK,
        )
        detail = f"staff {user.id} as {user.role} (command line)"
        audit(db, practice.id, AuditAction.STAFF_ADD, SYSTEM, detail=detail)
        await db.commit()


async def create_operator(
    settings: Settings, email: str, name: str | None, password: str, days: int
) -> operators.NewOperator:
    """A platform operator and their codec token (``securemail operator create``)."""
    async with _database(settings) as db:
        created = await operators.create_operator(db, email, password, name=name, days=days)
        await db.commit()
        return created


async def revoke_operator(settings: Settings, email: str) -> operators.Revoked:
    async with _database(settings) as db:
        revoked = await operators.revoke_operator(db, email)
        await db.commit()
        return revoked


async def list_operators(settings: Settings) -> list[operators.OperatorSummary]:
    async with _database(settings) as db:
        idle = timedelta(minutes=settings.staff_idle_minutes)
        return await operators.list_operators(db, session_idle=idle)

"""Administration tasks behind ``securemail token create`` and ``securemail staff create``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.staff import StaffRole
from infra.accounts import create_api_token, create_practice, create_staff_user, find_staff_user
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.db.models import Practice
from infra.settings import Settings


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[AsyncSession]:
    await upgrade_async(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            yield db
    finally:
        await engine.dispose()


async def create_token(settings: Settings, email: str, label: str) -> str:
    async with _database(settings) as db:
        user = await find_staff_user(db, email)
        if user is None:
            raise typer.BadParameter(f"no staff account {email!r}", param_hint="--email")
        token = await create_api_token(db, user, label)
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
        await create_staff_user(
            db,
            practice,
            email,
            password,
            name=name,
            role=StaffRole.ADMIN if admin else StaffRole.CLERK,
        )
        await db.commit()

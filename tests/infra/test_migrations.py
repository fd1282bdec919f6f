"""Alembic migrations run up, down to nothing, and up again on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from infra.db.engine import make_engine
from infra.db.migrate import downgrade, upgrade
from infra.db.models import Base
from tests.fixtures.postgres import new_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with new_database(
        request.param, tmp_path / "migrations.db", "securemail_migrations"
    ) as url:
        yield url


async def drift(url: str) -> list[object]:
    """What autogenerate would still write: a model change without its migration."""
    engine = make_engine(url)
    async with engine.connect() as connection:
        changes = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    await engine.dispose()
    return list(changes)


async def tables(url: str) -> set[str]:
    engine = make_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def test_migrations_up_down_up(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    # The migrations build exactly what the models describe.
    assert await tables(empty_database) == set(Base.metadata.tables)
    assert await drift(empty_database) == []
    await asyncio.to_thread(downgrade, empty_database)
    assert await tables(empty_database) == set()
    await asyncio.to_thread(upgrade, empty_database)
    assert await tables(empty_database) == set(Base.metadata.tables)

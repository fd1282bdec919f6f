"""Alembic migrations run up, down to nothing, and up again on SQLite and PostgreSQL; data
migrations fill what they add from the rows already there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import downgrade, upgrade
from infra.db.models import Base, SecureEmail, StaffUser, UTCDateTime
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


def _table(name: str, *columns: str, times: tuple[str, ...] = ()) -> sa.TableClause:
    """Just the columns a row of revision 0014 needs (the models describe the head)."""
    return sa.table(
        name, *(sa.column(c) for c in columns), *(sa.column(c, UTCDateTime()) for c in times)
    )


async def test_thread_counters_are_filled_from_replies_recorded_before(
    empty_database: str,
) -> None:
    await asyncio.to_thread(upgrade, empty_database, "0014")
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    practice = {"id": "p", "name": "Smile", "secure_email_enabled": True, "expiry_days": 7}
    engine = make_engine(empty_database)
    async with engine.begin() as c:
        await c.execute(
            sa.insert(_table("practices", *practice, times=("created_at",))),
            [{**practice, "created_at": at}],
        )
        patient = {"id": "ada", "practice_id": "p", "name": "Ada", "email": "a@example.com"}
        patient |= {"email_normalised": "a@example.com", "status": "patient"}
        await c.execute(
            sa.insert(_table("patients", *patient, times=("created_at",))),
            [{**patient, "created_at": at}],
        )
        staff = {"id": "s", "practice_id": "p", "email": "s@example.com", "name": "S"}
        staff |= {"password_hash": "x", "role": "admin"}
        await c.execute(
            sa.insert(_table("staff_users", *staff, times=("created_at",))),
            [{**staff, "created_at": at}],
        )
        common: dict[str, object] = {
            "practice_id": "p",
            "patient_id": "ada",
            "staff_id": "s",
            "subject": "x",
        }
        common |= {"body": "x", "status": "sent", "status_sequence": 1}
        await c.execute(
            sa.insert(_table("secure_emails", "id", "link_token_hash", *common, times=TIMES)),
            [
                {**common, "id": name, "link_token_hash": name, "sent_at": at, "expires_at": at}
                for name in ("two-one-read", "one-read", "none")
            ],
        )
        reply = {"practice_id": "p", "patient_id": "ada", "subject": "x", "body": "x"}
        await c.execute(
            sa.insert(
                _table("replies", "id", "secure_email_id", *reply, times=("sent_at", "read_at"))
            ),
            [
                {**reply, "id": "r1", "secure_email_id": "two-one-read", "sent_at": at + HOUR,
                 "read_at": None},
                {**reply, "id": "r2", "secure_email_id": "two-one-read",
                 "sent_at": at + 2 * HOUR, "read_at": at + 3 * HOUR},
                {**reply, "id": "r3", "secure_email_id": "one-read", "sent_at": at + HOUR,
                 "read_at": at + 3 * HOUR},
            ],
        )  # fmt: skip
    await engine.dispose()

    await asyncio.to_thread(upgrade, empty_database)

    engine = make_engine(empty_database)
    async with make_sessionmaker(engine)() as db:
        counters = {
            row[0]: tuple(row[1:])
            for row in await db.execute(
                sa.select(
                    SecureEmail.id,
                    SecureEmail.reply_count,
                    SecureEmail.unread_count,
                    SecureEmail.has_unread,
                    SecureEmail.latest_reply_at,
                )
            )
        }
    await engine.dispose()
    assert counters == {
        "two-one-read": (2, 1, True, at + 2 * HOUR),
        "one-read": (1, 0, False, at + HOUR),
        "none": (0, 0, False, None),
    }


HOUR = timedelta(hours=1)
TIMES = ("sent_at", "expires_at")


async def test_widening_the_audit_detail_keeps_events_and_the_log_append_only(
    empty_database: str,
) -> None:
    await asyncio.to_thread(upgrade, empty_database, "0016")
    event = {"id": 1, "practice_id": "p", "action": "office.view", "actor_type": "staff"}
    event |= {"detail": "1 reply(ies)", "at": datetime(2026, 11, 2, 9, 30, tzinfo=UTC)}
    events = sa.table("audit_events", *(sa.column(c) for c in event if c != "at"))
    events.append_column(sa.column("at", UTCDateTime()))
    engine = make_engine(empty_database)
    async with engine.begin() as c:
        await c.execute(sa.insert(events), [event])
    await engine.dispose()

    await asyncio.to_thread(upgrade, empty_database)

    engine = make_engine(empty_database)
    try:
        async with engine.begin() as c:
            kept = (await c.execute(sa.select(events))).mappings().one()
            assert dict(kept) == event
            # A list's event may name hundreds of patients now.
            await c.execute(sa.insert(events), [{**event, "id": 2, "detail": "x" * 5000}])
        for change in (
            sa.update(events).values(detail="edited"),
            sa.delete(events),
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                async with engine.begin() as c:
                    await c.execute(change)
    finally:
        await engine.dispose()
    # Going back would have to cut an event: refused in words.
    with pytest.raises(RuntimeError, match="longer than 200 characters"):
        await asyncio.to_thread(downgrade, empty_database, "0016")


async def test_staff_from_before_clinics_work_for_every_clinic(empty_database: str) -> None:
    """Staff there before the clinics column reach every patient, as they did."""
    await asyncio.to_thread(upgrade, empty_database, "0026")
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    practice = {"id": "p", "name": "Smile", "secure_email_enabled": True, "expiry_days": 7}
    staff = {"id": "s", "practice_id": "p", "email": "s@example.com", "name": "S"}
    staff |= {"password_hash": "x", "role": "clerk"}
    engine = make_engine(empty_database)
    async with engine.begin() as c:
        await c.execute(
            sa.insert(_table("practices", *practice, times=("created_at",))),
            [{**practice, "created_at": at}],
        )
        await c.execute(
            sa.insert(_table("staff_users", *staff, times=("created_at",))),
            [{**staff, "created_at": at}],
        )
    await asyncio.to_thread(upgrade, empty_database)
    async with make_sessionmaker(engine)() as db:
        clerk = await db.get(StaffUser, "s")
        assert clerk is not None and clerk.clinic_ids == []
        assert not clerk.reach.restricted
    await engine.dispose()

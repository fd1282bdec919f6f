"""Two imports of the same external id at once (PostgreSQL, where the second waits on
the first's row): the one that loses writes nothing and says so (``ImportCollided``)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import func, select, text

from domain.audit import AuditAction
from domain.patient_import import read_file
from domain.patient_sources import PatientSource
from domain.reach import Reach
from infra.audit import SYSTEM
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import AuditEvent, Patient
from infra.patient_import import ImportCollided, import_rows
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

FILE = b"first_name,last_name,email,external_id\nAda,Lovelace,ada@example.com,1\n"
WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


async def test_import_collided_with_another_writes_nothing(
    settings: Settings, office: Office
) -> None:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as first, sessions() as second, sessions() as watcher:
            first.add(
                Patient(
                    practice_id=office.practice_id,
                    name="Ada First",
                    email="first@example.com",
                    email_normalised="first@example.com",
                    status="Patient",
                    external_source=PatientSource.CSV.value,
                    external_id="1",
                )
            )
            await first.flush()  # holds id 1 in the unique index, not committed yet
            importing = asyncio.create_task(
                import_rows(
                    second,
                    Reach(office.practice_id),
                    read_file(FILE),
                    dry_run=False,
                    skip_errors=False,
                    actor=SYSTEM,
                )
            )

            async def blocked() -> bool:
                waiting = await watcher.scalar(WAITING)
                # pg_stat_activity is read once per transaction: end it, or every
                # later poll sees the first one's answer.
                await watcher.rollback()
                return bool(waiting)

            try:
                await eventually(blocked, what="the import waiting on the first one's row")
            except AssertionError:
                importing.cancel()  # not left in a flush while its session closes
                with contextlib.suppress(asyncio.CancelledError):
                    await importing
                raise
            await first.commit()
            with pytest.raises(ImportCollided):
                await importing
        async with sessions() as db:
            names = (
                await db.scalars(
                    select(Patient.name).where(Patient.practice_id == office.practice_id)
                )
            ).all()
            assert names == ["Ada First"]
            imports = await db.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == AuditAction.PATIENT_IMPORT.value)
            )
            assert imports == 0
    finally:
        await engine.dispose()

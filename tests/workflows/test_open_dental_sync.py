"""The Open Dental sync workflow on the Temporal dev server (its schedules are real)
against the Open Dental stand-in, writing into the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.open_dental import OpenDentalActivities
from domain.audit import AuditAction
from domain.open_dental import OpenDentalChange, OpenDentalSync, SyncSummary, schedule_id_for
from domain.patients import NO_ADDRESS, PatientCreate, not_sendable_reason
from infra.accounts import create_practice
from infra.audit import SYSTEM
from infra.crypto.fields import configure_field_encryption
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import AuditEvent, Clinic, OpenDentalClinic, Patient
from infra.directory import add_patient
from infra.open_dental import integration_of, save_integration
from infra.open_dental_schedule import is_paused, keep_schedule
from tests.conftest import TEST_KEYS
from tests.fixtures.open_dental import CUSTOMER_KEY, DEVELOPER_KEY, FakeOpenDental, serve
from workflows.open_dental_sync import OpenDentalSyncWorkflow

BY_HAND = "pat1@example.com"  # the address Open Dental's PatNum 1 has too


@dataclass
class Sync:
    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    practice_id: str
    fake: FakeOpenDental
    task_queue: str

    async def run(self) -> SyncSummary:
        return await self.env.client.execute_workflow(
            OpenDentalSyncWorkflow.run,
            OpenDentalSync(practice_id=self.practice_id),
            id=f"open-dental-sync-test-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )

    async def patients(self) -> dict[int, Patient]:
        async with self.sessions() as db:
            found = await db.scalars(
                select(Patient).where(
                    Patient.practice_id == self.practice_id,
                    Patient.external_source == "open_dental",
                )
            )
            return {int(p.external_id or 0): p for p in found}

    async def snapshot(self) -> dict[int, tuple[Any, ...]]:
        columns = ("name", "email", "status", "language", "clinic_id", "guarantor_id")
        return {
            number: tuple(getattr(patient, c) for c in columns)
            for number, patient in (await self.patients()).items()
        }

    def patient_requests(self) -> list[str]:
        return [r for r in self.fake.requests if "/patients/Simple" in r]


@pytest.fixture
async def sync(database_url: str, dev_server_env: WorkflowEnvironment) -> AsyncIterator[Sync]:
    served = serve(FakeOpenDental())
    configure_field_encryption(TEST_KEYS)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as db:
        practice = await create_practice(db, "Smile Dental")
        clinic = Clinic(practice_id=practice.id, name="Downtown", time_zone="America/Chicago")
        db.add(clinic)
        await db.flush()
        db.add(OpenDentalClinic(practice_id=practice.id, clinic_num=3, clinic_id=clinic.id))
        await add_patient(db, practice.id, PatientCreate(name="Added By Hand", email=BY_HAND))
        change = OpenDentalChange(
            base_url=served.fake.url, developer_key=DEVELOPER_KEY, customer_key=CUSTOMER_KEY
        )
        await save_integration(db, practice.id, change, SYSTEM, allow_local_http=True)
        practice_id = practice.id
    task_queue = f"open-dental-{uuid.uuid4()}"
    client = dev_server_env.client
    await keep_schedule(client, practice_id, 15, task_queue, paused=False)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[OpenDentalSyncWorkflow],
        activities=OpenDentalActivities(sessions).all(),
    )
    try:
        async with worker:
            yield Sync(dev_server_env, sessions, practice_id, served.fake, task_queue)
    finally:
        await client.get_schedule_handle(schedule_id_for(practice_id)).delete()
        served.stop()
        await engine.dispose()


def add_office_patients(fake: FakeOpenDental) -> None:
    """250 patients; among them a family whose guarantor is on the last page, a
    Spanish speaker, one without an email, one at clinic 3, one deceased."""
    for _ in range(250):
        fake.add_patient()
    fake.change_patient(5, Guarantor=205, Email="family@example.com")
    fake.change_patient(205, Email="family@example.com")
    fake.change_patient(6, Language="spa", Preferred="Bea", FName="Beatriz", LName="Ruiz")
    fake.change_patient(7, Email="")
    fake.change_patient(8, ClinicNum=3)
    fake.change_patient(9, PatStatus="Deceased")


async def test_sync_brings_250_patients_over_three_pages(sync: Sync) -> None:
    add_office_patients(sync.fake)
    summary = await sync.run()
    assert (summary.read, summary.added, summary.without_email) == (250, 249, 1)
    assert sync.patient_requests() == [
        f"GET /api/v1/patients/Simple?Offset={offset}" for offset in (0, 100, 200)
    ]
    patients = await sync.patients()
    assert len(patients) == 249 and 7 not in patients
    assert patients[5].guarantor_id == patients[205].id
    assert patients[205].guarantor_id is None
    assert (patients[6].name, patients[6].language) == ("Beatriz (Bea) Ruiz", "es")
    assert patients[1].language == "en"
    assert patients[9].status == "Deceased"
    assert patients[10].status == "Patient"
    async with sync.sessions() as db:
        downtown = await db.scalar(select(Clinic.id).where(Clinic.practice_id == sync.practice_id))
        by_hand = await db.scalar(select(Patient).where(Patient.name == "Added By Hand"))
        integration = await integration_of(db, sync.practice_id)
    assert patients[8].clinic_id == downtown and patients[10].clinic_id is None
    # The patient added by hand, at PatNum 1's address, is neither matched nor changed.
    assert by_hand is not None and by_hand.external_source is None
    assert integration is not None and integration.server_date_time is not None
    assert (
        integration.last_sync == "250 read: 249 added, 0 changed, 0 unchanged, 1 without an email"
    )


async def test_sync_twice_changes_nothing_and_asks_only_for_changes(sync: Sync) -> None:
    add_office_patients(sync.fake)
    await sync.run()
    before = await sync.snapshot()
    async with sync.sessions() as db:
        integration = await integration_of(db, sync.practice_id)
        assert integration is not None
        stamp = integration.server_date_time
    again = await sync.run()
    assert (again.added, again.changed) == (0, 0)
    assert await sync.snapshot() == before
    assert stamp is not None
    assert sync.patient_requests()[3].startswith("GET /api/v1/patients/Simple?Offset=0&DateTStamp=")


async def test_sync_updates_a_patient_changed_in_open_dental(sync: Sync) -> None:
    add_office_patients(sync.fake)
    await sync.run()
    before = await sync.snapshot()
    sync.fake.change_patient(
        10, LName="Moved", Email="new.address@example.com", PatStatus="Inactive"
    )
    summary = await sync.run()
    assert (summary.added, summary.changed) == (0, 1)
    after = await sync.snapshot()
    assert after[10][:3] == ("Pat10 Moved", "new.address@example.com", "Inactive")
    assert {k: v for k, v in after.items() if k != 10} == {
        k: v for k, v in before.items() if k != 10
    }
    async with sync.sessions() as db:
        edits = await db.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.practice_id == sync.practice_id,
                AuditEvent.action == AuditAction.PATIENT_EDIT.value,
            )
        )
        assert "from Open Dental, PatNum 10" in list(edits)


async def test_sync_keeps_a_patient_whose_address_was_removed_unsendable(sync: Sync) -> None:
    add_office_patients(sync.fake)
    await sync.run()
    assert 7 not in await sync.patients()  # never had an address: not added
    sync.fake.change_patient(10, Email="")
    summary = await sync.run()
    # Patient 10 is changed and without an email now; patient 7 (never had one) is read
    # again only if it was stamped in the second the first run ended (Open Dental's
    # DateTStamp is whole seconds, compared with >=).
    assert summary.changed == 1 and summary.without_email in (1, 2)
    kept = (await sync.patients())[10]
    assert (kept.name, kept.email, kept.status) == ("Pat10 Family10", "", "Patient")
    assert not_sendable_reason(kept.status, kept.email) == NO_ADDRESS
    sync.fake.change_patient(10, Email="back@example.com")
    await sync.run()
    back = (await sync.patients())[10]
    assert back.email == "back@example.com"
    assert not_sendable_reason(back.status, back.email) is None


async def test_sync_waits_out_429_and_5xx(sync: Sync) -> None:
    for _ in range(120):
        sync.fake.add_patient()
    sync.fake.script = [429, 503]
    summary = await sync.run()
    assert (summary.read, summary.added) == (120, 120)
    assert len(sync.patient_requests()) == 4  # two refused, then two pages


async def test_keys_refused_tell_the_office_once_and_pause_the_schedule(sync: Sync) -> None:
    for _ in range(3):
        sync.fake.add_patient()
    sync.fake.customer_key = "DisabledInOpenDental"
    summary = await sync.run()
    assert summary.keys_refused
    assert await is_paused(sync.env.client, sync.practice_id)
    # The next sync (started by hand) asks nothing while the keys are those refused.
    asked = len(sync.fake.requests)
    assert (await sync.run()).read == 0
    assert len(sync.fake.requests) == asked
    async with sync.sessions() as db:
        told = list(
            await db.scalars(
                select(AuditEvent.detail).where(
                    AuditEvent.practice_id == sync.practice_id,
                    AuditEvent.action == AuditAction.SETTINGS_CHANGE.value,
                    AuditEvent.detail.like("%refused the keys%"),
                )
            )
        )
        integration = await integration_of(db, sync.practice_id)
        assert integration is not None and integration.keys_refused_at is not None
    assert told == ["Open Dental refused the keys: syncing paused"]
    # Saving the keys again (as the office would, with the one now enabled) resumes.
    sync.fake.customer_key = CUSTOMER_KEY
    async with sync.sessions() as db:
        change = OpenDentalChange(
            base_url=sync.fake.url, developer_key=DEVELOPER_KEY, customer_key="AnotherKey"
        )
        saved, keys_changed = await save_integration(
            db, sync.practice_id, change, SYSTEM, allow_local_http=True
        )
        assert keys_changed and saved.keys_refused_at is None
    sync.fake.customer_key = "AnotherKey"
    assert (await sync.run()).added == 3

"""What the resume step carries from the database into a lost workflow's new run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.secure_email import EventKind, SecureEmailStatus
from infra import timeline
from infra.alerts import raise_for_reply
from infra.crypto import portal_secrets
from infra.db.engine import make_sessionmaker
from infra.db.models import OpenDentalIntegration, Patient, Reply
from infra.replies import Written, add_to_thread
from infra.resumable import NotResumable, Resumable, resumable
from infra.security import token_hash
from tests.conftest import TEST_PORTAL_KEYS
from tests.fixtures.rows import a_secure_email


async def test_counters_expiry_and_unfiled_replies_are_carried(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    key_id = TEST_PORTAL_KEYS.current_id
    async with make_sessionmaker(engine)() as db:
        message = await a_secure_email(db, status="replied")
        message.link_token_hash = token_hash(
            portal_secrets.link_token(TEST_PORTAL_KEYS, key_id, message.id)
        )
        message.status_sequence = 4
        message.opened_at = now - timedelta(hours=3)
        message.expires_at = now + timedelta(days=20)  # moved by the office
        for number, hours_ago in ((1, 30), (2, 3), (3, 0.5)):
            at = now - timedelta(hours=hours_ago)
            await timeline.add(db, message.id, EventKind.PASSCODE_SENT, at, f"passcode:{number}")
        await timeline.add(db, message.id, EventKind.EXPIRY_CHANGED, now, "expiry:2")
        await timeline.add(db, message.id, EventKind.NOTICE_RESENT, now, "resend:1")
        filed, unfiled = str(uuid.uuid4()), str(uuid.uuid4())
        written = Written("RE: Results", "Thanks", files=[])
        for reply_id, minutes_ago in ((filed, 90), (unfiled, 10)):
            sent_at = now - timedelta(minutes=minutes_ago)
            await add_to_thread(db, message, reply_id, written, sent_at)
        # The office has the first one's alert: it was filed before the workflow was lost.
        await raise_for_reply(db, await db.get_one(Reply, filed))
        found = await resumable(db, TEST_PORTAL_KEYS, message.id, now)
    assert isinstance(found, Resumable)
    start, carried = found.start, found.start.carried
    assert carried is not None
    assert start.portal_key_id == key_id and start.expires_at == message.expires_at
    assert carried.status == SecureEmailStatus.REPLIED and carried.status_changes == 4
    # The next passcode is the fourth (a new code); the one mailed this hour counts.
    assert carried.passcodes_issued == 3 and len(carried.recent_passcodes) == 1
    assert carried.passcode is None
    assert carried.replies == 2 and len(carried.recent_replies) == 1
    assert carried.to_file == [unfiled]
    assert carried.expiry_changes == 2 and carried.expires_at == message.expires_at
    assert carried.notices_resent == 1 and len(carried.recent_resends) == 1
    assert carried.opened_at == message.opened_at


async def test_closed_ones_are_not_resumed_and_a_lost_key_is_named(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with make_sessionmaker(engine)() as db:
        withdrawn = await a_secure_email(db, status="withdrawn")
        unknown_key = await a_secure_email(db, status="sent")  # a random link token
        sending = await a_secure_email(db, status="sending")
        sending.link_token_hash = token_hash(
            portal_secrets.link_token(TEST_PORTAL_KEYS, TEST_PORTAL_KEYS.current_id, sending.id)
        )
        mailed = await a_secure_email(db, status="sending")
        mailed.link_token_hash = token_hash(
            portal_secrets.link_token(TEST_PORTAL_KEYS, TEST_PORTAL_KEYS.current_id, mailed.id)
        )
        await timeline.add(db, mailed.id, EventKind.NOTICE_EMAILED, now, "notice")
        await db.commit()
        assert await resumable(db, TEST_PORTAL_KEYS, withdrawn.id, now) is None
        lost = await resumable(db, TEST_PORTAL_KEYS, unknown_key.id, now)
        assert isinstance(lost, NotResumable) and "portal key" in lost.reason
        # Its notice not yet mailed: a first run, which mails it.
        first = await resumable(db, TEST_PORTAL_KEYS, sending.id, now)
        assert isinstance(first, Resumable) and first.start.carried is None
        # Mailed, "sent" not yet recorded: carried as sent, the notice not mailed again.
        went = await resumable(db, TEST_PORTAL_KEYS, mailed.id, now)
        assert isinstance(went, Resumable) and went.start.carried is not None
        assert went.start.carried.status == SecureEmailStatus.SENT


async def test_open_dental_patients_message_goes_on_to_open_dental(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with make_sessionmaker(engine)() as db:
        message = await a_secure_email(db, status="sent")
        message.link_token_hash = token_hash(
            portal_secrets.link_token(TEST_PORTAL_KEYS, TEST_PORTAL_KEYS.current_id, message.id)
        )
        await db.commit()
        before = await resumable(db, TEST_PORTAL_KEYS, message.id, now)
        patient = await db.get(Patient, message.patient_id)
        assert patient is not None
        patient.external_source, patient.external_id = "open_dental", "17"
        db.add(
            OpenDentalIntegration(
                practice_id=message.practice_id,
                base_url="https://api.opendental.com/api/v1",
                developer_key="developer",
                customer_key="customer",
            )
        )
        await db.commit()
        after = await resumable(db, TEST_PORTAL_KEYS, message.id, now)
    assert isinstance(before, Resumable) and not before.start.open_dental
    assert isinstance(after, Resumable) and after.start.open_dental

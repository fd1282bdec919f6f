"""Rows inserted in bulk, as a busy practice's database would hold them after years.

Through SQLAlchemy Core, so subject and body are sealed by ``EncryptedText`` as the app
writes them (field encryption must be configured first).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.addresses import normalise_address
from domain.staff import StaffRole
from infra.accounts import create_api_token, create_practice, create_staff_user
from infra.db.engine import make_sessionmaker
from infra.db.models import Patient, Reply, SecureEmail

SENDER = "office@bench-dental.example"
STAFF_PASSWORD = "correct horse battery staple"
BATCH = 5000


@dataclass
class Practice:
    id: str
    staff_id: str
    staff_email: str
    api_token: str
    patient_ids: list[str]


async def practice_with_patients(engine: AsyncEngine, patients: int) -> Practice:
    async with make_sessionmaker(engine)() as db:
        practice = await create_practice(
            db, "Bench Dental", sender_address=SENDER, secure_email_enabled=True
        )
        email = f"admin-{uuid.uuid4().hex[:8]}@bench-dental.example"
        staff = await create_staff_user(db, practice, email, STAFF_PASSWORD, role=StaffRole.ADMIN)
        token = await create_api_token(db, staff, "bench")
        await db.commit()
        practice_id, staff_id = practice.id, staff.id
    ids = [str(uuid.uuid4()) for _ in range(patients)]
    rows = [
        {
            "id": patient_id,
            "practice_id": practice_id,
            "name": f"Patient {i}",
            "email": f"patient-{i}@example.com",
            "email_normalised": normalise_address(f"patient-{i}@example.com"),
            "status": "Patient",
            "created_at": datetime.now(UTC),
        }
        for i, patient_id in enumerate(ids)
    ]
    await insert_rows(engine, insert(Patient), rows)
    return Practice(practice_id, staff_id, email, token, ids)


async def insert_rows(engine: AsyncEngine, statement: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        async with engine.begin() as connection:
            await connection.execute(statement, rows[start : start + BATCH])


def secure_email_rows(
    practice: Practice, owners: list[str], *, now: datetime, spread: timedelta
) -> list[dict[str, Any]]:
    """One secure email per entry of ``owners`` (patient ids), sent over ``spread``
    before ``now``; those younger than seven days are still open."""
    statuses = ["sent", "opened", "replied", "expired"]
    rows = []
    for owner in owners:
        sent_at = now - spread * random.random()
        expires_at = sent_at + timedelta(days=7)
        status = "expired" if expires_at <= now else random.choice(statuses[:3])
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "practice_id": practice.id,
                "patient_id": owner,
                "staff_id": practice.staff_id,
                "subject": f"Treatment plan {random.randrange(10_000)}",
                "body": "Two fillings, upper left. " * 8,
                "link_token_hash": hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                "status": status,
                "status_sequence": 2,
                "sent_at": sent_at,
                "expires_at": expires_at,
                "opened_at": sent_at + timedelta(hours=2) if status != "sent" else None,
            }
        )
    return rows


async def secure_emails(
    engine: AsyncEngine, practice: Practice, owners: list[str], *, spread: timedelta
) -> list[dict[str, Any]]:
    rows = secure_email_rows(practice, owners, now=datetime.now(UTC), spread=spread)
    await insert_rows(engine, insert(SecureEmail), rows)
    return rows


async def replies(engine: AsyncEngine, emails: list[dict[str, Any]], *, unread: float) -> int:
    """One reply to each of ``emails``; a share ``unread`` not yet opened by the office."""
    rows = [
        {
            "id": str(uuid.uuid4()),
            "secure_email_id": email["id"],
            "practice_id": email["practice_id"],
            "patient_id": email["patient_id"],
            "subject": "RE: Treatment plan",
            "body": "My insurance card is attached.",
            "sent_at": email["sent_at"] + timedelta(hours=3),
            "read_at": None if random.random() < unread else email["sent_at"] + timedelta(hours=5),
        }
        for email in emails
    ]
    await insert_rows(engine, insert(Reply), rows)
    # The thread's counters, as recording and reading the replies would have kept them.
    counters = [
        {
            "thread": row["secure_email_id"],
            "reply_count": 1,
            "unread_count": int(row["read_at"] is None),
            "has_unread": row["read_at"] is None,
            "latest_reply_at": row["sent_at"],
        }
        for row in rows
    ]
    thread = update(SecureEmail).where(SecureEmail.id == bindparam("thread"))
    await insert_rows(engine, thread.execution_options(synchronize_session=False), counters)
    return len(rows)

"""Patient portal sessions (R7): server-side, bound to the address that got the passcode.

A session ends on Sign Out (the row is deleted, so a copied cookie is worthless), after
15 minutes without a request, and 12 hours after Verify whatever the activity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from infra.db.models import Patient, PortalSession
from infra.security import new_token, token_hash

IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=12)


async def start(db: AsyncSession, patient: Patient) -> str:
    """The new session's token (for the cookie); only its hash is kept."""
    token = new_token()
    now = datetime.now(UTC)
    db.add(
        PortalSession(
            token_hash=token_hash(token),
            patient_id=patient.id,
            address_normalised=normalise_address(patient.email),
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT,
        )
    )
    await db.commit()
    return token


async def end(db: AsyncSession, token: str | None) -> PortalSession | None:
    """Deletes the session; returns what it was, or None if there was none."""
    session = await db.get(PortalSession, token_hash(token)) if token else None
    if session is not None:
        await db.execute(
            delete(PortalSession).where(PortalSession.token_hash == session.token_hash)
        )
        await db.commit()
    return session


async def live(db: AsyncSession, token: str) -> PortalSession | None:
    """The live session of this token, its idle clock moved; an ended one is deleted."""
    session = await db.get(PortalSession, token_hash(token))
    now = datetime.now(UTC)
    if session is None:
        return None
    if now >= session.expires_at or now - session.last_seen_at >= IDLE_TIMEOUT:
        await db.delete(session)
        await db.commit()
        return None
    patient = await db.get(Patient, session.patient_id)
    # Bound to the address that received the passcode: if the office changes the
    # patient's address, the old mailbox's session no longer opens anything.
    if patient is None or normalise_address(patient.email) != session.address_normalised:
        return None
    session.last_seen_at = now
    await db.commit()
    return session

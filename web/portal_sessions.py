"""Patient portal sessions (R7): server-side, bound to the patient's address.

A session ends on Sign Out (the row is deleted, so a copied cookie is worthless), after
15 minutes without a request, and 12 hours after Verify whatever the activity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from infra.db.models import Patient, PortalSession
from infra.security import new_token, token_hash
from web.deps import DbSession

PORTAL_COOKIE = "portal_session"
IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=12)


class PortalSignedOut(Exception):
    """No live portal session; the app answers with the signed-out page."""


async def start_portal_session(
    db: AsyncSession, response: Response, patient: Patient, *, secure_cookie: bool
) -> None:
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
    response.set_cookie(
        PORTAL_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookie,
        path="/",
    )


async def end_portal_session(db: AsyncSession, token: str | None) -> PortalSession | None:
    """Deletes the session; returns what it was, or None if there was none."""
    session = await db.get(PortalSession, token_hash(token)) if token else None
    if session is not None:
        await db.execute(
            delete(PortalSession).where(PortalSession.token_hash == session.token_hash)
        )
        await db.commit()
    return session


async def current_portal_session(request: Request, db: DbSession) -> PortalSession:
    token = request.cookies.get(PORTAL_COOKIE)
    if not token:
        raise PortalSignedOut
    session = await db.get(PortalSession, token_hash(token))
    now = datetime.now(UTC)
    if session is None:
        raise PortalSignedOut
    if now >= session.expires_at or now - session.last_seen_at >= IDLE_TIMEOUT:
        await db.delete(session)
        await db.commit()
        raise PortalSignedOut
    patient = await db.get(Patient, session.patient_id)
    # Bound to the address that received the passcode: if the office changes the
    # patient's address, the old mailbox's session no longer opens anything.
    if patient is None or normalise_address(patient.email) != session.address_normalised:
        raise PortalSignedOut
    session.last_seen_at = now
    await db.commit()
    return session


PortalPatient = Annotated[PortalSession, Depends(current_portal_session)]

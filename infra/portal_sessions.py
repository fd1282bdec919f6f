"""Patient portal sessions (R7): server-side, bound to the address that got the passcode.

A session ends on Sign Out (the row is deleted, so a copied cookie is worthless), after
15 minutes without a request, and 12 hours after Verify whatever the activity.

What a session may read is the patient's messages *sent to its address*: each message
keeps the address its notice went to (``recipient_address``), and when the office
changes a patient's address the open messages stay with the old one. So the
holder of the old mailbox, who already got those notices and passcodes, can still open
them, and nothing else; a session started from the new address sees only what was sent
there. Messages from before the address was kept fall back to the patient's current
address, which is where the worker mails their passcodes too.

Families: a session proves an address, so it also reads the messages of the other
patients of the same practice whose address now is that one, each sent to that address
(``may_read``, ``family_of``). Another practice's patient at the address never shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.addresses import normalise_address
from infra import secure_emails
from infra.db.engine import hold
from infra.db.models import Patient, PortalSession, Practice, SecureEmail
from infra.secure_emails import Cursor, InboxLine
from infra.security import NewSession, token_hash

IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# The idle clock is moved at most this often (a write and a commit per page otherwise),
# as staff sessions' is: an idle session may end up to this much before its 15 minutes,
# never after.
SEEN_RESOLUTION = timedelta(seconds=30)


class Addressed(Protocol):
    """A secure email as far as who may read it goes (a row, or an Inbox line)."""

    @property
    def patient_id(self) -> str: ...
    @property
    def recipient_address(self) -> str | None: ...


def sent_to(secure_email: Addressed, patient: Patient) -> str:
    """The address (normalised) this message's notice and passcodes go to."""
    return normalise_address(secure_email.recipient_address or patient.email)


def may_read(
    session: PortalSession, secure_email: Addressed, patient: Patient, holder: Patient
) -> bool:
    """Whether this session may open the message of ``patient``: sent to the session's
    address, and the patient is the session's own (``holder``, whose passcode was
    entered) or of the holder's family at that address: a patient of the same practice
    whose address *now* is the one the session proved. A message keeps the address it
    was sent to, so what went to another address never shows, even the patient's own."""
    if secure_email.patient_id != patient.id or holder.id != session.patient_id:
        return False
    if sent_to(secure_email, patient) != session.address_normalised:
        return False
    return patient.id == holder.id or (
        patient.practice_id == holder.practice_id
        and patient.email_normalised == session.address_normalised
    )


async def family_of(db: AsyncSession, session: PortalSession) -> list[Patient]:
    """Who this session reads for: its own patient first, then the others of the same
    practice whose address is the session's, by name. Empty when the patient is gone."""
    holder = await db.get(Patient, session.patient_id)
    if holder is None:
        return []
    others = await db.scalars(
        select(Patient)
        .where(
            Patient.practice_id == holder.practice_id,
            Patient.email_normalised == session.address_normalised,
            Patient.id != holder.id,
        )
        .order_by(Patient.name, Patient.id)
    )
    return [holder, *others]


def member(family: list[Patient], patient_id: str) -> Patient | None:
    """The patient of ``family`` with this id (the portal's filter by person), or None
    when it names nobody of it: another patient's id, one who has moved out, garbage.
    The caller then shows the whole family, the same whichever it was."""
    return next((patient for patient in family if patient.id == patient_id), None)


async def start(
    db: AsyncSession, patient: Patient, verified: SecureEmail, began_at: datetime
) -> str:
    """The new session's token (for the cookie); only its hash is kept. ``verified`` is
    the message whose passcode was just entered: the session is bound to its address.
    ``began_at`` is when that passcode was handed to the workflow: a message opened
    before it was opened in an earlier session (the timeline's "viewed again"). Added to
    the caller's transaction: Verify commits it with its audit events, in one write."""
    session = NewSession.begin(ABSOLUTE_TIMEOUT, began_at=began_at)
    db.add(
        PortalSession(
            patient_id=patient.id,
            address_normalised=sent_to(verified, patient),
            **session.columns(),
        )
    )
    return session.token


async def end(db: AsyncSession, token: str | None) -> PortalSession | None:
    """Deletes the session; returns what it was, or None if there was none. Its patient
    comes in the same statement and is held in ``db``'s identity map (``hold``: Sign Out
    audits as them)."""
    if not token:
        return None
    found = (
        await db.execute(
            select(PortalSession, Patient)
            .outerjoin(Patient, Patient.id == PortalSession.patient_id)
            .where(PortalSession.token_hash == token_hash(token))
        )
    ).first()
    if found is None:
        return None
    session = found[0]
    hold(db, *found)
    await db.execute(delete(PortalSession).where(PortalSession.token_hash == session.token_hash))
    await db.commit()
    return session


# Built once, as ``secure_emails.by_link``'s: every signed-in page runs it.
_LIVE = (
    select(PortalSession, Patient, Practice)
    .outerjoin(Patient, Patient.id == PortalSession.patient_id)
    .outerjoin(Practice, Practice.id == Patient.practice_id)
    .where(PortalSession.token_hash == bindparam("token_hash"))
)


async def live(db: AsyncSession, token: str) -> PortalSession | None:
    """The live session of this token, its idle clock moved (``SEEN_RESOLUTION``); an
    ended one is deleted.

    Its patient and the patient's practice come in the same statement: every signed-in
    page names them (``web.portal.messages.tabs_context``), and the rows are held in
    ``db``'s identity map (``hold``), so their ``db.get`` later is not another statement."""
    found = (await db.execute(_LIVE, {"token_hash": token_hash(token)})).first()
    now = datetime.now(UTC)
    if found is None:
        return None
    session, patient, _ = found
    hold(db, *found)
    if now >= session.expires_at or now - session.last_seen_at >= IDLE_TIMEOUT:
        await db.delete(session)
        await db.commit()
        return None
    # A change of the patient's address does not end it: what it may read is decided
    # per message (``may_read``), by the address each was sent to.
    if patient is None:
        return None
    if now - session.last_seen_at >= SEEN_RESOLUTION:
        session.last_seen_at = now
        await db.commit()
    return session


# The Inbox -------------------------------------------------------------------------------

INBOX_PAGE_SIZE = 50


@dataclass(frozen=True)
class InboxPage:
    lines: list[InboxLine]
    next_cursor: Cursor | None


async def inbox(
    db: AsyncSession,
    session: PortalSession,
    family: list[Patient],
    *,
    only: Patient | None = None,
    after: Cursor | None = None,
    limit: int = INBOX_PAGE_SIZE,
) -> InboxPage:
    """A page of the messages this session may read (``family``: ``family_of``), newest
    first, the expired ones listed as such; ``only``: just that one of the family's (one
    not of it lists nothing). Those sent to another address are skipped, so a page is
    filled from the next rows."""
    if not family:
        return InboxPage([], None)
    holder = family[0]
    by_id = {patient.id: patient for patient in family if only is None or patient.id == only.id}
    if not by_id:
        return InboxPage([], None)
    lines: list[InboxLine] = []
    cursor = after
    while True:
        page, cursor = await secure_emails.inbox_page_of_patients(
            db, list(by_id), limit=limit - len(lines), after=cursor
        )
        lines += [line for line in page if may_read(session, line, by_id[line.patient_id], holder)]
        if cursor is None or len(lines) == limit:
            return InboxPage(lines, cursor)

"""What every portal page depends on: the patient's session (R7), the secure email asked
for, live (not expired, R8, nor withdrawn by the office, R15, nor failed), and auditing
as the patient.

A session ends on Sign Out (the row is deleted, so a copied cookie is worthless), after
15 minutes without a request, and 12 hours after Verify whatever the activity
(``infra.portal_sessions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request, Response

from domain.audit import ActorType, AuditAction
from domain.secure_email import SecureEmailStatus
from infra import clinics, portal_sessions, secure_emails
from infra.audit import Actor, audit_secure_email
from infra.db.models import Patient, PortalSession, Practice, SecureEmail
from infra.directory import patient_by_id
from infra.security import token_hash
from infra.settings import Settings
from web.cookies import PORTAL_COOKIE, cookie_name, set_cookie
from web.deps import DbSession, SettingsDep, client_address, or_404
from web.errors import MessageClosed, PortalSignedOut
from web.languages import N_, note_patient_language

# Shown on the error page, in the page's language (``web.templating``).
LINK_NOT_VALID = N_("This link is not valid")
MESSAGE_NOT_FOUND = N_("Message not found")


def portal_cookie_name(settings: Settings) -> str:
    """``__Host-`` when the public URL is https (``web.cookies``)."""
    return cookie_name(settings, PORTAL_COOKIE)


async def start_portal_session(
    db: DbSession,
    response: Response,
    patient: Patient,
    verified: SecureEmail,
    *,
    began_at: datetime,
    settings: Settings,
) -> None:
    """Not committed: the caller commits the session with what it audits."""
    token = await portal_sessions.start(db, patient, verified, began_at)
    set_cookie(response, settings, PORTAL_COOKIE, token, samesite="strict")


def end_portal_cookie(response: Response, settings: Settings) -> None:
    # Secure as it was set: a browser ignores a ``__Host-`` cookie without it, even one
    # that deletes.
    response.delete_cookie(
        portal_cookie_name(settings),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


async def current_portal_session(
    request: Request, db: DbSession, settings: SettingsDep
) -> PortalSession:
    token = request.cookies.get(portal_cookie_name(settings))
    session = await portal_sessions.live(db, token) if token else None
    if session is None:
        raise PortalSignedOut
    patient = await patient_by_id(db, session.patient_id)
    if patient is not None:
        note_patient_language(request, patient.language)
    return session


PortalPatient = Annotated[PortalSession, Depends(current_portal_session)]


async def practice_of_message(db: DbSession, secure_email: SecureEmail) -> Practice:
    """The practice as the message shows it: its clinic's name, phone and zone (R19)."""
    return or_404(await clinics.practice_of_message(db, secure_email), LINK_NOT_VALID)


def withdrawn(secure_email: SecureEmail) -> bool:
    return secure_email.status == SecureEmailStatus.WITHDRAWN


def failed(secure_email: SecureEmail) -> bool:
    """Its workflow stopped before the message's end (or its notice never arrived): the
    office has been told to send it again."""
    return secure_email.status == SecureEmailStatus.FAILED


async def _live(db: DbSession, secure_email: SecureEmail) -> SecureEmail:
    # Withdrawn or failed first: the message's workflow has ended, so its expiry time
    # passing later changes nothing the patient should be told.
    if withdrawn(secure_email) or failed(secure_email) or secure_emails.expired(secure_email):
        raise MessageClosed(
            await practice_of_message(db, secure_email),
            secure_email.expires_at,
            withdrawn=withdrawn(secure_email),
            failed=failed(secure_email),
        )
    return secure_email


async def live_by_link(request: Request, db: DbSession, token: str) -> SecureEmail:
    """The secure email of a notice's link (``/m/{token}``), if it can still be opened.
    Its pages, the expiry warning included, are in its patient's language."""
    secure_email = or_404(await secure_emails.by_link(db, token_hash(token)), LINK_NOT_VALID)
    patient = await secure_emails.patient_of(db, secure_email)
    if patient is not None:
        note_patient_language(request, patient.language)
    return await _live(db, secure_email)


async def live_of_session(
    db: DbSession, session: PortalPatient, secure_email_id: str
) -> SecureEmail:
    """The secure email if this session may read it (the patient's, or a family
    member's at the session's address: ``portal_sessions.may_read``), else 404 (never
    403: another patient's message ids must not be confirmed to exist). A message sent
    to another address is another mailbox's: 404 too."""
    secure_email = await db.get(SecureEmail, secure_email_id)
    patient = await secure_emails.patient_of(db, secure_email) if secure_email else None
    holder = await patient_by_id(db, session.patient_id)
    readable = (
        secure_email is not None
        and patient is not None
        and holder is not None
        and portal_sessions.may_read(session, secure_email, patient, holder)
    )
    return await _live(db, or_404(secure_email if readable else None, MESSAGE_NOT_FOUND))


@dataclass(frozen=True)
class Threads:
    """The session's unexpired messages, newest first: those it may read, and those the
    office withdrew (shown as withdrawn, never their subject, words or files)."""

    live: list[SecureEmail]
    withdrawn: list[SecureEmail]


async def session_threads(
    db: DbSession, session: PortalSession, only: Patient | None = None
) -> Threads:
    """The unexpired messages of the session's family (``portal_sessions.family_of``)
    sent to the address this session was verified at (``portal_sessions.may_read``);
    ``only``: just that one of the family's (one not of it has none)."""
    family = await portal_sessions.family_of(db, session)
    messages = [
        message
        for patient in family
        if only is None or patient.id == only.id
        for message in await secure_emails.unexpired_of_patient(db, patient.id)
        if portal_sessions.may_read(session, message, patient, family[0])
    ]
    messages.sort(key=lambda m: (m.sent_at, m.id), reverse=True)
    return Threads([m for m in messages if not withdrawn(m)], [m for m in messages if withdrawn(m)])


@dataclass(frozen=True)
class Shown:
    """Whose messages a tab (Inbox, Sent, Files) shows: ``family``, who the session reads
    for (``portal_sessions.family_of``, its own patient first), and ``person``, one of
    them chosen with ``?for=<patient id>`` when there are several, or None for everyone.

    The value is the patient's id: a random UUID, like the message ids the portal's
    URLs already carry, so it names no one; and unlike a position in the family it
    still means the same patient when someone joins or leaves the family during the
    session. A value naming nobody of the family shows everyone, with no error, whether
    or not such a patient exists (``portal_sessions.member``)."""

    family: list[Patient]
    person: Patient | None


async def shown_of(
    db: DbSession, session: PortalPatient, wanted: Annotated[str, Query(alias="for")] = ""
) -> Shown:
    family = await portal_sessions.family_of(db, session)
    # A patient alone at the address has no choice to make: always everyone.
    person = portal_sessions.member(family, wanted) if len(family) > 1 else None
    return Shown(family, person)


ShownPeople = Annotated[Shown, Depends(shown_of)]
LinkedEmail = Annotated[SecureEmail, Depends(live_by_link)]
ReadableEmail = Annotated[SecureEmail, Depends(live_of_session)]


def patient_actor(request: Request, secure_email: SecureEmail) -> Actor:
    return Actor(ActorType.PATIENT, secure_email.patient_id, client_address(request))


async def audit_patient(
    db: DbSession,
    request: Request,
    secure_email: SecureEmail,
    action: AuditAction,
    detail: str | None = None,
) -> None:
    """Portal events are the patient's, identified by the address the link went to."""
    audit_secure_email(db, secure_email, action, patient_actor(request, secure_email), detail)
    await db.commit()

"""The signed-in portal (R7-R8): Inbox, Sent, Files, a message and its files, Sign Out.

Every page needs a live portal session and shows only the messages of the patients it
reads for (its family at the address, ``portal_sessions.family_of``); another patient's
message or file answers 404, and an expired message only its warning. Inbox, Sent and
Files can show one of the family only (``?for=<patient id>``, ``web.portal.deps.Shown``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.audit import ActorType, AuditAction
from domain.secure_email import EventKind
from infra import clinics, portal_sessions, replies, secure_emails, timeline
from infra.audit import Actor, audit
from infra.db.models import Patient, PortalSession, Reply, SecureEmail
from infra.directory import patient_by_id
from infra.practices import practice
from infra.secure_emails import BadCursor, Cursor
from web.deps import DbSession, SettingsDep, StateDep, client_address, or_404, temporal_of
from web.downloads import download
from web.errors import TEMPORAL_FAILURES
from web.languages import N_, translator
from web.portal.deps import (
    PortalPatient,
    ReadableEmail,
    Shown,
    ShownPeople,
    audit_patient,
    end_portal_cookie,
    portal_cookie_name,
    practice_of_message,
    session_threads,
)
from web.services.replies import workflow_of
from web.templating import render
from workflows.secure_email import SecureEmailWorkflow

PAGE_NOT_OURS = N_("This page of the Inbox does not exist; start again from the newest messages")
FILE_NOT_FOUND = N_("File not found")

router = APIRouter(tags=["portal"], include_in_schema=False)


# Each tab's path, for the filter by person's links.
TAB_PATHS = {"inbox": "/portal", "sent": "/portal/sent", "files": "/portal/files"}


async def tabs_context(
    db: DbSession, session: PortalSession, tab: str, shown: Shown | None = None
) -> dict[str, object]:
    """What every signed-in page shows; ``shown``: whose messages this tab lists (the
    Inbox, Sent and Files), which brings the filter by person when the family has
    several."""
    patient = await patient_by_id(db, session.patient_id)
    # The practice as the patient sees it: their clinic's name, phone and zone (R19).
    of_practice = await clinics.practice_of_patient(db, patient) if patient else None
    family = shown.family if shown else await portal_sessions.family_of(db, session)
    names = names_in(family) if len(family) > 1 else {}
    person = shown.person if shown else None
    return {
        "signed_in": True,
        "tab": tab,
        "practice": of_practice,
        "patient": patient,
        # When the session reads for several patients, each message says whose it is
        # ("For Emma"): their names by patient id (``names_in``).
        "for_whom": names,
        # The filter by person (Show: Everyone · John · Emma), on the tabs only.
        "people": list(names.items()) if shown else [],
        "tab_path": TAB_PATHS.get(tab, "/portal"),
        "showing": person,
        "showing_name": names.get(person.id, "") if person else "",
        # Kept by the tabs and the Inbox's pages while one person is shown.
        "for_query": f"?{urlencode({'for': person.id})}" if person else "",
    }


def names_in(family: list[Patient]) -> dict[str, str]:
    """How the portal names each of the family, by patient id: the first name, or the
    whole name where another of the family has the same first name."""
    firsts = [first_name(patient.name) for patient in family]
    return {
        patient.id: first if firsts.count(first) == 1 else patient.name
        for patient, first in zip(family, firsts, strict=True)
    }


def first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


async def _live_threads(
    db: DbSession, session: PortalSession, only: Patient | None
) -> dict[str, SecureEmail]:
    return {message.id: message for message in (await session_threads(db, session, only)).live}


@router.get("/portal")
async def inbox(
    request: Request, db: DbSession, session: PortalPatient, shown: ShownPeople, cursor: str = ""
) -> HTMLResponse:
    context = await tabs_context(db, session, "inbox", shown)
    try:
        after = Cursor.decode(cursor) if cursor else None
    except BadCursor:
        return render(
            request,
            "portal/inbox.html",
            {**context, "error": translator(request).gettext(PAGE_NOT_OURS), "first_page": False},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    page = await portal_sessions.inbox(db, session, shown.family, only=shown.person, after=after)
    older = page.next_cursor
    # The next page keeps the person shown.
    kept = {"for": shown.person.id} if shown.person else {}
    return render(
        request,
        "portal/inbox.html",
        {
            **context,
            "messages": page.lines,
            "older": f"/portal?{urlencode({'cursor': older.encode(), **kept})}" if older else None,
            "first_page": after is None,
        },
    )


@router.get("/portal/sent")
async def sent(
    request: Request, db: DbSession, session: PortalPatient, shown: ShownPeople
) -> HTMLResponse:
    live = await _live_threads(db, session, shown.person)
    return render(
        request,
        "portal/sent.html",
        {
            **await tabs_context(db, session, "sent", shown),
            "replies": await _replies_in(db, live),
            "threads": live,
            "just_sent": request.query_params.get("sent") == "1",
        },
    )


async def _replies_in(db: DbSession, live: dict[str, SecureEmail]) -> list[Reply]:
    """The replies in these threads (each thread's patient's), newest first."""
    found = [
        reply
        for patient_id in dict.fromkeys(message.patient_id for message in live.values())
        for reply in await replies.replies_of_patient(
            db, patient_id, [m.id for m in live.values() if m.patient_id == patient_id]
        )
    ]
    return sorted(found, key=lambda reply: reply.sent_at, reverse=True)


@router.get("/portal/files")
async def files(
    request: Request, db: DbSession, session: PortalPatient, shown: ShownPeople
) -> HTMLResponse:
    threads = await session_threads(db, session, shown.person)
    live = {message.id: message for message in threads.live}
    return render(
        request,
        "portal/files.html",
        {
            **await tabs_context(db, session, "files", shown),
            "attachments": await secure_emails.files_of_threads(db, list(live)),
            "threads": live,
            "withdrawn": threads.withdrawn,
        },
    )


@router.get("/portal/messages/{secure_email_id}")
async def read_message(
    request: Request,
    state: StateDep,
    db: DbSession,
    session: PortalPatient,
    secure_email: ReadableEmail,
) -> HTMLResponse:
    # Audited first: the workflow marks the message opened only once the database holds
    # this view (a ``message_viewed`` signal sent by hand changes nothing).
    await audit_patient(db, request, secure_email, AuditAction.VIEW)
    if secure_email.opened_at is None:
        # Opened from the Inbox without its own passcode: the workflow marks it opened.
        try:
            await workflow_of(await temporal_of(state), secure_email).signal(
                SecureEmailWorkflow.message_viewed
            )
        except TEMPORAL_FAILURES:
            pass  # the office sees "opened" a little later, or not; reading goes on
    elif secure_email.opened_at < session.created_at:
        # Opened in an earlier session: the patient came back to it. One line per
        # session, however often the page is loaded in it.
        await timeline.add(
            db,
            secure_email.id,
            EventKind.VIEWED,
            datetime.now(UTC),
            f"viewed:{session.token_hash[:32]}",
        )
        await db.commit()
    thread = await replies.conversation(db, secure_email.id)
    return render(
        request,
        "portal/message.html",
        {
            **await tabs_context(db, session, "inbox"),
            "secure_email": secure_email,
            "practice": await practice_of_message(db, secure_email),
            "attachments": thread.office_files,
            "replies": thread.replies,
            "reply_files": thread.reply_files,
        },
    )


@router.get("/portal/messages/{secure_email_id}/attachments/{attachment_id}")
async def download_attachment(
    request: Request,
    state: StateDep,
    db: DbSession,
    secure_email: ReadableEmail,
    attachment_id: str,
) -> Response:
    attachment = or_404(
        await secure_emails.attachment_of(db, attachment_id, secure_email_id=secure_email.id),
        FILE_NOT_FOUND,
    )
    response = await download(state, attachment)
    await audit_patient(db, request, secure_email, AuditAction.DOWNLOAD, detail=attachment.id)
    return response


# Sign Out (R7)


@router.post("/portal/sign-out")
async def sign_out(request: Request, db: DbSession, settings: SettingsDep) -> Response:
    ended = await portal_sessions.end(db, request.cookies.get(portal_cookie_name(settings)))
    # The signed-out page names the practice (its phone) by id: no patient, no PHI.
    signed_out = "/portal/signed-out"
    if ended is not None:
        patient = await patient_by_id(db, ended.patient_id)
        if patient is not None:
            actor = Actor(ActorType.PATIENT, patient.id, client_address(request))
            audit(db, patient.practice_id, AuditAction.SIGN_OUT, actor, patient_id=patient.id)
            await db.commit()
            signed_out += "?" + urlencode({"practice": patient.practice_id})
    response = RedirectResponse(signed_out, status_code=status.HTTP_303_SEE_OTHER)
    end_portal_cookie(response, settings)
    return response


@router.get("/portal/signed-out")
async def signed_out(
    request: Request, db: DbSession, practice_id: Annotated[str, Query(alias="practice")] = ""
) -> HTMLResponse:
    found = await practice(db, practice_id[:36]) if practice_id else None
    return render(request, "portal/signed_out.html", {"practice": found})

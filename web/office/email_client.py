"""The office's Email Client: patients' replies, unread first (R10); and the Sent box,
the practice's secure emails newest first (R15).

The Sent box's listing and its audit (``web.services.sent_box``) serve
``web.api.secure_emails`` too."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, StreamingResponse

from domain.audit import AuditAction
from domain.secure_email import SecureEmailStatus
from infra import secure_emails
from infra.db.models import Reply, StaffUser
from infra.directory import find_patients, get_patient, patient_by_id
from infra.practices import time_zone_of
from infra.replies import ThreadCursor, files_of_replies, mark_read, reply_of_practice, threads
from infra.secure_emails import BadCursor, SentPage
from web.deps import CurrentStaff, DbSession, StateDep, audit_list, audit_staff, or_404
from web.downloads import download
from web.services.clinic_filter import ClinicRefused, clinic_choices, narrowed_reach
from web.services.sent_box import BAD_CURSOR, SentFilters, audit_sent, cursor_of, sent_page
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

REPLY_NOT_FOUND = "Reply not found"


async def _reply(db: DbSession, staff: StaffUser, reply_id: str) -> Reply:
    return or_404(await reply_of_practice(db, staff.reach, reply_id), REPLY_NOT_FOUND)


async def _audit_reply(
    request: Request,
    db: DbSession,
    staff: StaffUser,
    action: AuditAction,
    reply: Reply,
    detail: str,
) -> None:
    """An event about a reply: its patient and thread by id, never its words."""
    await audit_staff(
        db,
        request,
        staff,
        action,
        patient_id=reply.patient_id,
        secure_email_id=reply.secure_email_id,
        detail=detail,
    )


@router.get("/email-client")
async def email_client(
    request: Request, db: DbSession, staff: CurrentStaff, cursor: str = "", clinic: str = ""
) -> HTMLResponse:
    """The threads with replies; ``clinic``, those of that clinic's patients."""
    choices = await clinic_choices(db, staff)
    shown: dict[str, object] = {
        "staff": staff,
        "tab": "inbox",
        "clinics": choices,
        "clinic": clinic,
    }
    try:
        after = ThreadCursor.decode(cursor) if cursor else None
        reach = narrowed_reach(staff, clinic, choices)
    except (BadCursor, ClinicRefused) as refused:
        error = BAD_CURSOR if isinstance(refused, BadCursor) else "Choose a clinic from the list"
        return render(
            request,
            "office/email_client.html",
            {**shown, "error": error, "first_page": False},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    page = await threads(db, reach, after=after)
    # The list shows the threads' subjects and patients (PHI): reading it is audited, by
    # count and the patients' ids.
    summary = f"{len(page.threads)} thread(s)"
    patient_ids = (thread.patient_id for thread in page.threads)
    await audit_list(db, request, staff, AuditAction.OFFICE_INBOX_LIST, summary, patient_ids)
    older = page.next_cursor
    return render(
        request,
        "office/email_client.html",
        {
            **shown,
            "threads": page.threads,
            "older": _url("/email-client", {"clinic": clinic, "cursor": older.encode()})
            if older
            else None,
            "first_page": after is None,
            "time_zone": await time_zone_of(db, staff.practice_id),
        },
    )


def _url(path: str, query: dict[str, str]) -> str:
    """The list's address with the filters chosen, none empty (ids and dates only)."""
    kept = {name: value for name, value in query.items() if value}
    return path + (f"?{urlencode(kept)}" if kept else "")


# The Sent box -------------------------------------------------------------------------


def _sent_url(chosen: dict[str, str], cursor: str = "") -> str:
    return _url("/email-client/sent", {**chosen, "cursor": cursor})


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/email-client/sent")
async def sent_box(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    status_chosen: Annotated[str, Query(alias="status")] = "",
    patient_id: str = "",
    clinic: str = "",
    date_from: Annotated[str, Query(alias="from")] = "",
    date_to: Annotated[str, Query(alias="to")] = "",
    cursor: str = "",
) -> HTMLResponse:
    """Filters in the URL are an id, a status and dates only: never a patient's name."""
    chosen = {
        "status": status_chosen,
        "patient_id": patient_id,
        "clinic": clinic,
        "from": date_from,
        "to": date_to,
    }
    errors: dict[str, str] = {}
    clinics = await clinic_choices(db, staff)
    if clinic and clinic not in {choice.id for choice in clinics}:
        errors["clinic"] = "Choose a clinic from the list"
    statuses = [choice.value for choice in SecureEmailStatus]
    if status_chosen and status_chosen not in statuses:
        errors["status"] = "Choose a status from the list"
    since, until = _day(date_from), _day(date_to)
    if date_from and since is None:
        errors["from"] = "Enter a date such as 2026-12-01"
    if date_to and until is None:
        errors["to"] = "Enter a date such as 2026-12-01"
    if since and until and until < since:
        errors["to"] = "The end date comes before the start date"
    patients = await find_patients(db, staff.reach)
    if patient_id and patient_id not in {patient.id for patient in patients}:
        # The directory's first page may not hold the patient a Patients link named.
        patient = await get_patient(db, staff.reach, patient_id)
        if patient is None:
            errors["patient_id"] = "Choose a patient from the list"
        else:
            patients.append(patient)
    try:
        cursor_of(cursor)
    except BadCursor:
        errors["cursor"] = BAD_CURSOR
    page: SentPage | None = None
    older: str | None = None
    if not errors:
        filters = SentFilters(
            status=SecureEmailStatus(status_chosen) if status_chosen else None,
            patient_id=patient_id or None,
            since=datetime.combine(since, time(), UTC) if since else None,
            # The day chosen is included: up to the start of the next.
            until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
            cursor=cursor or None,
            clinic_id=clinic or None,
        )
        page = await sent_page(db, staff, filters, clinics)
        if page.next_cursor is not None:
            older = _sent_url(chosen, page.next_cursor.encode())
    # Refused filters still show the patient list: one event for what the page names.
    await audit_sent(
        request,
        db,
        staff,
        None if "patient_id" in errors else patient_id or None,
        page,
        also_shown=(patient.id for patient in patients),
    )
    return render(
        request,
        "office/sent_box.html",
        {
            "staff": staff,
            "tab": "sent",
            "time_zone": await time_zone_of(db, staff.practice_id),
            "page": page,
            "older": older,
            "newest": _sent_url(chosen),
            "first_page": not cursor,
            "chosen": chosen,
            "errors": errors,
            "statuses": statuses,
            "patients": patients,
            "clinics": clinics,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if errors else status.HTTP_200_OK,
    )


@router.get("/email-client/replies/{reply_id}")
async def read_reply(
    request: Request, db: DbSession, staff: CurrentStaff, reply_id: str
) -> HTMLResponse:
    reply = await _reply(db, staff, reply_id)
    await mark_read(db, reply)
    await _audit_reply(request, db, staff, AuditAction.OFFICE_READ_REPLY, reply, reply.id)
    # Foreign keys make these 404s unreachable.
    secure_email = or_404(await secure_emails.find(db, reply.secure_email_id), REPLY_NOT_FOUND)
    patient = or_404(await patient_by_id(db, reply.patient_id), REPLY_NOT_FOUND)
    files = (await files_of_replies(db, [reply.id]))[reply.id]
    # The office answers in the thread with a new secure email to the same patient. The
    # link names the thread by id: a subject in a URL would leak into logs and history.
    answer = f"/patients/{patient.id}/compose?" + urlencode({"answering": secure_email.id})
    return render(
        request,
        "office/reply.html",
        {
            "staff": staff,
            "reply": reply,
            "time_zone": await time_zone_of(db, staff.practice_id),
            "secure_email": secure_email,
            "patient": patient,
            "files": files,
            "answer": answer,
        },
    )


@router.get("/email-client/replies/{reply_id}/files/{attachment_id}")
async def download_reply_file(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: CurrentStaff,
    reply_id: str,
    attachment_id: str,
) -> StreamingResponse:
    reply = await _reply(db, staff, reply_id)
    attachment = or_404(
        await secure_emails.attachment_of(db, attachment_id, reply_id=reply.id), "File not found"
    )
    response = await download(state, attachment)
    await _audit_reply(request, db, staff, AuditAction.OFFICE_DOWNLOAD, reply, attachment.id)
    return response

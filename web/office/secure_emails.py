"""Office pages: compose and Send Secure, a secure email's status and timeline, Send
again, and the office's changes to it (withdraw, expiry, resend the notice)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.attachments import ALLOWED_EXTENSIONS, MAX_ATTACHMENT_BYTES
from domain.audit import AuditAction
from domain.secure_email import (
    MAX_LIFETIME,
    EventKind,
    SecureEmailStatus,
    is_closed,
    re_subject,
)
from infra import secure_emails, timeline
from infra.db.models import Patient, SecureEmail, SecureEmailEvent, StaffUser
from infra.objects.interface import ObjectNotFound, ObjectUnreadable
from infra.practices import time_zone_of
from web.cookies import cookie_name, set_cookie
from web.deps import (
    CurrentStaff,
    DbSession,
    SettingsDep,
    StateDep,
    audit_staff,
    or_404,
    practice_of,
    practice_patient,
    staff_actor,
)
from web.errors import SEND_REFUSED_STATUS, on_unavailable
from web.legacy import takes_office_changes
from web.services import changes
from web.services.changes import ChangeRefused, Refusal
from web.services.secure_emails import (
    SECURE_EMAIL_NOT_FOUND,
    audit_viewed,
    practice_secure_email,
)
from web.services.sending import (
    UNAVAILABLE,
    Draft,
    SendRefused,
    send_secure_email,
    sender_for,
)
from web.templating import render
from web.uploads import (
    UploadFormRefused,
    chosen,
    form_files,
    form_text,
    read_upload_form,
    reopen_attachments,
)

router = APIRouter(tags=["office"], include_in_schema=False)

FILES_UNREADABLE = (
    "The original attachments can no longer be read. Attach the files again and send."
)
ACCEPT = ",".join(f".{extension}" for extension in sorted(ALLOWED_EXTENSIONS))


@dataclass(frozen=True)
class ExpiryPreview:
    """When a secure email sent now would expire (the practice's ``expiry_days``, R8), in
    the practice's zone: the compose page says so before anything is sent."""

    at: datetime
    time_zone: str


async def _expiry_preview(db: DbSession, staff: StaffUser) -> ExpiryPreview:
    practice = await practice_of(db, staff)
    return ExpiryPreview(
        datetime.now(UTC) + timedelta(days=practice.expiry_days), practice.time_zone
    )


def _compose(
    request: Request,
    staff: CurrentStaff,
    patient: Patient | None,
    expiry: ExpiryPreview,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    return render(
        request,
        "office/compose.html",
        {
            "staff": staff,
            "patient": patient,
            "typed": typed or {},
            "errors": errors or {},
            "accept": ACCEPT,
            "allowed": ", ".join(sorted(ALLOWED_EXTENSIONS)),
            "max_mb": MAX_ATTACHMENT_BYTES // (1024 * 1024),
            "expiry": expiry,
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/compose")
async def compose_page(
    request: Request, db: DbSession, staff: CurrentStaff, patient_id: str, answering: str = ""
) -> HTMLResponse:
    """``answering`` (a secure email's id, from the Email Client's Answer) prefills the
    subject with "RE: …" of that thread."""
    patient = await practice_patient(db, staff, patient_id)
    thread = await secure_emails.of_practice(db, staff.reach, answering) if answering else None
    answered = thread if thread and thread.patient_id == patient.id else None
    # The page shows the patient's name and address, and the answered thread's subject.
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_PATIENT_VIEW,
        patient_id=patient.id,
        secure_email_id=answered.id if answered else None,
    )
    subject = re_subject(answered.subject) if answered else ""
    expiry = await _expiry_preview(db, staff)
    return _compose(request, staff, patient, expiry, typed={"subject": subject})


@router.post("/patients/{patient_id}/compose")
async def send_secure(
    request: Request, state: StateDep, db: DbSession, staff: CurrentStaff, patient_id: str
) -> Response:
    """No Form/File parameters: FastAPI would read the whole body (up to 200 MB) before
    knowing who sends it. The form is read here, once the staff member is known."""
    patient = await practice_patient(db, staff, patient_id)
    expiry = await _expiry_preview(db, staff)
    try:
        form = await read_upload_form(request)
    except UploadFormRefused as refused:
        typed = {name: form_text(refused.typed, name) for name in ("subject", "body")}
        return _compose(
            request,
            staff,
            patient,
            expiry,
            typed=typed,
            errors={"attachments": refused.reason},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    subject, body = form_text(form, "subject"), form_text(form, "body")
    draft = Draft(patient_id=patient_id, subject=subject, body=body)

    def compose_again(errors: dict[str, str], status_code: int) -> HTMLResponse:
        typed = {"subject": subject, "body": body}
        return _compose(
            request, staff, patient, expiry, typed=typed, errors=errors, status_code=status_code
        )

    try:
        return await _send(
            request, state, db, staff, draft, compose_again, chosen(form_files(form, "attachments"))
        )
    finally:
        await form.close()


ComposeAgain = Callable[[dict[str, str], int], HTMLResponse]


def _compose_again_on_failure(request: Request, compose_again: ComposeAgain) -> None:
    """Temporal or the object store failing answers with the compose page, text kept."""

    async def unavailable(message: str) -> Response:
        return compose_again({"form": message}, status.HTTP_503_SERVICE_UNAVAILABLE)

    on_unavailable(request, unavailable, UNAVAILABLE)


async def _send(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: CurrentStaff,
    draft: Draft,
    compose_again: ComposeAgain,
    uploads: list[UploadFile],
    resent_from: str | None = None,
) -> Response:
    """Send Secure, answering a refusal or a failure with the compose page again."""
    _compose_again_on_failure(request, compose_again)
    try:
        sender = await sender_for(state, db, staff, staff_actor(request, staff))
        secure_email = await send_secure_email(sender, draft, uploads, resent_from=resent_from)
    except SendRefused as refused:
        return compose_again(refused.errors, SEND_REFUSED_STATUS[refused.rule])
    # "Sent." is said once, on the page the send lands on: a cookie the next page view
    # takes back, not a query a bookmark or the browser's history would keep saying.
    response = _back_to(secure_email)
    set_cookie(
        response, state.settings, JUST_SENT_COOKIE, secure_email.id, max_age=JUST_SENT_SECONDS
    )
    return response


@router.get("/secure-emails/{secure_email_id}")
async def secure_email_page(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    staff: CurrentStaff,
    secure_email_id: str,
) -> HTMLResponse:
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    done = CHANGE_DONE.get(request.query_params.get("done", ""))
    resent = request.query_params.get("resent", "")
    if done is None and resent.isdigit() and len(resent) <= 2:
        done = _resent_message(int(resent))
    flash = cookie_name(settings, JUST_SENT_COOKIE)
    just_sent = request.cookies.get(flash) == secure_email.id
    page = await _status_page(request, db, staff, secure_email, done=done, sent=just_sent)
    if flash in request.cookies:
        page.delete_cookie(flash, path="/", secure=settings.secure_cookies, httponly=True)
    return page


async def _status_page(
    request: Request,
    db: DbSession,
    staff: StaffUser,
    secure_email: SecureEmail,
    *,
    done: str | None = None,
    sent: bool = False,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    patient = await secure_emails.patient_of(db, secure_email)
    time_zone = await time_zone_of(db, staff.practice_id)
    await audit_viewed(request, db, staff, secure_email)
    expired = secure_emails.expired(secure_email)
    changeable = takes_office_changes(secure_email) and not is_closed(
        secure_email.status, secure_email.expires_at, datetime.now(UTC)
    )
    events = await timeline.of(db, secure_email.id)
    typed = typed or {}
    typed.setdefault("expires_at", _local_input(secure_email.expires_at, time_zone))
    return render(
        request,
        "office/secure_email.html",
        {
            "staff": staff,
            "secure_email": secure_email,
            "time_zone": time_zone,
            "patient": patient,
            "attachments": await secure_emails.office_files_of(db, secure_email.id),
            "expired": expired,
            "sent": sent,
            "events": _lines(events),
            "stopped": any(event.kind == EventKind.STOPPED for event in events),
            "changeable": changeable,
            "resendable": changeable
            and secure_email.status == SecureEmailStatus.SENT
            and secure_email.opened_at is None,
            "latest_expiry": secure_email.sent_at + MAX_LIFETIME,
            "done": done,
            "errors": errors or {},
            "typed": typed,
        },
        status_code=status_code,
    )


@dataclass(frozen=True)
class TimelineLine:
    """A line of the status page's Timeline: what happened, when, and the page it opens
    (a reply's own page), if any."""

    description: str
    at: datetime
    href: str | None = None


def _lines(events: Sequence[SecureEmailEvent]) -> list[TimelineLine]:
    """The Timeline, one line per fact: the status "sent" says what the line of the notice
    handed to mail says (which has the mail service's moment), so it shows only for a
    secure email without one (sent before that line was kept). The API lists both."""
    emailed = any(event.kind == EventKind.NOTICE_EMAILED for event in events)
    return [_line(event) for event in events if not (emailed and event.kind == EventKind.SENT)]


def _line(event: SecureEmailEvent) -> TimelineLine:
    href = None
    reply_id = event.key.removeprefix(REPLY_KEY)
    if event.kind == EventKind.REPLIED and event.key.startswith(REPLY_KEY) and reply_id:
        href = f"/email-client/replies/{reply_id}"
    return TimelineLine(EVENT_DESCRIPTIONS.get(event.kind, event.kind), event.at, href)


# The office's changes (R15): clerks may make them, as they send.

# How the status page's Timeline names each kind of event.
EVENT_DESCRIPTIONS: dict[str, str] = {
    EventKind.SENT: "Notice emailed to the patient",
    EventKind.NOTICE_EMAILED: "Notice emailed to the patient",
    EventKind.NOTICE_DELIVERED: "Notice delivered",
    EventKind.NOTICE_RESENT: "Notice sent again",
    EventKind.REMINDER_SENT: "Reminder sent",
    EventKind.PASSCODE_SENT: "Passcode sent",
    EventKind.OPENED: "Opened",
    EventKind.VIEWED: "Viewed again",
    EventKind.REPLIED: "Replied",
    EventKind.EXPIRY_CHANGED: "Expiry changed",
    EventKind.WITHDRAWN: "Withdrawn",
    EventKind.EXPIRED: "Expired",
    EventKind.FAILED: "Could not be delivered",
    EventKind.BOUNCED: "Bounced",
    EventKind.STOPPED: "Stopped unexpectedly",
}
# A reply's line is keyed by its id (``activities.replies``).
REPLY_KEY = "reply:"
# The cookie that says "Sent." once, on the page a send lands on.
JUST_SENT_COOKIE = "just_sent"
JUST_SENT_SECONDS = 60
# What the status page says after a change (``?done=``).
CHANGE_DONE = {
    "withdrawn": "Withdrawn. The patient can no longer read this secure email.",
    "expiry": "The expiry was changed.",
}
EXPIRY_NOT_A_TIME = "Enter the new expiry as a date and a time"
# The field's format (``<input type="datetime-local">``), in the practice's zone.
LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


def _resent_message(left: int) -> str:
    more = f"{left} more time{'s' if left != 1 else ''}" if left else "no more times"
    return f"The notice was sent again. It can be sent again {more} today."


def _local_input(moment: datetime, time_zone: str) -> str:
    return moment.astimezone(_zone(time_zone)).strftime(LOCAL_INPUT_FORMAT)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _typed_expiry(typed: str, time_zone: str) -> datetime | None:
    """What the office typed, as a moment: a date and time (or a date: its midnight) on
    the practice's clock, unless it names its own zone."""
    try:
        moment = datetime.fromisoformat(typed.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=_zone(time_zone))


def _page_on_failure(
    request: Request,
    state: StateDep,
    staff: StaffUser,
    secure_email: SecureEmail,
    typed: dict[str, str] | None = None,
) -> None:
    """Temporal failing answers with the status page, saying so (and keeping the typing).

    The page is rendered by the failure handler, after the route's session was closed: it
    reads the database in a session of its own."""
    reach, secure_email_id = staff.reach, secure_email.id

    async def unavailable(message: str) -> Response:
        async with state.sessions() as db:
            found = await secure_emails.of_practice(db, reach, secure_email_id)
            return await _status_page(
                request,
                db,
                staff,
                or_404(found, SECURE_EMAIL_NOT_FOUND),
                errors={"change": message},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                typed=typed,
            )

    on_unavailable(request, unavailable)


async def _refused_page(
    request: Request,
    db: DbSession,
    staff: StaffUser,
    secure_email: SecureEmail,
    refused: ChangeRefused,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    field = "expires_at" if refused.refusal is Refusal.BAD_EXPIRY else "change"
    code = (
        status.HTTP_422_UNPROCESSABLE_CONTENT
        if refused.refusal is Refusal.BAD_EXPIRY
        else status.HTTP_409_CONFLICT
    )
    await db.refresh(secure_email)
    return await _status_page(
        request,
        db,
        staff,
        secure_email,
        errors={field: refused.message},
        status_code=code,
        typed=typed,
    )


def _back_to(secure_email: SecureEmail, query: str = "") -> RedirectResponse:
    return RedirectResponse(
        f"/secure-emails/{secure_email.id}" + (f"?{query}" if query else ""),
        status_code=status.HTTP_303_SEE_OTHER,
    )


@router.get("/secure-emails/{secure_email_id}/withdraw")
async def withdraw_page(
    request: Request, db: DbSession, staff: CurrentStaff, secure_email_id: str
) -> HTMLResponse:
    """The confirmation step: withdrawing cannot be undone."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    patient = await secure_emails.patient_of(db, secure_email)
    await audit_viewed(request, db, staff, secure_email)  # its subject is shown
    return render(
        request,
        "office/withdraw.html",
        {"staff": staff, "secure_email": secure_email, "patient": patient},
    )


@router.post("/secure-emails/{secure_email_id}/withdraw")
async def withdraw(
    request: Request, state: StateDep, db: DbSession, staff: CurrentStaff, secure_email_id: str
) -> Response:
    """Withdraws the secure email (after the confirmation step): the patient can no longer
    read it. Back on its status page, or the page again saying why it was refused."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    _page_on_failure(request, state, staff, secure_email)
    try:
        await changes.withdraw(state, db, secure_email, staff_actor(request, staff))
    except ChangeRefused as refused:
        return await _refused_page(request, db, staff, secure_email, refused)
    return _back_to(secure_email, "done=withdrawn")


@router.post("/secure-emails/{secure_email_id}/expiry")
async def change_expiry(
    request: Request, state: StateDep, db: DbSession, staff: CurrentStaff, secure_email_id: str
) -> Response:
    """A new expiry, typed in the practice's time zone; a time that cannot be read, or one
    the rules refuse, answers the status page again with what was typed."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    form = await request.form()
    raw = form.get("expires_at")
    typed = raw if isinstance(raw, str) else ""
    kept = {"expires_at": typed}
    expires_at = _typed_expiry(typed, await time_zone_of(db, staff.practice_id))
    if expires_at is None:
        return await _status_page(
            request,
            db,
            staff,
            secure_email,
            errors={"expires_at": EXPIRY_NOT_A_TIME},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            typed=kept,
        )
    _page_on_failure(request, state, staff, secure_email, kept)
    try:
        await changes.change_expiry(
            state, db, secure_email, expires_at, staff_actor(request, staff)
        )
    except ChangeRefused as refused:
        return await _refused_page(request, db, staff, secure_email, refused, kept)
    return _back_to(secure_email, "done=expiry")


@router.post("/secure-emails/{secure_email_id}/resend-notice")
async def resend_notice(
    request: Request, state: StateDep, db: DbSession, staff: CurrentStaff, secure_email_id: str
) -> Response:
    """The notice again, to a patient who has not opened it; the status page then says how
    many more times it can be sent again today."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    _page_on_failure(request, state, staff, secure_email)
    try:
        left = await changes.resend_notice(state, db, secure_email, staff_actor(request, staff))
    except ChangeRefused as refused:
        return await _refused_page(request, db, staff, secure_email, refused)
    return _back_to(secure_email, f"resent={left}")


@router.post("/secure-emails/{secure_email_id}/send-again")
async def send_again(
    request: Request, state: StateDep, db: DbSession, staff: CurrentStaff, secure_email_id: str
) -> Response:
    """An expired secure email cannot be reopened (R8); the office sends it again as new."""
    original = await practice_secure_email(db, staff, secure_email_id)
    draft = Draft(patient_id=original.patient_id, subject=original.subject, body=original.body)
    patient = await secure_emails.patient_of(db, original)
    expiry = await _expiry_preview(db, staff)

    def compose_again(errors: dict[str, str], status_code: int) -> HTMLResponse:
        typed = {"subject": original.subject, "body": original.body}
        return _compose(
            request, staff, patient, expiry, typed=typed, errors=errors, status_code=status_code
        )

    office_files = await secure_emails.office_files_of(db, original.id)
    # Reopening the files reads the store: a store that is down is a send that failed.
    _compose_again_on_failure(request, compose_again)
    try:
        copies = await reopen_attachments(state.store, office_files)
    except (ObjectNotFound, ObjectUnreadable):
        return compose_again({"attachments": FILES_UNREADABLE}, status.HTTP_409_CONFLICT)
    try:
        return await _send(request, state, db, staff, draft, compose_again, copies, original.id)
    finally:
        for copy in copies:
            await copy.close()

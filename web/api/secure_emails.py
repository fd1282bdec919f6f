"""``/api/v1/secure-emails``: Send Secure for practice software, and a message's status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.datastructures import FormData

from domain.clinics import UNKNOWN_CLINIC
from domain.secure_email import NoticeResent, SecureEmailStatus
from domain.secure_email_views import (
    AttachmentPublic,
    ReplyPublic,
    SecureEmailCreated,
    SecureEmailListItem,
    SecureEmailPage,
    SecureEmailPublic,
    TimelineEvent,
)
from domain.strict import STRICT_BODY, IsoDateTime
from infra import timeline
from infra.db.models import SecureEmail, StaffUser
from infra.replies import conversation
from infra.secure_emails import SENT_PAGE_MAX, SENT_PAGE_SIZE, BadCursor
from web.api.responses import (
    INVALID,
    JSON_BODY,
    NOT_FOUND,
    SERVICE_DOWN,
    WITH_BODY,
    Responses,
    business_rules,
    conflict,
    declared,
    with_idempotency_key,
)
from web.deps import ApiStaff, DbSession, StateDep, staff_actor
from web.errors import SEND_REFUSED_STATUS, field_error, field_errors, on_unavailable
from web.services import changes
from web.services.changes import ChangeRefused, Refusal
from web.services.clinic_filter import ClinicRefused
from web.services.idempotency import IdempotencyKeyHeader, answer_once, form_fingerprint
from web.services.secure_emails import audit_viewed, practice_secure_email
from web.services.sending import (
    NO_COPIES,
    UNAVAILABLE,
    Draft,
    SendRefused,
    send_secure_email,
    sender_for,
)
from web.services.sent_box import BAD_CURSOR, SentFilters, list_sent
from web.state import AppState
from web.uploads import (
    MAX_FILES,
    UploadFormRefused,
    chosen,
    form_files,
    form_text,
    read_upload_form,
)

router = APIRouter(prefix="/secure-emails", tags=["secure emails"])


# Subject and body must hold more than spaces (R3).
NOT_BLANK = {"minLength": 1, "pattern": r"\S"}
# The form, described by hand: the route reads it itself, after the token is checked
# (FastAPI reads Form/File parameters before any dependency runs).
SEND_SECURE_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["patient_id", "subject", "body"],
                    "properties": {
                        "patient_id": {"type": "string", "title": "Patient Id", "minLength": 1},
                        "subject": {"type": "string", "title": "Subject", **NOT_BLANK},
                        "body": {"type": "string", "title": "Body", **NOT_BLANK},
                        "attachments": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            },
                            "maxItems": MAX_FILES,
                            "title": "Attachments",
                        },
                    },
                }
            }
        },
    }
}
# Send Secure's rules beyond the form's schema (R2-R4, R9); sending switched off is 409.
REFUSALS = business_rules(
    patient_id="a patient of the practice (within the caller's clinics) whose status takes "
    "secure email, at an address other than the sender's",
    attachments="each of the allowed types, its content matching its name, at most 20 MB",
)
REQUIRED = ("patient_id", "subject", "body")
CURSOR = (
    "Where the page starts: the `next_cursor` of the page before, passed back as it came. "
    "An opaque token (its content is not a contract); one this list did not give out is "
    "refused (422). Empty or left out: the first page"
)
# What a cursor looks like (URL-safe base64 without padding), all a client needs to know.
OPAQUE = {"pattern": "^[A-Za-z0-9_-]*$"}


def _link(method: str, tail: str = "") -> dict[str, Any]:
    """An OpenAPI link from a send's answer to an operation on the secure email it made."""
    path = "/api/v1/secure-emails/{secure_email_id}" + tail
    return {
        "operationRef": "#/paths/" + path.replace("/", "~1") + "/" + method,
        "parameters": {"secure_email_id": "$response.body#/id"},
    }


# Sending while Secure Email is off (R1) for the practice, or the patient's clinic.
SWITCHED_OFF = conflict(
    "Secure Email is not enabled for the practice (or the patient's clinic); nothing was sent"
)
CLOSED = "it is closed (expired, withdrawn, or its notice was never delivered)"
# What a client (or a fuzzer) can do next with the secure email a send made.
SENT: Responses = {
    status.HTTP_201_CREATED: {
        "description": "Sent: the notice is on its way",
        "links": {
            "ReadSecureEmail": _link("get"),
            "ChangeExpiry": _link("patch"),
            "Withdraw": _link("post", "/withdraw"),
            "ResendNotice": _link("post", "/resend-notice"),
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SecureEmailCreated,
    openapi_extra=SEND_SECURE_FORM,
    responses=with_idempotency_key(declared(SENT, WITH_BODY, REFUSALS, SWITCHED_OFF, SERVICE_DOWN)),
)
async def create_secure_email(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: ApiStaff,
    idempotency_key: IdempotencyKeyHeader,
) -> SecureEmailCreated | Response:
    """Send Secure: the patient gets a notice with a link, never the content itself.
    At most 10 attachments of 20 MB each. With an ``Idempotency-Key``, a retry of the
    same request gets the first one's answer and sends nothing more."""
    try:
        form = await read_upload_form(request)
    except UploadFormRefused as refused:
        # Before any key is claimed: a form not read whole has no fingerprint, and the
        # same bytes are refused the same way again.
        raise field_errors({"attachments": refused.reason}) from None
    try:

        async def send() -> SecureEmailCreated:
            return await _send(request, state, db, staff, form)

        if idempotency_key is None:
            return await send()
        fingerprint = await form_fingerprint(request, form)
        return await answer_once(
            request,
            state,
            db,
            staff.practice_id,
            idempotency_key,
            fingerprint,
            send,
            status.HTTP_201_CREATED,
        )
    finally:
        await form.close()


async def _send(
    request: Request, state: AppState, db: DbSession, staff: StaffUser, form: FormData
) -> SecureEmailCreated:
    missing = [name for name in REQUIRED if not isinstance(form.get(name), str)]
    if missing:
        raise field_errors(dict.fromkeys(missing, "Field required"))
    copies = [name for name in ("cc", "bcc") if name in form]
    if copies:
        raise field_errors(dict.fromkeys(copies, NO_COPIES))
    draft = Draft(*(form_text(form, name) for name in REQUIRED))

    async def unavailable(message: str) -> Response:
        refusal = field_errors({"form": message}, status.HTTP_503_SERVICE_UNAVAILABLE)
        return await http_exception_handler(request, refusal)

    on_unavailable(request, unavailable, UNAVAILABLE)
    try:
        sender = await sender_for(state, db, staff, staff_actor(request, staff))
        uploads = chosen(form_files(form, "attachments"))
        secure_email = await send_secure_email(sender, draft, uploads)
    except SendRefused as refused:
        raise field_errors(refused.errors, SEND_REFUSED_STATUS[refused.rule]) from None
    return SecureEmailCreated.model_validate(secure_email)


LIST_RULES = business_rules(
    cursor="one this list gave out",
    clinic_id="a clinic of the practice (for staff restricted to clinics, one of theirs)",
)


@router.get("", responses=declared(NOT_FOUND, INVALID, LIST_RULES))
async def list_secure_emails(
    request: Request,
    db: DbSession,
    staff: ApiStaff,
    status: SecureEmailStatus | None = None,
    patient_id: str | None = None,
    clinic_id: Annotated[
        str | None, Query(description="Only the secure emails of this clinic's patients")
    ] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=SENT_PAGE_MAX)] = SENT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description=CURSOR, json_schema_extra=OPAQUE)] = None,
) -> SecureEmailPage:
    """The Sent box: the practice's secure emails, newest first (``since <= sent_at <
    until``; a time without a zone is UTC), a page at a time: pass ``next_cursor`` back as
    ``cursor`` for the next, older page. Never a body; ``reply_count`` counts replies.
    A ``patient_id`` not of this practice is a 404; ``clinic_id`` lists the secure emails
    of the patients that clinic has now."""
    try:
        filters = SentFilters(
            status=status,
            patient_id=patient_id,
            since=_utc(since, "since"),
            until=_utc(until, "until"),
            limit=limit,
            cursor=cursor,
            clinic_id=clinic_id,
        )
        page = await list_sent(request, db, staff, filters)
    except BadCursor:
        raise field_errors({"cursor": BAD_CURSOR}, where="query") from None
    except ClinicRefused:
        raise field_errors({"clinic_id": UNKNOWN_CLINIC}, where="query") from None
    return SecureEmailPage(
        items=[SecureEmailListItem.model_validate(line) for line in page.lines],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


def _utc(moment: datetime | None, field: str) -> datetime | None:
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise field_errors({field: "Out of range"}, where="query") from None


@router.get("/{secure_email_id}", responses=declared(NOT_FOUND, INVALID))
async def read_secure_email(
    request: Request, db: DbSession, staff: ApiStaff, secure_email_id: str
) -> SecureEmailPublic:
    """The secure email, its replies and its timeline (``events``, oldest first)."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    return await _public(request, db, staff, secure_email)


async def _public(
    request: Request, db: DbSession, staff: StaffUser, secure_email: SecureEmail
) -> SecureEmailPublic:
    # The patient's files share the table; they are listed under their reply.
    thread = await conversation(db, secure_email.id)
    attachments, replies, files = thread.office_files, thread.replies, thread.reply_files
    events = await timeline.of(db, secure_email.id)
    # The replies' bodies are PHI too: the event counts them.
    await audit_viewed(request, db, staff, secure_email, detail=f"{len(replies)} reply(ies)")
    return SecureEmailPublic(
        id=secure_email.id,
        patient_id=secure_email.patient_id,
        subject=secure_email.subject,
        status=SecureEmailStatus(secure_email.status),
        sent_at=secure_email.sent_at,
        expires_at=secure_email.expires_at,
        opened_at=secure_email.opened_at,
        attachments=[AttachmentPublic.model_validate(a) for a in attachments],
        replies=[
            ReplyPublic(
                id=reply.id,
                sent_at=reply.sent_at,
                body=reply.body,
                attachments=[AttachmentPublic.model_validate(a) for a in files[reply.id]],
            )
            for reply in replies
        ],
        events=[TimelineEvent.model_validate(event) for event in events],
    )


# The office's changes (R15). Clerks may make them, as they send: they are what
# the front desk does with a message it sent, not the practice's settings.


class ExpiryUpdate(BaseModel):
    """A secure email's new expiry: ISO 8601 with its zone, at least an hour from now and
    at most 90 days after sending."""

    model_config = STRICT_BODY

    expires_at: IsoDateTime


def _refused(refused: ChangeRefused) -> HTTPException:
    if refused.refusal is Refusal.BAD_EXPIRY:
        return field_error("expires_at", refused.message)
    return HTTPException(status.HTTP_409_CONFLICT, detail=refused.message)


@router.post(
    "/{secure_email_id}/withdraw",
    responses=declared(NOT_FOUND, INVALID, conflict(CLOSED), SERVICE_DOWN),
)
async def withdraw_secure_email(
    request: Request, state: StateDep, db: DbSession, staff: ApiStaff, secure_email_id: str
) -> SecureEmailPublic:
    """Withdraws it: the patient can no longer read it. Withdrawing it again is no
    change; an expired (or undelivered) one is a 409 in words."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    try:
        secure_email = await changes.withdraw(state, db, secure_email, staff_actor(request, staff))
    except ChangeRefused as refused:
        raise _refused(refused) from None
    return await _public(request, db, staff, secure_email)


@router.patch(
    "/{secure_email_id}",
    responses=declared(
        NOT_FOUND,
        JSON_BODY,
        conflict(CLOSED),
        SERVICE_DOWN,
        business_rules(expires_at="at least an hour from now, at most 90 days after sending"),
    ),
)
async def change_secure_email(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: ApiStaff,
    secure_email_id: str,
    change: ExpiryUpdate,
) -> SecureEmailPublic:
    """Moves its expiry (``expires_at``, UTC ISO 8601): 422 naming ``expires_at`` when it
    is less than an hour from now, more than 90 days after sending or has no zone; 409
    when the secure email is closed (expired, withdrawn, undelivered)."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    try:
        secure_email = await changes.change_expiry(
            state, db, secure_email, change.expires_at, staff_actor(request, staff)
        )
    except ChangeRefused as refused:
        raise _refused(refused) from None
    return await _public(request, db, staff, secure_email)


@router.post(
    "/{secure_email_id}/resend-notice",
    status_code=status.HTTP_202_ACCEPTED,
    responses=declared(
        NOT_FOUND,
        INVALID,
        conflict(f"it was opened, {CLOSED}, or its notice was resent 3 times today"),
        SERVICE_DOWN,
    ),
)
async def resend_notice(
    request: Request, state: StateDep, db: DbSession, staff: ApiStaff, secure_email_id: str
) -> NoticeResent:
    """Sends the patient the same notice (the same link) again, while it is unopened: at
    most 3 times a day. Refusals (opened, closed, too many today) are 409s in words."""
    secure_email = await practice_secure_email(db, staff, secure_email_id)
    try:
        left = await changes.resend_notice(state, db, secure_email, staff_actor(request, staff))
    except ChangeRefused as refused:
        raise _refused(refused) from None
    return NoticeResent(resends_left=left)

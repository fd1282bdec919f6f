"""The signed-in portal (R7-R9): Inbox, Sent, Files, a message, its files, Reply All.

Every page needs a live portal session and shows only that patient's messages; another
patient's message or file answers 404, and an expired message only its warning.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.attachments import ALLOWED_EXTENSIONS, MAX_ATTACHMENT_BYTES
from domain.audit import ActorType, AuditAction
from domain.secure_email import ReplyAttachment, re_subject
from infra.audit import Actor, audit
from infra.db.models import Attachment, Patient, PortalSession, Practice, Reply, SecureEmail
from infra.objects import StoreUnavailable
from infra.replies import replies_to
from web.deps import DbSession, StateDep, client_address
from web.downloads import download
from web.portal_common import (
    UNAVAILABLE,
    audit_patient,
    expired,
    expired_page,
    practice_of_message,
    refusal,
    workflow_of,
)
from web.portal_sessions import PORTAL_COOKIE, PortalPatient, end_portal_session
from web.replies import submit_reply
from web.secure_emails import attachments_of
from web.state import AppState
from web.templating import render
from web.uploads import (
    AttachmentsRefused,
    UploadFormRefused,
    check_uploads,
    chosen,
    discard,
    form_files,
    form_text,
    read_upload_form,
    store_uploads,
)
from workflows.secure_email import SecureEmailWorkflow

router = APIRouter(tags=["portal"], include_in_schema=False)

ACCEPT = ",".join(f".{extension}" for extension in sorted(ALLOWED_EXTENSIONS))
ALLOWED = ", ".join(sorted(ALLOWED_EXTENSIONS))
MAX_MB = MAX_ATTACHMENT_BYTES // (1024 * 1024)


async def _readable(db: AsyncSession, session: PortalSession, secure_email_id: str) -> SecureEmail:
    """The secure email if this session's patient may read it, else 404 (never 403:
    another patient's message ids must not be confirmed to exist)."""
    secure_email = await db.get(SecureEmail, secure_email_id)
    if secure_email is None or secure_email.patient_id != session.patient_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Message not found")
    return secure_email


async def _unexpired(db: AsyncSession, session: PortalSession) -> list[SecureEmail]:
    """The practice's secure emails to this patient that can still be read, newest first."""
    messages = (
        await db.scalars(
            select(SecureEmail)
            .where(SecureEmail.patient_id == session.patient_id)
            .order_by(SecureEmail.sent_at.desc())
        )
    ).all()
    return [message for message in messages if not expired(message)]


async def _tabs_context(db: AsyncSession, session: PortalSession, tab: str) -> dict[str, object]:
    patient = await db.get(Patient, session.patient_id)
    practice = await db.get(Practice, patient.practice_id) if patient else None
    return {"signed_in": True, "tab": tab, "practice": practice, "patient": patient}


@router.get("/portal")
async def inbox(request: Request, db: DbSession, session: PortalPatient) -> HTMLResponse:
    messages = await _unexpired(db, session)
    return render(
        request,
        "portal/inbox.html",
        {**await _tabs_context(db, session, "inbox"), "messages": messages},
    )


@router.get("/portal/sent")
async def sent(request: Request, db: DbSession, session: PortalPatient) -> HTMLResponse:
    live = {message.id: message for message in await _unexpired(db, session)}
    replies = (
        await db.scalars(
            select(Reply)
            .where(Reply.patient_id == session.patient_id, Reply.secure_email_id.in_(live))
            .order_by(Reply.sent_at.desc())
        )
    ).all()
    return render(
        request,
        "portal/sent.html",
        {
            **await _tabs_context(db, session, "sent"),
            "replies": replies,
            "threads": live,
            "just_sent": request.query_params.get("sent") == "1",
        },
    )


@router.get("/portal/files")
async def files(request: Request, db: DbSession, session: PortalPatient) -> HTMLResponse:
    live = {message.id: message for message in await _unexpired(db, session)}
    attachments = (
        await db.scalars(
            select(Attachment)
            .where(Attachment.secure_email_id.in_(live))
            .order_by(Attachment.created_at.desc())
        )
    ).all()
    return render(
        request,
        "portal/files.html",
        {**await _tabs_context(db, session, "files"), "attachments": attachments, "threads": live},
    )


@router.get("/portal/messages/{secure_email_id}")
async def read_message(
    request: Request,
    state: StateDep,
    db: DbSession,
    session: PortalPatient,
    secure_email_id: str,
) -> HTMLResponse:
    secure_email = await _readable(db, session, secure_email_id)
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
    if secure_email.opened_at is None:
        # Opened from the Inbox without its own passcode: the workflow marks it opened.
        try:
            await (await workflow_of(state, secure_email)).signal(
                SecureEmailWorkflow.message_viewed
            )
        except (RPCError, RuntimeError):
            pass  # the office sees "opened" a little later, or not; reading goes on
    await audit_patient(db, request, secure_email, AuditAction.VIEW)
    replies = await replies_to(db, secure_email.id)
    attachments = await attachments_of(db, secure_email.id)
    return render(
        request,
        "portal/message.html",
        {
            **await _tabs_context(db, session, "inbox"),
            "secure_email": secure_email,
            "practice": await practice_of_message(db, secure_email),
            "attachments": [a for a in attachments if a.reply_id is None],
            "replies": replies,
            "reply_files": [a for a in attachments if a.reply_id is not None],
        },
    )


@router.get("/portal/messages/{secure_email_id}/attachments/{attachment_id}")
async def download_attachment(
    request: Request,
    state: StateDep,
    db: DbSession,
    session: PortalPatient,
    secure_email_id: str,
    attachment_id: str,
) -> Response:
    secure_email = await _readable(db, session, secure_email_id)
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
    attachment = await db.get(Attachment, attachment_id)
    if attachment is None or attachment.secure_email_id != secure_email.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="File not found")
    response = await download(state, attachment)
    await audit_patient(db, request, secure_email, AuditAction.DOWNLOAD, detail=attachment.id)
    return response


# Reply All (R9)


def _reply_form(
    request: Request,
    context: dict[str, object],
    secure_email: SecureEmail,
    *,
    subject: str,
    body: str = "",
    errors: dict[str, str] | None = None,
    refused_files: list[str] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    return render(
        request,
        "portal/reply.html",
        {
            **context,
            "secure_email": secure_email,
            "subject": subject,
            "body": body,
            "errors": errors or {},
            "refused_files": refused_files or [],
            "accept": ACCEPT,
            "allowed": ALLOWED,
            "max_mb": MAX_MB,
        },
        status_code=status_code,
    )


@router.get("/portal/messages/{secure_email_id}/reply")
async def reply_page(
    request: Request, db: DbSession, session: PortalPatient, secure_email_id: str
) -> HTMLResponse:
    secure_email = await _readable(db, session, secure_email_id)
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
    context = await _tabs_context(db, session, "inbox")
    return _reply_form(request, context, secure_email, subject=re_subject(secure_email.subject))


@router.post("/portal/messages/{secure_email_id}/reply")
async def reply_all(
    request: Request, state: StateDep, db: DbSession, session: PortalPatient, secure_email_id: str
) -> Response:
    """No Form/File parameters: FastAPI would read the whole body (up to 200 MB) before
    the portal session is checked. The form is read here, once the patient is known."""
    secure_email = await _readable(db, session, secure_email_id)
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
    context = await _tabs_context(db, session, "inbox")
    try:
        form = await read_upload_form(request)
    except UploadFormRefused as refused_form:
        # Too many files: what the patient typed comes back with the limit in words.
        return _reply_form(
            request,
            context,
            secure_email,
            subject=form_text(refused_form.typed, "subject").strip()
            or re_subject(secure_email.subject),
            body=form_text(refused_form.typed, "body"),
            refused_files=[refused_form.reason],
            status_code=422,
        )
    try:
        return await _send_reply(
            request,
            state,
            db,
            secure_email,
            context,
            subject=form_text(form, "subject"),
            body=form_text(form, "body"),
            attachments=form_files(form, "attachments"),
        )
    finally:
        await form.close()


async def _send_reply(
    request: Request,
    state: AppState,
    db: AsyncSession,
    secure_email: SecureEmail,
    context: dict[str, object],
    *,
    subject: str,
    body: str,
    attachments: list[UploadFile],
) -> Response:
    """Files are checked, then stored, then the workflow accepts the reply: a reply it
    accepts is complete, and a refused one leaves nothing behind but what was typed."""
    subject = subject.strip() or re_subject(secure_email.subject)
    uploads = chosen(attachments)

    def refused(errors: dict[str, str], files: list[str], code: int) -> HTMLResponse:
        return _reply_form(
            request,
            context,
            secure_email,
            subject=subject,
            body=body,
            errors=errors,
            refused_files=files,
            status_code=code,
        )

    errors = {} if body.strip() else {"body": "Write a message before sending your reply"}
    try:
        await check_uploads(uploads)
    except AttachmentsRefused as refusal_:
        return refused(errors, [str(item) for item in refusal_.refused], 422)
    if errors:
        return refused(errors, [], 422)

    reply_id = str(uuid.uuid4())
    try:
        stored = await store_uploads(
            state.store, ("secure-emails", secure_email.id, "replies", reply_id), uploads
        )
    except StoreUnavailable:
        return refused({"form": UNAVAILABLE}, [], 503)
    files = [
        ReplyAttachment(
            attachment_id=item.id,
            object_key=item.object_key,
            filename=item.filename,
            size=item.size,
            content_type=item.content_type,
            sha256=item.sha256,
        )
        for item in stored
    ]
    try:
        await submit_reply(
            state, db, secure_email, reply_id, subject, body, files, client_address(request)
        )
    except WorkflowUpdateFailedError as error:
        await discard(state.store, stored)
        return refused({"form": refusal(error)}, [], 409)
    except (RPCError, RuntimeError):
        await discard(state.store, stored)
        if expired(secure_email):
            return await expired_page(request, db, secure_email)
        return refused({"form": UNAVAILABLE}, [], 503)
    return RedirectResponse("/portal/sent?sent=1", status_code=status.HTTP_303_SEE_OTHER)


# Sign Out (R7)


@router.post("/portal/sign-out")
async def sign_out(request: Request, db: DbSession) -> Response:
    ended = await end_portal_session(db, request.cookies.get(PORTAL_COOKIE))
    if ended is not None:
        patient = await db.get(Patient, ended.patient_id)
        if patient is not None:
            actor = Actor(ActorType.PATIENT, patient.id, client_address(request))
            audit(db, patient.practice_id, AuditAction.SIGN_OUT, actor, patient_id=patient.id)
            await db.commit()
    response = RedirectResponse("/portal/signed-out", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(PORTAL_COOKIE, path="/")
    return response


@router.get("/portal/signed-out")
async def signed_out(request: Request) -> HTMLResponse:
    return render(request, "portal/signed_out.html")

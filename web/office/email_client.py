"""The office's Email Client: patients' replies, unread first (R10)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from domain.audit import AuditAction
from infra import secure_emails
from infra.db.models import Reply, StaffUser
from infra.directory import patient_by_id
from infra.replies import files_of_replies, mark_read, reply_of_practice, threads
from web.deps import CurrentStaff, DbSession, StateDep, audit_staff, or_404
from web.downloads import download
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

REPLY_NOT_FOUND = "Reply not found"


async def _reply(db: DbSession, staff: StaffUser, reply_id: str) -> Reply:
    return or_404(await reply_of_practice(db, staff.practice_id, reply_id), REPLY_NOT_FOUND)


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
async def email_client(request: Request, db: DbSession, staff: CurrentStaff) -> HTMLResponse:
    return render(
        request,
        "office/email_client.html",
        {"staff": staff, "threads": await threads(db, staff.practice_id)},
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

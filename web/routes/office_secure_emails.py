"""Office pages: compose and Send Secure, a secure email's status, Send again."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.attachments import ALLOWED_EXTENSIONS, MAX_ATTACHMENT_BYTES
from domain.audit import AuditAction
from domain.secure_email import SecureEmailStatus, re_subject
from infra.db.models import Patient
from infra.directory import get_patient
from infra.objects import ObjectNotFound, ObjectUnreadable
from web.deps import CurrentStaff, DbSession, StateDep, audit_staff
from web.secure_emails import load_secure_email, office_files_of, sender_for
from web.sending import Draft, SendRefused, send_secure_email
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


def _compose(
    request: Request,
    staff: CurrentStaff,
    patient: Patient | None,
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
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/compose")
async def compose_page(
    request: Request, db: DbSession, staff: CurrentStaff, patient_id: str, answering: str = ""
) -> HTMLResponse:
    """``answering`` (a secure email's id, from the Email Client's Answer) prefills the
    subject with "RE: …" of that thread."""
    patient = await get_patient(db, staff.practice_id, patient_id)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Patient not found")
    thread = await load_secure_email(db, staff, answering) if answering else None
    subject = re_subject(thread.subject) if thread and thread.patient_id == patient.id else ""
    return _compose(request, staff, patient, typed={"subject": subject})


@router.post("/patients/{patient_id}/compose")
async def send_secure(
    request: Request, state: StateDep, db: DbSession, staff: CurrentStaff, patient_id: str
) -> Response:
    """No Form/File parameters: FastAPI would read the whole body (up to 200 MB) before
    knowing who sends it. The form is read here, once the staff member is known."""
    patient = await get_patient(db, staff.practice_id, patient_id)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Patient not found")
    try:
        form = await read_upload_form(request)
    except UploadFormRefused as refused:
        typed = {name: form_text(refused.typed, name) for name in ("subject", "body")}
        return _compose(
            request,
            staff,
            patient,
            typed=typed,
            errors={"attachments": refused.reason},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    subject, body = form_text(form, "subject"), form_text(form, "body")
    draft = Draft(patient_id=patient_id, subject=subject, body=body)
    try:
        sender = await sender_for(state, db, staff, request)
        secure_email = await send_secure_email(
            sender, draft, chosen(form_files(form, "attachments"))
        )
    except SendRefused as refused:
        return _compose(
            request,
            staff,
            patient,
            typed={"subject": subject, "body": body},
            errors=refused.errors,
            status_code=refused.status_code,
        )
    finally:
        await form.close()
    return RedirectResponse(
        f"/secure-emails/{secure_email.id}?sent=1", status_code=status.HTTP_303_SEE_OTHER
    )


@router.get("/secure-emails/{secure_email_id}")
async def secure_email_page(
    request: Request, db: DbSession, staff: CurrentStaff, secure_email_id: str
) -> HTMLResponse:
    secure_email = await load_secure_email(db, staff, secure_email_id)
    if secure_email is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Secure email not found")
    patient = await db.get(Patient, secure_email.patient_id)
    # Its subject and body are PHI on the page (HIPAA 164.312(b)); the event names ids only.
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_VIEW,
        patient_id=secure_email.patient_id,
        secure_email_id=secure_email.id,
    )
    expired = (
        secure_email.status == SecureEmailStatus.EXPIRED
        or secure_email.expires_at <= datetime.now(UTC)
    )
    return render(
        request,
        "office/secure_email.html",
        {
            "staff": staff,
            "secure_email": secure_email,
            "patient": patient,
            "attachments": await office_files_of(db, secure_email.id),
            "expired": expired,
            "sent": request.query_params.get("sent") == "1",
        },
    )


@router.post("/secure-emails/{secure_email_id}/send-again")
async def send_again(
    request: Request, state: StateDep, db: DbSession, staff: CurrentStaff, secure_email_id: str
) -> Response:
    """An expired secure email cannot be reopened (R8); the office sends it again as new."""
    original = await load_secure_email(db, staff, secure_email_id)
    if original is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Secure email not found")
    draft = Draft(patient_id=original.patient_id, subject=original.subject, body=original.body)
    office_files = await office_files_of(db, original.id)
    try:
        copies = await reopen_attachments(state.store, office_files)
    except (ObjectNotFound, ObjectUnreadable):
        patient = await db.get(Patient, original.patient_id)
        return _compose(
            request,
            staff,
            patient,
            typed={"subject": original.subject, "body": original.body},
            errors={"attachments": FILES_UNREADABLE},
            status_code=status.HTTP_409_CONFLICT,
        )
    try:
        sender = await sender_for(state, db, staff, request)
        secure_email = await send_secure_email(sender, draft, copies, resent_from=original.id)
    except SendRefused as refused:
        patient = await db.get(Patient, original.patient_id)
        return _compose(
            request,
            staff,
            patient,
            typed={"subject": original.subject, "body": original.body},
            errors=refused.errors,
            status_code=refused.status_code,
        )
    finally:
        for copy in copies:
            await copy.close()
    return RedirectResponse(
        f"/secure-emails/{secure_email.id}?sent=1", status_code=status.HTTP_303_SEE_OTHER
    )

"""Reply All (R9): the patient answers in the thread, with files of the allowed types.

A refused reply keeps everything the patient typed and names each refused file and why;
a reply the workflow accepts is complete, a refused or failed one leaves nothing behind.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from temporalio.client import WorkflowUpdateFailedError

from domain.attachments import ALLOWED_EXTENSIONS, MAX_ATTACHMENT_BYTES
from domain.secure_email import re_subject
from infra import secure_emails
from infra.db.models import SecureEmail
from web.deps import DbSession, StateDep
from web.errors import closed_page, on_unavailable
from web.languages import N_, translator
from web.portal.deps import PortalPatient, ReadableEmail, patient_actor, practice_of_message
from web.portal.file_kinds import allowed_kinds
from web.portal.messages import tabs_context
from web.portal.refusals import refusal, refusal_status
from web.services.files import AttachmentsRefused, check_uploads
from web.services.replies import send_reply
from web.state import AppState
from web.templating import render
from web.uploads import (
    UploadFormRefused,
    chosen,
    form_files,
    form_text,
    read_upload_form,
)

router = APIRouter(tags=["portal"], include_in_schema=False)

ACCEPT = ",".join(f".{extension}" for extension in sorted(ALLOWED_EXTENSIONS))
MAX_MB = MAX_ATTACHMENT_BYTES // (1024 * 1024)
WRITE_SOMETHING = N_("Write a message before sending your reply")


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
    words = translator(request)
    return render(
        request,
        "portal/reply.html",
        {
            **context,
            "secure_email": secure_email,
            "subject": subject,
            "body": body,
            # In the page's language: a message from elsewhere is English the catalog
            # may have; one already translated is left as it is.
            "errors": {field: words.gettext(text) for field, text in (errors or {}).items()},
            "refused_files": [words.gettext(text) for text in refused_files or []],
            "accept": ACCEPT,
            "kinds": allowed_kinds(),
            "max_mb": MAX_MB,
        },
        status_code=status_code,
    )


@router.get("/portal/messages/{secure_email_id}/reply")
async def reply_page(
    request: Request, db: DbSession, session: PortalPatient, secure_email: ReadableEmail
) -> HTMLResponse:
    context = await tabs_context(db, session, "inbox")
    return _reply_form(request, context, secure_email, subject=re_subject(secure_email.subject))


@router.post("/portal/messages/{secure_email_id}/reply")
async def reply_all(
    request: Request,
    state: StateDep,
    db: DbSession,
    session: PortalPatient,
    secure_email: ReadableEmail,
) -> Response:
    """No Form/File parameters: FastAPI would read the whole body (up to 200 MB) before
    the portal session is checked. The form is read here, once the patient is known."""
    context = await tabs_context(db, session, "inbox")
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
    db: DbSession,
    secure_email: SecureEmail,
    context: dict[str, object],
    *,
    subject: str,
    body: str,
    attachments: list[UploadFile],
) -> Response:
    """Files are checked, then stored, then the workflow accepts the reply."""
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

    async def unavailable(message: str) -> Response:
        if secure_emails.expired(secure_email):
            practice = await practice_of_message(db, secure_email)
            return closed_page(request, practice, secure_email.expires_at, withdrawn=False)
        return refused({"form": message}, [], 503)

    errors = {} if body.strip() else {"body": WRITE_SOMETHING}
    try:
        await check_uploads(uploads)
    except AttachmentsRefused as refusal_:
        gettext = translator(request).gettext
        return refused(errors, [item.in_language(gettext) for item in refusal_.refused], 422)
    if errors:
        return refused(errors, [], 422)
    on_unavailable(request, unavailable)
    try:
        await send_reply(
            state,
            db,
            secure_email,
            subject=subject,
            body=body,
            uploads=uploads,
            actor=patient_actor(request, secure_email),
        )
    except WorkflowUpdateFailedError as error:
        # What was typed stays on the form, whatever the refusal.
        answer = refusal_status(error)
        page = refused({"form": refusal(error, translator(request))}, [], answer.code)
        page.headers.update(answer.headers())
        return page
    return RedirectResponse("/portal/sent?sent=1", status_code=status.HTTP_303_SEE_OTHER)

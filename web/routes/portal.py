"""The patient portal: View Secure Email → passcode → Verify → read (R5-R8).

The link in the notice carries a random token; only its hash is stored. Nothing here
shows any part of a message before Verify, and nothing at all after it expires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from domain.audit import ActorType, AuditAction
from domain.passcodes import MAX_WRONG_TRIES, PASSCODE_VALID_FOR, clean_passcode
from domain.secure_email import (
    PasscodeAttempt,
    PasscodeRequest,
    SecureEmailStatus,
    VerifyOutcome,
    workflow_id_for,
)
from infra.audit import Actor, audit
from infra.db.models import Attachment, Patient, Practice, SecureEmail
from infra.objects import ObjectNotFound
from infra.rate_limits import PASSCODE_PER_CLIENT, PASSCODE_PER_PATIENT, VERIFY_PER_CLIENT, allow
from infra.security import token_hash
from web.deps import DbSession, SettingsDep, StateDep
from web.portal_sessions import (
    PORTAL_COOKIE,
    PortalPatient,
    end_portal_session,
    start_portal_session,
)
from web.secure_emails import attachments_of
from web.templating import render
from workflows.secure_email import SecureEmailWorkflow

router = APIRouter(tags=["portal"], include_in_schema=False)

UNAVAILABLE = "Secure Email is unavailable right now. Please try again in a few minutes."
TOO_MANY_REQUESTS = "Too many attempts from this device. Please wait an hour and try again."
VERIFY_MESSAGES = {
    VerifyOutcome.BURNED: (
        f"That passcode was entered wrongly {MAX_WRONG_TRIES} times and no longer works. "
        "Request a new passcode."
    ),
    VerifyOutcome.TIMED_OUT: (
        f"That passcode has expired (each one works for "
        f"{int(PASSCODE_VALID_FOR.total_seconds() // 60)} minutes). Request a new passcode."
    ),
    VerifyOutcome.NONE_ISSUED: "That passcode has already been used. Request a new passcode.",
}


def _expired(secure_email: SecureEmail) -> bool:
    return (
        secure_email.status == SecureEmailStatus.EXPIRED
        or secure_email.expires_at <= datetime.now(UTC)
    )


async def _by_token(db: AsyncSession, token: str) -> SecureEmail:
    secure_email = await db.scalar(
        select(SecureEmail).where(SecureEmail.link_token_hash == token_hash(token))
    )
    if secure_email is None or secure_email.status == SecureEmailStatus.FAILED:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="This link is not valid")
    return secure_email


async def _practice(db: AsyncSession, secure_email: SecureEmail) -> Practice:
    practice = await db.get(Practice, secure_email.practice_id)
    if practice is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="This link is not valid")
    return practice


async def _expired_page(
    request: Request, db: AsyncSession, secure_email: SecureEmail
) -> HTMLResponse:
    return render(
        request,
        "portal/expired.html",
        {"practice": await _practice(db, secure_email), "expires_at": secure_email.expires_at},
        status_code=status.HTTP_410_GONE,
    )


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


async def _workflow(
    state: StateDep, secure_email: SecureEmail
) -> WorkflowHandle[SecureEmailWorkflow, object]:
    client: Client = await state.temporal()
    return client.get_workflow_handle_for(
        SecureEmailWorkflow.run,
        workflow_id_for(secure_email.id),
    )


def _refusal(error: WorkflowUpdateFailedError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return UNAVAILABLE


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _audit(
    db: AsyncSession,
    request: Request,
    secure_email: SecureEmail,
    action: AuditAction,
    detail: str | None = None,
) -> None:
    """Portal events are the patient's, identified by the address the link went to."""
    actor = Actor(ActorType.PATIENT, secure_email.patient_id, _client_address(request))
    audit(
        db,
        secure_email.practice_id,
        action,
        actor,
        patient_id=secure_email.patient_id,
        secure_email_id=secure_email.id,
        detail=detail,
    )
    await db.commit()


@router.get("/m/{token}")
async def open_link(request: Request, db: DbSession, token: str) -> HTMLResponse:
    secure_email = await _by_token(db, token)
    if _expired(secure_email):
        return await _expired_page(request, db, secure_email)
    return render(
        request,
        "portal/open.html",
        {"token": token, "practice": await _practice(db, secure_email)},
    )


@router.post("/m/{token}/passcode")
async def request_passcode(
    request: Request, state: StateDep, db: DbSession, token: str
) -> Response:
    secure_email = await _by_token(db, token)
    if _expired(secure_email):
        return await _expired_page(request, db, secure_email)
    practice = await _practice(db, secure_email)
    checks = [
        (PASSCODE_PER_CLIENT, _client_address(request)),
        (PASSCODE_PER_PATIENT, secure_email.patient_id),
    ]
    if not await allow(db, checks):
        await _audit(db, request, secure_email, AuditAction.PASSCODE_REFUSED, "rate limit")
        return render(
            request,
            "portal/open.html",
            {"token": token, "practice": practice, "error": TOO_MANY_REQUESTS},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
    try:
        handle = await _workflow(state, secure_email)
        await handle.execute_update(
            SecureEmailWorkflow.request_passcode,
            PasscodeRequest(client_address=_client_address(request)),
        )
    except WorkflowUpdateFailedError as error:
        await _audit(db, request, secure_email, AuditAction.PASSCODE_REFUSED)
        return render(
            request,
            "portal/open.html",
            {"token": token, "practice": practice, "error": _refusal(error)},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
    except (RPCError, RuntimeError):
        return render(
            request,
            "portal/open.html",
            {"token": token, "practice": practice, "error": UNAVAILABLE},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    await _audit(db, request, secure_email, AuditAction.PASSCODE_ISSUED)
    return RedirectResponse(f"/m/{token}/passcode", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/m/{token}/passcode")
async def passcode_page(request: Request, db: DbSession, token: str) -> HTMLResponse:
    secure_email = await _by_token(db, token)
    if _expired(secure_email):
        return await _expired_page(request, db, secure_email)
    return await _passcode_form(request, db, token, secure_email)


async def _passcode_form(
    request: Request,
    db: AsyncSession,
    token: str,
    secure_email: SecureEmail,
    *,
    error: str | None = None,
    offer_new: bool = False,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    patient = await db.get(Patient, secure_email.patient_id)
    return render(
        request,
        "portal/passcode.html",
        {
            "token": token,
            "practice": await _practice(db, secure_email),
            "address": _masked(patient.email) if patient else "",
            "minutes": int(PASSCODE_VALID_FOR.total_seconds() // 60),
            "error": error,
            "offer_new": offer_new,
        },
        status_code=status_code,
    )


@router.post("/m/{token}/verify")
async def verify(
    request: Request,
    state: StateDep,
    db: DbSession,
    settings: SettingsDep,
    token: str,
    passcode: Annotated[str, Form()] = "",
) -> Response:
    secure_email = await _by_token(db, token)
    if _expired(secure_email):
        return await _expired_page(request, db, secure_email)
    if not await allow(db, [(VERIFY_PER_CLIENT, _client_address(request))]):
        return await _passcode_form(
            request, db, token, secure_email, error=TOO_MANY_REQUESTS, status_code=429
        )
    code = clean_passcode(passcode)
    if code is None:
        return await _passcode_form(
            request,
            db,
            token,
            secure_email,
            error="Enter the 8-digit passcode from the email.",
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    try:
        handle = await _workflow(state, secure_email)
        result = await handle.execute_update(
            SecureEmailWorkflow.verify_passcode,
            PasscodeAttempt(passcode=code, client_address=_client_address(request)),
        )
    except WorkflowUpdateFailedError as error:
        return await _passcode_form(
            request, db, token, secure_email, error=_refusal(error), status_code=409
        )
    except (RPCError, RuntimeError):
        return await _passcode_form(
            request, db, token, secure_email, error=UNAVAILABLE, status_code=503
        )
    if result.outcome == VerifyOutcome.OK:
        patient = await db.get(Patient, secure_email.patient_id)
        if patient is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="This link is not valid")
        response = RedirectResponse(
            f"/portal/messages/{secure_email.id}", status_code=status.HTTP_303_SEE_OTHER
        )
        await start_portal_session(db, response, patient, secure_cookie=settings.secure_cookies)
        await _audit(db, request, secure_email, AuditAction.VERIFY_OK)
        await _audit(db, request, secure_email, AuditAction.SIGN_IN)
        return response
    if result.outcome == VerifyOutcome.BURNED:
        await _audit(db, request, secure_email, AuditAction.VERIFY_BURNED)
    else:
        await _audit(
            db, request, secure_email, AuditAction.VERIFY_FAILED, detail=result.outcome.value
        )
    if result.outcome == VerifyOutcome.WRONG:
        plural = "try" if result.tries_left == 1 else "tries"
        message = f"That passcode is not right. {result.tries_left} {plural} left."
        return await _passcode_form(
            request, db, token, secure_email, error=message, status_code=422
        )
    return await _passcode_form(
        request,
        db,
        token,
        secure_email,
        error=VERIFY_MESSAGES[result.outcome],
        offer_new=True,
        status_code=422,
    )


async def _readable(db: AsyncSession, session: PortalPatient, secure_email_id: str) -> SecureEmail:
    """The secure email if this session's patient may read it now, else 404 (never 403:
    another patient's message ids must not be confirmed to exist)."""
    secure_email = await db.get(SecureEmail, secure_email_id)
    if secure_email is None or secure_email.patient_id != session.patient_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Message not found")
    return secure_email


@router.get("/portal/messages/{secure_email_id}")
async def read_message(
    request: Request, db: DbSession, session: PortalPatient, secure_email_id: str
) -> HTMLResponse:
    secure_email = await _readable(db, session, secure_email_id)
    if _expired(secure_email):
        return await _expired_page(request, db, secure_email)
    await _audit(db, request, secure_email, AuditAction.VIEW)
    return render(
        request,
        "portal/message.html",
        {
            "secure_email": secure_email,
            "practice": await _practice(db, secure_email),
            "attachments": await attachments_of(db, secure_email.id),
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
    if _expired(secure_email):
        return await _expired_page(request, db, secure_email)
    attachment = await db.get(Attachment, attachment_id)
    if attachment is None or attachment.secure_email_id != secure_email.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="File not found")
    try:
        stream = await state.store.get_stream(attachment.object_key)
    except ObjectNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="File not found") from error
    await _audit(db, request, secure_email, AuditAction.DOWNLOAD, detail=attachment.id)
    return StreamingResponse(
        stream,
        media_type=attachment.content_type,
        headers=download_headers(attachment.filename, attachment.size),
    )


def download_headers(filename: str, size: int) -> dict[str, str]:
    """Always a download, never shown inline: an SVG or HTML-looking file cannot run."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        ),
        "Content-Length": str(size),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


@router.post("/portal/sign-out")
async def sign_out(request: Request, db: DbSession) -> Response:
    ended = await end_portal_session(db, request.cookies.get(PORTAL_COOKIE))
    if ended is not None:
        patient = await db.get(Patient, ended.patient_id)
        if patient is not None:
            actor = Actor(ActorType.PATIENT, patient.id, _client_address(request))
            audit(db, patient.practice_id, AuditAction.SIGN_OUT, actor, patient_id=patient.id)
            await db.commit()
    response = RedirectResponse("/portal/signed-out", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(PORTAL_COOKIE, path="/")
    return response


@router.get("/portal/signed-out")
async def signed_out(request: Request) -> HTMLResponse:
    return render(request, "portal/signed_out.html")

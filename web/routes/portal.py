"""The patient portal: View Secure Email → passcode → Verify → read (R5-R8).

The link in the notice carries a random token; only its hash is stored. Nothing here
shows any part of a message before Verify, and nothing at all after it expires.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.audit import AuditAction
from domain.passcodes import MAX_WRONG_TRIES, PASSCODE_VALID_FOR, clean_passcode
from domain.secure_email import (
    PasscodeAttempt,
    PasscodeRequest,
    SecureEmailStatus,
    VerifyOutcome,
)
from infra.crypto import portal_secrets
from infra.db.models import Patient, SecureEmail
from infra.rate_limits import (
    PASSCODE_PER_CLIENT,
    PASSCODE_PER_PATIENT,
    VERIFY_PER_CLIENT,
    Checks,
    allow,
    exceeded,
    record,
)
from infra.security import token_hash
from web.deps import DbSession, SettingsDep, StateDep, client_address
from web.portal_common import (
    UNAVAILABLE,
    audit_patient,
    expired,
    expired_page,
    practice_of_message,
    refusal,
    workflow_of,
)
from web.portal_sessions import (
    start_portal_session,
)
from web.state import AppState
from web.templating import render
from workflows.secure_email import SecureEmailWorkflow

router = APIRouter(tags=["portal"], include_in_schema=False)

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


async def _by_token(db: AsyncSession, token: str) -> SecureEmail:
    secure_email = await db.scalar(
        select(SecureEmail).where(SecureEmail.link_token_hash == token_hash(token))
    )
    if secure_email is None or secure_email.status == SecureEmailStatus.FAILED:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="This link is not valid")
    return secure_email


def passcode_attempt(
    state: AppState, secure_email: SecureEmail, code: str, client: str | None
) -> PasscodeAttempt:
    """The typed code as its checks: the workflow compares them with the mailed code's, so
    the code itself never enters the history. A version-1 workflow, whose passcodes come
    from a secret in its own history, can only compare the code itself."""
    if secure_email.workflow_version == 1:
        return PasscodeAttempt(passcode=code, client_address=client)
    checks = portal_secrets.passcode_checks(state.portal_keys, secure_email.id, code)
    return PasscodeAttempt(checks=checks, client_address=client)


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


@router.get("/m/{token}")
async def open_link(request: Request, db: DbSession, token: str) -> HTMLResponse:
    secure_email = await _by_token(db, token)
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
    return render(
        request,
        "portal/open.html",
        {"token": token, "practice": await practice_of_message(db, secure_email)},
    )


@router.post("/m/{token}/passcode")
async def request_passcode(
    request: Request, state: StateDep, db: DbSession, token: str
) -> Response:
    secure_email = await _by_token(db, token)
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
    practice = await practice_of_message(db, secure_email)
    # Every request counts against the client sending it; only a passcode actually sent
    # counts against the patient, so nobody can use up a patient's allowance with
    # requests that are refused (here, or by the workflow).
    per_patient: Checks = [(PASSCODE_PER_PATIENT, secure_email.patient_id)]
    client_allowed = await allow(db, [(PASSCODE_PER_CLIENT, client_address(request))])
    if not client_allowed or await exceeded(db, per_patient):
        await audit_patient(db, request, secure_email, AuditAction.PASSCODE_REFUSED, "rate limit")
        return render(
            request,
            "portal/open.html",
            {"token": token, "practice": practice, "error": TOO_MANY_REQUESTS},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
    try:
        handle = await workflow_of(state, secure_email)
        await handle.execute_update(
            SecureEmailWorkflow.request_passcode,
            PasscodeRequest(client_address=client_address(request)),
        )
    except WorkflowUpdateFailedError as error:
        await audit_patient(db, request, secure_email, AuditAction.PASSCODE_REFUSED)
        return render(
            request,
            "portal/open.html",
            {"token": token, "practice": practice, "error": refusal(error)},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
    except (RPCError, RuntimeError):
        return render(
            request,
            "portal/open.html",
            {"token": token, "practice": practice, "error": UNAVAILABLE},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    await record(db, per_patient)
    await audit_patient(db, request, secure_email, AuditAction.PASSCODE_ISSUED)
    return RedirectResponse(f"/m/{token}/passcode", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/m/{token}/passcode")
async def passcode_page(request: Request, db: DbSession, token: str) -> HTMLResponse:
    secure_email = await _by_token(db, token)
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
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
            "practice": await practice_of_message(db, secure_email),
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
    if expired(secure_email):
        return await expired_page(request, db, secure_email)
    if not await allow(db, [(VERIFY_PER_CLIENT, client_address(request))]):
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
        handle = await workflow_of(state, secure_email)
        result = await handle.execute_update(
            SecureEmailWorkflow.verify_passcode,
            passcode_attempt(state, secure_email, code, client_address(request)),
        )
    except WorkflowUpdateFailedError as error:
        return await _passcode_form(
            request, db, token, secure_email, error=refusal(error), status_code=409
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
        await audit_patient(db, request, secure_email, AuditAction.VERIFY_OK)
        await audit_patient(db, request, secure_email, AuditAction.SIGN_IN)
        return response
    if result.outcome == VerifyOutcome.BURNED:
        await audit_patient(db, request, secure_email, AuditAction.VERIFY_BURNED)
    else:
        await audit_patient(
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

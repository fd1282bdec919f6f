"""The patient portal: View Secure Email → passcode → Verify → read (R5-R8).

The link in the notice carries a random token; only its hash is stored. Nothing here
shows any part of a message before Verify, and nothing at all after it expires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from temporalio.client import WorkflowUpdateFailedError

from domain.audit import AuditAction
from domain.passcodes import clean_passcode
from domain.secure_email import PasscodeAttempt, PasscodeRequest, VerifyOutcome
from infra import secure_emails
from infra.audit import audit_secure_email
from infra.crypto import portal_secrets
from infra.db.models import SecureEmail
from infra.portal_sessions import sent_to
from infra.rate_limits import (
    PASSCODE_PER_ADDRESS,
    PASSCODE_PER_CLIENT,
    VERIFY_PER_CLIENT,
    Attempt,
    count,
    uncount,
)
from web import legacy
from web.deps import DbSession, SettingsDep, StateDep, client_address, or_404, temporal_of
from web.errors import on_unavailable
from web.languages import translator
from web.portal.deps import (
    LINK_NOT_VALID,
    LinkedEmail,
    audit_patient,
    patient_actor,
    practice_of_message,
    start_portal_session,
)
from web.portal.refusals import (
    MINUTES_VALID,
    NO_PASSCODE,
    TOO_MANY_REQUESTS,
    refusal,
    refusal_status,
    verify_message,
    wrong_passcode,
)
from web.services.replies import workflow_of
from web.state import AppState
from web.templating import render
from workflows.secure_email import SecureEmailWorkflow

router = APIRouter(tags=["portal"], include_in_schema=False)


def passcode_attempt(state: AppState, secure_email: SecureEmail, code: str) -> PasscodeAttempt:
    """The typed code as its checks: the workflow compares them with the mailed code's, so
    the code itself never enters the history (unless its workflow can only compare the
    code itself: ``web.legacy``)."""
    in_clear = legacy.passcode_in_clear(secure_email, code)
    if in_clear is not None:
        return in_clear
    checks = portal_secrets.passcode_checks(state.portal_keys, secure_email.id, code)
    return PasscodeAttempt(checks=checks)


async def mailbox_of(db: DbSession, secure_email: SecureEmail) -> str:
    """The mailbox this message's passcodes go to, within its practice: what the
    passcode allowance counts, so a family at one address shares one."""
    patient = await secure_emails.patient_of(db, secure_email)  # loaded with the link
    address = sent_to(secure_email, patient) if patient else secure_email.patient_id
    return f"{secure_email.practice_id}:{address}"


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


@router.get("/m/{token}")
async def open_link(
    request: Request, db: DbSession, token: str, secure_email: LinkedEmail
) -> HTMLResponse:
    return render(
        request,
        "portal/open.html",
        {"token": token, "practice": await practice_of_message(db, secure_email)},
    )


@router.post("/m/{token}/passcode")
async def request_passcode(
    request: Request, state: StateDep, db: DbSession, token: str, secure_email: LinkedEmail
) -> Response:
    practice = await practice_of_message(db, secure_email)
    words = translator(request)

    async def open_page(error: str, status_code: int = 503) -> HTMLResponse:
        # In the page's language; a message already in it is left as it is.
        context = {"token": token, "practice": practice, "error": words.gettext(error)}
        return render(request, "portal/open.html", context, status_code=status_code)

    async def too_many(attempt: Attempt) -> HTMLResponse:
        await audit_patient(db, request, secure_email, AuditAction.PASSCODE_REFUSED, "rate limit")
        page = await open_page(TOO_MANY_REQUESTS, status.HTTP_429_TOO_MANY_REQUESTS)
        page.headers["Retry-After"] = str(attempt.retry_after())
        return page

    # Every request counts against the client sending it. Only a passcode actually sent
    # counts against the mailbox, so nobody can use up its allowance with requests that
    # are refused (here, or by the workflow): the mailbox's count is taken before the
    # workflow is asked, so requests at once each see their own number, and given back
    # when the workflow refuses. When Temporal fails, whether a passcode went is not
    # known: it stays counted, the safe side.
    from_client = await count(db, [(PASSCODE_PER_CLIENT, client_address(request))])
    if not from_client.allowed:
        return await too_many(from_client)
    to_mailbox = await count(db, [(PASSCODE_PER_ADDRESS, await mailbox_of(db, secure_email))])
    if not to_mailbox.allowed:
        await uncount(db, to_mailbox)
        return await too_many(to_mailbox)
    on_unavailable(request, open_page)
    try:
        await workflow_of(await temporal_of(state), secure_email).execute_update(
            SecureEmailWorkflow.request_passcode,
            PasscodeRequest(),
        )
    except WorkflowUpdateFailedError as error:
        await uncount(db, to_mailbox)
        await audit_patient(db, request, secure_email, AuditAction.PASSCODE_REFUSED)
        answer = refusal_status(error)
        page = await open_page(refusal(error, words), answer.code)
        page.headers.update(answer.headers())
        return page
    await audit_patient(db, request, secure_email, AuditAction.PASSCODE_ISSUED)
    return RedirectResponse(f"/m/{token}/passcode", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/m/{token}/passcode")
async def passcode_page(
    request: Request, db: DbSession, token: str, secure_email: LinkedEmail
) -> HTMLResponse:
    return await _passcode_form(request, db, token, secure_email)


async def _passcode_form(
    request: Request,
    db: DbSession,
    token: str,
    secure_email: SecureEmail,
    *,
    error: str | None = None,
    offer_new: bool = False,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    patient = await secure_emails.patient_of(db, secure_email)
    # Where this message's passcodes go: the address its notice went to, even if the
    # office has changed the patient's address since.
    address = (secure_email.recipient_address or patient.email) if patient else ""
    return render(
        request,
        "portal/passcode.html",
        {
            "token": token,
            "practice": await practice_of_message(db, secure_email),
            "address": _masked(address) if address else "",
            "minutes": MINUTES_VALID,
            # In the page's language; a message already in it is left as it is.
            "error": translator(request).gettext(error) if error else None,
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
    secure_email: LinkedEmail,
    passcode: Annotated[str, Form()] = "",
) -> Response:
    async def form_again(
        error: str, status_code: int = 503, offer_new: bool = False
    ) -> HTMLResponse:
        return await _passcode_form(
            request,
            db,
            token,
            secure_email,
            error=error,
            offer_new=offer_new,
            status_code=status_code,
        )

    # Counted and decided at once, before the passcode is looked at.
    attempt = await count(db, [(VERIFY_PER_CLIENT, client_address(request))])
    if not attempt.allowed:
        page = await form_again(TOO_MANY_REQUESTS, status.HTTP_429_TOO_MANY_REQUESTS)
        page.headers["Retry-After"] = str(attempt.retry_after())
        return page
    code = clean_passcode(passcode)
    if code is None:
        return await form_again(NO_PASSCODE, status.HTTP_422_UNPROCESSABLE_CONTENT)
    on_unavailable(request, form_again)
    asked_at = datetime.now(UTC)
    try:
        result = await workflow_of(await temporal_of(state), secure_email).execute_update(
            SecureEmailWorkflow.verify_passcode,
            passcode_attempt(state, secure_email, code),
        )
    except WorkflowUpdateFailedError as error:
        return await form_again(refusal(error, translator(request)), 409)
    if result.outcome == VerifyOutcome.OK:
        patient = or_404(await secure_emails.patient_of(db, secure_email), LINK_NOT_VALID)
        response = RedirectResponse(
            f"/portal/messages/{secure_email.id}", status_code=status.HTTP_303_SEE_OTHER
        )
        await start_portal_session(
            db,
            response,
            patient,
            secure_email,
            began_at=asked_at,
            settings=settings,
        )
        actor = patient_actor(request, secure_email)
        for action in (AuditAction.VERIFY_OK, AuditAction.SIGN_IN):
            audit_secure_email(db, secure_email, action, actor)
        await db.commit()  # the session and both events in one write
        return response
    if result.outcome == VerifyOutcome.BURNED:
        await audit_patient(db, request, secure_email, AuditAction.VERIFY_BURNED)
    else:
        await audit_patient(
            db, request, secure_email, AuditAction.VERIFY_FAILED, detail=result.outcome.value
        )
    if result.outcome == VerifyOutcome.WRONG:
        return await form_again(wrong_passcode(result.tries_left, translator(request)), 422)
    return await form_again(
        verify_message(result.outcome, translator(request)), 422, offer_new=True
    )

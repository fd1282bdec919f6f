"""What both halves of the portal share: expiry, the practice, the workflow, auditing."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.audit import ActorType, AuditAction
from domain.secure_email import SecureEmailState, SecureEmailStatus, workflow_id_for
from infra.audit import Actor, audit
from infra.db.models import Practice, SecureEmail
from web.deps import client_address
from web.state import AppState
from web.templating import render
from workflows.secure_email import SecureEmailWorkflow

UNAVAILABLE = "Secure Email is unavailable right now. Please try again in a few minutes."


def expired(secure_email: SecureEmail) -> bool:
    return (
        secure_email.status == SecureEmailStatus.EXPIRED
        or secure_email.expires_at <= datetime.now(UTC)
    )


async def practice_of_message(db: AsyncSession, secure_email: SecureEmail) -> Practice:
    practice = await db.get(Practice, secure_email.practice_id)
    if practice is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="This link is not valid")
    return practice


async def expired_page(
    request: Request, db: AsyncSession, secure_email: SecureEmail
) -> HTMLResponse:
    """R8: when the message expired and whom to ask; nothing of the message itself."""
    return render(
        request,
        "portal/expired.html",
        {
            "practice": await practice_of_message(db, secure_email),
            "expires_at": secure_email.expires_at,
        },
        status_code=status.HTTP_410_GONE,
    )


async def workflow_of(
    state: AppState, secure_email: SecureEmail
) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    client: Client = await state.temporal()
    return client.get_workflow_handle_for(SecureEmailWorkflow.run, workflow_id_for(secure_email.id))


def refusal(error: WorkflowUpdateFailedError) -> str:
    """The workflow's own words for a refused update (expired, too many passcodes...)."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return UNAVAILABLE


async def audit_patient(
    db: AsyncSession,
    request: Request,
    secure_email: SecureEmail,
    action: AuditAction,
    detail: str | None = None,
) -> None:
    """Portal events are the patient's, identified by the address the link went to."""
    actor = Actor(ActorType.PATIENT, secure_email.patient_id, client_address(request))
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

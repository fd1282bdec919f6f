"""The office's changes to a sent secure email (R15): withdraw it, move its
expiry, send its notice again. Shared by the API and the office pages; knows nothing of
HTTP: a refusal is a ``ChangeRefused`` in words, which each caller answers its own way.

The workflow decides (it is the only writer of lifecycle state); the database row is
checked first only for what the workflow can no longer answer: a secure email that is
closed (its workflow may have ended) or whose workflow has none of these updates
(``web.legacy``). Temporal failing is not caught here: ``web.errors`` answers it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain import errors
from domain.audit import AuditAction
from domain.secure_email import (
    ExpiryChange,
    NoticeResend,
    OfficeChange,
    SecureEmailState,
    SecureEmailStatus,
    Withdrawal,
    expiry_refusal,
)
from infra import notice_claims, office_requests, secure_emails
from infra.audit import Actor, audit_secure_email
from infra.db.models import SecureEmail
from web import legacy
from web.deps import DbSession, TemporalUnavailable, temporal_of
from web.services.replies import workflow_of
from web.state import AppState
from workflows.secure_email import SecureEmailWorkflow

EXPIRED = (
    "This secure email has expired, so it can no longer be changed. "
    "Send it again as a new secure email if the patient still needs it."
)
WITHDRAWN = "This secure email was withdrawn, so it can no longer be changed."
FAILED = (
    "This secure email failed (its notice could not be delivered, or it stopped "
    "unexpectedly), so it can no longer be changed. Check the patient's email address "
    "and send it again."
)
OLD_WORKFLOW = (
    "This secure email was sent before this could be changed. "
    "Send it again as a new secure email to change it."
)
NOT_RESENDABLE = "The notice cannot be sent again: the patient has already opened it."
NOT_CONFIRMED = "This change could not be confirmed, so nothing was changed. Please try again."


# An update waits for the worker to run it (a resend, for the mail to go): past this the
# office is told to try again rather than left waiting.
UPDATE_TIMEOUT = timedelta(seconds=20)


class Refusal(Enum):
    CLOSED = "closed"  # expired, withdrawn or never delivered
    OLD_WORKFLOW = "old_workflow"  # sent before the office could change it
    BAD_EXPIRY = "bad_expiry"  # the new expiry is outside what is allowed
    NOT_RESENDABLE = "not_resendable"  # opened, or its notice not yet sent
    TOO_MANY_RESENDS = "too_many_resends"
    NOT_CONFIRMED = "not_confirmed"  # the workflow found no request of the office's for it


class ChangeRefused(Exception):
    """Nothing was changed, and ``message`` says why, for the office to read."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


# What the office is told for a workflow that refused because it is closed.
_CLOSED_MESSAGES = {
    errors.EXPIRED: EXPIRED,
    errors.WITHDRAWN: WITHDRAWN,
    errors.FAILED: FAILED,
}
# The workflow's refusals whose message is written for the office already.
_OWN_MESSAGES = {
    errors.BAD_EXPIRY: Refusal.BAD_EXPIRY,
    errors.NOT_RESENDABLE: Refusal.NOT_RESENDABLE,
    errors.TOO_MANY_RESENDS: Refusal.TOO_MANY_RESENDS,
}
# Refusals whose message is not for the office, answered with these instead.
_OTHER_MESSAGES = {
    # The database no longer holds the notice due (opened or closed since the row was read).
    errors.NOT_DUE: (Refusal.NOT_RESENDABLE, NOT_RESENDABLE),
    # The request this change recorded is no longer there to claim (used, or dropped by a
    # refused attempt): nothing changed, and asking again records a new one.
    errors.NOT_REQUESTED: (Refusal.NOT_CONFIRMED, NOT_CONFIRMED),
}


def _closed(secure_email: SecureEmail) -> ChangeRefused | None:
    if secure_email.status == SecureEmailStatus.WITHDRAWN:
        return ChangeRefused(Refusal.CLOSED, WITHDRAWN)
    if secure_emails.expired(secure_email):
        return ChangeRefused(Refusal.CLOSED, EXPIRED)
    if secure_email.status == SecureEmailStatus.FAILED:
        return ChangeRefused(Refusal.CLOSED, FAILED)
    return None


def _refuse_unchangeable(secure_email: SecureEmail) -> None:
    if not legacy.takes_office_changes(secure_email):
        raise ChangeRefused(Refusal.OLD_WORKFLOW, OLD_WORKFLOW)
    closed = _closed(secure_email)
    if closed is not None:
        raise closed


def _refusal_of(error: WorkflowUpdateFailedError) -> ChangeRefused | None:
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return None
    if cause.type in _CLOSED_MESSAGES:
        return ChangeRefused(Refusal.CLOSED, _CLOSED_MESSAGES[cause.type])
    if cause.type in _OWN_MESSAGES:
        return ChangeRefused(_OWN_MESSAGES[cause.type], cause.message)
    if cause.type in _OTHER_MESSAGES:
        return ChangeRefused(*_OTHER_MESSAGES[cause.type])
    return None


async def _workflow(
    state: AppState, secure_email: SecureEmail
) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    """Its workflow, once a worker is known to poll for it: with none, an update would
    only wait (``TemporalUnavailable``, answered 503 in words)."""
    temporal = await temporal_of(state)
    if not await _worker_polls(temporal, state.settings.task_queue):
        raise TemporalUnavailable("no worker polls the task queue")
    return workflow_of(temporal, secure_email)


async def _worker_polls(temporal: Client, task_queue: str) -> bool:
    described = await temporal.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=temporal.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(described.pollers)


@asynccontextmanager
async def _updating(db: DbSession, secure_email: SecureEmail) -> AsyncIterator[None]:
    """An update's failures as the office hears them: the workflow's refusal (or its end
    since the row was read) as ``ChangeRefused``; no answer in time as Temporal down."""
    try:
        yield
    except WorkflowUpdateRPCTimeoutOrCancelledError as error:
        raise TemporalUnavailable("the update had no answer in time") from error
    except (WorkflowUpdateFailedError, RPCError) as error:
        refused = await _refused_after(db, secure_email, error)
        if refused is None:
            raise
        raise refused from None


@asynccontextmanager
async def _requested(
    db: DbSession,
    secure_email: SecureEmail,
    kind: OfficeChange,
    staff_id: str,
    expires_at: datetime | None = None,
) -> AsyncIterator[str]:
    """The office's change recorded, by this staff user, and committed before the
    workflow is asked: it changes something only for a request the database holds
    (``infra.office_requests``), once. Whatever the answer (refused, not given in time,
    or "already withdrawn"), the request is then dropped unless the workflow claimed it,
    so nothing can use it later."""
    request_id = office_requests.record(
        db, secure_email.id, kind, staff_id, datetime.now(UTC), expires_at
    )
    await db.commit()
    try:
        yield request_id
    finally:
        await office_requests.drop_unclaimed(db, request_id)


async def _refreshed(db: DbSession, secure_email: SecureEmail) -> SecureEmail:
    """The row as the workflow's activities left it (they commit before it answers)."""
    await db.commit()
    await db.refresh(secure_email)
    return secure_email


async def _refused_after(
    db: DbSession, secure_email: SecureEmail, error: Exception
) -> ChangeRefused | None:
    """What a failed update means for the office, if anything: a refusal by the workflow,
    or a workflow that ended (closed) since the row was read."""
    if isinstance(error, WorkflowUpdateFailedError):
        return _refusal_of(error)
    if isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND:
        return _closed(await _refreshed(db, secure_email))
    return None


async def withdraw(
    state: AppState, db: DbSession, secure_email: SecureEmail, actor: Actor
) -> SecureEmail:
    """Withdrawn: the patient can no longer read it. Withdrawing it again changes nothing
    (and is not audited again)."""
    if secure_email.status == SecureEmailStatus.WITHDRAWN:
        return secure_email
    _refuse_unchangeable(secure_email)
    handle = await _workflow(state, secure_email)
    staff_id = _staff_id(actor)
    async with (
        _requested(db, secure_email, OfficeChange.WITHDRAW, staff_id) as request_id,
        _updating(db, secure_email),
    ):
        await handle.execute_update(
            SecureEmailWorkflow.withdraw,
            Withdrawal(staff_id=staff_id, request_id=request_id),
            rpc_timeout=UPDATE_TIMEOUT,
        )
    _audit(db, secure_email, AuditAction.WITHDRAW, actor)
    return await _refreshed(db, secure_email)


async def change_expiry(
    state: AppState,
    db: DbSession,
    secure_email: SecureEmail,
    expires_at: datetime,
    actor: Actor,
) -> SecureEmail:
    """The new expiry: at least an hour from now, at most 90 days after sending."""
    _refuse_unchangeable(secure_email)
    refusal = expiry_refusal(expires_at, secure_email.sent_at, datetime.now(UTC))
    if refusal is not None:
        raise ChangeRefused(Refusal.BAD_EXPIRY, refusal)
    handle = await _workflow(state, secure_email)
    staff_id, asked = _staff_id(actor), expires_at.astimezone(UTC)
    async with (
        _requested(db, secure_email, OfficeChange.CHANGE_EXPIRY, staff_id, asked) as request_id,
        _updating(db, secure_email),
    ):
        await handle.execute_update(
            SecureEmailWorkflow.change_expiry,
            ExpiryChange(staff_id=staff_id, expires_at=asked, request_id=request_id),
            rpc_timeout=UPDATE_TIMEOUT,
        )
    # Times only: when it was set to expire, and when now.
    detail = f"{secure_email.expires_at.isoformat()} -> {expires_at.astimezone(UTC).isoformat()}"
    _audit(db, secure_email, AuditAction.EXPIRY_CHANGED, actor, detail)
    return await _refreshed(db, secure_email)


async def resend_notice(
    state: AppState, db: DbSession, secure_email: SecureEmail, actor: Actor
) -> int:
    """The same notice again, to a patient who has not opened it; how many more times it
    can be sent again today.

    The request is recorded first, by this staff user: the notice activity mails only a
    resend the database holds (``infra.notice_claims``), once."""
    _refuse_unchangeable(secure_email)
    if secure_email.opened_at is not None:
        raise ChangeRefused(Refusal.NOT_RESENDABLE, NOT_RESENDABLE)
    handle = await _workflow(state, secure_email)
    staff_id = _staff_id(actor)
    request_id = notice_claims.request_resend(db, secure_email.id, staff_id, datetime.now(UTC))
    await db.commit()
    try:
        async with _updating(db, secure_email):
            resent = await handle.execute_update(
                SecureEmailWorkflow.resend_notice,
                NoticeResend(staff_id=staff_id, request_id=request_id),
                rpc_timeout=UPDATE_TIMEOUT,
            )
    except BaseException:
        # Refused, or no answer: a request nobody claimed can no longer be.
        await notice_claims.drop_unclaimed_resend(db, secure_email.id, request_id)
        raise
    _audit(
        db,
        secure_email,
        AuditAction.NOTICE_RESENT,
        actor,
        f"{resent.resends_left} resend(s) left today",
    )
    await db.commit()
    return resent.resends_left


def _staff_id(actor: Actor) -> str:
    # Staff actors always carry their id (``web.deps.staff_actor``).
    return actor.id or ""


def _audit(
    db: DbSession,
    secure_email: SecureEmail,
    action: AuditAction,
    actor: Actor,
    detail: str | None = None,
) -> None:
    # Recorded once the workflow made the change: the log cannot take an event back.
    audit_secure_email(db, secure_email, action, actor, detail)

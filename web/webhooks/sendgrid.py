"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook, for notices it accepted.

SendGrid takes a notice (the "sent" line), then tells us later what became of it:
``delivered`` adds the "delivered" line to the secure email's timeline; ``bounce`` and
``dropped`` mean the patient got nothing, so the office is told (R15): the report is
audited, then the workflow is signalled (it finds the audited report, sets the status to
failed, adds the "bounced" line and raises the alert; a signal sent by hand finds no
report and changes nothing), unless its workflow has no such signal
(``web.legacy.recorded_bounce``).

Only signed, fresh batches are read (``infra.mail.sendgrid_events``): the signature is
checked on the raw bytes before any JSON is parsed. The body is bounded by
``web.body_limits`` (1 MB).

Events find their secure email by the ``custom_args`` each notice carries
(``infra.mail.message.MailMessage.tracking``): ``mail`` ("notice", "passcode") and
``secure_email_id``; SendGrid copies them into every event, beside its own fields. Of
an event only those ids, its kind, its time and SendGrid's event id are read: the
patient's address and the bounce's reason text are neither logged nor stored. Every
write is keyed by the event id, so a batch SendGrid posts again changes nothing twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.audit import AuditAction
from domain.secure_email import EventKind, NoticeBounced, workflow_id_for
from infra import secure_emails, timeline
from infra.audit import SYSTEM, audit_secure_email
from infra.db.models import AuditEvent, SecureEmail
from infra.mail.sendgrid_events import fresh, signed
from web import legacy
from web.api.responses import ErrorDetail
from web.deps import DbSession, StateDep, TemporalUnavailable, temporal_of
from web.state import AppState

log = logging.getLogger(__name__)

router = APIRouter()

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# The bounce's signal, by name: ``workflows.secure_email.SecureEmailWorkflow.notice_bounced``.
NOTICE_BOUNCED_SIGNAL = "notice_bounced"
NOTICE = "notice"
DELIVERED = "delivered"
FAILED = frozenset({"bounce", "dropped"})

NOT_SIGNED = "The request is not signed by SendGrid's Event Webhook, or its time is stale."
WEBHOOK_OFF = "Not Found"
NOT_EVENTS = "The body is not a JSON array of events."
TEMPORAL_DOWN = "The events could not be recorded now; SendGrid will post them again."


class SendGridEvent(BaseModel):
    """What an event is read for; all else in it (the address, the reason) is dropped."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    event: str = Field(max_length=32)
    # Unix seconds; bounded so a datetime can be made of it.
    timestamp: int = Field(ge=0, le=2**33)
    sg_event_id: str = Field(min_length=1, max_length=100)
    # Our custom_args, copied into the event by SendGrid.
    mail: str | None = Field(default=None, max_length=32)
    secure_email_id: str | None = Field(default=None, max_length=64)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    @property
    def key(self) -> str:
        return f"sendgrid:{self.sg_event_id}"


@dataclass
class Counts:
    received: int = 0
    delivered: int = 0
    bounced: int = 0
    ignored: int = 0


def _refused(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


@router.post(
    "/sendgrid",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="SendGrid's signed Event Webhook (delivered, bounce, dropped)",
    responses={
        400: {"model": ErrorDetail, "description": "Signed, but not a JSON array of events"},
        403: {"model": ErrorDetail, "description": "Not signed by SendGrid, or stale"},
        404: {"model": ErrorDetail, "description": "The webhook is off (no verification key)"},
        413: {"model": ErrorDetail, "description": "A batch larger than 1 MB"},
        503: {"model": ErrorDetail, "description": "Temporal is down: SendGrid posts again"},
    },
)
async def sendgrid_events(
    request: Request,
    state: StateDep,
    db: DbSession,
    signature: Annotated[str, Header(alias=SIGNATURE_HEADER)] = "",
    timestamp: Annotated[str, Header(alias=TIMESTAMP_HEADER)] = "",
) -> Response:
    key_text = state.settings.sendgrid_webhook_public_key
    if not key_text:
        return _refused(status.HTTP_404_NOT_FOUND, WEBHOOK_OFF)
    if not signature or not fresh(timestamp, datetime.now(UTC)):
        return _refused(status.HTTP_403_FORBIDDEN, NOT_SIGNED)
    body = await request.body()  # bounded by web.body_limits
    if not signed(key_text, signature, timestamp, body):
        return _refused(status.HTTP_403_FORBIDDEN, NOT_SIGNED)
    try:
        batch = json.loads(body)
    except ValueError:
        return _refused(status.HTTP_400_BAD_REQUEST, NOT_EVENTS)
    if not isinstance(batch, list):
        return _refused(status.HTTP_400_BAD_REQUEST, NOT_EVENTS)

    counts = Counts(received=len(batch))
    try:
        for item in batch:
            await _record(state, db, item, counts)
    except (RPCError, TemporalUnavailable):
        log.warning(
            "SendGrid events: Temporal unavailable after %d delivered, %d bounced; "
            "SendGrid will post the batch again",
            counts.delivered,
            counts.bounced,
        )
        return _refused(status.HTTP_503_SERVICE_UNAVAILABLE, TEMPORAL_DOWN)
    log.info(
        "SendGrid events: %d received, %d delivered, %d bounced, %d ignored",
        counts.received,
        counts.delivered,
        counts.bounced,
        counts.ignored,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _record(state: AppState, db: DbSession, item: object, counts: Counts) -> None:
    try:
        event = SendGridEvent.model_validate(item)
    except ValidationError:
        counts.ignored += 1
        return
    wanted = event.event == DELIVERED or event.event in FAILED
    if event.mail != NOTICE or event.secure_email_id is None or not wanted:
        counts.ignored += 1
        return
    secure_email = await secure_emails.find(db, event.secure_email_id)
    if secure_email is None:
        counts.ignored += 1
        return
    if event.event == DELIVERED:
        await timeline.add(db, secure_email.id, EventKind.NOTICE_DELIVERED, event.at, event.key)
        await db.commit()
        counts.delivered += 1
        return
    if not await legacy.recorded_bounce(db, secure_email, event.at, event.key):
        await _audit_bounce(db, secure_email, event)
        await _signal_bounce(await temporal_of(state), secure_email, event)
    counts.bounced += 1


async def _audit_bounce(db: DbSession, secure_email: SecureEmail, event: SendGridEvent) -> None:
    """The verified report, once per SendGrid event, before the workflow hears of it."""
    known = await db.scalar(
        select(AuditEvent.id).where(
            AuditEvent.secure_email_id == secure_email.id,
            AuditEvent.action == AuditAction.NOTICE_BOUNCED.value,
            AuditEvent.detail == event.key,
        )
    )
    if known is None:
        audit_secure_email(db, secure_email, AuditAction.NOTICE_BOUNCED, SYSTEM, event.key)
        await db.commit()


async def _signal_bounce(temporal: Client, secure_email: SecureEmail, event: SendGridEvent) -> None:
    handle = temporal.get_workflow_handle(workflow_id_for(secure_email.id))
    try:
        await handle.signal(NOTICE_BOUNCED_SIGNAL, NoticeBounced(at=event.at))
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        # Its workflow has closed (expired, withdrawn): nothing is left to fail.

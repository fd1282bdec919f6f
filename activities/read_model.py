"""Projecting a workflow's lifecycle into the database, where office pages read it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.audit import ActorType, AuditAction
from domain.secure_email import (
    EventKind,
    ExpiryToRecord,
    ReportToConfirm,
    SecureEmailStatus,
    StatusChange,
)
from infra import alerts, timeline
from infra.audit import SYSTEM, audit
from infra.db.engine import finishes_when_cancelled
from infra.db.models import AuditEvent
from infra.secure_emails import move_expiry, project_status

# Status changes the office must be able to trace; "opened" is audited by the portal,
# which knows the patient's address.
AUDITED = {
    SecureEmailStatus.SENT: AuditAction.NOTICE_DELIVERED,
    SecureEmailStatus.FAILED: AuditAction.NOTICE_FAILED,
    SecureEmailStatus.EXPIRED: AuditAction.EXPIRED,
}

# The timeline line of each status; a reply adds its own line (one per reply).
EVENTS = {
    SecureEmailStatus.SENT: EventKind.SENT,
    SecureEmailStatus.OPENED: EventKind.OPENED,
    SecureEmailStatus.EXPIRED: EventKind.EXPIRED,
    SecureEmailStatus.WITHDRAWN: EventKind.WITHDRAWN,
    SecureEmailStatus.FAILED: EventKind.FAILED,
}

# The secure_emails_<status>_total counters, with what each counts.
COUNTED = {
    SecureEmailStatus.SENT: "Secure emails whose notice was delivered",
    SecureEmailStatus.OPENED: "Secure emails a patient opened with a passcode",
    SecureEmailStatus.REPLIED: "Secure emails a patient replied to",
    SecureEmailStatus.EXPIRED: "Secure emails that expired",
    SecureEmailStatus.FAILED: "Secure emails whose notice could not be delivered",
    SecureEmailStatus.WITHDRAWN: "Secure emails the office withdrew",
}


class ReadModelActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    @finishes_when_cancelled  # run as a local activity: infra.db.engine says why
    async def record_status(self, change: StatusChange) -> None:
        # Only a newer change wins, so a retried or late activity cannot move a secure
        # email back (say from "opened" to "sent") nor audit the same change twice.
        async with self._sessions() as db:
            changed = await project_status(db, change)
            action = AUDITED.get(change.status)
            if changed is not None and action is not None:
                audit(
                    db,
                    changed.practice_id,
                    action,
                    SYSTEM,
                    patient_id=changed.patient_id,
                    secure_email_id=change.secure_email_id,
                )
            # The line is added even by a change that lost to a newer one: it happened.
            event = change.event or EVENTS.get(change.status)
            if event is not None:
                await timeline.add(
                    db, change.secure_email_id, event, change.at, f"status:{change.sequence}"
                )
            if (
                changed is not None
                and change.status == SecureEmailStatus.EXPIRED
                and change.opened_at is None
            ):
                # Nobody read it: the office should call the patient.
                await alerts.raise_expired_unopened(db, changed)
            await db.commit()
        if changed is not None and change.status in COUNTED:
            # After the commit, and only for a change that won: each secure email counts
            # once per status however often the activity is retried. Served by the worker's
            # metrics endpoint (SECURE_EMAIL_WORKER_METRICS_ADDRESS).
            name = f"secure_emails_{change.status.value}_total"
            activity.metric_meter().create_counter(name, COUNTED[change.status]).add(1)

    @activity.defn
    @finishes_when_cancelled  # run as a local activity: infra.db.engine says why
    async def record_expiry(self, change: ExpiryToRecord) -> None:
        """The expiry the office moved, where the portal and the office pages read it."""
        async with self._sessions() as db:
            await move_expiry(db, change.secure_email_id, change.expires_at)
            await timeline.add(
                db,
                change.secure_email_id,
                EventKind.EXPIRY_CHANGED,
                change.at,
                f"expiry:{change.number}",
            )
            await db.commit()

    # What a signal reports, confirmed by what the web app audited before sending it: a
    # signal sent by hand finds nothing and changes nothing the office sees.

    @activity.defn
    @finishes_when_cancelled  # run as a local activity: infra.db.engine says why
    async def viewed_in_portal(self, report: ReportToConfirm) -> bool:
        """The patient opened it in a portal session (the portal audits the view, then
        signals)."""
        return await self._audited(report, AuditAction.VIEW, ActorType.PATIENT)

    @activity.defn
    @finishes_when_cancelled  # run as a local activity: infra.db.engine says why
    async def bounce_reported(self, report: ReportToConfirm) -> bool:
        """SendGrid's signed Event Webhook reported its notice bounced (the webhook
        audits the report, then signals)."""
        return await self._audited(report, AuditAction.NOTICE_BOUNCED, ActorType.SYSTEM)

    async def _audited(
        self, report: ReportToConfirm, action: AuditAction, actor_type: ActorType
    ) -> bool:
        async with self._sessions() as db:
            found = await db.scalar(
                select(AuditEvent.id)
                .where(
                    AuditEvent.secure_email_id == report.secure_email_id,
                    AuditEvent.action == action.value,
                    AuditEvent.actor_type == actor_type.value,
                )
                .limit(1)
            )
        return found is not None

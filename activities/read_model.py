"""Projecting a workflow's lifecycle into the database, where office pages read it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.audit import AuditAction
from domain.secure_email import SecureEmailStatus, StatusChange
from infra.audit import SYSTEM, audit
from infra.secure_emails import project_status

# Status changes the office must be able to trace; "opened" is audited by the portal,
# which knows the patient's address.
AUDITED = {
    SecureEmailStatus.SENT: AuditAction.NOTICE_DELIVERED,
    SecureEmailStatus.FAILED: AuditAction.NOTICE_FAILED,
    SecureEmailStatus.EXPIRED: AuditAction.EXPIRED,
}

# The secure_emails_<status>_total counters, with what each counts.
COUNTED = {
    SecureEmailStatus.SENT: "Secure emails whose notice was delivered",
    SecureEmailStatus.OPENED: "Secure emails a patient opened with a passcode",
    SecureEmailStatus.REPLIED: "Secure emails a patient replied to",
    SecureEmailStatus.EXPIRED: "Secure emails that expired",
    SecureEmailStatus.FAILED: "Secure emails whose notice could not be delivered",
}


class ReadModelActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
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
            await db.commit()
        if changed is not None and change.status in COUNTED:
            # After the commit, and only for a change that won: each secure email counts
            # once per status however often the activity is retried. Served by the worker's
            # metrics endpoint (SECURE_EMAIL_WORKER_METRICS_ADDRESS).
            name = f"secure_emails_{change.status.value}_total"
            activity.metric_meter().create_counter(name, COUNTED[change.status]).add(1)

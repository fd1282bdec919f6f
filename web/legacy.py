"""What the web app does differently for a secure email whose lifecycle runs on the
legacy workflow (``workflows.legacy``).

This module exists only for secure emails started by the version-1 workflow: delete it
together with ``workflows/legacy`` when ``securemail legacy open`` reports 0. Its callers
then keep their other branch: the portal always sends a passcode's checks
(``web.portal.link``), a bounce is always signalled to its workflow
(``web.webhooks.sendgrid``), and the office may always ask for a change
(``web.services.changes``).

Each function answers a question about what a secure email's workflow can do, so that no
caller compares workflow versions.
"""

from __future__ import annotations

from datetime import datetime

from domain.secure_email import EventKind, PasscodeAttempt, SecureEmailStatus
from infra import alerts, timeline
from infra.db.models import SecureEmail
from web.deps import DbSession
from workflows.legacy import runs_legacy_workflow
from workflows.legacy.inputs import PasscodeInClear

# A bounce changes nothing once the patient has opened it, or it has closed.
_STILL_OUT = (SecureEmailStatus.SENDING.value, SecureEmailStatus.SENT.value)


def passcode_in_clear(secure_email: SecureEmail, code: str) -> PasscodeAttempt | None:
    """Verify for a workflow whose passcodes come from a secret in its own history: it
    can only compare the typed code itself. None when the workflow takes the code's
    checks (the code then never enters a history)."""
    if not runs_legacy_workflow(secure_email):
        return None
    return PasscodeInClear(passcode=code)


async def recorded_bounce(db: DbSession, secure_email: SecureEmail, at: datetime, key: str) -> bool:
    """For a workflow that has no bounce signal, records the bounce here: the "bounced"
    line (keyed by ``key``, so a report posted again adds nothing) and the office's
    alert, unless the patient opened it or it has closed. False when the workflow takes
    the signal: the caller audits the report and signals it."""
    if not runs_legacy_workflow(secure_email):
        return False
    if secure_email.opened_at is None and secure_email.status in _STILL_OUT:
        await timeline.add(db, secure_email.id, EventKind.BOUNCED, at, key)
        await db.commit()
        await alerts.raise_notice_failed(db, secure_email)
    return True


def takes_office_changes(secure_email: SecureEmail) -> bool:
    """Its workflow has the office's updates (withdraw, change the expiry, resend the
    notice); the legacy one has none."""
    return not runs_legacy_workflow(secure_email)

"""What the database knows of each open secure email, as its workflow's input.

When Temporal has lost a secure email's workflow (a restore into a new Temporal, a lost
Temporal database), the read model still holds what the workflow needs to go on: its
ids, times, status, and the lines of its timeline that count (passcodes mailed, notices
sent again, the reminder, expiry changes), its replies and which of them the office has
been alerted to. ``resumable`` turns those into a ``SecureEmailStart`` whose ``carried``
state is what the workflow hands its next run when it continues as new, so a resumed
workflow goes on from where the database says it was (``workflows.resuming``).

Never carried: the passcode mailed before the loss (only its check was kept, in the lost
history): the patient asks for a new one, numbered after it, so it is a different code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.passcodes import RATE_WINDOW
from domain.secure_email import (
    OPEN_STATUSES,
    REPLY_WINDOW,
    RESEND_WINDOW,
    CarriedState,
    EventKind,
    SecureEmailStart,
    SecureEmailStatus,
)
from infra.crypto import portal_secrets
from infra.crypto.keys import PortalKeys
from infra.db.models import Alert, Patient, Practice, Reply, SecureEmail, SecureEmailEvent
from infra.security import token_hash
from infra.workflow_start import workflow_start

# The lifecycle runs on ``workflows.secure_email`` (``SecureEmail.workflow_version``).
CURRENT_WORKFLOW_VERSION = 2


@dataclass(frozen=True)
class Resumable:
    """One open secure email: the input that starts its workflow again."""

    secure_email_id: str
    status: SecureEmailStatus
    start: SecureEmailStart


@dataclass(frozen=True)
class NotResumable:
    """An open secure email whose workflow cannot be started again, and why (ids only)."""

    secure_email_id: str
    reason: str


async def open_ids(db: AsyncSession, *, after: str = "", limit: int = 500) -> list[str]:
    """Ids of open secure emails on the current workflow, in id order, a page at a time.
    A message whose expiry has passed but whose workflow never marked it is open too:
    its resumed workflow expires it at once (and alerts the office if it was unread)."""
    found = await db.scalars(
        select(SecureEmail.id)
        .where(
            SecureEmail.workflow_version == CURRENT_WORKFLOW_VERSION,
            SecureEmail.status.in_([status.value for status in OPEN_STATUSES]),
            SecureEmail.id > after,
        )
        .order_by(SecureEmail.id)
        .limit(limit)
    )
    return list(found)


def portal_key_of(keys: PortalKeys, secure_email: SecureEmail) -> str | None:
    """The portal key the notice link was derived from: the one whose link matches the
    hash the web app kept. None if no key of the keyset makes it (a key removed)."""
    for key_id in keys.ids:
        link = portal_secrets.link_token(keys, key_id, secure_email.id)
        if token_hash(link) == secure_email.link_token_hash:
            return key_id
    return None


def _numbers(events: Sequence[SecureEmailEvent], kind: EventKind) -> list[int]:
    """The N of each ``kind:N`` line (``passcode:3``, ``resend:1``, ``expiry:2``)."""
    numbers = []
    for event in events:
        if event.kind == kind.value and ":" in event.key:
            tail = event.key.rsplit(":", 1)[1]
            if tail.isdigit():
                numbers.append(int(tail))
    return numbers


def _since(moments: Sequence[datetime], now: datetime, window: timedelta) -> list[datetime]:
    since = now - window
    return sorted(moment for moment in moments if moment > since)


async def resumable(
    db: AsyncSession, keys: PortalKeys, secure_email_id: str, now: datetime
) -> Resumable | NotResumable | None:
    """The workflow input of an open secure email, as the database has it; None if it is
    not open (any more)."""
    secure_email = await db.get(SecureEmail, secure_email_id)
    if (
        secure_email is None
        or secure_email.workflow_version != CURRENT_WORKFLOW_VERSION
        or secure_email.status not in OPEN_STATUSES
    ):
        return None
    key_id = portal_key_of(keys, secure_email)
    if key_id is None:
        return NotResumable(secure_email_id, "its notice link's portal key is not in the keyset")
    practice = await db.get(Practice, secure_email.practice_id)
    after_hours = practice.reminder_after_hours if practice is not None else 0
    patient = await db.get(Patient, secure_email.patient_id)
    events = list(
        await db.scalars(
            select(SecureEmailEvent).where(SecureEmailEvent.secure_email_id == secure_email_id)
        )
    )
    replies = list(
        await db.execute(
            select(Reply.id, Reply.sent_at)
            .where(Reply.secure_email_id == secure_email_id)
            .order_by(Reply.sent_at, Reply.id)
        )
    )
    alerted = set(
        await db.scalars(
            select(Alert.reply_id).where(
                Alert.secure_email_id == secure_email_id, Alert.reply_id.is_not(None)
            )
        )
    )
    status = SecureEmailStatus(secure_email.status)
    passcodes = _numbers(events, EventKind.PASSCODE_SENT)
    resends = _numbers(events, EventKind.NOTICE_RESENT)
    expiry_changes = _numbers(events, EventKind.EXPIRY_CHANGED)

    def at_of(kind: EventKind) -> list[datetime]:
        return [event.at for event in events if event.kind == kind.value]

    # The practice's reminder setting now: the one at sending is in the lost input.
    start = await workflow_start(db, secure_email, patient, key_id, after_hours)
    if status == SecureEmailStatus.SENDING:
        if not at_of(EventKind.NOTICE_EMAILED):
            # The first notice has not gone: a first run sends it.
            return Resumable(secure_email.id, status, start)
        # It went, and the workflow was lost before it recorded "sent": the notice is
        # not sent again (its activity would refuse it as not due).
        status = SecureEmailStatus.SENT
    carried = CarriedState(
        status=status,
        opened_at=secure_email.opened_at,
        # Numbered after the read model's newest, so later changes win over it.
        status_changes=secure_email.status_sequence,
        passcodes_issued=max(passcodes, default=0),
        recent_passcodes=_since(at_of(EventKind.PASSCODE_SENT), now, RATE_WINDOW),
        passcode=None,
        replies=len(replies),
        recent_replies=_since([sent_at for _, sent_at in replies], now, REPLY_WINDOW),
        to_file=[reply_id for reply_id, _ in replies if reply_id not in alerted],
        expires_at=secure_email.expires_at,
        expiry_changes=max(expiry_changes, default=0),
        reminder_sent=bool(at_of(EventKind.REMINDER_SENT)),
        notices_resent=max(resends, default=0),
        recent_resends=_since(at_of(EventKind.NOTICE_RESENT), now, RESEND_WINDOW),
    )
    return Resumable(secure_email.id, status, start.model_copy(update={"carried": carried}))

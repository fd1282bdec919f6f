"""The resume step: what the database says is open, Temporal runs.

After a restore into a new Temporal (or the loss of Temporal's own database), each open
secure email (sending, sent, opened, replied) whose workflow Temporal does not know gets
it back, started under its own id with the expiry, reminder and counters the database
holds (``infra.resumable``): the original link, a new passcode, Verify, Reply All and the
expiry work as before. Run by ``securemail restore``, ``securemail resume`` and the
worker at start; running it again changes nothing (a workflow that exists is left as it
is). A workflow that exists but closed while the database says open is counted and
named, not started again: something ended it (an operator, a failure), and starting it
over would hide that; the reconciliation (``workflows.reconciling``) marks it failed and
tells the office.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus as ExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.secure_email import workflow_id_for
from infra.crypto.keys import PortalKeys
from infra.resumable import NotResumable, Resumable, open_ids, resumable
from workflows.starting import resume_secure_email

log = logging.getLogger(__name__)

# A secure email the web app recorded a moment ago may be about to start its own
# workflow (the row is written first): the resume step leaves it to the web app. A
# restore passes none: no web app has run on the restored database.
SETTLING = timedelta(minutes=2)


@dataclass
class ResumeReport:
    """What one pass found, by secure email id (ids only, never PHI)."""

    resumed: list[str] = field(default_factory=list)
    running: int = 0
    # The database says open, Temporal has its workflow closed.
    closed: list[str] = field(default_factory=list)
    # Too new to touch (see ``SETTLING``).
    settling: int = 0
    not_resumable: list[NotResumable] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.resumed)} resumed, {self.running} running already, "
            f"{len(self.closed)} closed in Temporal but open in the database, "
            f"{len(self.not_resumable)} could not be resumed"
        )


async def workflow_status(client: Client, workflow_id: str) -> ExecutionStatus | None:
    """The status of the workflow's newest run, or None if Temporal has none."""
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return described.status


async def resume_open_secure_emails(
    client: Client,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    keys: PortalKeys,
    *,
    now: datetime | None = None,
    settling: timedelta = SETTLING,
    page: int = 500,
) -> ResumeReport:
    """Starts the workflow of every open secure email whose workflow Temporal lacks."""
    now = now or datetime.now(UTC)
    report = ResumeReport()
    after = ""
    while True:
        async with sessions() as db:
            ids = await open_ids(db, after=after, limit=page)
        if not ids:
            return report
        after = ids[-1]
        for secure_email_id in ids:
            status = await workflow_status(client, workflow_id_for(secure_email_id))
            if status == ExecutionStatus.RUNNING:
                report.running += 1
                continue
            if status is not None:
                report.closed.append(secure_email_id)
                continue
            await resume_lost(
                client, task_queue, sessions, keys, secure_email_id, now, settling, report
            )


async def resume_lost(
    client: Client,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    keys: PortalKeys,
    secure_email_id: str,
    now: datetime,
    settling: timedelta,
    report: ResumeReport,
) -> None:
    """Starts the workflow of one open secure email that Temporal has none of, as the
    database has it; what came of it goes into ``report``."""
    try:
        async with sessions() as db:
            found = await resumable(db, keys, secure_email_id, now)
    except Exception as error:  # one row must not stop the others
        # A row that cannot be read (a field sealed under a key the keyset no longer
        # holds): named, and the others are still resumed.
        reason = f"its row cannot be read ({type(error).__name__})"
        found = NotResumable(secure_email_id, reason)
    if found is None:
        return  # closed meanwhile
    if isinstance(found, NotResumable):
        log.warning("secure email %s not resumed: %s", secure_email_id, found.reason)
        report.not_resumable.append(found)
        return
    if found.start.sent_at > now - settling:
        report.settling += 1
        return
    await _start(client, task_queue, found, report)


async def _start(client: Client, task_queue: str, found: Resumable, report: ResumeReport) -> None:
    try:
        await resume_secure_email(client, task_queue, found.start, found.status.value)
    except WorkflowAlreadyStartedError:
        # Closed between the look and the start (another resumer's run finished).
        report.closed.append(found.secure_email_id)
        return
    log.info("secure email %s resumed (%s)", found.secure_email_id, found.status.value)
    report.resumed.append(found.secure_email_id)

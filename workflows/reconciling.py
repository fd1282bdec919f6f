"""The reconciliation: what the database says is open, Temporal must run, or the office
must be told it stopped.

Run every few minutes by a Temporal Schedule (``workflows.reconciliation``). Each run
lists the running secure email workflows (Temporal's visibility, a page of ids at a
time) and the open secure emails of the database (id order), and looks closer at each
open one not in that list, at most a page of them a run (the rest next run):

- no workflow at all (a lost Temporal database, a deleted workflow): the resume step
  (``workflows.resuming``) starts it again as the database has it;
- its workflow ended before the message did (terminated by hand, failed, timed out,
  cancelled): marked failed, with a timeline line, one office alert and an audit event
  (``infra.stopped_workflows``);
- its workflow completed (expired, withdrawn: the workflow records that before it ends):
  never marked failed, only counted.

Visibility only chooses whom to look at: each is described (the source of truth) before
anything is done. Running twice does nothing more: a marked one is no longer open, a
resumed one runs. Counts go to the worker's metrics.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus as ExecutionStatus

from domain.reconciliation import ReconcileReport, ReconcileRun
from domain.secure_email import workflow_id_for
from infra.crypto.keys import PortalKeys
from infra.resumable import open_ids
from infra.stopped_workflows import record_stopped
from workflows.resuming import SETTLING, ResumeReport, resume_lost, workflow_status

log = logging.getLogger(__name__)

# The current lifecycle's workflow type (``workflows.secure_email``); legacy messages
# are not reconciled (``open_ids`` leaves them out).
RUNNING_SECURE_EMAILS = "WorkflowType = 'SecureEmail' AND ExecutionStatus = 'Running'"
STOPPED_SECURE_EMAILS = (
    "WorkflowType = 'SecureEmail' AND ExecutionStatus IN "
    "('Terminated', 'Failed', 'TimedOut', 'Canceled')"
)
# How Temporal's closed statuses that are not a normal end read in the audit event.
STOPPED = {
    ExecutionStatus.TERMINATED: "terminated",
    ExecutionStatus.FAILED: "failed",
    ExecutionStatus.TIMED_OUT: "timed_out",
    ExecutionStatus.CANCELED: "canceled",
}
_SCAN_PAGE = 1000

# The worker's metrics (``SECURE_EMAIL_WORKER_METRICS_ADDRESS``).
COUNTERS = {
    "resumed": (
        "secure_emails_resumed_total",
        "Open secure emails whose lost workflow was resumed",
    ),
    "stopped": (
        "secure_emails_stopped_total",
        "Secure emails whose workflow stopped unexpectedly, marked failed",
    ),
}
UNRECONCILED = (
    "secure_emails_unreconciled",
    "Open secure emails still without a running workflow after the last reconciliation",
)


class ReconcileActivities:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        sessions: async_sessionmaker[AsyncSession],
        keys: PortalKeys,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._sessions = sessions
        self._keys = keys

    @activity.defn
    async def reconcile(self, run: ReconcileRun) -> ReconcileReport:
        now = datetime.now(UTC)
        strays = await self._strays()
        report = ReconcileReport(left=max(0, len(strays) - run.page))
        resuming = ResumeReport()
        for secure_email_id in strays[: run.page]:
            await self._reconcile_one(secure_email_id, now, report, resuming)
        report.resumed = resuming.resumed
        report.not_resumable = [found.secure_email_id for found in resuming.not_resumable]
        log.info(
            "reconciled: %d resumed, %d stopped and marked failed, %d could not be resumed, "
            "%d completed, %d left for the next run",
            len(report.resumed),
            len(report.stopped),
            len(report.not_resumable),
            len(report.completed),
            report.left,
        )
        self._count(report, len(strays))
        return report

    async def _strays(self) -> list[str]:
        """Open secure emails whose workflow Temporal's visibility does not list as
        running: first those it lists as stopped, then the others, each in id order. So
        a page taken up by messages that stay as they are (one that cannot be resumed)
        never keeps a stopped one from being marked."""
        running = await self._listed(RUNNING_SECURE_EMAILS)
        stopped = await self._listed(STOPPED_SECURE_EMAILS)
        strays: list[str] = []
        after = ""
        while True:
            async with self._sessions() as db:
                ids = await open_ids(db, after=after, limit=_SCAN_PAGE)
            if not ids:
                break
            after = ids[-1]
            strays += [i for i in ids if workflow_id_for(i) not in running]
        return sorted(strays, key=lambda i: workflow_id_for(i) not in stopped)

    async def _listed(self, query: str) -> set[str]:
        return {
            execution.id
            async for execution in self._client.list_workflows(query, page_size=_SCAN_PAGE)
        }

    async def _reconcile_one(
        self, secure_email_id: str, now: datetime, report: ReconcileReport, resuming: ResumeReport
    ) -> None:
        status = await workflow_status(self._client, workflow_id_for(secure_email_id))
        if status is None:
            await resume_lost(
                self._client,
                self._task_queue,
                self._sessions,
                self._keys,
                secure_email_id,
                now,
                SETTLING,
                resuming,
            )
        elif status in STOPPED:
            async with self._sessions() as db:
                if await record_stopped(db, secure_email_id, now, STOPPED[status]):
                    log.warning(
                        "secure email %s: its workflow %s; marked failed",
                        secure_email_id,
                        STOPPED[status],
                    )
                    report.stopped.append(secure_email_id)
        elif status != ExecutionStatus.RUNNING:
            # Completed (expired, withdrawn) or continued: the workflow decided its end.
            report.completed.append(secure_email_id)

    def _count(self, report: ReconcileReport, strays: int) -> None:
        meter = activity.metric_meter()
        for field, (name, description) in COUNTERS.items():
            done = len(getattr(report, field))
            if done:
                meter.create_counter(name, description).add(done)
        name, description = UNRECONCILED
        meter.create_gauge(name, description).set(
            strays - len(report.resumed) - len(report.stopped)
        )

"""One reconciliation of the database with Temporal, started by its Schedule every
``reconcile_minutes`` (``infra.reconciliation_schedule``); the work and why it is safe
are in ``workflows.reconciling``. Its history holds ids and counts only."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.reconciliation import RECONCILE_WORKFLOW, ReconcileReport, ReconcileRun
    from workflows.reconciling import ReconcileActivities

# A page of secure emails, each described and perhaps started or marked: well under this.
RUN_TIMEOUT = timedelta(minutes=10)
# Temporal or the database away for a moment: tried again; the next run starts afresh.
RETRIES = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5)


@workflow.defn(name=RECONCILE_WORKFLOW)
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, run: ReconcileRun) -> ReconcileReport:
        return await workflow.execute_activity_method(
            ReconcileActivities.reconcile,
            run,
            start_to_close_timeout=RUN_TIMEOUT,
            retry_policy=RETRIES,
        )

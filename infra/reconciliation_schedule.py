"""The Temporal Schedule that reconciles the database with Temporal every
``reconcile_minutes`` (``workflows.reconciling``), kept by the worker at start."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
)

from domain.reconciliation import (
    RECONCILE_WORKFLOW,
    ReconcileRun,
    schedule_id_for,
)
from infra.temporal.schedules import every, keep

# A run acts on a page of secure emails in well under a minute; one that runs longer is
# stuck, and the next run starts afresh.
RUN_TIMEOUT = timedelta(minutes=30)


def _schedule(task_queue: str, minutes: int, page: int) -> Schedule:
    return every(
        minutes,
        RECONCILE_WORKFLOW,
        ReconcileRun(page=page),
        workflow_id=schedule_id_for(task_queue),
        task_queue=task_queue,
        timeout=RUN_TIMEOUT,
    )


async def keep_reconciliation_schedule(
    client: Client, task_queue: str, minutes: int, page: int
) -> None:
    """Creates the schedule, or updates it to this interval and page: every worker of a
    deployment keeps the same one."""
    schedule = _schedule(task_queue, minutes, page)
    await keep(client, schedule_id_for(task_queue), schedule)

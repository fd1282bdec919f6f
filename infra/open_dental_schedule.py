"""The Temporal Schedule that syncs a practice's patients from Open Dental every
``sync_minutes``, and a sync started at once. Workflow ids and the schedule's id name
the practice only."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleState,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from domain.open_dental import (
    SYNC_WORKFLOW,
    OpenDentalSync,
    schedule_id_for,
    sync_workflow_id_for,
)
from infra.temporal.schedules import every, keep

PAUSED_FOR_KEYS = "Open Dental refused the keys: paused until an administrator saves them again"
# A sync of 10,000 patients takes a few minutes; one that runs longer is stuck.
SYNC_TIMEOUT = timedelta(hours=1)

log = logging.getLogger(__name__)


def _schedule(practice_id: str, minutes: int, task_queue: str, paused: bool) -> Schedule:
    return every(
        minutes,
        SYNC_WORKFLOW,
        OpenDentalSync(practice_id=practice_id),
        workflow_id=sync_workflow_id_for(practice_id),
        task_queue=task_queue,
        timeout=SYNC_TIMEOUT,
        state=ScheduleState(paused=paused, note=PAUSED_FOR_KEYS if paused else None),
    )


async def keep_schedule(
    client: Client, practice_id: str, minutes: int, task_queue: str, *, paused: bool
) -> None:
    """Creates the practice's schedule, or updates it to this interval and state."""
    schedule = _schedule(practice_id, minutes, task_queue, paused)
    await keep(client, schedule_id_for(practice_id), schedule)


async def pause_schedule(client: Client, practice_id: str) -> None:
    """Pauses the practice's schedule; a schedule that is not there is nothing to pause."""
    try:
        await client.get_schedule_handle(schedule_id_for(practice_id)).pause(note=PAUSED_FOR_KEYS)
    except RPCError as error:
        log.warning("could not pause the Open Dental schedule of %s: %s", practice_id, error)


async def is_paused(client: Client, practice_id: str) -> bool:
    described = await client.get_schedule_handle(schedule_id_for(practice_id)).describe()
    return described.schedule.state.paused


async def sync_now(client: Client, practice_id: str, task_queue: str) -> None:
    """Starts a sync now; one already running is that sync (not a second one)."""
    await client.start_workflow(
        SYNC_WORKFLOW,
        OpenDentalSync(practice_id=practice_id),
        id=f"{sync_workflow_id_for(practice_id)}-now",
        task_queue=task_queue,
        execution_timeout=SYNC_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )

"""Temporal Schedules kept by the product: created, or brought to what is wanted now."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)


def every(
    minutes: int,
    workflow: str,
    arg: object,
    *,
    workflow_id: str,
    task_queue: str,
    timeout: timedelta,
    state: ScheduleState | None = None,
) -> Schedule:
    """Starts ``workflow`` with ``arg`` every ``minutes``. A run still going when the
    next is due makes the next one skipped, not queued; one running past ``timeout`` is
    stuck and ended."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow, arg, id=workflow_id, task_queue=task_queue, execution_timeout=timeout
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=minutes))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=state or ScheduleState(),
    )


async def keep(client: Client, schedule_id: str, schedule: Schedule) -> None:
    """Creates the schedule, or updates the one of that id to ``schedule``: whoever
    keeps it (a worker at start, an administrator's save) may do so any number of times."""
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def updated(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(updated)

"""Temporal Schedules kept by the product: created, or brought to what is wanted now."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
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

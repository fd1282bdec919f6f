"""``python -m bench.event_costs``: what one thing a workflow does costs the Temporal server.

The lifecycle's Temporal CPU is well above the bare shape's. This says which of
the things a secure email does beyond the bare shape make the difference: an update
alone (the baseline), one with a search-attribute upsert (a visibility write: each
status operators search by, and the SDK's ``TemporalChangeVersion`` for the patches),
one with three upserts in the same task, one that runs a local activity (a marker: each
read-model write), one that starts a 1 ms timer (the wake-up after Verify: a timer and a
workflow task of its own).

Each kind: ``--count`` workflows waiting, their first task done, then one update each,
eight at once, under the Temporal server's CPU meter (``/proc``); the server's figure per
update, median of ``--rounds`` rounds, the kinds alternating.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.common import median_table, say
from bench.cpu import stack_cpu
from bench.rounds import rounds_main
from infra.temporal.client import connect
from infra.temporal.search_attributes import SECURE_EMAIL_STATUS
from tests.fixtures.devstack import DevStack, securemail_dev

AT_ONCE = 8


@activity.defn
async def nothing() -> None:
    return None


@workflow.defn
class EventCostWorkflow:
    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.update
    async def update_alone(self) -> None:
        return None

    @workflow.update
    async def with_upsert(self) -> None:
        workflow.upsert_search_attributes([SECURE_EMAIL_STATUS.value_set("opened")])

    @workflow.update
    async def with_three_upserts(self) -> None:
        for status in ("sent", "opened", "replied"):
            workflow.upsert_search_attributes([SECURE_EMAIL_STATUS.value_set(status)])

    @workflow.update
    async def with_local_activity(self) -> None:
        await workflow.execute_local_activity(nothing, start_to_close_timeout=timedelta(seconds=30))

    @workflow.update
    async def with_timer(self) -> None:
        async def wake() -> None:
            await workflow.sleep(timedelta(milliseconds=1))

        asyncio.ensure_future(wake())


KINDS: dict[str, Any] = {
    "an update alone": EventCostWorkflow.update_alone,
    "with a search-attribute upsert": EventCostWorkflow.with_upsert,
    "with three upserts in its task": EventCostWorkflow.with_three_upserts,
    "with a local activity": EventCostWorkflow.with_local_activity,
    "with a 1 ms timer (and its task)": EventCostWorkflow.with_timer,
}


async def one_kind(
    stack: DevStack, client: Client, task_queue: str, kind: Any, count: int
) -> float:
    """The Temporal server's CPU ms per update of ``kind``."""
    handles: list[WorkflowHandle[EventCostWorkflow, None]] = [
        await client.start_workflow(
            EventCostWorkflow.run, id=f"event-cost-{uuid.uuid4()}", task_queue=task_queue
        )
        for _ in range(count)
    ]
    # Their first task done, so the timed updates are each its own.
    await asyncio.gather(*(h.execute_update(EventCostWorkflow.update_alone) for h in handles))
    gate = asyncio.Semaphore(AT_ONCE)

    async def update(handle: WorkflowHandle[EventCostWorkflow, None]) -> None:
        async with gate:
            await handle.execute_update(kind)

    meter = stack_cpu(stack)
    with meter:
        await asyncio.gather(*(update(h) for h in handles))
        # The timer's own task comes a moment after its update has answered.
        await asyncio.sleep(1.0)
    await asyncio.gather(*(h.signal(EventCostWorkflow.finish) for h in handles))
    await asyncio.gather(*(h.result() for h in handles))
    return meter.ms_per(count).get("temporal", 0.0)


async def run(count: int, rounds: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-events-") as directory,
        securemail_dev(Path(directory)) as stack,
    ):
        stack.wait_until_ready()
        client = await connect(stack.settings())
        task_queue = f"bench-event-costs-{uuid.uuid4()}"
        found: dict[str, list[float]] = {name: [] for name in KINDS}
        # Not sandboxed: what is measured is the server's work, which the worker's
        # sandbox does not change.
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[EventCostWorkflow],
            activities=[nothing],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            for index in range(rounds):
                for name, kind in KINDS.items():
                    found[name].append(await one_kind(stack, client, task_queue, kind, count))
                say(f"round {index + 1} done, load average {os.getloadavg()[0]:.1f}")
    median_table(
        f"Temporal server CPU ms per update ({count} a round, {AT_ONCE} at once; median)",
        "update",
        found,
        1,
    )


def main() -> None:
    rounds_main("event_costs", __doc__, run, 100, "updates of each kind")


if __name__ == "__main__":
    main()

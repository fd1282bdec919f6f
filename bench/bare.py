"""The baseline: a workflow with one activity and one update, and nothing else.

It is what any Temporal application on the same server, the same converter (pydantic,
encrypted) and the same machine pays at least; the secure email figures are read
against it. No I/O in the activity, no database, no HTTP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import Latencies


@activity.defn
async def bare_step(name: str) -> str:
    return name


@workflow.defn
class BareWorkflow:
    def __init__(self) -> None:
        self._answered = False

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.execute_activity(
            bare_step, name, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self._answered)
        return name

    @workflow.update
    async def answer(self, value: str) -> str:
        self._answered = True
        return value

    @workflow.query
    def stepped(self) -> bool:
        return True


def bare_worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[BareWorkflow], activities=[bare_step])


async def bare_throughput(client: Client, count: int, concurrency: int) -> tuple[float, str]:
    """Workflows per second, each started, updated and awaited to its end; and the id of
    one of them, whose history can be counted."""
    task_queue = f"bench-bare-{uuid.uuid4()}"
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with gate:
            handle = await client.start_workflow(
                BareWorkflow.run, f"bare-{i}", id=f"bare-{uuid.uuid4()}", task_queue=task_queue
            )
            await handle.execute_update(BareWorkflow.answer, "ok")
            await handle.result()
            return handle.id

    async with bare_worker(client, task_queue):
        sample_id = await one(-1)  # warm-up: the worker's first task loads the sandbox
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - start
    return count / elapsed, sample_id


async def history_counts(client: Client, workflow_id: str) -> dict[str, int]:
    """Events, workflow tasks and activities in a workflow's history: the Temporal work
    one run costs, whatever the machine."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    names = [EventType.Name(event.event_type) for event in history.events]
    return {
        "events": len(names),
        "workflow_tasks": names.count("EVENT_TYPE_WORKFLOW_TASK_COMPLETED"),
        "activities": names.count("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
        "updates": names.count("EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"),
    }


async def bare_update_latency(client: Client, count: int, concurrency: int) -> Latencies:
    """The update alone, at ``concurrency`` at once, on workflows whose activity is done."""
    task_queue = f"bench-bare-{uuid.uuid4()}"
    latencies = Latencies()
    async with bare_worker(client, task_queue):
        handles = [
            await client.start_workflow(
                BareWorkflow.run, f"bare-{i}", id=f"bare-{uuid.uuid4()}", task_queue=task_queue
            )
            for i in range(count)
        ]
        # A second for the activities to run, and a query each, so every update meets a
        # workflow that is waiting for it alone, as Verify meets a secure email.
        await asyncio.sleep(1.0)
        for handle in handles:
            await handle.query(BareWorkflow.stepped)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                handle = handles[queue.get_nowait()]
                start = time.perf_counter()
                await handle.execute_update(BareWorkflow.answer, "ok")
                latencies.samples.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await asyncio.gather(*(handle.result() for handle in handles))
    return latencies

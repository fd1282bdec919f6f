"""The fair baseline: the Temporal interactions a lifecycle needs, no more.

A secure email's lifecycle cannot be less than: start → an activity (the notice) → an update
that runs an activity (the passcode mail) → an update without one (Verify) → an update
without one (Reply All) → an activity (alert and chart) → done. This workflow does
exactly that with no-op bodies, on the same server, converter and codec as the product,
at the same concurrency, in the same run; ``lifecycles/s`` is read against it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.common import Latencies

if TYPE_CHECKING:  # not imported at run time: it reads /proc, no business in a sandbox
    from bench.cpu import CpuMeter

STEP_TIMEOUT = timedelta(seconds=30)


@activity.defn
async def bare_shape_step(name: str) -> str:
    return name


@workflow.defn
class BareShapeWorkflow:
    def __init__(self) -> None:
        self._passcode_sent = False
        self._replied = False

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.execute_activity(
            bare_shape_step, "notice", start_to_close_timeout=STEP_TIMEOUT
        )
        await workflow.wait_condition(lambda: self._replied)
        await workflow.execute_activity(
            bare_shape_step, "file", start_to_close_timeout=STEP_TIMEOUT
        )
        return name

    @workflow.update
    async def passcode(self) -> str:
        await workflow.execute_activity(
            bare_shape_step, "passcode", start_to_close_timeout=STEP_TIMEOUT
        )
        self._passcode_sent = True
        return "sent"

    @workflow.update
    async def verify(self) -> bool:
        return self._passcode_sent

    @workflow.update
    async def reply(self) -> str:
        self._replied = True
        return "accepted"


def bare_shape_worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareShapeWorkflow],
        activities=[bare_shape_step],
    )


async def _started(client: Client, task_queue: str) -> WorkflowHandle[BareShapeWorkflow, str]:
    return await client.start_workflow(
        BareShapeWorkflow.run, "bare-shape", id=f"bare-shape-{uuid.uuid4()}", task_queue=task_queue
    )


async def bare_shape_throughput(
    client: Client,
    count: int,
    concurrency: int,
    meter: CpuMeter | None = None,
    worker: Callable[[str], AbstractAsyncContextManager[object]] | None = None,
) -> tuple[float, str]:
    """Bare-shape workflows per second, each driven through its three updates to its end;
    and the id of one, whose history can be counted. ``meter`` measures the timed part;
    ``worker`` serves the task queue it is given (default: a worker in this process)."""
    task_queue = f"bench-bare-shape-{uuid.uuid4()}"
    gate = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with gate:
            handle = await _started(client, task_queue)
            await handle.execute_update(BareShapeWorkflow.passcode)
            await handle.execute_update(BareShapeWorkflow.verify)
            await handle.execute_update(BareShapeWorkflow.reply)
            await handle.result()
            return handle.id

    async with (worker or (lambda queue: bare_shape_worker(client, queue)))(task_queue):
        sample_id = await one()  # warm-up: the worker's first task loads the sandbox
        with meter or nullcontext():
            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(count)))
            elapsed = time.perf_counter() - start
    return count / elapsed, sample_id


async def bare_shape_verify_latency(
    client: Client, count: int, concurrency: int, meter: CpuMeter | None = None
) -> Latencies:
    """The Verify-like update alone, ``concurrency`` at once, on workflows whose passcode
    update has answered: as the benchmark's Verify meets a secure email. ``meter``
    measures the timed updates."""
    task_queue = f"bench-bare-shape-{uuid.uuid4()}"
    latencies = Latencies()
    async with bare_shape_worker(client, task_queue):
        handles = [await _started(client, task_queue) for _ in range(count)]
        for handle in handles:
            await handle.execute_update(BareShapeWorkflow.passcode)
        queue: asyncio.Queue[WorkflowHandle[BareShapeWorkflow, str]] = asyncio.Queue()
        for handle in handles:
            queue.put_nowait(handle)

        async def patient() -> None:
            while not queue.empty():
                handle = queue.get_nowait()
                start = time.perf_counter()
                await handle.execute_update(BareShapeWorkflow.verify)
                latencies.samples.append(time.perf_counter() - start)

        with meter or nullcontext():
            await asyncio.gather(*(patient() for _ in range(concurrency)))
        for handle in handles:
            await handle.execute_update(BareShapeWorkflow.reply)
        await asyncio.gather(*(handle.result() for handle in handles))
    return latencies

"""The bare shape's worker in a process of its own, as the product's worker runs.

``python -m bench.bare_shape_worker DATA_DIR TEMPORAL_ADDRESS TASK_QUEUE`` serves
``BareShapeWorkflow`` on the product's converter and codec, on uvloop like the product's
worker, until it is stopped. Run beside the driver, its CPU is the Temporal SDK's own
work for a lifecycle's shape with no-op bodies: the floor under the worker's figure.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvloop

from bench.bare_shape import bare_shape_worker
from bench.cpu import CpuMeter
from infra.settings import Settings
from infra.temporal.client import connect


async def serve(settings: Settings, task_queue: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with bare_shape_worker(await connect(settings), task_queue):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()


@asynccontextmanager
async def worker_process(
    settings: Settings, task_queue: str, meter: CpuMeter
) -> AsyncIterator[None]:
    """Runs the worker process for ``task_queue`` and counts its CPU in ``meter`` as the
    ``worker`` group's."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.bare_shape_worker"),
            *(str(settings.data_dir), settings.temporal_address, task_queue),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.to_thread(process.stdout.readline)
        if ready.strip() != "ready":
            raise RuntimeError("the bare shape's worker did not start")
        meter.groups["worker"] = [process.pid]
        yield
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)


def main() -> None:
    data_dir, temporal_address, task_queue = sys.argv[1:4]
    settings = Settings(data_dir=Path(data_dir), temporal_address=temporal_address)
    uvloop.run(serve(settings, task_queue))


if __name__ == "__main__":
    main()

"""Two workers on one task queue; one is killed with SIGKILL mid-run and stays dead.

The other must take over everything the dead one held: its workflows (their sticky
queue times out and the tasks go to the shared queue) and its activities (retried when
their start-to-close timeout passes). Every lifecycle must still finish (notice,
passcode, Verify, Reply All with a file, alert and chart), nothing accepted may be
lost, and mail sent twice is counted and reported, as in ``test_worker_killed``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.faults.conftest import Seeded, report
from tests.faults.test_worker_killed import lifecycle, nothing_lost, running
from tests.fixtures.processes import WorkerProcess
from tests.fixtures.s3 import S3Server

LIFECYCLES = 8


@pytest.mark.timeout(240)
async def test_lifecycles_survive_one_of_two_workers_killed(
    tmp_path: Path, s3_server: S3Server, dev_server_env: WorkflowEnvironment, rng: Seeded
) -> None:
    async with running(tmp_path, s3_server, dev_server_env) as (run, first):
        (tmp_path / "second").mkdir()
        second = WorkerProcess(run.settings, tmp_path / "second")
        second.start()
        try:
            await second.ready()
            victim = rng.choice([first, second])
            lifecycles = asyncio.gather(*(lifecycle(run, i) for i in range(LIFECYCLES)))
            # Mid-run: notices and passcodes in flight on both workers.
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            victim.kill()
            accepted = await lifecycles
            losses = await nothing_lost(run, accepted)
            # The survivor did the work: it is still up, and the victim was never back.
            survivor = second if victim is first else first
            assert survivor.process is not None and survivor.process.poll() is None
        finally:
            second.stop()
        report(
            f"one of two workers killed: seed {rng.drawn}, {victim.kills} kill; "
            f"{LIFECYCLES} lifecycles all complete; {losses}"
        )
        assert victim.kills == 1

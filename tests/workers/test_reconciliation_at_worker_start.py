"""The worker keeps the reconciliation's Schedule when it starts: created at the
settings' interval, and brought to a new interval by the next start, still one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.client import ScheduleOverlapPolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.reconciliation import schedule_id_for
from infra.db.migrate import migrate_async
from tests.fixtures.processes import WorkerProcess
from tests.fixtures.stack import own_settings
from tests.fixtures.waiting import eventually


async def test_worker_start_keeps_the_reconciliation_schedule(
    tmp_path: Path, dev_server_env: WorkflowEnvironment
) -> None:
    client = dev_server_env.client
    settings = own_settings(
        tmp_path,
        temporal_address=client.service_client.config.target_host,
        worker_shutdown_grace_seconds=2,
    )
    await migrate_async(settings)
    handle = client.get_schedule_handle(schedule_id_for(settings.task_queue))

    async def every() -> timedelta | None:
        try:
            described = await handle.describe()
        except RPCError:
            return None
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        return described.schedule.spec.intervals[0].every

    try:
        for minutes, log_dir in ((7, tmp_path / "first"), (11, tmp_path / "second")):
            log_dir.mkdir()
            worker = WorkerProcess(settings, log_dir)
            worker.env["SECURE_EMAIL_RECONCILE_MINUTES"] = str(minutes)
            worker.start()
            try:
                await worker.ready()

                async def kept(minutes: int = minutes) -> bool:
                    return await every() == timedelta(minutes=minutes)

                await eventually(kept, what=f"the schedule every {minutes} minutes", timeout=30)
            finally:
                worker.stop()
    finally:
        await handle.delete()

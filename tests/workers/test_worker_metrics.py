"""The worker's Prometheus endpoint and the secure email counters activities add to it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import httpx
from temporalio.runtime import BufferedMetricUpdate, MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from activities.read_model import ReadModelActivities
from domain.secure_email import SecureEmailStatus
from infra.db.engine import make_engine, make_sessionmaker
from tests.fixtures.processes import free_port
from tests.fixtures.stack import Stack
from tests.fixtures.temporal import status_change_now


def counted(updates: Sequence[BufferedMetricUpdate]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for update in updates:
        name = update.metric.name
        totals[name] = totals.get(name, 0) + int(update.value)
    return totals


async def test_record_status_counts_each_change_once(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    sent = await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "S", "body": "B"}
    )
    await stack.notice_link("ada@example.com")
    buffer = MetricBuffer(1000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    environment = ActivityEnvironment()
    environment.metric_meter = runtime.metric_meter
    engine = make_engine(stack.settings.database_url)
    activities = ReadModelActivities(make_sessionmaker(engine))
    expiry = status_change_now(sent.json()["id"], SecureEmailStatus.EXPIRED)
    # A retried activity (and an older change arriving late) counts nothing more.
    for change in (expiry, expiry, expiry.model_copy(update={"sequence": 98})):
        await environment.run(activities.record_status, change)
    await engine.dispose()
    assert counted(buffer.retrieve_updates()) == {"secure_emails_expired_total": 1}


async def test_serve_metrics_serves_the_default_runtimes_metrics() -> None:
    # A process of its own: the runtime it installs is the process-wide default.
    address = f"127.0.0.1:{free_port()}"
    script = (
        "import sys, time\n"
        "from temporalio.runtime import Runtime\n"
        "from workers.worker import serve_metrics\n"
        f"serve_metrics({address!r})\n"
        "Runtime.default().metric_meter.create_counter('secure_emails_sent_total').add(2)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"ready"
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{address}/metrics")
        assert response.status_code == 200
        assert "secure_emails_sent_total" in response.text
        assert " 2" in next(
            line for line in response.text.splitlines() if line.startswith("secure_emails_sent")
        )
    finally:
        process.kill()
        await process.wait()

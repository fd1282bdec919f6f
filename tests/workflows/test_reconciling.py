"""The reconciliation of the database with Temporal (``workflows.reconciling``), on the
real stack: a workflow terminated by hand shows ``failed`` with one alert and one audit
event however often it runs; a message with no workflow at all is resumed; one whose
workflow completed (withdrawn, expired) is never marked failed. Its Schedule is kept
idempotently and, triggered, does the same."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.client import WorkflowExecutionStatus as ExecutionStatus
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from domain.reconciliation import ReconcileReport, ReconcileRun, schedule_id_for
from domain.secure_email import workflow_id_for
from infra.crypto.keys import portal_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail
from infra.reconciliation_schedule import keep_reconciliation_schedule
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_portal import SUBJECT, run_sql, send
from tests.workers.test_restore_at_worker_start import lose_workflow
from tests.workers.test_worker_metrics import counted
from workflows.reconciliation import ReconciliationWorkflow
from workflows.reconciling import ReconcileActivities

# Enough for every stray of the run's shared PostgreSQL database: the test's own are
# among them whatever their ids.
EVERYTHING = ReconcileRun(page=100_000)


async def temporal(stack: Stack) -> Client:
    client: Client = await stack.app.state.app_state.temporal()
    return client


async def reconcile(stack: Stack) -> ReconcileReport:
    """One run of the workflow the Schedule starts, on the stack's worker."""
    return await (await temporal(stack)).execute_workflow(
        ReconciliationWorkflow.run,
        EVERYTHING,
        id=f"reconcile-test-{uuid.uuid4()}",
        task_queue=stack.settings.task_queue,
    )


async def backdate(stack: Stack, secure_email_id: str) -> None:
    """Sent ten minutes ago: past the moment the web app may still be starting it."""
    sent_at = datetime.now(UTC) - timedelta(minutes=10)
    await run_sql(
        stack, update(SecureEmail).where(SecureEmail.id == secure_email_id).values(sent_at=sent_at)
    )


async def alerts_about(stack: Stack, secure_email_id: str) -> list[dict[str, Any]]:
    listed = (await stack.office.api.get("/api/v1/alerts")).json()["items"]
    return [alert for alert in listed if alert["secure_email_id"] == secure_email_id]


async def terminate(client: Client, secure_email_id: str) -> None:
    """Terminated by hand, as the Temporal UI or CLI allows, and seen so by Temporal's
    visibility (the list a run starts from; it follows within moments)."""
    workflow_id = workflow_id_for(secure_email_id)
    await client.get_workflow_handle(workflow_id).terminate("by hand")
    query = f"WorkflowId = '{workflow_id}' AND ExecutionStatus = 'Terminated'"

    async def listed() -> bool:
        return [execution.id async for execution in client.list_workflows(query)] != []

    await eventually(listed, what="the termination in Temporal's visibility", timeout=15)


def kinds(events: Sequence[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in events]


async def test_terminated_workflow_marked_failed_with_one_alert(stack: Stack) -> None:
    secure_email_id, link = await send(stack, "ada@example.com")
    await stack.wait_for_status(secure_email_id, "sent")
    client = await temporal(stack)
    await terminate(client, secure_email_id)

    # The first run as the worker's activity, counted in its metrics.
    buffer = MetricBuffer(1000)
    environment = ActivityEnvironment()
    environment.metric_meter = Runtime(telemetry=TelemetryConfig(metrics=buffer)).metric_meter
    engine = make_engine(stack.settings.database_url)
    activities = ReconcileActivities(
        client, stack.settings.task_queue, make_sessionmaker(engine), portal_keys(stack.settings)
    )
    try:
        first = await environment.run(activities.reconcile, EVERYTHING)
    finally:
        await engine.dispose()
    assert secure_email_id in first.stopped
    assert counted(buffer.retrieve_updates()).get("secure_emails_stopped_total", 0) >= 1
    # Run again, by its workflow: nothing more.
    second = await reconcile(stack)
    assert secure_email_id not in second.stopped + second.resumed + second.completed

    shown = await stack.wait_for_status(secure_email_id, "failed")
    assert kinds(shown["events"]).count("stopped") == 1
    alerts = await alerts_about(stack, secure_email_id)
    assert [alert["kind"] for alert in alerts] == ["stopped"]
    assert alerts[0]["message"] == "The secure email to Ada stopped unexpectedly; send again"
    audited = await stack.office.audit_events(
        action="secure_email.stopped", secure_email_id=secure_email_id
    )
    assert len(audited) == 1 and audited[0]["detail"] == "workflow terminated"

    # The office sees it failed, in the Sent box and on its page, and sends it again.
    sent_box = await stack.office.api.get("/api/v1/secure-emails", params={"status": "failed"})
    assert secure_email_id in [item["id"] for item in sent_box.json()["items"]]
    page = await stack.office.browser.get(f"/secure-emails/{secure_email_id}")
    assert '<dd id="status">failed</dd>' in page.text
    assert "stopped unexpectedly" in page.text and "Stopped unexpectedly" in page.text
    # Nothing more can be changed on it (its workflow is gone): the office is told why.
    refused = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/withdraw")
    assert refused.status_code == 409
    assert "stopped unexpectedly" in refused.json()["detail"]
    again = await stack.office.browser.post(f"/secure-emails/{secure_email_id}/send-again")
    assert again.status_code == 303, again.text
    new_id = again.headers["location"].split("/")[2].split("?")[0]
    assert new_id != secure_email_id
    assert (await stack.wait_for_status(new_id, "sent"))["subject"] == SUBJECT

    # The patient's link says the message is closed, and whom to ask: never a 503.
    async with stack.browser() as patient:
        opened = await patient.get(link)
        assert opened.status_code == 410
        assert "This secure email can no longer be opened" in opened.text
        assert "Smile Dental" in opened.text
        asked = await patient.post(f"{link}/passcode")
        assert asked.status_code == 410
        assert "can no longer be opened" in asked.text


async def test_lost_workflow_resumed_by_reconciliation(stack: Stack) -> None:
    secure_email_id, _ = await send(stack, "bea@example.com")
    await stack.wait_for_status(secure_email_id, "sent")
    client = await temporal(stack)
    await lose_workflow(client, workflow_id_for(secure_email_id))
    await backdate(stack, secure_email_id)

    report = await reconcile(stack)

    assert secure_email_id in report.resumed
    described = await client.get_workflow_handle(workflow_id_for(secure_email_id)).describe()
    assert described.status == ExecutionStatus.RUNNING
    again = await reconcile(stack)
    assert secure_email_id not in again.resumed + again.stopped
    assert (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()[
        "status"
    ] == "sent"
    assert await alerts_about(stack, secure_email_id) == []


async def test_completed_workflows_never_marked_failed(stack: Stack) -> None:
    """Withdrawn and expired messages' workflows completed: even with the database
    behind (still saying sent), the reconciliation leaves them alone."""
    withdrawn_id, _ = await send(stack, "cy@example.com")
    await stack.wait_for_status(withdrawn_id, "sent")
    taken_back = await stack.office.api.post(f"/api/v1/secure-emails/{withdrawn_id}/withdraw")
    assert taken_back.status_code == 200, taken_back.text
    await stack.wait_for_status(withdrawn_id, "withdrawn")

    # Expired: its workflow lost, resumed after its expiry time, expires it at once.
    expired_id, _ = await send(stack, "dee@example.com")
    await stack.wait_for_status(expired_id, "sent")
    client = await temporal(stack)
    await lose_workflow(client, workflow_id_for(expired_id))
    await backdate(stack, expired_id)
    past = datetime.now(UTC) - timedelta(minutes=1)
    await run_sql(
        stack, update(SecureEmail).where(SecureEmail.id == expired_id).values(expires_at=past)
    )
    assert expired_id in (await reconcile(stack)).resumed
    await stack.wait_for_status(expired_id, "expired")

    for secure_email_id in (withdrawn_id, expired_id):
        workflow_id = workflow_id_for(secure_email_id)

        async def completed(workflow_id: str = workflow_id) -> bool:
            described = await client.get_workflow_handle(workflow_id).describe()
            return described.status == ExecutionStatus.COMPLETED

        await eventually(completed, what="the workflow completed", timeout=15)
        await run_sql(
            stack,
            update(SecureEmail).where(SecureEmail.id == secure_email_id).values(status="sent"),
        )
    report = await reconcile(stack)
    assert {withdrawn_id, expired_id} <= set(report.completed)
    assert not {withdrawn_id, expired_id} & set(report.stopped + report.resumed)
    for secure_email_id in (withdrawn_id, expired_id):
        shown = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
        assert shown["status"] == "sent"
        assert "stopped" not in kinds(shown["events"])
        assert [a["kind"] for a in await alerts_about(stack, secure_email_id)] != ["stopped"]
        assert (
            await stack.office.audit_events(
                action="secure_email.stopped", secure_email_id=secure_email_id
            )
            == []
        )


async def test_schedule_kept_once_and_triggered_marks_terminated_failed(stack: Stack) -> None:
    client = await temporal(stack)
    task_queue = stack.settings.task_queue
    # Every worker start keeps it: a second keeps the one schedule, at the new interval.
    await keep_reconciliation_schedule(client, task_queue, 5, 100_000)
    await keep_reconciliation_schedule(client, task_queue, 3, 100_000)
    handle = client.get_schedule_handle(schedule_id_for(task_queue))
    try:
        described = await handle.describe()
        assert described.schedule.spec.intervals[0].every == timedelta(minutes=3)
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        secure_email_id, _ = await send(stack, "eve@example.com")
        await stack.wait_for_status(secure_email_id, "sent")
        await terminate(client, secure_email_id)
        await handle.trigger()

        async def failed_with_alert() -> bool:
            shown = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
            return shown["status"] == "failed" and bool(await alerts_about(stack, secure_email_id))

        await eventually(failed_with_alert, what="failed, with its alert", timeout=30)
    finally:
        await handle.delete()

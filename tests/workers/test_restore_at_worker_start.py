"""The resume step at worker start: a secure email whose workflow Temporal lost (deleted
here, as a lost Temporal database loses it) gets it back when a worker starts, and the
patient's link, a new passcode and Verify work; one sent a moment ago is left to the web
app that is starting it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.secure_email import workflow_id_for
from infra.db.engine import make_engine
from infra.db.models import SecureEmail
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_portal import SUBJECT, run_sql, send, sign_in
from workers.worker import resume_at_start


async def lose_workflow(client: Client, workflow_id: str) -> None:
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        )
    )

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return False

    await eventually(gone, timeout=30, what="the workflow deleted")


async def test_worker_start_resumes_a_lost_workflow(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    client: Client = await stack.app.state.app_state.temporal()
    secure_email_id, link = await send(stack, "ada@example.com")
    await stack.wait_for_status(secure_email_id, "sent")
    workflow_id = workflow_id_for(secure_email_id)
    await lose_workflow(client, workflow_id)
    engine = make_engine(stack.settings.database_url)
    try:
        # Sent a moment ago: the web app may still be starting it; left alone.
        with caplog.at_level(logging.INFO, logger="workers.worker"):
            await resume_at_start(client, stack.settings, engine)
        with pytest.raises(RPCError):
            await client.get_workflow_handle(workflow_id).describe()

        sent_at = datetime.now(UTC) - timedelta(minutes=10)
        await run_sql(
            stack,
            update(SecureEmail).where(SecureEmail.id == secure_email_id).values(sent_at=sent_at),
        )
        with caplog.at_level(logging.INFO, logger="workers.worker"):
            await resume_at_start(client, stack.settings, engine)
    finally:
        await engine.dispose()
    assert "open secure emails at start:" in caplog.text
    described = await client.get_workflow_handle(workflow_id).describe()
    assert described.status is not None and described.status.name == "RUNNING"

    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        message = await patient.get(message_path)
        assert SUBJECT in message.text
    await stack.wait_for_status(secure_email_id, "opened")

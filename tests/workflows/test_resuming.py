"""The resume step goes on past a row it cannot read: that secure email is named (in its
report and the log) and skipped, and every other open one still gets its workflow."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus as ExecutionStatus

from domain.secure_email import workflow_id_for
from infra.crypto.keys import portal_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail
from tests.fixtures.stack import Stack
from tests.web.test_portal import run_sql, send
from tests.workers.test_restore_at_worker_start import lose_workflow
from workflows.resuming import resume_open_secure_emails, workflow_status


async def test_resume_names_an_unreadable_row_and_resumes_the_others(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    client: Client = await stack.app.state.app_state.temporal()
    readable_id, _ = await send(stack, "ada@example.com")
    unreadable_id, _ = await send(stack, "bob@example.com")
    for secure_email_id in (readable_id, unreadable_id):
        await stack.wait_for_status(secure_email_id, "sent")
        await lose_workflow(client, workflow_id_for(secure_email_id))
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    await run_sql(
        stack,
        update(SecureEmail)
        .where(SecureEmail.id.in_([readable_id, unreadable_id]))
        .values(sent_at=ten_minutes_ago),
    )
    # Its subject as no key of the keyset sealed it (written below the encrypted column).
    await run_sql(
        stack,
        text("UPDATE secure_emails SET subject = 'v2:999:AAAA' WHERE id = :id").bindparams(
            id=unreadable_id
        ),
    )

    engine = make_engine(stack.settings.database_url)
    try:
        with caplog.at_level(logging.WARNING, logger="workflows.resuming"):
            report = await resume_open_secure_emails(
                client,
                stack.settings.task_queue,
                make_sessionmaker(engine),
                portal_keys(stack.settings),
            )
    finally:
        await engine.dispose()

    assert readable_id in report.resumed
    assert unreadable_id not in report.resumed
    skipped = {found.secure_email_id: found.reason for found in report.not_resumable}
    assert skipped[unreadable_id] == "its row cannot be read (FieldDecryptionError)"
    assert f"secure email {unreadable_id} not resumed: its row cannot be read" in caplog.text
    assert await workflow_status(client, workflow_id_for(readable_id)) == ExecutionStatus.RUNNING
    assert await workflow_status(client, workflow_id_for(unreadable_id)) is None

"""``securemail legacy open``: whether the version-1 workflow code can be deleted yet, as
the database and Temporal see it. On the whole stack (Temporal dev server, worker)."""

from __future__ import annotations

from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from infra.db.models import SecureEmail
from infra.settings import Settings
from tests.fixtures.stack import Stack
from tests.web.test_office_changes import send
from tests.web.test_portal import run_sql
from workers.legacy import open_legacy
from workflows.legacy import LEGACY_WORKFLOW_VERSION


def reaching(stack: Stack, temporal: WorkflowEnvironment) -> Settings:
    """The stack's settings, naming the Temporal server its worker polls (the stack hands
    the web app a connected client instead)."""
    return stack.settings.model_copy(
        update={
            "temporal_address": temporal.client.service_client.config.target_host,
            "temporal_namespace": temporal.client.namespace,
        }
    )


async def test_an_open_version_1_secure_email_keeps_the_legacy_code(
    stack: Stack, dev_server_env: WorkflowEnvironment
) -> None:
    settings = reaching(stack, dev_server_env)
    secure_email_id, _ = await send(stack)
    before = await open_legacy(settings)
    # Temporal answered (a count, not "unknown"). The database may be shared with other
    # tests' secure emails, so what this one adds is what is checked.
    assert before.in_temporal is not None

    await run_sql(
        stack,
        update(SecureEmail)
        .where(SecureEmail.id == secure_email_id)
        .values(workflow_version=LEGACY_WORKFLOW_VERSION),
    )
    opened = await open_legacy(settings)
    assert opened.in_database == before.in_database + 1 and not opened.none_open

    await run_sql(
        stack,
        update(SecureEmail).where(SecureEmail.id == secure_email_id).values(status="withdrawn"),
    )
    assert (await open_legacy(settings)).in_database == before.in_database


async def test_temporal_unreachable_is_not_taken_for_none_open(stack: Stack) -> None:
    unreachable = stack.settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    # Nothing of version 1 in the database, yet not "none open": Temporal was not asked.
    found = await open_legacy(unreachable)
    assert found.in_temporal is None and not found.none_open

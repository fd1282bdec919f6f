"""How a secure email's workflow is started: by Send Secure, and by the tests and the
benchmarks that start one without the web app. Its id and its search attributes are
chosen here only (ids and times, never an address or a name)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from domain.secure_email import SecureEmailStart, SecureEmailState, workflow_id_for
from infra.temporal.search_attributes import SECURE_EMAIL_STATUS, for_new_secure_email
from workflows.secure_email import SecureEmailWorkflow


async def start_secure_email(
    client: Client, task_queue: str, start: SecureEmailStart, *, workflow_id: str | None = None
) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    """Starts the workflow under the secure email's own id, unless ``workflow_id`` names
    another run (a test that continues a run by hand); the input names that id."""
    workflow_id = workflow_id or workflow_id_for(start.secure_email_id)
    return await client.start_workflow(
        SecureEmailWorkflow.run,
        start.model_copy(update={"workflow_id": workflow_id}),
        id=workflow_id,
        task_queue=task_queue,
        search_attributes=for_new_secure_email(
            start.practice_id, start.patient_id, start.expires_at
        ),
    )


async def resume_secure_email(
    client: Client, task_queue: str, start: SecureEmailStart, status: str
) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    """Starts the workflow of a secure email whose workflow Temporal has lost, under its
    own id, with the status the database has. A workflow of that id running already is
    left as it is; one that ran and closed is not started again
    (``WorkflowAlreadyStartedError``): a closed workflow decided its message's end."""
    workflow_id = workflow_id_for(start.secure_email_id)
    attributes = for_new_secure_email(start.practice_id, start.patient_id, start.expires_at)
    return await client.start_workflow(
        SecureEmailWorkflow.run,
        start.model_copy(update={"workflow_id": workflow_id}),
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=attributes.updated(SearchAttributePair(SECURE_EMAIL_STATUS, status)),
    )

"""How a secure email's workflow is started: by Send Secure, and by the tests and the
benchmarks that start one without the web app. Its id and its search attributes are
chosen here only (ids and times, never an address or a name)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle

from domain.secure_email import SecureEmailStart, SecureEmailState, workflow_id_for
from infra.temporal.search_attributes import for_new_secure_email
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

"""Steps many workflow tests take before the part they check."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowHandle

from domain.secure_email import PasscodeRequest, SecureEmailState
from tests.workflows.conftest import Lifecycle
from workflows.secure_email import SecureEmailWorkflow


async def passcode_mailed(
    lifecycle: Lifecycle,
    *,
    expiry_days: int = 7,
    reminder_after: timedelta | None = None,
    open_dental: bool = False,
) -> tuple[WorkflowHandle[SecureEmailWorkflow, SecureEmailState], str]:
    """A secure email started, its notice mailed and a passcode requested: the workflow,
    and the passcode the second mail carried."""
    handle = await lifecycle.start(
        expiry_days=expiry_days, reminder_after=reminder_after, open_dental=open_dental
    )
    await lifecycle.mail(1)
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    return handle, await lifecycle.latest_passcode(2)

"""The notice through SendGrid: 429 waits and retries, a refusal marks the email failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.secure_email import PasscodeRequest, SecureEmailStatus
from infra.mail.sendgrid import SendGridTransport
from tests.fixtures.sendgrid import API_KEY, FakeSendGrid
from tests.workflows.conftest import running_lifecycle
from workflows.secure_email import SecureEmailWorkflow


def sendgrid(fake: FakeSendGrid) -> SendGridTransport:
    return SendGridTransport(api_key=API_KEY, api_url=fake.url, timeout=5)


async def test_notice_retried_after_rate_limit(
    time_skipping_env: WorkflowEnvironment, sendgrid_api: FakeSendGrid, tmp_path: Path
) -> None:
    sendgrid_api.script = [(429, {"Retry-After": "30"}), (500, {})]
    async with running_lifecycle(time_skipping_env, sendgrid(sendgrid_api), tmp_path) as run:
        handle = await run.start()
        # Waits for the retries; the time-skipping server skips the 30 s Retry-After.
        while (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENDING:
            await time_skipping_env.sleep(10)
        assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENT
        assert sendgrid_api.requests == 3
        (accepted,) = sendgrid_api.accepted
        assert accepted["personalizations"][0]["to"] == [{"email": "pat.patient@example.com"}]
        await handle.terminate("test finished")


@pytest.mark.parametrize("refusal", [400, 401, 403])
async def test_notice_refused_marks_failed(
    time_skipping_env: WorkflowEnvironment,
    sendgrid_api: FakeSendGrid,
    tmp_path: Path,
    refusal: int,
) -> None:
    sendgrid_api.script = [(refusal, {})]
    async with running_lifecycle(time_skipping_env, sendgrid(sendgrid_api), tmp_path) as run:
        handle = await run.start()
        final = await handle.result()
        assert final.status == SecureEmailStatus.FAILED
        assert sendgrid_api.requests == 1  # not retried
        assert run.status_log.statuses() == ["failed"]
        assert len(run.status_log.notice_failures) == 1  # the office is alerted
        # The workflow has ended: no passcode can be asked for a notice nobody received.
        with pytest.raises(RPCError):
            await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())

"""A worker on the time-skipping server with real SMTP delivery into a Maildir."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mail import MailActivities
from activities.passcodes import make_passcode_secret
from domain.secure_email import (
    NoticeFailed,
    ReplyToFile,
    ReplyToRecord,
    SecureEmailInput,
    SecureEmailState,
    StatusChange,
    workflow_id_for,
)
from infra.mail.smtp import SmtpTransport
from infra.mail.transport import MailTransport
from infra.temporal.search_attributes import for_new_secure_email
from workers.smtp_catcher import read_maildir, serve
from workflows.secure_email import SecureEmailWorkflow

PATIENT = "pat.patient@example.com"
OFFICE = "office@smile-dental.example"


@dataclass
class StatusLog:
    """Stand-in for the read model: the changes the workflow projected, in order."""

    changes: list[StatusChange] = field(default_factory=list)

    @activity.defn(name="record_status")
    async def record_status(self, change: StatusChange) -> None:
        self.changes.append(change)

    replies: list[ReplyToRecord] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    filed: list[str] = field(default_factory=list)
    notice_failures: list[str] = field(default_factory=list)

    @activity.defn(name="record_reply")
    async def record_reply(self, recording: ReplyToRecord) -> None:
        self.replies.append(recording)

    @activity.defn(name="raise_alert")
    async def raise_alert(self, filing: ReplyToFile) -> None:
        self.alerts.append(filing.reply_id)

    @activity.defn(name="raise_notice_failed")
    async def raise_notice_failed(self, failure: NoticeFailed) -> None:
        self.notice_failures.append(failure.secure_email_id)

    @activity.defn(name="file_to_chart")
    async def file_to_chart(self, filing: ReplyToFile) -> None:
        self.filed.append(filing.reply_id)

    def statuses(self) -> list[str]:
        return [change.status.value for change in self.changes]


@dataclass
class Lifecycle:
    env: WorkflowEnvironment
    client: Client
    task_queue: str
    maildir: Path
    status_log: StatusLog

    async def start(
        self, *, expiry_days: int = 7
    ) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
        secure_email_id = str(uuid.uuid4())
        sent_at = await self.env.get_current_time()
        handle = await self.client.start_workflow(
            SecureEmailWorkflow.run,
            SecureEmailInput(
                secure_email_id=secure_email_id,
                practice_id="practice-1",
                patient_id="patient-1",
                practice_name="Smile Dental",
                sender_address=OFFICE,
                patient_address=PATIENT,
                link_token="t" * 43,
                sent_at=sent_at,
                expires_at=sent_at + timedelta(days=expiry_days),
            ),
            id=workflow_id_for(secure_email_id),
            task_queue=self.task_queue,
            search_attributes=for_new_secure_email(
                "practice-1", "patient-1", sent_at + timedelta(days=expiry_days)
            ),
        )
        return handle

    async def mail(self, count: int) -> list[EmailMessage]:
        """Waits for the Maildir to hold ``count`` messages (real time, not skipped)."""
        for _ in range(200):
            messages = await asyncio.to_thread(read_maildir, self.maildir)
            if len(messages) >= count:
                return messages
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} emails, have {len(messages)}")

    async def latest_passcode(self, count: int) -> str:
        message = (await self.mail(count))[-1]
        body = message.get_body(("plain",))
        assert body is not None
        found = re.search(r"\b(\d{8})\b", body.get_content())
        assert found, "no passcode in the email"
        return found.group(1)


@asynccontextmanager
async def running_lifecycle(
    env: WorkflowEnvironment, transport: MailTransport, maildir: Path
) -> AsyncIterator[Lifecycle]:
    """A worker with real mail activities over ``transport`` and a stand-in read model."""
    status_log = StatusLog()
    task_queue = f"tq-{uuid.uuid4()}"
    mail = MailActivities(transport, "http://portal.test")
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[SecureEmailWorkflow],
        activities=[
            mail.deliver_notice,
            mail.deliver_passcode,
            make_passcode_secret,
            status_log.record_status,
            status_log.record_reply,
            status_log.raise_alert,
            status_log.file_to_chart,
            status_log.raise_notice_failed,
        ],
    ):
        yield Lifecycle(env, env.client, task_queue, maildir, status_log)


@pytest.fixture
async def lifecycle(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Lifecycle]:
    """Mail goes through real SMTP into a Maildir the test reads."""
    maildir = tmp_path / "mail"
    server = await serve("127.0.0.1", 0, maildir)
    port = server.sockets[0].getsockname()[1]
    transport = SmtpTransport("127.0.0.1", port, local_hostname="tests")
    async with running_lifecycle(time_skipping_env, transport, maildir) as lifecycle:
        yield lifecycle
    server.close()
    await server.wait_closed()

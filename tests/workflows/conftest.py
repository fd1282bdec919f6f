"""A worker on the time-skipping server with real SMTP delivery into a Maildir."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.legacy import LegacyMailActivities
from activities.mail import MailActivities
from activities.office_requests import OfficeRequestActivities
from domain.open_dental import CommlogToAdd, ReplyFilesToUpload
from domain.patients import PatientCreate, PatientStatus
from domain.secure_email import (
    ExpiryChange,
    ExpiryToRecord,
    NoticeFailed,
    NoticeResend,
    OfficeChange,
    PasscodeAttempt,
    ReplyToFile,
    ReplyToRecord,
    ReportToConfirm,
    SecureEmailState,
    StatusChange,
    Withdrawal,
    workflow_id_for,
)
from domain.staff import StaffRole
from infra import notice_claims, office_requests
from infra.accounts import create_practice, create_staff_user
from infra.crypto import portal_secrets
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import PortalKeys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.db.models import SecureEmail
from infra.directory import add_patient
from infra.mail.smtp import SmtpTransport
from infra.mail.transport import MailTransport
from infra.security import token_hash
from infra.temporal.search_attributes import for_new_secure_email
from tests.conftest import TEST_KEYS
from tests.fixtures.temporal import start_secure_email
from tests.fixtures.waiting import eventually
from workers.smtp_catcher import read_maildir, serve
from workers.worker import WORKFLOWS, activities
from workflows.legacy.inputs import SecureEmailInput
from workflows.legacy.secure_email_v1 import LegacySecureEmailWorkflow
from workflows.secure_email import SecureEmailWorkflow

PATIENT = "pat.patient@example.com"
OFFICE = "office@smile-dental.example"


@dataclass
class StatusLog:
    """Stand-in for the read model: the changes the workflow projected, in order."""

    changes: list[StatusChange] = field(default_factory=list)
    # A test holds the projection of a status here (the database being slow) to see
    # what waits for it and what does not.
    held: dict[str, asyncio.Event] = field(default_factory=dict)

    @activity.defn(name="record_status")
    async def record_status(self, change: StatusChange) -> None:
        hold = self.held.get(change.status.value)
        if hold is not None:
            await hold.wait()
        self.changes.append(change)

    expiries: list[ExpiryToRecord] = field(default_factory=list)

    @activity.defn(name="record_expiry")
    async def record_expiry(self, change: ExpiryToRecord) -> None:
        self.expiries.append(change)

    # What the web app recorded and audited before it signalled (the portal's view, a
    # verified bounce): confirmed unless a test says the database holds nothing.
    reports_recorded: bool = True

    @activity.defn(name="viewed_in_portal")
    async def viewed_in_portal(self, report: ReportToConfirm) -> bool:
        return self.reports_recorded

    @activity.defn(name="bounce_reported")
    async def bounce_reported(self, report: ReportToConfirm) -> bool:
        return self.reports_recorded

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

    @activity.defn(name="file_reply")
    async def file_reply(self, filing: ReplyToFile) -> None:
        self.filed.append(filing.reply_id)
        self.alerts.append(filing.reply_id)

    # What went to Open Dental (``activities.to_open_dental``): the replies whose files
    # were uploaded, and the commlogs ("sent", or the reply's id). A test sets
    # ``open_dental_down`` to have every call refused (``uploads_down``: the uploads
    # only), or holds them on the event.
    uploads: list[str] = field(default_factory=list)
    commlogs: list[str] = field(default_factory=list)
    open_dental_down: bool = False
    uploads_down: bool = False
    open_dental_held: asyncio.Event | None = None

    async def _open_dental(self) -> None:
        if self.open_dental_held is not None:
            await self.open_dental_held.wait()
        if self.open_dental_down:
            raise ApplicationError("Open Dental is down", non_retryable=True)

    @activity.defn(name="upload_reply_files_to_open_dental")
    async def upload_reply_files(self, files: ReplyFilesToUpload) -> int:
        await self._open_dental()
        if self.uploads_down:
            raise ApplicationError("Open Dental's file store is down", non_retryable=True)
        self.uploads.append(files.reply_id)
        return 1

    @activity.defn(name="add_open_dental_commlog")
    async def add_commlog(self, commlog: CommlogToAdd) -> None:
        await self._open_dental()
        self.commlogs.append(commlog.reply_id or "sent")

    def statuses(self) -> list[str]:
        """In the order they happened: the read model keeps the newest by its number,
        whatever order the projections arrive in ("opened" is written after Verify has
        answered, so a quick reply's "replied" can arrive first)."""
        ordered = sorted(self.changes, key=lambda change: change.sequence)
        return [change.status.value for change in ordered]


@dataclass
class Directory:
    """The database the mail activities read by id: one practice and one patient."""

    sessions: async_sessionmaker[AsyncSession]
    portal_keys: PortalKeys
    practice_id: str
    patient_id: str
    staff_id: str


@asynccontextmanager
async def directory(path: Path) -> AsyncIterator[Directory]:
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url)
    configure_field_encryption(TEST_KEYS)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as db:
        practice = await create_practice(db, "Smile Dental", sender_address=OFFICE)
        patient = await add_patient(
            db,
            practice.id,
            PatientCreate(name="Pat Patient", email=PATIENT, status=PatientStatus.PATIENT),
        )
        staff = await create_staff_user(
            db, practice, f"front-desk@{OFFICE.partition('@')[2]}", "x" * 16, role=StaffRole.CLERK
        )
        await db.commit()
        ids = practice.id, patient.id, staff.id
    try:
        yield Directory(sessions, PortalKeys.generate(), *ids)
    finally:
        await engine.dispose()


@dataclass
class Lifecycle:
    env: WorkflowEnvironment
    client: Client
    task_queue: str
    maildir: Path
    status_log: StatusLog
    directory: Directory

    async def start(
        self,
        *,
        expiry_days: int = 7,
        expires_in: timedelta | None = None,
        reminder_after: timedelta | None = None,
        open_dental: bool = False,
    ) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
        """A secure email as Send Secure makes it: a row, then its workflow, ids only;
        ``open_dental``: to an Open Dental patient of a connected practice."""
        lifetime = expires_in or timedelta(days=expiry_days)
        secure_email_id, sent_at, _ = await self._record(lifetime, link_token=None)
        return await start_secure_email(
            self.client,
            self.task_queue,
            secure_email_id=secure_email_id,
            practice_id=self.directory.practice_id,
            patient_id=self.directory.patient_id,
            sent_at=sent_at,
            portal_key_id=self.directory.portal_keys.current_id,
            lifetime=lifetime,
            reminder_at=None if reminder_after is None else sent_at + reminder_after,
            open_dental=open_dental,
        )

    async def start_v1(
        self, *, expiry_days: int = 7
    ) -> WorkflowHandle[LegacySecureEmailWorkflow, SecureEmailState]:
        """A secure email sent before histories held ids only (still running)."""
        link_token = secrets.token_urlsafe(32)
        secure_email_id, sent_at, expires_at = await self._record(
            timedelta(days=expiry_days), link_token=link_token
        )
        return await self.client.start_workflow(
            LegacySecureEmailWorkflow.run,
            SecureEmailInput(
                secure_email_id=secure_email_id,
                practice_id=self.directory.practice_id,
                patient_id=self.directory.patient_id,
                practice_name="Smile Dental",
                sender_address=OFFICE,
                patient_address=PATIENT,
                link_token=link_token,
                sent_at=sent_at,
                expires_at=expires_at,
            ),
            id=workflow_id_for(secure_email_id),
            task_queue=self.task_queue,
            search_attributes=for_new_secure_email(
                self.directory.practice_id, self.directory.patient_id, expires_at
            ),
        )

    async def _record(
        self, lifetime: timedelta, *, link_token: str | None
    ) -> tuple[str, datetime, datetime]:
        secure_email_id = str(uuid.uuid4())
        sent_at = await self.env.get_current_time()
        keys = self.directory.portal_keys
        link_token = link_token or portal_secrets.link_token(keys, keys.current_id, secure_email_id)
        async with self.directory.sessions() as db:
            db.add(
                SecureEmail(
                    id=secure_email_id,
                    practice_id=self.directory.practice_id,
                    patient_id=self.directory.patient_id,
                    staff_id=self.directory.staff_id,
                    subject="Treatment plan",
                    body="Your treatment plan is attached.",
                    link_token_hash=token_hash(link_token),
                    status="sending",
                    sent_at=sent_at,
                    expires_at=sent_at + lifetime,
                )
            )
            await db.commit()
        return secure_email_id, sent_at, sent_at + lifetime

    async def resend(self, handle: WorkflowHandle[Any, Any]) -> NoticeResend:
        """The office's resend as the web app asks for it: its request recorded first."""
        secure_email_id = handle.id.removeprefix(workflow_id_for(""))
        async with self.directory.sessions() as db:
            request_id = notice_claims.request_resend(
                db, secure_email_id, self.directory.staff_id, datetime.now(UTC)
            )
            await db.commit()
        return NoticeResend(staff_id=self.directory.staff_id, request_id=request_id)

    async def withdrawal(self, handle: WorkflowHandle[Any, Any]) -> Withdrawal:
        """The office's withdrawal as the web app asks for it: its request recorded first."""
        request_id = await self._request(handle, OfficeChange.WITHDRAW)
        return Withdrawal(staff_id=self.directory.staff_id, request_id=request_id)

    async def expiry_change(
        self, handle: WorkflowHandle[Any, Any], expires_at: datetime
    ) -> ExpiryChange:
        """The office's new expiry as the web app asks for it: its request recorded first."""
        request_id = await self._request(handle, OfficeChange.CHANGE_EXPIRY, expires_at)
        return ExpiryChange(
            staff_id=self.directory.staff_id, expires_at=expires_at, request_id=request_id
        )

    async def _request(
        self,
        handle: WorkflowHandle[Any, Any],
        kind: OfficeChange,
        expires_at: datetime | None = None,
    ) -> str:
        secure_email_id = handle.id.removeprefix(workflow_id_for(""))
        async with self.directory.sessions() as db:
            request_id = office_requests.record(
                db, secure_email_id, kind, self.directory.staff_id, datetime.now(UTC), expires_at
            )
            await db.commit()
        return request_id

    def attempt(self, handle: WorkflowHandle[Any, Any], passcode: str) -> PasscodeAttempt:
        """A typed passcode as the portal sends it: its checks, never the code."""
        secure_email_id = handle.id.removeprefix(workflow_id_for(""))
        checks = portal_secrets.passcode_checks(
            self.directory.portal_keys, secure_email_id, passcode
        )
        return PasscodeAttempt(checks=checks)

    async def mail(self, count: int) -> list[EmailMessage]:
        """Waits for the Maildir to hold ``count`` messages (real time, not skipped)."""

        async def arrived() -> list[EmailMessage] | None:
            messages = await asyncio.to_thread(read_maildir, self.maildir)
            return messages if len(messages) >= count else None

        return await eventually(arrived, timeout=10, what=f"{count} emails")

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
    """A worker with real mail activities over ``transport``, reading a real database by
    id, the office's requests confirmed in it, and a stand-in for the rest of the read
    model."""
    status_log = StatusLog()
    task_queue = f"tq-{uuid.uuid4()}"
    maildir.mkdir(parents=True, exist_ok=True)
    async with directory(maildir.parent / f"directory-{uuid.uuid4().hex[:8]}.db") as found:
        mail = MailActivities(transport, "http://portal.test", found.sessions, found.portal_keys)
        legacy_mail = LegacyMailActivities(
            transport, "http://portal.test", found.sessions, found.portal_keys
        )
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=[
                *activities(
                    mail,
                    legacy_mail,
                    status_log,
                    status_log,
                    status_log,
                    OfficeRequestActivities(found.sessions),
                ),
                # Open Dental's, as the worker registers them (``ToOpenDentalActivities``).
                status_log.upload_reply_files,
                status_log.add_commlog,
            ],
        ):
            yield Lifecycle(env, env.client, task_queue, maildir, status_log, found)


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

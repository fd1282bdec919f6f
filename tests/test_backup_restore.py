"""Nothing lost with the machine (R22): back up a running deployment, throw away its
database, its objects and the whole of Temporal, restore into a fresh stack, and every
secure email goes on as before: the open one's link, a new passcode and Verify, its
expiry at the original time; the reply and its file in the Email Client and the chart;
the withdrawn one still 410; the audit chain intact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.secure_email import SecureEmailState, SecureEmailStatus, workflow_id_for
from infra.audit_chain import verify_database
from infra.backup import read_manifest
from infra.crypto.keys import portal_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.mail.smtp import SmtpTransport
from infra.settings import Settings
from infra.timeline import of as timeline_of
from tests.conftest import TEST_KEYS, Office, signed_in
from tests.fixtures.postgres import new_database
from tests.fixtures.s3 import S3Server
from tests.fixtures.stack import Stack
from tests.fixtures.temporal import start_time_skipping
from tests.fixtures.waiting import eventually
from tests.web.test_alerts import patient_replies
from tests.web.test_portal import BODY, SUBJECT, ask_passcode, send, sign_in
from web.app import create_app
from workers.backup import backup, restore_and_resume, resume
from workers.smtp_catcher import serve
from workers.worker import build_worker

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
REPLY = "Here is my insurance card."


@asynccontextmanager
async def restored_stack(
    settings: Settings, temporal: WorkflowEnvironment, maildir: Path, office: Office
) -> AsyncIterator[Stack]:
    """The product on a restored database: no migration, no new practice; the office
    signs in with what the backup kept (its password, its API token)."""
    smtp = await serve("127.0.0.1", 0, maildir)
    settings = settings.model_copy(update={"smtp_port": smtp.sockets[0].getsockname()[1]})
    engine = make_engine(settings.database_url)
    worker = build_worker(
        temporal.client,
        settings,
        SmtpTransport("127.0.0.1", settings.smtp_port, local_hostname="tests"),
        make_sessionmaker(engine),
    )
    app = create_app(settings, temporal=temporal.client)
    async with worker, app.router.lifespan_context(app):
        api, browser, _ = await signed_in(app, office.email, office.token, settings.public_url)
        restored = Office(office.practice_id, office.email, office.token, api, browser)
        yield Stack(settings, app, restored, maildir)
        await restored.aclose()
    await engine.dispose()
    smtp.close()
    await smtp.wait_closed()


async def test_backup_then_restore_into_a_fresh_stack_resumes_every_secure_email(
    stack: Stack, s3_server: S3Server, tmp_path: Path
) -> None:
    # One replied with a file, one open with a passcode already mailed, one withdrawn.
    replied_id, replied_link = await send(stack, "ada@example.com")
    async with stack.browser() as patient:
        await sign_in(stack, patient, replied_link, "ada@example.com")
    reply_id = await patient_replies(stack, replied_id, REPLY, [("card.png", PNG, "image/png")])
    await stack.wait_for_status(replied_id, "replied")
    patient_id = (await stack.office.api.get(f"/api/v1/secure-emails/{replied_id}")).json()[
        "patient_id"
    ]

    async def filed() -> bool:
        chart = await stack.office.api.get(f"/api/v1/patients/{patient_id}/chart")
        return bool(chart.json()["items"])

    open_id, open_link = await send(stack, "grace@example.com")
    async with stack.browser() as patient:
        first_passcode = await ask_passcode(stack, patient, open_link, "grace@example.com")
    withdrawn_id, withdrawn_link = await send(stack, "lin@example.com")
    done = await stack.office.api.post(f"/api/v1/secure-emails/{withdrawn_id}/withdraw")
    assert done.status_code == 200, done.text
    open_before = (await stack.office.api.get(f"/api/v1/secure-emails/{open_id}")).json()
    await eventually(filed, what="the reply's file in the chart")

    directory = tmp_path / "backup"
    manifest = await backup(stack.settings, directory, False, lambda _: None)
    assert manifest.counts["secure_emails"] >= 3 and manifest.counts["replies"] >= 1
    assert not (directory / "keys.json").exists()
    keys = {entry.key for entry in manifest.objects}
    assert any(f"/replies/{reply_id}/" in key for key in keys)
    for entry in manifest.objects:
        stored = (directory / "objects" / entry.key).read_bytes()
        assert len(stored) == entry.size and PNG not in stored  # as stored: still sealed
    assert read_manifest(directory) == manifest

    # A new machine: another database, another bucket, another Temporal, another mailbox.
    kind = "postgresql" if stack.settings.database_url.startswith("postgresql") else "sqlite"
    async with new_database(kind, tmp_path / "restored.db", "securemail_restore") as url:
        fresh = stack.settings.model_copy(
            update={
                "database_url": url,
                "migration_database_url": url,
                **s3_server.connection(f"restored-{uuid.uuid4().hex[:12]}"),
                "task_queue": f"tq-{uuid.uuid4()}",
                "data_dir": tmp_path / "restored-data",
                # The keys, kept apart from the backup, configured on the new machine.
                **portal_keys(stack.settings).settings_fields(),
            }
        )
        temporal = await start_time_skipping(TEST_KEYS)
        try:
            _, resumed = await restore_and_resume(
                fresh, directory, lambda _: None, client=temporal.client
            )
            assert {open_id, replied_id} <= set(resumed.resumed)
            assert withdrawn_id not in resumed.resumed
            # (On PostgreSQL the run's shared database holds other tests' messages too.)
            skipped = {found.secure_email_id for found in resumed.not_resumable}
            assert not skipped & {open_id, replied_id, withdrawn_id}
            # Run again (a second restore attempt, a worker starting): nothing more starts.
            again = await resume(fresh, client=temporal.client, settling=timedelta(0))
            assert again.resumed == [] and again.running == len(resumed.resumed)
            async with restored_stack(fresh, temporal, tmp_path / "mail-2", stack.office) as new:
                await after_restore(new, temporal, open_id, open_link, first_passcode)
                await replied_survives(new, replied_id, patient_id, withdrawn_link)
                # The expiry comes at the original time (the server skips the seven days).
                original = datetime.fromisoformat(open_before["expires_at"])
                await temporal.sleep(original - datetime.now(UTC) + timedelta(minutes=1))
                handle = temporal.client.get_workflow_handle(workflow_id_for(open_id))
                ended = await eventually(lambda: ended_state(handle), what="the expiry")
                assert ended.status == SecureEmailStatus.EXPIRED
                assert ended.expires_at == original
                engine = make_engine(url)
                async with make_sessionmaker(engine)() as db:
                    lines = await timeline_of(db, open_id)
                await engine.dispose()
                expired = [line.at for line in lines if line.kind == "expired"]
                assert len(expired) == 1 and abs(expired[0] - original) < timedelta(minutes=1)
            report = await verify_database(url)
            assert report.intact, report.problem
        finally:
            await temporal.shutdown()


async def ended_state(handle: WorkflowHandle[Any, Any]) -> SecureEmailState | None:
    described = await handle.describe()
    if described.status is None or described.status.name != "COMPLETED":
        return None
    state: SecureEmailState = await handle.query("state", result_type=SecureEmailState)
    return state


async def after_restore(
    new: Stack, temporal: WorkflowEnvironment, open_id: str, link: str, first_passcode: str
) -> None:
    """The open one: the original link, a new passcode (not the one mailed before the
    loss, which was only in the lost history) and Verify show the message."""
    described = await temporal.client.get_workflow_handle(workflow_id_for(open_id)).describe()
    assert described.status is not None and described.status.name == "RUNNING"
    async with new.browser() as patient:
        page = await patient.get(link)
        assert page.status_code == 200 and "View Secure Email" in page.text
        old = await patient.post(f"{link}/verify", data={"passcode": first_passcode})
        assert old.status_code == 422  # the lost passcode opens nothing
        await patient.post(f"{link}/passcode")
        passcode = await new.passcode("grace@example.com", 1)
        assert passcode != first_passcode
        verified = await patient.post(f"{link}/verify", data={"passcode": passcode})
        assert verified.status_code == 303, verified.text
        message = await patient.get(verified.headers["location"])
        assert SUBJECT in message.text and BODY in message.text
    await new.wait_for_status(open_id, "opened")


async def replied_survives(
    new: Stack, replied_id: str, patient_id: str, withdrawn_link: str
) -> None:
    client = await new.office.browser.get("/email-client")
    assert client.status_code == 200 and SUBJECT in client.text
    thread = (await new.office.api.get(f"/api/v1/secure-emails/{replied_id}")).json()
    assert thread["status"] == "replied" and len(thread["replies"]) == 1
    (document,) = (await new.office.api.get(f"/api/v1/patients/{patient_id}/chart")).json()["items"]
    file = await new.office.api.get(f"/api/v1/patients/{patient_id}/chart/{document['id']}")
    assert file.status_code == 200 and file.content == PNG
    async with new.browser() as patient:
        gone = await patient.get(withdrawn_link)
        assert gone.status_code == 410

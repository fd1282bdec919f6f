"""The object store stops while a patient sends Reply All with a file.

The patient must get a clear page (never a 500) that keeps what they typed, and once
the store is back the same reply goes through; nothing accepted is lost, and the
office's file sent before the outage is still there.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.db.models import Attachment, ChartDocument, Reply
from tests.faults.conftest import RcloneS3, report
from tests.fixtures.stack import Stack, own_settings, running_stack
from tests.fixtures.waiting import eventually
from tests.web.test_portal import send, sign_in
from web.state import AppState

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096
REPLY = "My insurance card, front and back."


@pytest.fixture
async def stack_on_own_s3(
    tmp_path: Path, own_s3: RcloneS3, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[Stack]:
    settings = own_settings(tmp_path)
    await upgrade_async(settings.database_url)
    async with running_stack(settings, own_s3.server, dev_server_env, tmp_path / "mail") as stack:
        yield stack


async def read_back(stack: Stack, key: str) -> bytes:
    state: AppState = stack.app.state.app_state
    chunks = await state.store.get_stream(key)
    return b"".join([chunk async for chunk in chunks])


@pytest.mark.timeout(120)
async def test_reply_while_s3_is_down_is_refused_clearly_then_accepted(
    stack_on_own_s3: Stack, own_s3: RcloneS3
) -> None:
    stack = stack_on_own_s3
    secure_email_id, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        own_s3.stop()
        refused = await patient.post(
            f"{message_path}/reply",
            data={"subject": "RE: Treatment plan", "body": REPLY},
            files=[("attachments", ("card.png", PNG, "image/png"))],
        )
        assert refused.status_code == 503, refused.text[:500]
        assert "unavailable" in refused.text.lower()
        assert REPLY in refused.text  # what the patient typed is kept
        assert "You have not sent any replies" in (await patient.get("/portal/sent")).text
        sent = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
        attachment_id = sent["attachments"][0]["id"]
        download = await patient.get(f"{message_path}/attachments/{attachment_id}")
        assert download.status_code == 503 and "try again" in download.text
        patient_id = sent["patient_id"]
        another = await stack.office.api.post(
            "/api/v1/secure-emails",
            data={"patient_id": patient_id, "subject": "X-ray", "body": "Attached."},
            files=[("attachments", ("x-ray.png", PNG, "image/png"))],
        )
        assert another.status_code == 503, another.text
        assert "unavailable" in another.text and "nothing was sent" in another.text
        # Send again reads the office's files back from the store: the same words, on the
        # compose page with the message's text.
        again = await stack.office.browser.post(f"/secure-emails/{secure_email_id}/send-again")
        assert again.status_code == 503, again.text[:500]
        assert "nothing was sent" in again.text and "Treatment plan" in again.text

        own_s3.start()
        accepted = await patient.post(
            f"{message_path}/reply",
            data={"subject": "RE: Treatment plan", "body": REPLY},
            files=[("attachments", ("card.png", PNG, "image/png"))],
        )
        assert accepted.status_code == 303, accepted.text[:500]

    engine = make_engine(stack.settings.database_url)
    sessions = make_sessionmaker(engine)

    async def filed() -> bool:
        async with sessions() as db:
            return bool((await db.scalars(select(ChartDocument))).all())

    await eventually(filed, what="the reply's file in the chart", timeout=30)
    async with sessions() as db:
        replies = (await db.scalars(select(Reply))).all()
        files = (await db.scalars(select(Attachment))).all()
    await engine.dispose()
    assert [reply.body for reply in replies] == [REPLY]  # once: the refused one left nothing
    reply_file = next(file for file in files if file.reply_id is not None)
    assert reply_file.sha256 == hashlib.sha256(PNG).hexdigest()
    assert await read_back(stack, reply_file.object_key) == PNG
    office_file = next(file for file in files if file.reply_id is None)
    assert (await read_back(stack, office_file.object_key)).startswith(b"%PDF")
    # The refused send left nothing: only the first secure email exists.
    assert {file.secure_email_id for file in files} == {secure_email_id}
    report(
        "S3 stopped: Reply All, Send Secure and a download answer 503 in words "
        "(the reply's text kept); the reply went through once S3 was back"
    )


class CuttingProxy:
    """A TCP proxy in front of the S3 server that drops every connection, and stops
    listening, once ``cut_after`` bytes of requests went through: the store vanishes
    in the middle of an upload, at a point the test chooses."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after: int | None = None
        self.sent = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", port)
        bound: int = self.server.sockets[0].getsockname()[1]
        return bound

    def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers += [writer, up_writer]

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, count: bool
        ) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
                    if count:
                        self.sent += len(data)
                        if self.cut_after is not None and self.sent >= self.cut_after:
                            self.cut()
                            return
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))


@pytest.fixture
async def cut_s3(own_s3: RcloneS3) -> AsyncIterator[tuple[CuttingProxy, RcloneS3]]:
    proxy = CuttingProxy(own_s3.port)
    port = await proxy.open()
    fronted = RcloneS3(own_s3.data_dir, own_s3.log_file, port)
    yield proxy, fronted
    proxy.cut()


@pytest.fixture
async def stack_behind_proxy(
    tmp_path: Path, cut_s3: tuple[CuttingProxy, RcloneS3], dev_server_env: WorkflowEnvironment
) -> AsyncIterator[Stack]:
    settings = own_settings(tmp_path)
    await upgrade_async(settings.database_url)
    _, fronted = cut_s3
    async with running_stack(settings, fronted.server, dev_server_env, tmp_path / "mail") as stack:
        yield stack


@pytest.mark.timeout(120)
async def test_s3_gone_mid_upload_refused_clearly_nothing_half_kept(
    stack_behind_proxy: Stack, cut_s3: tuple[CuttingProxy, RcloneS3]
) -> None:
    """The store goes away 3 MB into a 20 MB file: a clear refusal, no half reply."""
    stack = stack_behind_proxy
    proxy, fronted = cut_s3
    _, link = await send(stack)
    big = b"%PDF-1.7\n" + bytes(20 * 1024 * 1024 - 9)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        proxy.cut_after = proxy.sent + 3 * 1024 * 1024
        answer = await patient.post(
            f"{message_path}/reply",
            data={"body": REPLY},
            files=[("attachments", ("scan.pdf", big, "application/pdf"))],
        )
        assert answer.status_code == 503, answer.text[:500]
        assert REPLY in answer.text
        proxy.cut_after = None
        await proxy.open(fronted.port)
        again = await patient.post(
            f"{message_path}/reply",
            data={"body": REPLY},
            files=[("attachments", ("scan.pdf", big, "application/pdf"))],
        )
        assert again.status_code == 303, again.text[:500]
    engine = make_engine(stack.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        replies = (await db.scalars(select(Reply))).all()
        files = await db.scalars(select(Attachment).where(Attachment.reply_id.is_not(None)))
        reply_files = files.all()
    await engine.dispose()
    assert [reply.body for reply in replies] == [REPLY]
    [stored] = reply_files
    assert await read_back(stack, stored.object_key) == big
    report("S3 gone 3 MB into a 20 MB reply upload: 503 in words, then sent once whole")

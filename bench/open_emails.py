"""Thousands of secure emails open at once, each a workflow waiting on its 7-day timer.

A real ``securemail worker`` process (its own RSS, read from /proc) on Temporal's
time-skipping test server, with the read model's rows in a SQLite file and a counting
SMTP server: each workflow delivers its notice, records "sent", then waits. Then the
server skips seven days and every one must expire and record it.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from bench import seed
from bench.common import peak_rss_mib, rss_mib, say
from domain.secure_email import SecureEmailStart, SecureEmailState, workflow_id_for
from infra.crypto import portal_secrets
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import EncryptionKeys, PortalKeys, keyset_environment
from infra.db.engine import make_engine
from infra.db.migrate import upgrade_async
from infra.db.models import SecureEmail
from infra.security import token_hash
from infra.temporal.codec import data_converter
from infra.temporal.search_attributes import ALL as SEARCH_ATTRIBUTES
from infra.temporal.search_attributes import for_new_secure_email
from workflows.secure_email import SecureEmailWorkflow

BIN_DIR = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class OpenEmails:
    count: int
    start_seconds: float
    settle_seconds: float
    expire_seconds: float
    rss_idle_mib: float
    rss_peak_mib: float
    rss_start_mib: float
    expired: int
    notices: int
    sent_before_expiry: int
    expired_in_database: int


class CountingSmtp:
    """Accepts every mail and counts it; nothing is written anywhere."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        return "250 OK"


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )


async def count_status(engine: AsyncEngine, status: str) -> int:
    async with engine.connect() as connection:
        statement = select(func.count()).where(SecureEmail.status == status)
        return int((await connection.execute(statement)).scalar_one())


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def until_idle(pid: int, quiet_polls: int = 3, every: float = 0.5) -> None:
    """Waits until the process has used under 5 % of a core for ``quiet_polls`` polls."""
    quiet, last = 0, cpu_ticks(pid)
    while quiet < quiet_polls:
        await asyncio.sleep(every)
        now = cpu_ticks(pid)
        quiet = quiet + 1 if now - last <= every * CLOCK_TICKS * 0.05 else 0
        last = now


async def wait_for_log(path: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text.encode() not in path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{path.read_text(errors='replace')}")
        await asyncio.sleep(0.1)


async def open_emails(count: int, workdir: Path, concurrency: int = 32) -> OpenEmails:
    ring = EncryptionKeys.generate()
    configure_field_encryption(ring)
    url = f"sqlite+aiosqlite:///{workdir / 'open-emails.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    practice = await seed.practice_with_patients(engine, max(10, count // 20))
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(ring),
        test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
    )
    smtp_counter = CountingSmtp()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(smtp_counter, hostname="bench-smtp", loop=loop), "127.0.0.1", 0
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        await register_search_attributes(env.client)
        now = await env.get_current_time()
        owners = [random.choice(practice.patient_ids) for _ in range(count)]
        rows = seed.secure_email_rows(practice, owners, now=now, spread=timedelta(0))
        portal_keys = PortalKeys.generate()
        for row in rows:
            row["status"], row["status_sequence"], row["opened_at"] = "sending", 0, None
            row["expires_at"] = now + timedelta(days=7)
            # The link the notice activity derives must be the one the row was sent with.
            link = portal_secrets.link_token(portal_keys, portal_keys.current_id, str(row["id"]))
            row["link_token_hash"] = token_hash(link)
        await seed.insert_rows(engine, insert(SecureEmail), rows)

        task_queue = f"bench-open-{uuid.uuid4()}"
        log_path = workdir / "open-emails-worker.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_EMAIL_")}
        environment.update(
            {
                "SECURE_EMAIL_DATA_DIR": str(workdir / "data"),
                "SECURE_EMAIL_DATABASE_URL": url,
                "SECURE_EMAIL_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                "SECURE_EMAIL_TASK_QUEUE": task_queue,
                **keyset_environment(ring.settings_fields()),
                **keyset_environment(portal_keys.settings_fields()),
                "SECURE_EMAIL_SMTP_PORT": str(smtp.sockets[0].getsockname()[1]),
                "SECURE_EMAIL_PUBLIC_URL": "http://portal.test",
            }
        )
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker"],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await wait_for_log(log_path, "worker polling task queue", worker)
        rss_start = rss_mib(worker.pid)

        gate = asyncio.Semaphore(concurrency)
        handles: list[WorkflowHandle[SecureEmailWorkflow, SecureEmailState]] = []

        async def start(row: dict[str, object]) -> None:
            secure_email_id = str(row["id"])
            async with gate:
                handles.append(
                    await env.client.start_workflow(
                        SecureEmailWorkflow.run,
                        SecureEmailStart(
                            secure_email_id=secure_email_id,
                            practice_id=practice.id,
                            patient_id=str(row["patient_id"]),
                            sent_at=now,
                            expires_at=now + timedelta(days=7),
                            portal_key_id=portal_keys.current_id,
                        ),
                        id=workflow_id_for(secure_email_id),
                        task_queue=task_queue,
                        search_attributes=for_new_secure_email(
                            practice.id, str(row["patient_id"]), now + timedelta(days=7)
                        ),
                    )
                )

        started = time.perf_counter()
        await asyncio.gather(*(start(row) for row in rows))
        start_seconds = time.perf_counter() - started
        while smtp_counter.count < count:
            await asyncio.sleep(0.2)
        await until_idle(worker.pid)
        settle_seconds = time.perf_counter() - started
        rss_idle = rss_mib(worker.pid)
        sent_before = await count_status(engine, "sent")
        say(f"  {count} open: worker RSS {rss_idle:.0f} MiB after {settle_seconds:.1f} s")

        expiring = time.perf_counter()
        # From here the server skips to the next timer whenever nothing else is pending,
        # for good: one long sleep call would outlast its RPC deadline at 10,000 timers.
        await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        while await count_status(engine, "expired") < count:
            await asyncio.sleep(0.5)
        # The test server's handles lock and unlock its clock on every result call, which
        # it cannot take from many calls at once; a plain client reads the results.
        plain = await Client.connect(
            env.client.service_client.config.target_host, data_converter=data_converter(ring)
        )

        async def status(workflow_id: str) -> str:
            async with gate:
                handle = plain.get_workflow_handle_for(SecureEmailWorkflow.run, workflow_id)
                while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await asyncio.sleep(0.2)
                return (await handle.result()).status.value

        statuses = await asyncio.gather(*(status(handle.id) for handle in handles))
        expire_seconds = time.perf_counter() - expiring
        expired_in_database = await count_status(engine, "expired")
        return OpenEmails(
            count=count,
            start_seconds=start_seconds,
            settle_seconds=settle_seconds,
            expire_seconds=expire_seconds,
            rss_idle_mib=rss_idle,
            rss_peak_mib=peak_rss_mib(worker.pid),
            rss_start_mib=rss_start,
            expired=statuses.count("expired"),
            sent_before_expiry=sent_before,
            expired_in_database=expired_in_database,
            notices=smtp_counter.count,
        )
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        smtp.close()
        await env.shutdown()
        await engine.dispose()

"""Thousands of secure emails open at once, each a workflow waiting on its 7-day timer.

A real ``securemail worker`` process (its own RSS, read from /proc) on Temporal's
time-skipping test server, with the read model's rows in a SQLite file (or the
PostgreSQL database it is given) and a counting SMTP server: each workflow delivers its
notice, records "sent", then waits. Then the server skips seven days and every one must
expire and record it.

The worker keeps ``SECURE_EMAIL_WORKER_MAX_CACHED_WORKFLOWS`` of them in its cache (the
setting's default unless that variable is set for the bench); the rest are replayed from
their histories when they expire.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from bench import seed
from bench.common import peak_rss_mib, rss_mib, say
from domain.secure_email import SecureEmailState
from infra.crypto import portal_secrets
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import EncryptionKeys, PortalKeys
from infra.db.engine import make_engine
from infra.db.migrate import upgrade_async
from infra.db.models import SecureEmail
from infra.security import token_hash
from infra.settings import Settings
from infra.temporal.codec import data_converter
from tests.fixtures.processes import WorkerProcess
from tests.fixtures.temporal import start_secure_email, start_time_skipping
from tests.fixtures.waiting import eventually
from workflows.secure_email import SecureEmailWorkflow

# The figures are the point: no limit a slow shared machine would hit first.
WITHIN = 3600.0

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class OpenEmails:
    count: int
    database: str
    cached_workflows: int
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


def database_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


# The worker's log: Python's lines (``... WARNING logger message ({context})``), the
# Temporal core's (coloured, `` WARN target: message key=value...``) and the last line
# of each traceback (``module.SomeError: message``) and Python's warnings
# (``file.py:12: UserWarning: message``).
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_LEVEL = re.compile(r"\s(WARN|WARNING|ERROR)\s+(.*)$")
_RAISED = re.compile(r"^[\w.]+(Error|Exception|Timeout)\b.*?: |^\S+:\d+: \w+Warning: ")
# What makes one line of a message differ from the next: context, fields, ids.
_CONTEXT = re.compile(r" \(\{.*\}\)$| \w+=\S*")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_IDS = re.compile(_UUID + r"(:\d+)*|b'.*'|b\".*\"")


def log_problems(log: Path) -> Counter[str]:
    """The worker's warnings, errors and exceptions, counted by message."""
    found: Counter[str] = Counter()
    text = log.read_text(errors="replace") if log.exists() else ""
    for line in _COLOUR.sub("", text).splitlines():
        level = _LEVEL.search(line)
        if level:
            message = f"{level[1]} {level[2]}"
        elif _RAISED.match(line):
            message = f"raised {line.rsplit('/', 1)[-1]}"
        else:
            continue
        found[_IDS.sub("<id>", _CONTEXT.sub("", message))[:160]] += 1
    return found


async def open_emails(
    count: int, workdir: Path, database_url: str | None = None, concurrency: int = 32
) -> OpenEmails:
    """``database_url``: an empty database for the read model; None for a SQLite file
    in ``workdir`` (made if missing), where the worker's log also goes."""
    workdir.mkdir(parents=True, exist_ok=True)
    ring = EncryptionKeys.generate()
    configure_field_encryption(ring)
    url = database_url or f"sqlite+aiosqlite:///{workdir / 'open-emails.db'}"
    kind = database_kind(url)
    await upgrade_async(url)
    engine = make_engine(url)
    practice = await seed.practice_with_patients(engine, max(10, count // 20))
    env = await start_time_skipping(ring)
    smtp_counter = CountingSmtp()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(smtp_counter, hostname="bench-smtp", loop=loop), "127.0.0.1", 0
    )
    worker: WorkerProcess | None = None
    try:
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

        worker = WorkerProcess(
            Settings(
                data_dir=workdir / "data",
                database_url=url,
                temporal_address=env.client.service_client.config.target_host,
                task_queue=f"bench-open-{uuid.uuid4()}",
                **ring.settings_fields(),
                **portal_keys.settings_fields(),
                smtp_port=smtp.sockets[0].getsockname()[1],
                public_url="http://portal.test",
            ),
            workdir,
        )
        cache = worker.settings.worker_max_cached_workflows
        worker.env["SECURE_EMAIL_WORKER_MAX_CACHED_WORKFLOWS"] = str(cache)
        worker.start()
        await worker.ready()
        rss_start = rss_mib(worker.pid)

        gate = asyncio.Semaphore(concurrency)
        handles: list[WorkflowHandle[SecureEmailWorkflow, SecureEmailState]] = []

        async def start(row: dict[str, object]) -> None:
            async with gate:
                handles.append(
                    await start_secure_email(
                        env.client,
                        worker.settings.task_queue,
                        secure_email_id=str(row["id"]),
                        practice_id=practice.id,
                        patient_id=str(row["patient_id"]),
                        sent_at=now,
                        portal_key_id=portal_keys.current_id,
                    )
                )

        started = time.perf_counter()
        await asyncio.gather(*(start(row) for row in rows))
        start_seconds = time.perf_counter() - started
        await eventually(
            lambda: smtp_counter.count >= count, timeout=WITHIN, every=0.2, what="every notice"
        )
        await until_idle(worker.pid)
        settle_seconds = time.perf_counter() - started
        rss_idle = rss_mib(worker.pid)
        sent_before = await count_status(engine, "sent")
        say(
            f"  {count} open on {kind}, worker cache {cache} workflows: RSS {rss_idle:.0f} "
            f"MiB after {settle_seconds:.1f} s (all started in {start_seconds:.1f} s)"
        )

        expiring = time.perf_counter()
        # From here the server skips to the next timer whenever nothing else is pending,
        # for good: one long sleep call would outlast its RPC deadline at 10,000 timers.
        await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())

        async def all_expired() -> bool:
            return await count_status(engine, "expired") >= count

        await eventually(all_expired, timeout=WITHIN, every=0.5, what="every one expired")
        # The test server's handles lock and unlock its clock on every result call, which
        # it cannot take from many calls at once; a plain client reads the results.
        plain = await Client.connect(
            env.client.service_client.config.target_host, data_converter=data_converter(ring)
        )

        async def status(workflow_id: str) -> str:
            async with gate:
                handle = plain.get_workflow_handle_for(SecureEmailWorkflow.run, workflow_id)

                async def closed() -> bool:
                    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

                await eventually(closed, timeout=WITHIN, every=0.2, what=f"{workflow_id} closed")
                return (await handle.result()).status.value

        statuses = await asyncio.gather(*(status(handle.id) for handle in handles))
        expire_seconds = time.perf_counter() - expiring
        say(
            f"  {kind}, worker cache {cache} workflows: peak RSS "
            f"{peak_rss_mib(worker.pid):.0f} MiB, all expired in {expire_seconds:.1f} s"
        )
        expired_in_database = await count_status(engine, "expired")
        return OpenEmails(
            count=count,
            database=kind,
            cached_workflows=cache,
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
        if worker is not None:
            worker.stop()
            problems = log_problems(worker.log_path)
            say(f"  worker log ({kind}): {sum(problems.values())} warning/error line(s)")
            for message, times in problems.most_common(10):
                say(f"    {times} x {message}")
        smtp.close()
        await env.shutdown()
        await engine.dispose()

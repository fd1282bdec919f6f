"""The Temporal server stops mid-run and starts again from its SQLite file.

A server of this test's own, started as the embedded stack starts it (``temporal server
start-dev --db-filename``, the WAL pragmas, the search attributes), with secure emails
whose expiry is seconds away: one expires while the server is down, one after it is
back. Both timers must fire once the server is back, and the worker (which lives
through the outage) must record both expiries.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.secure_email import (
    SecureEmailState,
    SecureEmailStatus,
)
from infra.mail.smtp import SmtpTransport
from infra.temporal.codec import data_converter
from infra.temporal.search_attributes import cli_flags
from tests.conftest import TEST_KEYS
from tests.faults.conftest import BIN_DIR, report
from tests.fixtures.processes import answers, free_port
from tests.fixtures.waiting import eventually
from tests.workflows.conftest import running_lifecycle
from workers.smtp_catcher import serve
from workflows.secure_email import SecureEmailWorkflow

DOWN_FOR = 6.0


@contextmanager
def temporal_server(db_file: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    # fmt: off
    argv = [
        str(BIN_DIR / "temporal"), "server", "start-dev",
        "--db-filename", str(db_file), "--ip", "127.0.0.1", "--port", str(port),
        "--headless", "--log-level", "error",
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        *cli_flags(),
    ]
    # fmt: on
    with log.open("ab") as output:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)


async def started(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    # The port answers before the frontend does ("Frontend is not healthy yet"): wait
    # until a client can connect, which checks the frontend's health.
    async def serving() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")
        if not answers(port):
            return False
        try:
            await Client.connect(f"127.0.0.1:{port}")
        except RuntimeError:
            return False
        return True

    await eventually(serving, what="the Temporal server answering", timeout=60)


async def timer_fired_at(handle: WorkflowHandle[SecureEmailWorkflow, SecureEmailState]) -> datetime:
    """When it expired: its last timer, or, where a workflow task that came after the
    deadline (an activity's result arriving late, under load) found it due without one,
    the completion that task wrote."""
    history = await handle.fetch_history()

    def times(kind: EventType.ValueType) -> list[datetime]:
        return [e.event_time.ToDatetime(tzinfo=UTC) for e in history.events if e.event_type == kind]

    found = times(EventType.EVENT_TYPE_TIMER_FIRED) or times(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    )
    assert found, "neither a timer fired nor the workflow completed"
    return found[-1]


@pytest.mark.timeout(150)
async def test_timers_fire_after_temporal_restart(tmp_path: Path) -> None:
    port = free_port()
    db_file, log = tmp_path / "temporal.db", tmp_path / "temporal.log"
    maildir = tmp_path / "mail"
    smtp = await serve("127.0.0.1", 0, maildir)
    transport = SmtpTransport("127.0.0.1", smtp.sockets[0].getsockname()[1], local_hostname="t")
    try:
        with temporal_server(db_file, port, log) as first:
            await started(first, port, log)
            client = await Client.connect(
                f"127.0.0.1:{port}", data_converter=data_converter(TEST_KEYS)
            )
            env = WorkflowEnvironment.from_client(client)
            async with running_lifecycle(env, transport, maildir) as run:
                during = await run.start(expires_in=timedelta(seconds=4))
                after = await run.start(expires_in=timedelta(seconds=DOWN_FOR + 12))

                async def both_sent() -> bool:
                    return run.status_log.statuses().count("sent") == 2

                await eventually(both_sent, what="both notices delivered", timeout=30)

                first.terminate()
                first.wait(timeout=20)
                stopped_at = datetime.now(UTC)
                await asyncio.sleep(DOWN_FOR)
                with temporal_server(db_file, port, log) as second:
                    await started(second, port, log)
                    restarted_at = datetime.now(UTC)
                    results = await asyncio.wait_for(
                        asyncio.gather(during.result(), after.result()), timeout=90
                    )
                    assert [r.status for r in results] == [SecureEmailStatus.EXPIRED] * 2
                    assert run.status_log.statuses().count("expired") == 2
                    fired = [await timer_fired_at(during), await timer_fired_at(after)]
                    # The first was due while the server was down: it fired on its return.
                    assert fired[0] >= restarted_at - timedelta(seconds=1)
                    after_due = (await after.query(SecureEmailWorkflow.state)).expires_at
                    assert fired[1] >= after_due
                    report(
                        f"Temporal restart: down {stopped_at:%H:%M:%S}-{restarted_at:%H:%M:%S}; "
                        f"overdue timer fired {(fired[0] - restarted_at).total_seconds():+.1f} s "
                        f"after restart, the later one on time; both expired"
                    )
    finally:
        smtp.close()
        await smtp.wait_closed()

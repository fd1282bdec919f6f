"""The practice's SMTP relay refusing the notice: retried while it says "later", the
secure email marked ``failed`` when it says "never", and retried while it is not there.

SendGrid's 429, 500 and 400 are in ``tests/workflows/test_notice_delivery.py``; these
are the same rules over SMTP, through the workflow on the time-skipping server (the
retry back-off passes in a moment).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.secure_email import SecureEmailState, SecureEmailStatus
from infra.mail.smtp import SmtpTransport
from tests.faults.conftest import report
from tests.fixtures.processes import free_port
from tests.workflows.conftest import Lifecycle, running_lifecycle
from workflows.secure_email import SecureEmailWorkflow


class RefusingRelay:
    """Answers RCPT or DATA from a script of replies, then accepts everything."""

    def __init__(self, script: list[tuple[str, str]]) -> None:
        self.script = list(script)  # (SMTP command, reply)
        self.attempts = 0
        self.delivered: list[Envelope] = []

    def _scripted(self, command: str) -> str | None:
        if self.script and self.script[0][0] == command:
            return self.script.pop(0)[1]
        return None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.attempts += 1
        if refusal := self._scripted("RCPT"):
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if refusal := self._scripted("DATA"):
            return refusal
        self.delivered.append(envelope)
        return "250 Message accepted"


Relay = tuple[RefusingRelay, Controller]


@pytest.fixture
def relay() -> Iterator[Relay]:
    handler = RefusingRelay([])
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="t")
    controller.start()
    yield handler, controller
    controller.stop()


def transport(port: int) -> SmtpTransport:
    return SmtpTransport("127.0.0.1", port, timeout=5, local_hostname="tests")


@asynccontextmanager
async def notice_through(
    relay: Relay, env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[Lifecycle, WorkflowHandle[SecureEmailWorkflow, SecureEmailState]]]:
    """A secure email's workflow started with its mail going through ``relay``."""
    _, controller = relay
    async with running_lifecycle(env, transport(controller.port), tmp_path) as run:
        yield run, await run.start()


async def test_notice_retried_while_relay_defers(
    time_skipping_env: WorkflowEnvironment, relay: Relay, tmp_path: Path
) -> None:
    handler, _ = relay
    handler.script = [("RCPT", "450 4.2.1 Mailbox busy"), ("DATA", "451 4.3.0 Try later")]
    async with notice_through(relay, time_skipping_env, tmp_path) as (_, handle):
        while (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENDING:
            await time_skipping_env.sleep(5)
        assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENT
        assert handler.attempts == 3 and len(handler.delivered) == 1
        await handle.terminate("test finished")
    report("SMTP 450, 451: retried, retried, delivered on the third try")


async def test_notice_refused_by_relay_marks_failed(
    time_skipping_env: WorkflowEnvironment, relay: Relay, tmp_path: Path
) -> None:
    handler, _ = relay
    handler.script = [("RCPT", "550 5.1.1 No such user")]
    async with notice_through(relay, time_skipping_env, tmp_path) as (run, handle):
        final = await handle.result()
        assert final.status == SecureEmailStatus.FAILED
        assert handler.attempts == 1 and handler.delivered == []
        assert run.status_log.statuses() == ["failed"]


async def test_notice_retried_until_relay_comes_up(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port()
    async with running_lifecycle(time_skipping_env, transport(port), tmp_path) as run:
        handle = await run.start()
        # Nothing listens: connections are refused, and the notice waits.
        await time_skipping_env.sleep(30)
        description = await handle.describe()
        [pending] = description.raw_description.pending_activities
        assert pending.attempt >= 2
        assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENDING
        handler = RefusingRelay([])
        with socket.socket() as probe:  # the port is still free: nobody took it meanwhile
            probe.bind(("127.0.0.1", port))
        controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="t")
        controller.start()
        try:
            while (
                await handle.query(SecureEmailWorkflow.state)
            ).status == SecureEmailStatus.SENDING:
                await time_skipping_env.sleep(30)
            assert len(handler.delivered) == 1
        finally:
            controller.stop()
        await handle.terminate("test finished")
    report(f"SMTP relay down: notice retried ({pending.attempt}+ tries), delivered once it was up")

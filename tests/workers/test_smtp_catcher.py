"""The development SMTP catcher: real server, real SmtpTransport, real Maildir."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from infra.mail.message import MailMessage
from infra.mail.smtp import SmtpTransport
from tests.fixtures.processes import free_port
from workers.smtp_catcher import read_maildir, run_smtp_catcher, serve

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_message(number: int = 1) -> MailMessage:
    return MailMessage(
        to="ann.patient@example.org",
        sender="office@smiles.example.com",
        sender_name="Smiles Dental",
        subject=f"You have a secure email ({number})",
        text="Open it with the View Secure Email link.",
        html="<p>Open it with the <a href='https://x.example/v/t'>link</a>.</p>",
        message_id=f"<secure-email-{number}.notice@smiles.example.com>",
    )


def transport(port: int) -> SmtpTransport:
    return SmtpTransport("127.0.0.1", port, timeout=5, local_hostname="client")


@pytest.fixture
async def catcher(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    maildir = tmp_path / "mail"
    server = await serve("127.0.0.1", 0, maildir)
    try:
        yield int(server.sockets[0].getsockname()[1]), maildir
    finally:
        server.close()
        await server.wait_closed()


async def test_receive_message_into_maildir(catcher: tuple[int, Path]) -> None:
    port, maildir = catcher

    await transport(port).send(make_message(1))
    await transport(port).send(make_message(2))

    first, second = read_maildir(maildir)
    assert first["Message-ID"] == "<secure-email-1.notice@smiles.example.com>"
    assert second["Message-ID"] == "<secure-email-2.notice@smiles.example.com>"
    assert first["Subject"] == "You have a secure email (1)"
    assert first["From"] == "Smiles Dental <office@smiles.example.com>"
    assert first["To"] == "ann.patient@example.org"
    assert first.get_all("Delivered-To") == ["ann.patient@example.org"]
    assert first["Return-Path"] == "<office@smiles.example.com>"
    html = first.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    assert "https://x.example/v/t" in html.get_content()


def test_read_maildir_missing(tmp_path: Path) -> None:
    assert read_maildir(tmp_path / "nothing-here") == []


def unused_port() -> int:
    return free_port()


async def wait_for_port(port: int) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def test_run_smtp_catcher_stops_on_sigterm(tmp_path: Path) -> None:
    """As the dev stack runs it: a child process, stopped with SIGTERM."""
    port = unused_port()
    maildir = tmp_path / "mail"
    code = (
        "import asyncio, sys; from pathlib import Path;"
        "from workers.smtp_catcher import run_smtp_catcher;"
        "asyncio.run(run_smtp_catcher('127.0.0.1', int(sys.argv[1]), Path(sys.argv[2])))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(port), str(maildir), cwd=REPO_ROOT
    )
    try:
        await asyncio.wait_for(wait_for_port(port), timeout=10)
        await transport(port).send(make_message(7))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()

    [mail] = read_maildir(maildir)
    assert mail["Message-ID"] == "<secure-email-7.notice@smiles.example.com>"


async def test_run_smtp_catcher_cancelled(tmp_path: Path) -> None:
    port = unused_port()
    task = asyncio.create_task(run_smtp_catcher("127.0.0.1", port, tmp_path / "mail"))
    await asyncio.wait_for(wait_for_port(port), timeout=10)
    await transport(port).send(make_message(3))

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    assert len(read_maildir(tmp_path / "mail")) == 1

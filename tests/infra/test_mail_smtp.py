"""SmtpTransport against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import TypeVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError

from infra.mail.smtp import SmtpTransport
from infra.mail.transport import PermanentMailError, TemporaryMailError
from tests.fixtures.mail import BODY, SUBJECT, make_message
from tests.fixtures.processes import free_port

Refusal = TypeVar("Refusal", bound=Exception)


class RecordingHandler:
    """Records what arrives; ``rcpt_reply``/``data_reply`` make the server refuse."""

    def __init__(self) -> None:
        self.rcpt_calls: list[str] = []
        self.envelopes: list[Envelope] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.rcpt_calls.append(address)
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


async def refused_by(transport: SmtpTransport, error: type[Refusal]) -> Refusal:
    """The ``error`` that sending the tests' message through ``transport`` must raise."""
    with pytest.raises(error) as caught:
        await transport.send(make_message())
    return caught.value


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, SmtpTransport]]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="test")
    controller.start()
    try:
        yield handler, SmtpTransport("127.0.0.1", port, timeout=5, local_hostname="client")
    finally:
        controller.stop()


def received(envelope: Envelope) -> EmailMessage:
    assert envelope.original_content is not None
    parser = BytesParser(_class=EmailMessage, policy=default_policy)
    return parser.parsebytes(envelope.original_content)


async def test_send_message_smtp(smtp_server: tuple[RecordingHandler, SmtpTransport]) -> None:
    handler, transport = smtp_server

    await transport.send(make_message(headers={"X-Secure-Email-Id": "42"}))

    assert handler.rcpt_calls == ["ann.patient@example.org"]
    [envelope] = handler.envelopes
    assert envelope.mail_from == "office@smiles.example.com"
    assert envelope.rcpt_tos == ["ann.patient@example.org"]
    mail = received(envelope)
    assert mail["To"] == "ann.patient@example.org"
    assert mail["From"] == "Smiles Dental <office@smiles.example.com>"
    assert mail["Subject"] == SUBJECT
    assert mail["Message-ID"] == "<secure-email-42.notice@smiles.example.com>"
    assert mail["Date"]
    assert mail["X-Secure-Email-Id"] == "42"
    assert mail["Cc"] is None and mail["Bcc"] is None
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().strip() == BODY


async def test_send_message_smtp_with_html(
    smtp_server: tuple[RecordingHandler, SmtpTransport],
) -> None:
    handler, transport = smtp_server

    await transport.send(make_message(html="<p>Dear Ann</p>"))

    mail = received(handler.envelopes[0])
    assert mail.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in mail.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html_part = mail.get_body(preferencelist=("html",))
    assert html_part is not None and isinstance(html_part, EmailMessage)
    assert "<p>Dear Ann</p>" in html_part.get_content()


async def test_send_message_smtp_rejected(
    smtp_server: tuple[RecordingHandler, SmtpTransport],
) -> None:
    handler, transport = smtp_server
    handler.rcpt_reply = "550 5.1.1 Mailbox unavailable"

    refusal = str(await refused_by(transport, PermanentMailError))

    assert "550" in refusal
    assert SUBJECT not in refusal and BODY not in refusal
    assert handler.envelopes == []


async def test_send_message_smtp_deferred(
    smtp_server: tuple[RecordingHandler, SmtpTransport],
) -> None:
    handler, transport = smtp_server
    handler.data_reply = "451 4.3.0 Try again later"

    deferral = await refused_by(transport, TemporaryMailError)

    assert "451" in str(deferral)
    assert deferral.retry_after is None


async def test_send_message_smtp_connection_refused() -> None:
    transport = SmtpTransport("127.0.0.1", free_port(), timeout=5, local_hostname="client")

    with pytest.raises(TemporaryMailError):
        await transport.send(make_message())


async def test_send_message_smtp_redacts_echoed_content() -> None:
    """A server that quotes the subject back must not put it into the error text."""

    class EchoingHandler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            return f"554 5.7.1 Message refused: {SUBJECT}"

    port = free_port()
    controller = Controller(EchoingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(PermanentMailError) as caught:
            await SmtpTransport("127.0.0.1", port, local_hostname="client").send(make_message())
    finally:
        controller.stop()

    assert "554" in str(caught.value)
    assert SUBJECT not in str(caught.value)


def test_refuse_message_cc() -> None:
    with pytest.raises(ValidationError):
        make_message(cc="other@example.org")
    with pytest.raises(ValidationError):
        make_message(headers={"Cc": "other@example.org"})
    with pytest.raises(ValidationError):
        make_message(headers={"Resent-To": "other@example.org"})


def test_refuse_message_blank_subject_without_echo() -> None:
    with pytest.raises(ValidationError) as caught:
        make_message(subject="   ", text="secret diagnosis")

    assert "secret" not in str(caught.value)


def test_refuse_message_bad_message_id() -> None:
    with pytest.raises(ValidationError):
        make_message(message_id="no-angle-brackets@example.com")

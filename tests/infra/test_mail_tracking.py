"""A mail's ``tracking`` ids go to SendGrid as custom_args; SMTP leaves them out."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.mail.sendgrid import CUSTOM_ARG_MESSAGE_ID, SendGridTransport, mail_send_body
from infra.mail.smtp import SmtpTransport
from tests.fixtures.mail import MESSAGE_ID, make_message
from tests.fixtures.sendgrid import API_KEY, FakeSendGrid, custom_args_problems
from workers.smtp_catcher import serve

TRACKING = {"secure_email_id": "7f0c2a52-5f0e-4d7e-9a39-2b1a3c0d9e11", "mail": "notice"}


async def test_tracking_sent_as_custom_args(sendgrid_api: FakeSendGrid) -> None:
    transport = SendGridTransport(api_key=API_KEY, api_url=sendgrid_api.url, timeout=5)
    await transport.send(make_message(tracking=TRACKING))

    [request] = sendgrid_api.accepted
    assert request["custom_args"] == {**TRACKING, CUSTOM_ARG_MESSAGE_ID: MESSAGE_ID}


def test_no_tracking_sends_only_the_message_id() -> None:
    assert mail_send_body(make_message())["custom_args"] == {CUSTOM_ARG_MESSAGE_ID: MESSAGE_ID}


def test_tracking_values_are_strings_only() -> None:
    with pytest.raises(ValidationError):
        make_message(tracking={"secure_email_id": 42})


def test_fake_sendgrid_refuses_what_sendgrid_refuses() -> None:
    assert custom_args_problems({"a": "1"}) == []
    assert [p["field"] for p in custom_args_problems({"a": 1, "b": {"c": "d"}})] == [
        "custom_args.a",
        "custom_args.b",
    ]
    assert custom_args_problems({"a": "x" * 10_000})
    assert custom_args_problems(["a"])


async def test_smtp_ignores_tracking(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    server = await serve("127.0.0.1", 0, maildir)
    port = server.sockets[0].getsockname()[1]
    try:
        await SmtpTransport("127.0.0.1", port, local_hostname="tests").send(
            make_message(tracking=TRACKING)
        )
    finally:
        server.close()
        await server.wait_closed()
    [stored] = list((maildir / "new").iterdir())
    raw = stored.read_bytes()
    assert TRACKING["secure_email_id"].encode() not in raw
    assert message_from_bytes(raw)["Message-ID"] == MESSAGE_ID

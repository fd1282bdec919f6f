"""SendGridTransport against a local stand-in for SendGrid's v3 Mail Send endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from infra.mail.sendgrid import CUSTOM_ARG_MESSAGE_ID, SendGridTransport
from infra.mail.transport import PermanentMailError, TemporaryMailError
from tests.fixtures.mail import BODY, MESSAGE_ID, SUBJECT, make_message
from tests.fixtures.processes import free_port
from tests.fixtures.sendgrid import API_KEY, FakeSendGrid


def transport_for(fake: FakeSendGrid, **options: Any) -> SendGridTransport:
    return SendGridTransport(api_key=API_KEY, api_url=fake.url, timeout=5, **options)


async def test_send_message_sendgrid(sendgrid_api: FakeSendGrid) -> None:
    await transport_for(sendgrid_api).send(make_message(html="<p>Dear Ann</p>"))

    [request] = sendgrid_api.accepted
    assert request["personalizations"] == [{"to": [{"email": "ann.patient@example.org"}]}]
    assert request["from"] == {"email": "office@smiles.example.com", "name": "Smiles Dental"}
    assert request["subject"] == SUBJECT
    assert request["content"] == [
        {"type": "text/plain", "value": BODY},
        {"type": "text/html", "value": "<p>Dear Ann</p>"},
    ]
    assert request["headers"]["Message-ID"] == MESSAGE_ID
    assert request["custom_args"] == {CUSTOM_ARG_MESSAGE_ID: MESSAGE_ID}
    assert request["tracking_settings"]["click_tracking"]["enable"] is False
    assert "mail_settings" not in request


async def test_send_message_sendgrid_sandbox(sendgrid_api: FakeSendGrid) -> None:
    await transport_for(sendgrid_api, sandbox_mode=True).send(make_message())

    [request] = sendgrid_api.accepted
    assert request["mail_settings"]["sandbox_mode"]["enable"] is True


async def test_send_message_sendgrid_rate_limited(sendgrid_api: FakeSendGrid) -> None:
    sendgrid_api.status = 429
    sendgrid_api.headers = {"Retry-After": "3"}
    sendgrid_api.body = {"errors": [{"field": None, "message": "too many requests"}]}

    with pytest.raises(TemporaryMailError) as caught:
        await transport_for(sendgrid_api).send(make_message())

    assert caught.value.retry_after == 3
    assert "429" in str(caught.value)


async def test_send_message_sendgrid_server_error(sendgrid_api: FakeSendGrid) -> None:
    sendgrid_api.status = 500

    with pytest.raises(TemporaryMailError) as caught:
        await transport_for(sendgrid_api).send(make_message())

    assert "500" in str(caught.value)
    assert caught.value.retry_after is None


async def test_send_message_sendgrid_bad_request(sendgrid_api: FakeSendGrid) -> None:
    # Worst case: an error reply that quotes the mail back.
    sendgrid_api.status = 400
    sendgrid_api.body = {
        "errors": [
            {"field": "subject", "message": f"Invalid subject {SUBJECT!r}"},
            {"field": "content.0.value", "message": f"Cannot use {BODY}"},
        ]
    }

    with pytest.raises(PermanentMailError) as caught:
        await transport_for(sendgrid_api).send(make_message())

    text = str(caught.value)
    assert "400" in text and "subject" in text and "content.0.value" in text
    assert SUBJECT not in text and BODY not in text


async def test_send_message_sendgrid_wrong_key(sendgrid_api: FakeSendGrid) -> None:
    transport = SendGridTransport(api_key="SG.wrong", api_url=sendgrid_api.url, timeout=5)

    with pytest.raises(PermanentMailError) as caught:
        await transport.send(make_message())

    assert "401" in str(caught.value)
    assert sendgrid_api.accepted == []


async def test_send_message_sendgrid_unreachable() -> None:
    unused = f"http://127.0.0.1:{free_port()}"
    transport = SendGridTransport(api_key=API_KEY, api_url=unused, timeout=5)

    with pytest.raises(TemporaryMailError):
        await transport.send(make_message())

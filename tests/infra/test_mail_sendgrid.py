"""SendGridTransport against a local stand-in for SendGrid's v3 Mail Send endpoint."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.mail.message import MailMessage
from infra.mail.sendgrid import CUSTOM_ARG_MESSAGE_ID, SendGridTransport
from infra.mail.transport import PermanentMailError, TemporaryMailError

API_KEY = "SG.test-key"
SUBJECT = "Your x-ray results from March"
BODY = "Dear Ann, the x-ray shows a cavity on tooth 14."
MESSAGE_ID = "<secure-email-42.notice@smiles.example.com>"


@dataclass
class FakeSendGrid:
    """Checks a request the way /v3/mail/send would; answers ``status`` when it passes."""

    url: str = ""
    accepted: list[dict[str, Any]] = field(default_factory=list)
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def problems(self, request: dict[str, Any]) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        personalizations = request.get("personalizations")
        if not isinstance(personalizations, list) or len(personalizations) != 1:
            found.append({"field": "personalizations", "message": "need exactly one"})
        else:
            [item] = personalizations
            to = item.get("to")
            if not isinstance(to, list) or len(to) != 1 or not to[0].get("email"):
                found.append({"field": "personalizations.0.to", "message": "need one to"})
            for copy in ("cc", "bcc"):
                if copy in item:
                    found.append({"field": f"personalizations.0.{copy}", "message": "no"})
        if not request.get("from", {}).get("email"):
            found.append({"field": "from.email", "message": "The from email is required."})
        if not request.get("subject"):
            found.append({"field": "subject", "message": "The subject is required."})
        content = request.get("content")
        if not content or any(not part.get("value") for part in content):
            found.append({"field": "content", "message": "Content is required."})
        elif content[0].get("type") != "text/plain":
            found.append({"field": "content.0.type", "message": "text/plain must be first"})
        return found

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path != "/v3/mail/send":
            return self._reply(handler, 404, {}, {"errors": [{"message": "not found"}]})
        if handler.headers.get("Authorization") != f"Bearer {API_KEY}":
            denied = {"errors": [{"field": None, "message": "authorization grant is invalid"}]}
            return self._reply(handler, 401, {}, denied)
        length = int(handler.headers.get("Content-Length", "0"))
        request = json.loads(handler.rfile.read(length))
        if problems := self.problems(request):
            return self._reply(handler, 400, {}, {"errors": problems})
        if self.status == 202:
            self.accepted.append(request)
        self._reply(handler, self.status, self.headers, self.body)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        body: dict[str, Any] | None,
    ) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def sendgrid_api() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            fake.answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def make_message(**overrides: Any) -> MailMessage:
    fields: dict[str, Any] = {
        "to": "ann.patient@example.org",
        "sender": "office@smiles.example.com",
        "sender_name": "Smiles Dental",
        "subject": SUBJECT,
        "text": BODY,
        "message_id": MESSAGE_ID,
    }
    return MailMessage(**(fields | overrides))


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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        unused = f"http://127.0.0.1:{sock.getsockname()[1]}"
    transport = SendGridTransport(api_key=API_KEY, api_url=unused, timeout=5)

    with pytest.raises(TemporaryMailError):
        await transport.send(make_message())

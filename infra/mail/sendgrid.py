"""Mail through SendGrid's v3 Mail Send API (``POST /v3/mail/send``)."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import sendgrid
from python_http_client.exceptions import HTTPError

from infra.mail.message import MailMessage
from infra.mail.transport import MailError, PermanentMailError, TemporaryMailError, redact

# Our Message-ID is also sent as a custom arg: SendGrid delivers the ``Message-ID`` header
# (it is not on SendGrid's reserved-header list) but its event webhooks report their own
# ``smtp-id`` when the sender domain is not authenticated, so custom_args — copied into
# every event — is the reliable way to tie events back to a secure email.
CUSTOM_ARG_MESSAGE_ID = "securemail_message_id"


def mail_send_body(message: MailMessage, *, sandbox_mode: bool = False) -> dict[str, Any]:
    sender: dict[str, str] = {"email": message.sender}
    if message.sender_name:
        sender["name"] = message.sender_name
    content = [{"type": "text/plain", "value": message.text}]
    if message.html is not None:
        content.append({"type": "text/html", "value": message.html})
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": message.to}]}],
        "from": sender,
        "subject": message.subject,
        "content": content,
        "headers": {**message.headers, "Message-ID": message.message_id},
        "custom_args": {**message.tracking, CUSTOM_ARG_MESSAGE_ID: message.message_id},
        # Click tracking would rewrite the View Secure Email link through SendGrid's
        # redirector (leaking the token to a third party), and the open pixel and
        # unsubscribe footer have no place in a patient notice.
        "tracking_settings": {
            "click_tracking": {"enable": False, "enable_text": False},
            "open_tracking": {"enable": False},
            "subscription_tracking": {"enable": False},
        },
    }
    if message.inline_images:
        # Inline, by Content-ID: shown where the HTML's ``cid:`` URL asks, not as a file.
        body["attachments"] = [
            {
                "content": base64.b64encode(image.data).decode("ascii"),
                "type": image.content_type,
                "filename": image.filename,
                "disposition": "inline",
                "content_id": image.content_id,
            }
            for image in message.inline_images
        ]
    if sandbox_mode:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


class SendGridTransport:
    def __init__(
        self,
        api_key: str,
        api_url: str = "https://api.sendgrid.com",
        sandbox_mode: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self._api_key = api_key
        self._api_url = api_url.rstrip("/")
        self._sandbox_mode = sandbox_mode
        self._timeout = timeout

    async def send(self, message: MailMessage) -> None:
        body = mail_send_body(message, sandbox_mode=self._sandbox_mode)
        try:
            status = await asyncio.to_thread(self._post, body)
        except HTTPError as exc:
            raise _from_http_error(exc, message) from exc
        except (OSError, http.client.HTTPException) as exc:
            # urllib's URLError, refused connections, timeouts, TLS failures, cut replies.
            raise TemporaryMailError(f"SendGrid unreachable: {exc}") from exc
        if not 200 <= status < 300:
            raise TemporaryMailError(f"SendGrid answered unexpected status {status}")

    def _post(self, body: dict[str, Any]) -> int:
        # A client per send: python_http_client mutates shared request headers, so one
        # client must not serve concurrent threads.
        client = sendgrid.SendGridAPIClient(api_key=self._api_key, host=self._api_url)
        response = client.client.mail.send.post(request_body=body, timeout=self._timeout)
        return int(response.status_code)


def _from_http_error(exc: HTTPError, message: MailMessage) -> MailError:
    status = int(exc.status_code)
    detail = redact(f"SendGrid {status}: {_error_summary(exc)}", message)
    if status == 429:
        return TemporaryMailError(detail, retry_after=_retry_after(exc))
    if status >= 500 or status == 408:
        return TemporaryMailError(detail)
    return PermanentMailError(detail)


def _error_summary(exc: HTTPError) -> str:
    """SendGrid answers ``{"errors": [{"field", "message", ...}]}``; keep just those."""
    try:
        payload = json.loads(exc.body)
        errors = payload["errors"]
        parts = [
            f"{error.get('field') or '-'}: {error.get('message') or '?'}"
            for error in errors
            if isinstance(error, dict)
        ]
    except (ValueError, TypeError, KeyError):
        return str(exc.reason)
    return "; ".join(parts) or str(exc.reason)


def _retry_after(exc: HTTPError) -> float | None:
    headers = exc.headers
    if headers is None:
        return None
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    # SendGrid documents X-RateLimit-Reset (a Unix time) rather than Retry-After.
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None

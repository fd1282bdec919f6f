"""What the activities depend on: a transport that sends one ``MailMessage``, and the two
ways it can fail, so the retry policy can tell "try again later" from "never works"."""

from __future__ import annotations

from typing import Protocol

from infra.mail.message import MailMessage

_MAX_DETAIL = 500
_REDACTED = "[redacted]"


class MailError(Exception):
    """A send that did not go through. The text holds status codes and server replies
    only, never the mail's subject or body (they may be PHI and errors end up in
    Temporal histories and logs)."""


class TemporaryMailError(MailError):
    """Worth retrying: SMTP 4xx, unreachable server, SendGrid 429 or 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentMailError(MailError):
    """Not worth retrying: SMTP 5xx rejections, SendGrid 4xx other than 429."""


class MailTransport(Protocol):
    async def send(self, message: MailMessage) -> None: ...


def redact(detail: str, message: MailMessage) -> str:
    """Server replies sometimes quote what they were sent; strip the mail's content from
    them before they become an error text. Very short values are left alone because
    redacting them would mangle the reply without protecting anything."""
    for secret in (message.subject, message.text, message.html):
        if secret and len(secret.strip()) >= 3:
            detail = detail.replace(secret, _REDACTED).replace(secret.strip(), _REDACTED)
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "..."
    return detail

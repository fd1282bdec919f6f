"""Mail over SMTP: the development catcher, or any relay the practice runs."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

from infra.mail.message import MailMessage
from infra.mail.transport import MailError, PermanentMailError, TemporaryMailError, redact


def build_email(message: MailMessage) -> EmailMessage:
    email = EmailMessage()
    email["Message-ID"] = message.message_id
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["From"] = Address(display_name=message.sender_name or "", addr_spec=message.sender)
    email["To"] = message.to
    email["Subject"] = message.subject
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
        html = email.get_body(("html",))
        for image in message.inline_images:
            if html is None:  # never: the alternative was just added
                break
            # The HTML part becomes multipart/related: the HTML and the images it shows.
            maintype, _, subtype = image.content_type.partition("/")
            html.add_related(
                image.data,
                maintype=maintype,
                subtype=subtype,
                cid=f"<{image.content_id}>",
                disposition="inline",
                filename=image.filename,
            )
    return email


class SmtpTransport:
    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30.0,
        local_hostname: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username or None
        self._password = password or ""
        self._starttls = starttls
        self._timeout = timeout
        # smtplib otherwise asks DNS for our FQDN on every connection, which can stall.
        self._local_hostname = local_hostname

    async def send(self, message: MailMessage) -> None:
        email = build_email(message)
        try:
            await asyncio.to_thread(self._send_blocking, email, message)
        except MailError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            # Exactly one recipient, so "all refused" means this one; its code decides.
            code, reply = next(iter(exc.recipients.values()))
            raise _by_code(code, reply, message, "recipient refused") from exc
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error, message, "SMTP error") from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise TemporaryMailError(f"SMTP server disconnected: {exc}") from exc
        except smtplib.SMTPException as exc:
            # e.g. STARTTLS or AUTH not offered: a configuration fault, retrying won't help.
            raise PermanentMailError(f"SMTP error: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentMailError(f"SMTP TLS certificate rejected: {exc}") from exc
        except OSError as exc:
            raise TemporaryMailError(
                f"SMTP server {self._host}:{self._port} unreachable: {exc}"
            ) from exc

    def _send_blocking(self, email: EmailMessage, message: MailMessage) -> None:
        with smtplib.SMTP(
            self._host, self._port, timeout=self._timeout, local_hostname=self._local_hostname
        ) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username is not None:
                smtp.login(self._username, self._password)
            # Explicit envelope: never let headers (Cc, Resent-*) widen the recipient list.
            smtp.send_message(email, from_addr=message.sender, to_addrs=[message.to])


def _by_code(code: int, reply: bytes | str, message: MailMessage, what: str) -> MailError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    detail = redact(f"{what}: {code} {text}", message)
    if 400 <= code < 500 or code < 0:
        return TemporaryMailError(detail)
    return PermanentMailError(detail)

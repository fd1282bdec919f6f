"""Pick the mail transport the settings ask for."""

from __future__ import annotations

from infra.mail.sendgrid import SendGridTransport
from infra.mail.smtp import SmtpTransport
from infra.mail.transport import MailTransport
from infra.settings import Settings


def mail_transport(settings: Settings) -> MailTransport:
    if settings.mail_transport == "sendgrid":
        return SendGridTransport(
            api_key=settings.sendgrid_api_key, api_url=settings.sendgrid_api_url
        )
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        starttls=settings.smtp_starttls,
    )

"""Pick the mail transport the settings ask for."""

from __future__ import annotations

from infra.mail.sendgrid import SendGridTransport
from infra.mail.smtp import SmtpTransport
from infra.mail.transport import MailTransport
from infra.settings import Settings


def mail_transport(settings: Settings) -> MailTransport:
    if settings.mail_transport == "sendgrid":
        return SendGridTransport(
            api_key=settings.sendgrid_api_key.get_secret_value(),
            api_url=settings.sendgrid_api_url,
            sandbox_mode=settings.sendgrid_sandbox_mode,
        )
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password.get_secret_value() or None,
        starttls=settings.smtp_starttls,
    )


def sender_is_verified(address: str, settings: Settings) -> bool:
    """Whether mail from ``address`` can go out, checked when a practice's sender is set.

    SendGrid refuses every From address that is not a verified single sender or on an
    authenticated domain, and it would refuse each notice only when it is sent: so in
    production with SendGrid the address must match ``SENDGRID_VERIFIED_SENDERS`` (an
    entry with ``@`` is one address, one without is a whole domain). SMTP relays and
    development have no such list and accept any sender here.
    """
    if settings.environment != "production" or settings.mail_transport != "sendgrid":
        return True
    normalised = address.strip().lower()
    local, at, domain = normalised.rpartition("@")
    if not (local and at and domain):
        return False
    for entry in settings.sendgrid_verified_senders.split(","):
        verified = entry.strip().lower()
        if not verified:
            continue
        if "@" in verified.lstrip("@"):
            if normalised == verified:
                return True
        elif domain == verified.lstrip("@"):
            return True
    return False

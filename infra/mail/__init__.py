"""Mail transports: SMTP (development catcher or a relay) and SendGrid.

Only the light, dependency-free pieces are re-exported here so that importing the message
model does not pull in smtplib or the SendGrid client; import the transports from
``infra.mail.smtp``, ``infra.mail.sendgrid`` or ``infra.mail.factory``.
"""

from infra.mail.message import InlineImage, MailMessage
from infra.mail.transport import (
    MailError,
    MailTransport,
    PermanentMailError,
    TemporaryMailError,
)

__all__ = [
    "InlineImage",
    "MailError",
    "MailMessage",
    "MailTransport",
    "PermanentMailError",
    "TemporaryMailError",
]

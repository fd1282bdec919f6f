"""The one mail shape every transport sends: one sender, one recipient, no copies."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

# Headers the transports set themselves, or that would add recipients or rewrite the
# envelope; SendGrid also refuses most of them in ``headers`` (its reserved list).
RESERVED_HEADERS = frozenset(
    {
        "to",
        "cc",
        "bcc",
        "from",
        "sender",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "received",
        "return-path",
        "delivered-to",
        "dkim-signature",
        "x-sg-id",
        "x-sg-eid",
        "x-smtpapi",
    }
)

_MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ':'


def _single_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        # Not echoing the value: it may be a subject, which can hold PHI.
        raise ValueError("must be a single line")
    return value


class MailMessage(BaseModel):
    """One mail to exactly one address (R2): there are deliberately no cc/bcc fields,
    and unknown fields are refused rather than silently dropped."""

    # Subjects and bodies may hold PHI: keep them out of reprs and validation errors.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    to: EmailStr
    sender: EmailStr
    sender_name: str | None = None
    subject: str = Field(min_length=1, repr=False)
    text: str = Field(min_length=1, repr=False)
    html: str | None = Field(default=None, repr=False)
    # Chosen by the caller from the business id so a retried send carries the same id.
    message_id: str
    headers: dict[str, str] = Field(default_factory=dict)
    # Ids that tie the mail service's later events (delivered, bounced) back to this mail:
    # SendGrid's ``custom_args``, copied into every event of its Event Webhook. Ids only,
    # never an address or anything of the message: SendGrid keeps them as "not PII".
    # SMTP has nowhere to send them and ignores them.
    tracking: dict[str, str] = Field(default_factory=dict)

    @field_validator("subject", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("html")
    @classmethod
    def _blank_html_is_none(cls, value: str | None) -> str | None:
        # SendGrid refuses an empty content part; an empty alternative is no alternative.
        return value if value and value.strip() else None

    @field_validator("subject", "sender_name")
    @classmethod
    def _no_line_breaks(cls, value: str | None) -> str | None:
        return None if value is None else _single_line(value)

    @field_validator("message_id")
    @classmethod
    def _rfc5322_msg_id(cls, value: str) -> str:
        if not _MESSAGE_ID.fullmatch(value):
            raise ValueError("must look like <unique@domain>")
        return value

    @field_validator("headers")
    @classmethod
    def _plain_extra_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            lowered = name.lower()
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            if lowered in RESERVED_HEADERS or lowered.startswith("resent-"):
                raise ValueError(f"header {name!r} is set by the transport or not allowed")
            _single_line(header_value)
        return value

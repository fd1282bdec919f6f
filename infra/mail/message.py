"""The one mail shape every transport sends: one sender, one recipient, no copies."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

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


# An image shown inside the HTML part (``<img src="cid:...">``), sent with the mail rather
# than fetched from a server: mail programs block remote images, and a fetch would tell
# that server when the patient opened the mail.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})
_CONTENT_ID = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+")


class InlineImage(BaseModel):
    """One image the HTML refers to as ``cid:<content_id>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Without the angle brackets, as the HTML's ``cid:`` URL names it.
    content_id: str
    content_type: str
    data: bytes = Field(min_length=1, repr=False)

    @field_validator("content_id")
    @classmethod
    def _plain_content_id(cls, value: str) -> str:
        if not _CONTENT_ID.fullmatch(value):
            raise ValueError("must look like name@domain")
        return value

    @field_validator("content_type")
    @classmethod
    def _image_type(cls, value: str) -> str:
        if value not in INLINE_IMAGE_TYPES:
            raise ValueError(f"must be one of {', '.join(sorted(INLINE_IMAGE_TYPES))}")
        return value

    @property
    def filename(self) -> str:
        """A name for the part (some mail programs want one): the id, typed."""
        extension = "png" if self.content_type == "image/png" else "jpg"
        return f"{self.content_id.partition('@')[0]}.{extension}"


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
    # Images the HTML shows by ``cid:`` (the practice's logo); only with an HTML part.
    inline_images: tuple[InlineImage, ...] = ()

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

    @model_validator(mode="after")
    def _images_need_html(self) -> MailMessage:
        if self.inline_images and self.html is None:
            raise ValueError("inline images need an HTML part")
        ids = [image.content_id for image in self.inline_images]
        if len(set(ids)) != len(ids):
            raise ValueError("inline images need distinct content ids")
        return self

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

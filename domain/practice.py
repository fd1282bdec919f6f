"""Practice settings: Secure Email must be enabled before anything is sent (R1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field

DEFAULT_EXPIRY_DAYS = 7


class PracticePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    secure_email_enabled: bool
    sender_address: str | None
    expiry_days: int


class PracticeUpdate(BaseModel):
    """A partial update: fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    secure_email_enabled: bool | None = None
    sender_address: EmailStr | None = None
    # A secure email lives seven days by default (R8); a practice may choose 1 to 90.
    expiry_days: int | None = Field(default=None, ge=1, le=90)


class PracticeRuleError(ValueError):
    """A settings change that would leave the practice unable to send (names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_practice(secure_email_enabled: bool, sender_address: str | None) -> None:
    """Secure Email can only be on with a sender address to send notices from (R1, R5)."""
    if secure_email_enabled and not sender_address:
        raise PracticeRuleError(
            "sender_address", "Enter a sender address before enabling Secure Email"
        )

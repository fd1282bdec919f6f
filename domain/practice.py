"""Practice settings: Secure Email must be enabled before anything is sent (R1)."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from domain.errors import FieldRefused

DEFAULT_EXPIRY_DAYS = 7
DEFAULT_TIME_ZONE = "America/New_York"
DEFAULT_REMINDER_AFTER_HOURS = 48
MAX_EXPIRY_DAYS = 90


@cache
def time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (R16)."""
    return frozenset(available_timezones())


def time_zone_choices() -> list[str]:
    """Every zone, the Americas first (where the practices are), then the rest, each sorted."""
    names = time_zones()
    americas = sorted(name for name in names if name.startswith("America/"))
    return americas + sorted(names.difference(americas))


class PracticePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    secure_email_enabled: bool
    sender_address: str | None
    expiry_days: int
    time_zone: str
    reminder_after_hours: int


class PracticeUpdate(BaseModel):
    """A partial update: fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    secure_email_enabled: bool | None = None
    sender_address: EmailStr | None = None
    # A secure email lives seven days by default (R8); a practice may choose 1 to 90.
    expiry_days: int | None = Field(default=None, ge=1, le=MAX_EXPIRY_DAYS)
    # Pages show times in this IANA zone (R16).
    time_zone: str | None = Field(default=None, description="An IANA time zone name")
    # One reminder to a patient who has not opened a message this many hours after it was
    # sent; 0 turns reminders off. It must come before the expiry (``check_reminder``).
    reminder_after_hours: int | None = Field(default=None, ge=0, le=MAX_EXPIRY_DAYS * 24)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in time_zones():
            raise ValueError("Choose an IANA time zone name, like America/New_York")
        return value


class PracticeRuleError(FieldRefused):
    """A settings change that would leave the practice unable to send."""


def check_practice(secure_email_enabled: bool, sender_address: str | None) -> None:
    """Secure Email can only be on with a sender address to send notices from (R1, R5)."""
    if secure_email_enabled and not sender_address:
        raise PracticeRuleError(
            "sender_address", "Enter a sender address before enabling Secure Email"
        )


def check_reminder(reminder_after_hours: int, expiry_days: int, field: str) -> None:
    """A reminder must come before the message expires (0 is no reminder); ``field`` is
    the one the refusal names: the setting that was changed."""
    if reminder_after_hours and reminder_after_hours >= expiry_days * 24:
        raise PracticeRuleError(
            field,
            f"A reminder after {reminder_after_hours} hours would come at or after the "
            f"expiry ({expiry_days} days = {expiry_days * 24} hours): choose fewer hours, "
            "or 0 to turn reminders off",
        )

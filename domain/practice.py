"""Practice settings: Secure Email must be enabled before anything is sent (R1)."""

from __future__ import annotations

from dataclasses import dataclass
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


# The zones most practices are in, by the names people use, listed first (R16).
US_TIME_ZONES: tuple[tuple[str, str], ...] = (
    ("America/New_York", "Eastern"),
    ("America/Chicago", "Central"),
    ("America/Denver", "Mountain"),
    ("America/Los_Angeles", "Pacific"),
    ("America/Anchorage", "Alaska"),
    ("Pacific/Honolulu", "Hawaii"),
    ("America/Phoenix", "Arizona"),
)


@dataclass(frozen=True)
class TimeZoneChoices:
    """A time zone picker's groups: each a label and its (IANA name, label) options. A
    zone is ``in`` it when it is any zone this machine knows."""

    groups: list[tuple[str, list[tuple[str, str]]]]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in time_zones()


def time_zone_choices() -> TimeZoneChoices:
    """The US zones by name ("Eastern — America/New_York"), then every other zone sorted."""
    us = [(zone, f"{name} — {zone}") for zone, name in US_TIME_ZONES if zone in time_zones()]
    listed = {zone for zone, _ in us}
    others = [(zone, zone) for zone in sorted(time_zones()) if zone not in listed]
    return TimeZoneChoices([("United States", us), ("Other time zones", others)])


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
    time_zone: str | None = Field(
        default=None,
        description="Any IANA time zone name; in the US: "
        + ", ".join(f"{zone} ({name})" for zone, name in US_TIME_ZONES),
        examples=[zone for zone, _ in US_TIME_ZONES],
    )
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

"""Practice settings: Secure Email must be enabled before anything is sent (R1); the
phone, address and logo patients see in their mails and on portal pages (R20)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from domain.errors import FieldRefused
from domain.strict import STRICT_BODY, WHOLE

DEFAULT_EXPIRY_DAYS = 7
DEFAULT_TIME_ZONE = "America/New_York"
DEFAULT_REMINDER_AFTER_HOURS = 48
MAX_EXPIRY_DAYS = 90

# A phone as people write it: digits and the usual separators, 7 to 20 digits (a
# local number to an international one with an extension).
PHONE_CHARACTERS = re.compile(r"[0-9 ()+\-.]+")
MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 20
MAX_PHONE_CHARS = 40
MAX_ADDRESS_CHARS = 300
PHONE_REFUSED = (
    f"Enter a phone number of {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits, using only "
    "digits, spaces and ( ) + - . like (555) 010-2233"
)
ADDRESS_REFUSED = (
    f"Enter the address on one line, at most {MAX_ADDRESS_CHARS} characters, without "
    "control characters"
)
# Settings a change may empty (``None``): the others keep their value when left out.
CLEARABLE = frozenset({"sender_address", "phone", "address"})

# The logo in the patient mails' header: a small PNG or JPEG, known by its first bytes.
MAX_LOGO_BYTES = 200 * 1024
LOGO_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


# What the schema can say of a phone and an address (``clean_phone``, ``clean_address``
# check the rest: the number of digits, characters a page could not show).
Phone = Annotated[str, Field(json_schema_extra={"pattern": r"^\s*[0-9 ()+.\-]*\s*$"})]
Address = Annotated[str, Field(json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f]*$"})]


def clean_phone(value: str | None) -> str | None:
    """The phone as typed, trimmed; None when blank. ValueError names what is wrong."""
    value = (value or "").strip()
    if not value:
        return None
    digits = sum(ch.isdigit() for ch in value)
    if (
        len(value) > MAX_PHONE_CHARS
        or not PHONE_CHARACTERS.fullmatch(value)
        or not MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS
    ):
        raise ValueError(PHONE_REFUSED)
    return " ".join(value.split())


def clean_address(value: str | None) -> str | None:
    """The address trimmed, inner runs of spaces made one; None when blank."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_ADDRESS_CHARS or not value.isprintable():
        raise ValueError(ADDRESS_REFUSED)
    return " ".join(value.split())


@cache
def time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (R16)."""
    return frozenset(available_timezones())


# An IANA zone's name as the schema can say it: which names exist is the server's tz
# database (``check_time_zone``), which changes with its updates, so it is no enum.
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"


class _TimeZoneSchema:
    """The schema of a time zone field, one shared component (``TimeZoneName``), while
    the value stays text, checked by ``check_time_zone`` so a refusal says what to choose."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> CoreSchema:
        def named(schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
            return {
                **handler(schema),
                "pattern": TIME_ZONE_PATTERN,
                "description": "An IANA time zone name that the server's tz database has",
                "examples": [zone for zone, _ in US_TIME_ZONES],
            }

        return core_schema.str_schema(
            ref="TimeZoneName", metadata={"pydantic_js_functions": [named]}
        )


TimeZoneName = Annotated[str, _TimeZoneSchema()]


def check_time_zone(value: str | None) -> str | None:
    """A zone this machine knows (R16), or ValueError saying what to choose."""
    if value is not None and value not in time_zones():
        raise ValueError("Choose an IANA time zone name, like America/New_York")
    return value


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
    phone: str | None
    address: str | None


class PracticeUpdate(BaseModel):
    """A partial update: fields left out keep their value."""

    model_config = STRICT_BODY

    name: str | None = Field(default=None, min_length=1, max_length=200)
    secure_email_enabled: bool | None = None
    sender_address: EmailStr | None = None
    # A secure email lives seven days by default (R8); a practice may choose 1 to 90.
    expiry_days: Annotated[int, Field(ge=1, le=MAX_EXPIRY_DAYS), WHOLE] | None = None
    # Pages show times in this IANA zone (R16).
    time_zone: TimeZoneName | None = Field(
        default=None,
        description="Any IANA time zone name; in the US: "
        + ", ".join(f"{zone} ({name})" for zone, name in US_TIME_ZONES),
        examples=[zone for zone, _ in US_TIME_ZONES],
    )
    # One reminder to a patient who has not opened a message this many hours after it was
    # sent; 0 turns reminders off. It must come before the expiry (``check_reminder``).
    reminder_after_hours: Annotated[int, Field(ge=0, le=MAX_EXPIRY_DAYS * 24), WHOLE] | None = None
    # Shown to patients when set ("Call … at …"); blank or null removes them.
    phone: Phone | None = Field(default=None, description="The practice's phone, 7 to 20 digits")
    address: Address | None = Field(
        default=None, description=f"The practice's address, one line, {MAX_ADDRESS_CHARS} chars"
    )

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return clean_phone(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return clean_address(value)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        return check_time_zone(value)


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


def logo_type(data: bytes) -> str:
    """The logo's content type from its first bytes (never its file name), or
    ``PracticeRuleError`` saying why it is refused."""
    if not data:
        raise PracticeRuleError("logo", "Choose a PNG or JPEG file to upload as the logo")
    if len(data) > MAX_LOGO_BYTES:
        raise PracticeRuleError(
            "logo",
            f"The logo is {-(-len(data) // 1024)} KB; it may be at most "
            f"{MAX_LOGO_BYTES // 1024} KB. Choose a smaller image",
        )
    for signature, content_type in LOGO_SIGNATURES.items():
        if data.startswith(signature):
            return content_type
    raise PracticeRuleError(
        "logo", "The logo must be a PNG or JPEG image (this file is neither, whatever its name)"
    )

"""Clinics: a practice's locations, each with its own sender, phone, address, time zone
and Secure Email switch (R19). Checked by the practice's own rules (``domain.practice``):
a clinic's phone, address, zone and sender are what the practice's would be."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from domain.partial import PARTIAL_BODY, not_null_when_given
from domain.practice import (
    MAX_ADDRESS_CHARS,
    Address,
    Phone,
    TimeZoneName,
    check_time_zone,
    clean_address,
    clean_phone,
)
from domain.strict import STRICT_BODY

# Trimmed, so more than spaces; the schema says so without a second message.
ClinicName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(json_schema_extra={"pattern": r"\S"}),
]
DUPLICATE_NAME = "Another clinic of the practice has this name: choose another"
UNKNOWN_CLINIC = "There is no such clinic in this practice"


class _ClinicChecks(BaseModel):
    """The practice's rules for the fields a clinic shares with it."""

    model_config = STRICT_BODY

    @field_validator("phone", check_fields=False)
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return clean_phone(value)

    @field_validator("address", check_fields=False)
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return clean_address(value)

    @field_validator("time_zone", check_fields=False)
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        return check_time_zone(value)


class ClinicCreate(_ClinicChecks):
    name: ClinicName
    # Off until an admin turns it on; on needs a sender (``domain.practice.check_practice``).
    secure_email_enabled: bool = False
    sender_address: EmailStr | None = None
    phone: Phone | None = Field(default=None, description="The clinic's phone, 7 to 20 digits")
    address: Address | None = Field(
        default=None, description=f"The clinic's address, one line, {MAX_ADDRESS_CHARS} chars"
    )
    time_zone: TimeZoneName | None = Field(
        default=None, description="Any IANA time zone name; the practice's when left out"
    )


class ClinicUpdate(_ClinicChecks):
    """A partial update: fields left out keep their value; ``sender_address``, ``phone``
    and ``address`` may be emptied with null (``domain.practice.CLEARABLE``)."""

    model_config = PARTIAL_BODY

    name: ClinicName | None = None
    secure_email_enabled: bool | None = None
    sender_address: EmailStr | None = None
    phone: Phone | None = None
    address: Address | None = None
    time_zone: TimeZoneName | None = None

    _given_means_a_value = not_null_when_given("name", "secure_email_enabled", "time_zone")


class ClinicPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    secure_email_enabled: bool
    sender_address: str | None
    phone: str | None
    address: str | None
    time_zone: str
    created_at: datetime


class ClinicList(BaseModel):
    items: list[ClinicPublic]


def shown_name(clinic_name: str, practice_name: str) -> str:
    """The name a clinic's patient reads in mails and portal pages: the clinic with its
    practice ("Downtown Clinic · Demo Dental"), so the patient recognises both the place
    they visit and the practice they know; the clinic's name alone when it already says
    the practice's ("Demo Dental Downtown")."""
    if practice_name.casefold() in clinic_name.casefold():
        return clinic_name
    return f"{clinic_name} · {practice_name}"

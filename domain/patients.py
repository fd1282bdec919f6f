"""The practice's patient directory (R2): who a secure email may go to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, StringConstraints, field_validator

from domain.addresses import normalise_address
from domain.languages import DEFAULT_LANGUAGE, Language

PatientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PatientStatus(StrEnum):
    # Another provider or office is entered as a NonPatient so it can receive secure email.
    PATIENT = "Patient"
    NON_PATIENT = "NonPatient"


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PatientName
    email: EmailStr
    status: PatientStatus = PatientStatus.PATIENT
    # What the patient's mails and portal pages are written in (R20).
    language: Language = DEFAULT_LANGUAGE
    # One of the practice's clinics (R19), whose sender and phone the patient's messages
    # use; none: the practice's own.
    clinic_id: str | None = None

    @property
    def email_normalised(self) -> str:
        return normalise_address(self.email)


class PatientUpdate(BaseModel):
    """A change to a patient: only the fields given, each checked as when adding one."""

    model_config = ConfigDict(extra="forbid")

    name: PatientName | None = None
    email: EmailStr | None = None
    status: PatientStatus | None = None
    language: Language | None = None
    # Null moves the patient to the practice itself (no clinic).
    clinic_id: str | None = None

    @field_validator("name", "email", "status", "language", mode="before")
    @classmethod
    def _given_means_a_value(cls, value: object) -> object:
        # Leaving a field out keeps it; null would read as "erase", which no field allows.
        if value is None:
            raise ValueError("may be left out, but not null")
        return value

    def changes(self) -> dict[str, str | None]:
        """The fields given, as stored: the status by its value, no clinic as None."""
        given = self.model_dump(exclude_unset=True)
        if "status" in given:
            given["status"] = PatientStatus(given["status"]).value
        return {field: None if value is None else str(value) for field, value in given.items()}


class PatientPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str
    status: PatientStatus
    language: Language
    clinic_id: str | None = None
    created_at: datetime


class PatientList(BaseModel):
    items: list[PatientPublic]
